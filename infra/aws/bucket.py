"""One client's backup bucket and the restic credentials scoped to it.

Every setting comes from `plan.storage`; the IAM policy is the one the lab
enforces too (`infra.storage_policy`), so production grants exactly what the
lab's tests exercise.

Choices that are not tier numbers:
- SSE-S3 (AES256) rather than aws:kms: the data is already encrypted by restic
  before it leaves the server, and a KMS key would need kms:* grants the shared
  restic policy (and the lab's S3) don't have.
- Object lock in COMPLIANCE mode, as in the lab (see `lab.s3`): a locked
  backup survives even the agency's own stolen admin keys.
- Deletes only add delete markers (versioning); noncurrent versions expire after
  `plan.storage.noncurrent_version_days`, which the plan makes outlive the
  longest retention and the lock.
- `pulumi destroy` keeps the bucket: it and its settings (versioning, lock,
  lifecycle, encryption, access block, policy) are retained on delete and never
  force-destroyed, so an offboarded client's backups stay for the retention the
  contract promises. Only the restic user, its key and the password leave the
  state (the key is revoked); deleting the bucket later is the operator's own step.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.plan import StoragePlan
from infra.storage_policy import OBJECT_LOCK_MODE, bucket_arn, restic_policy_json, restic_user_name

SSE_ALGORITHM = "AES256"
# restic keys its repository with this password: 40 letters and digits are about
# 238 bits and survive any quoting on the way to the server's env file.
RESTIC_PASSWORD_LENGTH = 40


def tls_only_policy(bucket: str) -> str:
    """Bucket policy that refuses every request not made over TLS."""
    arn = bucket_arn(bucket)
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [arn, f"{arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        },
        sort_keys=True,
    )


class BackupBucket(pulumi.ComponentResource):
    """Bucket + versioning + SSE + public access block + TLS-only policy + lifecycle
    (+ object lock where the plan asks), an IAM user limited to this bucket, its
    access key and a restic password. Credentials are secret outputs."""

    def __init__(
        self,
        name: str,
        storage: StoragePlan,
        tags: dict[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("carestack:aws:BackupBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        kept = pulumi.ResourceOptions(parent=self, retain_on_delete=True)  # survives `pulumi destroy`
        locked = storage.object_lock_days > 0

        self.bucket = aws.s3.Bucket(
            name,
            bucket=storage.bucket,
            object_lock_enabled=locked,
            force_destroy=False,
            tags=tags,
            opts=kept,
        )
        bucket_id = self.bucket.id
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket_id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled" if storage.versioning else "Suspended"
            ),
            opts=kept,
        )
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket_id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm=SSE_ALGORITHM
                    ),
                )
            ],
            opts=kept,
        )
        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket_id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=kept,
        )
        # S3 rejects a policy written while the access block is being changed.
        self.tls_policy = aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket_id,
            policy=tls_only_policy(storage.bucket),
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, depends_on=[self.public_access_block]),
        )
        after_versioning = pulumi.ResourceOptions(parent=self, retain_on_delete=True, depends_on=[self.versioning])
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket_id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-noncurrent-versions",
                    status="Enabled",
                    # An empty prefix is the whole bucket (the provider wants a filter).
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=storage.noncurrent_version_days
                    ),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(expired_object_delete_marker=True),
                ),
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="abort-incomplete-multipart-uploads",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=storage.abort_multipart_days
                    ),
                ),
            ],
            opts=after_versioning,
        )
        self.object_lock: aws.s3.BucketObjectLockConfiguration | None = None
        if locked:
            self.object_lock = aws.s3.BucketObjectLockConfiguration(
                f"{name}-object-lock",
                bucket=bucket_id,
                object_lock_enabled="Enabled",
                rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                    default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                        mode=OBJECT_LOCK_MODE, days=storage.object_lock_days
                    )
                ),
                opts=after_versioning,
            )

        self.user = aws.iam.User(f"{name}-restic", name=restic_user_name(storage.bucket), tags=tags, opts=child)
        self.user_policy = aws.iam.UserPolicy(
            f"{name}-restic",
            user=self.user.name,
            policy=restic_policy_json(storage.bucket),
            opts=child,
        )
        self.access_key = aws.iam.AccessKey(f"{name}-restic", user=self.user.name, opts=child)
        self.password = random.RandomPassword(
            f"{name}-restic-password", length=RESTIC_PASSWORD_LENGTH, special=False, opts=child
        )

        self.name: pulumi.Output[str] = self.bucket.bucket
        # The providers mark these secret themselves; saying so here keeps them secret
        # whatever the provider does, and lets the mock tests see it.
        self.access_key_id: pulumi.Output[str] = pulumi.Output.secret(self.access_key.id)
        self.secret_access_key: pulumi.Output[str] = pulumi.Output.secret(self.access_key.secret)
        self.restic_password: pulumi.Output[str] = pulumi.Output.secret(self.password.result)
        self.register_outputs({"bucket": self.name})
