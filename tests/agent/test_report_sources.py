"""`carestack report` reading a client's bucket for real: restic snapshots in S3 (moto, IAM enforced)
and the evidence records beside them, with the client's own scoped keys from an outputs file."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from infra.cli import main
from infra.evidence_record import record_key
from infra.plan import build_plan
from infra.spec import ClientSpec, load_stack
from lab import s3 as lab_s3

from .conftest import S3

pytestmark = pytest.mark.agent

ROOT = Path(__file__).resolve().parents[2]
STUDIO = ROOT / "stacks" / "Pulumi.studio.yaml"
PASSWORD = "report-sources-test"


def test_the_report_reads_snapshots_and_evidence_from_the_clients_bucket(
    s3: S3, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = load_stack(STUDIO)
    assert isinstance(spec, ClientSpec)
    plan = build_plan(spec)
    web = plan.sites[0].id
    bucket, creds = s3.bucket("cs-report")
    repository = f"s3:{s3.endpoint}/{bucket}"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": creds.access_key_id,
        "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
        "RESTIC_PASSWORD": PASSWORD,
    }
    data = tmp_path / "site"
    data.mkdir()
    (data / "index.php").write_text("<?php echo 'studio';", encoding="utf-8")
    subprocess.run(["restic", "-r", f"{repository}/{web}", "init"], env=env, check=True, capture_output=True)
    subprocess.run(
        ["restic", "-r", f"{repository}/{web}", "backup", "--tag", "complete", str(data)],
        env=env,
        check=True,
        capture_output=True,
    )
    now = datetime.now(UTC)
    record = {
        "schema": 1,
        "client": "studio",
        "site": web,
        "job": "update",
        "run_id": "r1",
        "host": "shared-1",
        "started": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ended": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "result": "failed",
        "exit_code": 3,
        "message": "rolled back",
        "figures": {
            "outcome": "rolled back",
            "broke": "/: HTTP 500",
            "rolled_back": [
                {"provider": "wordpress", "kind": "plugin", "name": "gallery", "from": "2.1.0", "to": "2.2.0"}
            ],
        },
    }
    s3.client().put_object(Bucket=bucket, Key=record_key(web, "update", now, "r1"), Body=json.dumps(record).encode())
    outputs = tmp_path / "studio.outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "repository": repository,
                "bucket": bucket,
                "s3_endpoint": s3.endpoint,
                "s3_region": lab_s3.REGION,
                "s3_access_key_id": creds.access_key_id,
                "s3_secret_access_key": creds.secret_access_key,
                "restic_password": PASSWORD,
            }
        )
    )
    outputs.chmod(0o600)
    today = now.astimezone(ZoneInfo(plan.client.timezone)).date()
    period = ["--from", today.isoformat(), "--to", (today + timedelta(days=1)).isoformat()]
    code = main(["report", str(STUDIO), *period, "--format", "json", "--outputs", str(outputs)])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    backups = {s["id"]: s["backups"] for s in doc["sites"]}
    assert backups[web]["available"] and backups[web]["complete"] == 1
    assert not backups[plan.sites[1].id]["available"]  # never initialised: said so, not zero
    assert doc["sources"]["evidence"]["available"]
    (rolled,) = doc["updates"]["rolled_back"]
    assert (rolled["component"], rolled["from"], rolled["to"], rolled["broke"]) == (
        "plugin gallery",
        "2.1.0",
        "2.2.0",
        "/: HTTP 500",
    )
    assert doc["updates"]["pending"] == [{**{k: rolled[k] for k in ("site", "component", "from", "to", "broke")}}]
    assert PASSWORD not in out and creds.secret_access_key not in out
