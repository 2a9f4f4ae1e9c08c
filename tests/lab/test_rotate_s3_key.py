"""Rotating a client's S3 key (docs/rotation.md): a new key first, the servers converged to it, the old one deleted.

The order `pulumi up --replace` keeps, played with the lab's S3 (moto with IAM
enforced, as AWS): a second key for the client's restic user, a converge of the
dedicated server with it, only then the old key deleted. Backups right after
succeed, no carestack unit failed, the old key is refused and the new one works.
The lab keeps the new key (its cached key file is rewritten), so what follows runs
on the rotated key; a test that fails before the old key is gone converges back
to it and deletes the new one.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from infra.ansible_vars import Client
from infra.configure import converge
from infra.secret_file import write_secret
from infra.storage_policy import restic_user_name
from lab.s3 import Credentials
from lab.state import LabState
from tests.ansible.lab_inputs import lab_clients, lab_realization
from tests.lab.test_rotate_ssh_key import SERVER, failed_units

pytestmark = pytest.mark.lab


def aws(lab: LabState, service: str, key_id: str, secret: str) -> Any:
    """S3 through the servers' gateway; IAM (which the gateway never passes) on moto's loopback port."""
    assert lab.s3_endpoint is not None
    endpoint = lab.s3_endpoint if service == "s3" else f"http://127.0.0.1:{urlsplit(lab.s3_endpoint).port}"
    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key_id,
        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )  # fmt: skip


def lists_bucket(lab: LabState, bucket: str, key_id: str, secret: str) -> bool:
    try:
        aws(lab, "s3", key_id, secret).list_objects_v2(Bucket=bucket, MaxKeys=1)
    except ClientError:
        return False
    return True


def with_key(client: Client, key_id: str, secret: str) -> Client:
    rotated = dataclasses.replace(client.secrets, s3_access_key_id=key_id, s3_secret_access_key=secret)
    return dataclasses.replace(client, secrets=rotated)


def test_the_s3_key_rotates_new_key_first_then_the_old_one_deleted_without_a_failed_job(lab: LabState) -> None:
    [client] = lab_clients(lab, [SERVER])
    cid, bucket = client.plan.client.id, client.plan.storage.bucket
    old_id, old_secret = client.secrets.s3_access_key_id, client.secrets.s3_secret_access_key
    iam = aws(lab, "iam", *lab.s3_admin_credentials())
    user = restic_user_name(bucket)
    new = iam.create_access_key(UserName=user)["AccessKey"]
    new_id, new_secret = new["AccessKeyId"], new["SecretAccessKey"]
    realization = lab_realization(lab)
    failed_before = failed_units(lab)
    old_deleted = False
    try:
        result = converge([with_key(client, new_id, new_secret)], realization, ssh_config=lab.ssh_config,
                          ssh_key=lab.ssh_key, stream=None, limit=[SERVER])  # fmt: skip
        assert result.ok, result.output[-3000:]
        assert new_secret not in result.output and old_secret not in result.output
        on_server = lab.ssh(SERVER, f"cat /etc/carestack/secrets/{cid}.s3.env").stdout
        assert f"AWS_ACCESS_KEY_ID={new_id}" in on_server

        iam.delete_access_key(UserName=user, AccessKeyId=old_id)  # only now: the servers use the new key
        old_deleted = True
        env_file = lab.client(cid).s3_env_file
        assert env_file is not None
        write_secret(env_file, Credentials(new_id, new_secret).env_text())  # the lab goes on with the new key

        for site in client.plan.sites:
            backup = lab.ssh(SERVER, f"carestack-agent backup {site.id} --reason manual --wait", timeout=900)
            assert backup.returncode == 0, backup.stdout + backup.stderr
        assert not lists_bucket(lab, bucket, old_id, old_secret), "the old key still opens the bucket"
        assert lists_bucket(lab, bucket, new_id, new_secret)
        assert failed_units(lab) <= failed_before, "a job failed during the rotation"
    finally:
        if not old_deleted:  # back to the key the lab knows, and the new one gone
            back = converge([client], realization, ssh_config=lab.ssh_config, ssh_key=lab.ssh_key, stream=None,
                            limit=[SERVER])  # fmt: skip
            iam.delete_access_key(UserName=user, AccessKeyId=new_id)
            assert back.ok, back.output[-3000:]
