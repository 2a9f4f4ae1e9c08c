"""lab/s3.py against a real moto server: lifecycle, IAM enforcement, scoped credentials, object lock."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from infra import agent_config
from lab import procs, s3
from lab.config import LabConfig
from lab.storage import s3_dir
from lab.up import _outlived_s3

pytestmark = pytest.mark.agent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def client(endpoint: str, creds: s3.Credentials) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def refused(call: Callable[[], Any]) -> str:
    """The S3 error code `call` fails with (it must fail)."""
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


@dataclass
class Lab:
    state: Path
    server: s3.S3Server
    admin: s3.Credentials
    secrets: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    state = tmp_path_factory.mktemp("s3")
    srv = s3.start(state, port=free_port())
    try:
        admin = s3.bootstrap_admin(srv.endpoint, state / "secrets")
        s3.enable_iam_enforcement(srv.endpoint)
        yield Lab(state, srv, admin, state / "secrets")
    finally:
        s3.stop(state)


def test_start_is_idempotent_and_stop_uses_the_pid_file(tmp_path: Path) -> None:
    port = free_port()
    first = s3.start(tmp_path, port=port)
    assert s3.start(tmp_path, port=port) == first  # a live recorded server is reused
    assert s3.running(tmp_path) == first
    record = json.loads((tmp_path / "moto.pid").read_text())
    # the start time tells our process from an unrelated one that got its PID after a crash
    assert record == {"host": "127.0.0.1", "port": port, "pid": first.pid, "start_time": procs.start_time(first.pid)}
    with pytest.raises(s3.S3LabError, match="already runs"):
        s3.start(tmp_path, port=free_port())
    assert s3.stop(tmp_path) is True
    assert s3.running(tmp_path) is None and not (tmp_path / "moto.pid").exists()
    assert s3.stop(tmp_path) is False
    with pytest.raises(ProcessLookupError):
        os.kill(first.pid, 0)
    # a stale PID file (dead process) does not count as running
    (tmp_path / "moto.pid").write_text(json.dumps({"host": "127.0.0.1", "port": port, "pid": first.pid}))
    again = s3.start(tmp_path, port=port)
    assert again.pid != first.pid
    s3.stop(tmp_path)


def test_start_refuses_a_port_taken_by_something_else(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as other, pytest.raises(s3.S3LabError, match="already in use"):
        s3.start(tmp_path, port=other.getsockname()[1])


def test_provisioning_with_enforcement_scopes_credentials_to_one_bucket(lab: Lab, tmp_path: Path) -> None:
    srv, admin, secrets = lab.server, lab.admin, lab.secrets
    assert s3.bootstrap_admin(srv.endpoint, secrets) == admin  # idempotent, and works after enforcement

    bakery = s3.provision_bucket(srv.endpoint, admin, "cs-bakery", object_lock_days=0, secrets_dir=secrets)
    again = s3.provision_bucket(srv.endpoint, admin, "cs-bakery", object_lock_days=0, secrets_dir=secrets)
    assert again == bakery  # idempotent: same keys
    assert oct((secrets / "cs-bakery.s3.env").stat().st_mode & 0o777) == "0o600"
    assert "***" in repr(bakery) and bakery.secret_access_key not in repr(bakery)
    florist = s3.provision_bucket(srv.endpoint, admin, "cs-florist", object_lock_days=0)

    own = client(srv.endpoint, bakery)
    own.put_object(Bucket="cs-bakery", Key="site/x", Body=b"1")
    assert own.get_object(Bucket="cs-bakery", Key="site/x")["Body"].read() == b"1"
    assert refused(lambda: own.put_object(Bucket="cs-florist", Key="x", Body=b"1")) == "AccessDenied"
    assert refused(lambda: client(srv.endpoint, florist).get_object(Bucket="cs-bakery", Key="site/x")) == "AccessDenied"
    assert refused(lambda: own.create_bucket(Bucket="cs-new")) == "AccessDenied"
    nobody = client(srv.endpoint, s3.Credentials("AKIANOBODY0000000000", "x"))
    assert refused(nobody.list_buckets) == "InvalidAccessKeyId"

    # the scoped keys are enough for restic (incl. moto's s3:HeadBucket)
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "RESTIC_PASSWORD": "pw",
        "RESTIC_CACHE_DIR": str(tmp_path / "cache"), "RESTIC_REPOSITORY": f"s3:{srv.endpoint}/cs-bakery/site",
        "AWS_ACCESS_KEY_ID": bakery.access_key_id, "AWS_SECRET_ACCESS_KEY": bakery.secret_access_key,
    }  # fmt: skip
    init = subprocess.run(["restic", "init"], env=env, capture_output=True, text=True)
    assert init.returncode == 0, init.stderr


def test_object_lock_bucket_gets_compliance_retention_and_versioning(lab: Lab) -> None:
    s3.provision_bucket(lab.server.endpoint, lab.admin, "cs-locked", object_lock_days=3)
    c = client(lab.server.endpoint, lab.admin)
    lock = c.get_object_lock_configuration(Bucket="cs-locked")["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    retention = lock["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Days"]) == ("COMPLIANCE", 3)
    assert c.get_bucket_versioning(Bucket="cs-locked")["Status"] == "Enabled"
    # a locked version cannot be deleted, even by the admin
    put = c.put_object(Bucket="cs-locked", Key="k", Body=b"v")
    assert refused(lambda: c.delete_object(Bucket="cs-locked", Key="k", VersionId=put["VersionId"])) == "AccessDenied"
    # provisioning again, with backups in the bucket, is a no-op rather than a refusal
    s3.provision_bucket(lab.server.endpoint, lab.admin, "cs-locked", object_lock_days=3)
    with pytest.raises(ValueError, match="requires versioning"):
        s3.provision_bucket(lab.server.endpoint, lab.admin, "cs-x", object_lock_days=3, versioning=False)


def test_servers_that_outlived_their_s3_server_are_the_ones_lab_up_rebuilds(tmp_path: Path) -> None:
    config = LabConfig(state_dir=tmp_path, s3_port=free_port())
    for name, agent_ran in (("shared-1", True), ("shop-1", True), ("standby-1", False)):
        (config.hosts_dir / name / "upper/etc").mkdir(parents=True)
        if agent_ran:
            (config.hosts_dir / name / "upper" / agent_config.STATE_DIR.lstrip("/")).mkdir(parents=True)
    assert _outlived_s3(config) == ["shared-1", "shop-1"]  # moto is not running: their backups are gone
    s3.start(s3_dir(config), port=config.s3_port)
    try:
        assert _outlived_s3(config) == []  # the S3 server they were onboarded against still holds their backups
    finally:
        s3.stop(s3_dir(config))
