"""The agent's stdlib S3 client without a server: AWS's own SigV4 example, and where a repository points."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from carestack_agent.s3 import EMPTY_SHA256, Bucket, S3Error, bucket_of, sign

KEYS = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",  # AWS's documented example keys
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
}


def test_the_signature_is_the_one_in_awss_sigv4_example() -> None:
    """ "GET Object" from AWS's "Signature Calculations for the Authorization Header" (the published values)."""
    bucket = Bucket("https", "examplebucket.s3.amazonaws.com", "examplebucket", "us-east-1",
                    KEYS["AWS_ACCESS_KEY_ID"], KEYS["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
    headers = sign(bucket, "GET", "/test.txt", {}, {"Range": "bytes=0-9"}, EMPTY_SHA256,
                   datetime(2013, 5, 24, tzinfo=UTC))  # fmt: skip
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def test_bucket_region_and_endpoint_come_from_the_repository() -> None:
    aws = bucket_of("s3:https://s3.eu-central-1.amazonaws.com/cs-bakery-backups/bakery-www", KEYS)
    assert (aws.scheme, aws.host, aws.bucket, aws.region) == (
        "https", "s3.eu-central-1.amazonaws.com", "cs-bakery-backups", "eu-central-1")  # fmt: skip
    lab = bucket_of("s3:http://10.77.0.1:9000/cs-bakery-backups/bakery-www", KEYS)
    assert (lab.endpoint, lab.bucket, lab.region) == ("http://10.77.0.1:9000", "cs-bakery-backups", "us-east-1")
    named = bucket_of("s3:http://10.77.0.1:9000/b/x", {**KEYS, "AWS_DEFAULT_REGION": "eu-west-3"})
    assert named.region == "eu-west-3"
    assert KEYS["AWS_SECRET_ACCESS_KEY"] not in repr(aws) and KEYS["AWS_ACCESS_KEY_ID"] not in repr(aws)
    with pytest.raises(S3Error, match="is not s3:http"):
        bucket_of("/srv/backups/bakery-www", KEYS)
