"""Each client's backup bucket: settings and lifecycle from the plan, credentials scoped and secret."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from infra.plan import build_plan
from infra.program import stack_file
from infra.spec import ClientSpec, load_stack
from infra.storage_policy import bucket_arn
from tests.pulumi.harness import Deployer, RecordingMocks, client_stacks, is_secret, registered

CLIENTS = client_stacks()

# What restic may do, and nothing more: the least-privilege contract of the IAM policy.
RESTIC_BUCKET_ACTIONS = {"s3:GetBucketLocation", "s3:ListBucket"}
RESTIC_OBJECT_ACTIONS = {"s3:DeleteObject", "s3:GetObject", "s3:PutObject"}


@pytest.mark.parametrize("client", CLIENTS)
@pulumi.runtime.test
def test_bucket_is_versioned_encrypted_private_and_tls_only(
    deploy: Deployer, mocks: RecordingMocks, client: str
) -> Any:
    built = deploy.client(client)
    storage = built.plan.storage
    parts = built.bucket

    def check(args: list[Any]) -> None:
        bucket, versioning, encryption, block, policy = args
        assert bucket.inputs["bucket"] == storage.bucket
        assert versioning.inputs["bucket"] == storage.bucket
        assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}
        (rule,) = encryption.inputs["rules"]
        assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
        assert {k: v for k, v in block.inputs.items() if k != "bucket"} == {
            "blockPublicAcls": True,
            "blockPublicPolicy": True,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": True,
        }
        (statement,) = json.loads(policy.inputs["policy"])["Statement"]
        arn = bucket_arn(storage.bucket)
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert sorted(statement["Resource"]) == [arn, f"{arn}/*"]

    return pulumi.Output.all(
        *(
            registered(r, mocks)
            for r in (parts.bucket, parts.versioning, parts.encryption, parts.public_access_block, parts.tls_policy)
        )
    ).apply(check)


@pytest.mark.parametrize("client", CLIENTS)
@pulumi.runtime.test
def test_lifecycle_days_are_the_plans(deploy: Deployer, mocks: RecordingMocks, client: str) -> Any:
    built = deploy.client(client)
    storage = built.plan.storage

    def check(lifecycle: Any) -> None:
        rules = {rule["id"]: rule for rule in lifecycle.inputs["rules"]}
        assert all(rule["status"] == "Enabled" and rule["filter"] == {"prefix": ""} for rule in rules.values())
        noncurrent = rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"]
        assert noncurrent == {"noncurrentDays": storage.noncurrent_version_days}
        # deleted versions must outlive every kept snapshot and the lock
        assert noncurrent["noncurrentDays"] > max(storage.retention_days, storage.object_lock_days)
        abort = rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"]
        assert abort == {"daysAfterInitiation": storage.abort_multipart_days}

    return registered(built.bucket.lifecycle, mocks).apply(check)


@pytest.mark.parametrize("client", CLIENTS)
@pulumi.runtime.test
def test_object_lock_only_where_the_tier_says(deploy: Deployer, mocks: RecordingMocks, client: str) -> Any:
    built = deploy.client(client)
    days = built.plan.storage.object_lock_days
    locks = built.bucket.object_lock

    def check(bucket: Any) -> None:
        assert bucket.inputs["objectLockEnabled"] is (days > 0)
        found = mocks.of_type("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")
        if days == 0:
            assert locks is None and found == []
            return
        (lock,) = found
        assert lock.inputs["objectLockEnabled"] == "Enabled"
        assert lock.inputs["rule"] == {"defaultRetention": {"mode": "COMPLIANCE", "days": days}}

    waits = [registered(built.bucket.bucket, mocks)]
    if locks is not None:
        waits.append(registered(locks, mocks))
    return pulumi.Output.all(*waits).apply(lambda regs: check(regs[0]))


def test_the_example_stacks_cover_locked_and_unlocked_tiers() -> None:
    days = set()
    for client in CLIENTS:
        spec = load_stack(stack_file(client))
        assert isinstance(spec, ClientSpec)
        days.add(build_plan(spec).storage.object_lock_days > 0)
    assert days == {True, False}


@pytest.mark.parametrize("client", CLIENTS)
@pulumi.runtime.test
def test_restic_policy_is_limited_to_the_clients_bucket(deploy: Deployer, mocks: RecordingMocks, client: str) -> Any:
    built = deploy.client(client)
    arn = bucket_arn(built.plan.storage.bucket)

    def check(args: list[Any]) -> None:
        user, policy, _key = args
        assert policy.inputs["user"] == user.inputs["name"]
        document = json.loads(policy.inputs["policy"])
        granted = {
            frozenset(statement["Resource"]): set(statement["Action"])
            for statement in document["Statement"]
            if statement["Effect"] == "Allow"
        }
        assert granted == {frozenset({arn}): RESTIC_BUCKET_ACTIONS, frozenset({f"{arn}/*"}): RESTIC_OBJECT_ACTIONS}
        assert all(statement["Effect"] == "Allow" for statement in document["Statement"])
        text = policy.inputs["policy"]
        assert '"*"' not in text and "s3:*" not in text
        # no other bucket: every resource is this bucket or its objects
        assert {r for s in document["Statement"] for r in s["Resource"]} == {arn, f"{arn}/*"}
        # exactly one user policy, one key, on this user
        assert [p.name for p in mocks.of_type("aws:iam/userPolicy:UserPolicy")] == [policy.name]
        (key,) = mocks.of_type("aws:iam/accessKey:AccessKey")
        assert key.inputs["user"] == user.inputs["name"]

    parts = built.bucket
    # The key too: the check counts the keys, and resources register in no fixed order.
    return pulumi.Output.all(
        registered(parts.user, mocks), registered(parts.user_policy, mocks), registered(parts.access_key, mocks)
    ).apply(check)


@pytest.mark.parametrize("client", CLIENTS)
@pulumi.runtime.test
def test_credentials_are_exported_as_secrets(deploy: Deployer, client: str) -> Any:
    outputs = deploy.client(client).outputs
    secret = ["s3_access_key_id", "s3_secret_access_key", "restic_password"]
    plain = ["bucket", "repository", "server_address", "hosts"]

    def check(flags: list[bool]) -> None:
        assert flags == [True] * len(secret) + [False] * len(plain)

    return pulumi.Output.all(*(is_secret(outputs[name]) for name in secret + plain)).apply(check)


@pytest.mark.parametrize("client", CLIENTS)
@pulumi.runtime.test
def test_repository_and_credentials_outputs(deploy: Deployer, mocks: RecordingMocks, client: str) -> Any:
    built = deploy.client(client)
    outputs = built.outputs
    region = pulumi.Config("aws").require("region")

    def check(values: list[Any]) -> None:
        bucket, repository, endpoint, key_id, secret, password = values
        assert bucket == built.plan.storage.bucket
        assert repository == f"s3:s3.{region}.amazonaws.com/{built.plan.storage.bucket}"
        assert endpoint == f"https://s3.{region}.amazonaws.com"
        key = mocks.one("aws:iam/accessKey:AccessKey")
        assert (key_id, secret) == (key.resource_id, key.state["secret"])
        assert password == mocks.one("random:index/randomPassword:RandomPassword").state["result"]
        generator = mocks.one("random:index/randomPassword:RandomPassword").inputs
        assert generator["length"] >= 32 and generator["special"] is False

    names = ["bucket", "repository", "s3_endpoint", "s3_access_key_id", "s3_secret_access_key", "restic_password"]
    return pulumi.Output.all(*(outputs[name] for name in names)).apply(check)


@pytest.mark.parametrize("client", CLIENTS)
@pulumi.runtime.test
def test_pulumi_destroy_keeps_the_bucket_and_its_settings_and_revokes_the_key(
    deploy: Deployer, mocks: RecordingMocks, client: str
) -> Any:
    """Offboarding: the backups outlive the stack (retained, never force-destroyed, lock and lifecycle kept)."""
    built = deploy.client(client)

    def check(_: Any) -> None:
        under = mocks.custom_resources_under(mocks.one("carestack:aws:BackupBucket").urn)
        kept = {r.typ for r in under if r.retain_on_delete}
        deleted = {r.typ for r in under if not r.retain_on_delete}
        assert {r.typ for r in under if r.typ.startswith("aws:s3/")} == kept
        assert "aws:s3/bucket:Bucket" in kept
        assert "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration" in kept
        if built.plan.storage.object_lock_days > 0:
            assert "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration" in kept
        assert deleted == {"aws:iam/user:User", "aws:iam/userPolicy:UserPolicy", "aws:iam/accessKey:AccessKey",
                           "random:index/randomPassword:RandomPassword"}  # fmt: skip
        assert mocks.one("aws:s3/bucket:Bucket").inputs.get("forceDestroy") is False

    parts = built.bucket
    resources = [parts.bucket, parts.versioning, parts.encryption, parts.public_access_block, parts.tls_policy,
                 parts.lifecycle, parts.user, parts.user_policy, parts.access_key, parts.password]  # fmt: skip
    if parts.object_lock is not None:
        resources.append(parts.object_lock)
    return pulumi.Output.all(*(registered(r, mocks) for r in resources)).apply(check)
