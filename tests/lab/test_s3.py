"""The lab's S3: each client's keys open its own bucket and nothing else."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from infra.lab.state import LabState

pytestmark = pytest.mark.lab


def _s3(lab: LabState, client_id: str) -> Any:
    key_id, secret = lab.s3_credentials(client_id)
    return boto3.client(
        "s3",
        endpoint_url=lab.s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


def test_a_clients_keys_work_on_its_own_bucket_and_are_denied_on_another(lab: LabState) -> None:
    assert len(lab.clients) >= 2
    for client in lab.clients:
        s3 = _s3(lab, client.id)
        key = "lab-test/own-bucket.txt"
        s3.put_object(Bucket=client.bucket, Key=key, Body=b"mine")
        assert s3.get_object(Bucket=client.bucket, Key=key)["Body"].read() == b"mine"
        for other in lab.clients:
            if other.id == client.id:
                continue
            with pytest.raises(ClientError) as denied:
                s3.put_object(Bucket=other.bucket, Key="lab-test/intruder.txt", Body=b"not yours")
            assert denied.value.response["Error"]["Code"] == "AccessDenied"
            with pytest.raises(ClientError) as denied:
                s3.list_objects_v2(Bucket=other.bucket)
            assert denied.value.response["Error"]["Code"] == "AccessDenied"


def test_unknown_keys_are_refused_because_iam_is_enforced(lab: LabState) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=lab.s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIAUNKNOWN000000000",
        aws_secret_access_key="not-a-secret",
        config=Config(retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as refused:
        s3.list_objects_v2(Bucket=lab.clients[0].bucket)
    assert refused.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_the_servers_reach_s3_on_the_bridge_address(lab: LabState) -> None:
    assert lab.s3_endpoint is not None and lab.bridge_address in lab.s3_endpoint
    for host in lab.hosts:
        done = lab.ssh(host.name, f"curl -s -o /dev/null -w '%{{http_code}}' {lab.s3_endpoint}/", timeout=30)
        # Any HTTP answer proves the route and the firewall let the server through (curl says 000 if not).
        assert done.stdout.strip().isdigit() and done.stdout.strip() != "000", done.stdout + done.stderr


def test_secrets_are_private_files(lab: LabState) -> None:
    secrets = [c.restic_password_file for c in lab.clients] + [c.s3_env_file for c in lab.clients]
    for path in [p for p in secrets if p is not None]:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
    assert (lab.state_dir / "secrets").stat().st_mode & 0o077 == 0
