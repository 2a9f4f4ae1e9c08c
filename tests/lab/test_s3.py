"""The lab's S3: each client's keys open its own bucket and nothing else; the servers reach its API only."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from lab.state import LabState

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


def _admin(lab: LabState) -> Any:
    key_id, secret = lab.s3_admin_credentials()
    return boto3.client(
        "s3",
        endpoint_url=lab.s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


def _denied(call: Callable[[], Any]) -> None:
    """The call is refused the way AWS refuses it: the S3 error code AccessDenied, not just any failure."""
    with pytest.raises(ClientError) as denied:
        call()
    error = denied.value.response["Error"]
    assert error["Code"] == "AccessDenied", error


def test_another_clients_bucket_is_denied_for_every_operation_the_policy_names_and_copies(lab: LabState) -> None:
    """Bakery's keys against studio's bucket: each action of the policy, and CopyObject/UploadPartCopy from it."""
    mine, theirs = lab.client("bakery"), lab.client("studio")
    s3, owner = _s3(lab, mine.id), _s3(lab, theirs.id)
    secret_key = "lab-test/theirs.txt"
    owner.put_object(Bucket=theirs.bucket, Key=secret_key, Body=b"studio's data")
    s3.put_object(Bucket=mine.bucket, Key="lab-test/mine.txt", Body=b"bakery's data")
    source = {"Bucket": theirs.bucket, "Key": secret_key}

    _denied(lambda: s3.list_objects_v2(Bucket=theirs.bucket))  # s3:ListBucket
    _denied(lambda: s3.get_bucket_location(Bucket=theirs.bucket))  # s3:GetBucketLocation
    _denied(lambda: s3.get_object(Bucket=theirs.bucket, Key=secret_key))  # s3:GetObject
    _denied(lambda: s3.put_object(Bucket=theirs.bucket, Key="lab-test/intruder.txt", Body=b"x"))  # s3:PutObject
    _denied(lambda: s3.create_multipart_upload(Bucket=theirs.bucket, Key="lab-test/intruder.bin"))  # s3:PutObject
    _denied(lambda: s3.delete_object(Bucket=theirs.bucket, Key=secret_key))  # s3:DeleteObject
    # CopyObject: the source is theirs (s3:GetObject on it), or the destination is (s3:PutObject)
    _denied(lambda: s3.copy_object(Bucket=mine.bucket, Key="lab-test/stolen.txt", CopySource=source))
    _denied(
        lambda: s3.copy_object(
            Bucket=theirs.bucket,
            Key="lab-test/planted.txt",
            CopySource={"Bucket": mine.bucket, "Key": "lab-test/mine.txt"},
        )
    )
    # UploadPartCopy: a part of my upload taken from their object
    upload = s3.create_multipart_upload(Bucket=mine.bucket, Key="lab-test/stolen.bin")["UploadId"]
    try:
        _denied(
            lambda: s3.upload_part_copy(
                Bucket=mine.bucket, Key="lab-test/stolen.bin", UploadId=upload, PartNumber=1, CopySource=source
            )
        )
    finally:  # the restic policy grants no s3:AbortMultipartUpload (nor does AWS without it): the admin cleans up
        _admin(lab).abort_multipart_upload(Bucket=mine.bucket, Key="lab-test/stolen.bin", UploadId=upload)

    # nothing of theirs was read, written or deleted
    assert owner.get_object(Bucket=theirs.bucket, Key=secret_key)["Body"].read() == b"studio's data"
    listing = owner.list_objects_v2(Bucket=theirs.bucket, Prefix="lab-test/")
    keys = {o["Key"] for o in listing.get("Contents", [])}
    assert secret_key in keys and not keys & {"lab-test/intruder.txt", "lab-test/intruder.bin", "lab-test/planted.txt"}
    with pytest.raises(ClientError):
        s3.head_object(Bucket=mine.bucket, Key="lab-test/stolen.txt")


def test_copies_inside_a_clients_own_bucket_still_work(lab: LabState) -> None:
    """The copy check refuses other clients' sources, not copying as such."""
    mine = lab.client("bakery")
    s3 = _s3(lab, mine.id)
    s3.put_object(Bucket=mine.bucket, Key="lab-test/original.txt", Body=b"x" * (5 * 1024 * 1024))
    s3.copy_object(
        Bucket=mine.bucket, Key="lab-test/copy.txt", CopySource={"Bucket": mine.bucket, "Key": "lab-test/original.txt"}
    )
    assert s3.head_object(Bucket=mine.bucket, Key="lab-test/copy.txt")["ContentLength"] == 5 * 1024 * 1024
    upload = s3.create_multipart_upload(Bucket=mine.bucket, Key="lab-test/parts.bin")["UploadId"]
    part = s3.upload_part_copy(
        Bucket=mine.bucket,
        Key="lab-test/parts.bin",
        UploadId=upload,
        PartNumber=1,
        CopySource={"Bucket": mine.bucket, "Key": "lab-test/original.txt"},
    )
    s3.complete_multipart_upload(
        Bucket=mine.bucket,
        Key="lab-test/parts.bin",
        UploadId=upload,
        MultipartUpload={"Parts": [{"ETag": part["CopyPartResult"]["ETag"], "PartNumber": 1}]},
    )
    assert s3.head_object(Bucket=mine.bucket, Key="lab-test/parts.bin")["ContentLength"] == 5 * 1024 * 1024


def _as_site_user(lab: LabState, client_id: str, command: str) -> tuple[str, str]:
    """(stdout, stderr) of `command` run on the client's server as its first site's own Linux user."""
    user = lab.plan(client_id).sites[0].linux_user
    server = lab.client(client_id).server
    done = lab.ssh(server, f"runuser -u {shlex.quote(user)} -- sh -c {shlex.quote(command)}", timeout=60)
    return done.stdout, done.stderr


def test_the_servers_cannot_reach_the_s3_servers_admin_api(lab: LabState) -> None:
    """moto's admin API (every user's keys, switching IAM off) is not served to the servers; S3 is."""
    assert lab.s3_endpoint is not None
    keys = {lab.s3_credentials(c.id)[0] for c in lab.clients} | {lab.s3_admin_credentials()[0]}
    for client_id in ("bakery", "shop"):
        url = f"{lab.s3_endpoint}/moto-api/data.json"
        out, err = _as_site_user(lab, client_id, f"curl -s -w '\\n%{{http_code}}' {url}")
        body, _, code = out.rpartition("\n")
        assert code == "403", out + err
        assert not any(key in body for key in keys), "an access key id reached a server"
        for path in ("moto-api/reset-auth", "moto-api/reset", "%6Doto-api/data.json", "/moto-api/data.json"):
            out, err = _as_site_user(
                lab,
                client_id,
                f"curl -s -o /dev/null -w '%{{http_code}}' -X POST --data-binary 0 {lab.s3_endpoint}/{path}",
            )
            assert out.strip() == "403", (path, out, err)
    test_unknown_keys_are_refused_because_iam_is_enforced(lab)  # reset-auth did not switch IAM off
    bakery = _s3(lab, "bakery")
    assert bakery.list_objects_v2(Bucket=lab.client("bakery").bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
