"""The IAM policy that scopes one client's credentials to its own backup bucket.

Both realizations use it: the AWS component attaches it to the client's IAM user,
the lab attaches it to the same user on the local S3 server. Keeping it in one
place means the lab exercises exactly the permissions production grants.
"""

from __future__ import annotations

import json
from typing import Any

# A locked backup must survive even the agency's own stolen admin keys: GOVERNANCE
# lets anyone with s3:BypassGovernanceRetention delete it, COMPLIANCE lets no one.
OBJECT_LOCK_MODE = "COMPLIANCE"

# What restic needs on the bucket itself (listing, region lookup) ...
BUCKET_ACTIONS: tuple[str, ...] = ("s3:GetBucketLocation", "s3:ListBucket")
# ... and on the objects under it (read, write, delete packs/locks/index).
OBJECT_ACTIONS: tuple[str, ...] = ("s3:DeleteObject", "s3:GetObject", "s3:PutObject")


def bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def restic_user_name(bucket: str) -> str:
    """The IAM user that holds a client's restic keys."""
    return f"{bucket}-restic"


def restic_policy(bucket: str, extra_bucket_actions: tuple[str, ...] = ()) -> dict[str, Any]:
    """Least-privilege policy for restic on one bucket.

    `extra_bucket_actions` exists for the local S3 server, which authorizes
    HEAD on a bucket as the non-AWS action `s3:HeadBucket`.
    """
    arn = bucket_arn(bucket)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ResticBucket",
                "Effect": "Allow",
                "Action": sorted(BUCKET_ACTIONS + extra_bucket_actions),
                "Resource": [arn],
            },
            {
                "Sid": "ResticObjects",
                "Effect": "Allow",
                "Action": list(OBJECT_ACTIONS),
                "Resource": [f"{arn}/*"],
            },
        ],
    }


def restic_policy_json(bucket: str, extra_bucket_actions: tuple[str, ...] = ()) -> str:
    return json.dumps(restic_policy(bucket, extra_bucket_actions), sort_keys=True)
