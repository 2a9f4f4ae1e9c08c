"""The S3 gateway's rules, without a server: what passes to moto and what is refused (fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.storage_policy import restic_policy
from lab.s3_gateway import Denied, Policies, allowed, caller, check, copy_source

BAKERY = "AKIABAKERY0000000000"
SIGNED = {
    "Authorization": f"AWS4-HMAC-SHA256 Credential={BAKERY}/20261201/us-east-1/s3/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=abc"
}


@pytest.fixture
def policies(tmp_path: Path) -> Policies:
    path = tmp_path / "policies.json"
    path.write_text(json.dumps({BAKERY: [restic_policy("bakery-backups", ("s3:HeadBucket",))]}))
    return Policies(path)


def test_signed_s3_calls_pass(policies: Policies) -> None:
    check("GET", "/bakery-backups?list-type=2", SIGNED, policies)
    check("PUT", "/bakery-backups/data/ab/abcdef", SIGNED, policies)
    presigned = f"/bakery-backups/k?X-Amz-Credential={BAKERY}%2F20261201%2Fus-east-1%2Fs3%2Faws4_request"
    check("GET", presigned, {}, policies)


@pytest.mark.parametrize(
    "target", ["/moto-api/data.json", "//moto-api/data.json", "/%6Doto-api/reset-auth", "/MOTO-API/data.json"]
)
def test_the_admin_api_is_refused_however_spelled(policies: Policies, target: str) -> None:
    with pytest.raises(Denied, match=r"admin API|this server's paths"):
        check("GET", target, SIGNED, policies)


def test_anonymous_other_services_and_foreign_targets_are_refused(policies: Policies) -> None:
    with pytest.raises(Denied, match="anonymous"):
        check("GET", "/bakery-backups", {}, policies)
    iam = {"Authorization": SIGNED["Authorization"].replace("/s3/", "/iam/")}
    with pytest.raises(Denied, match="'iam'"):
        check("POST", "/", iam, policies)
    with pytest.raises(Denied, match="this server's paths"):
        check("GET", "http://127.0.0.1:9000/moto-api/data.json", SIGNED, policies)


def test_a_copy_needs_read_access_to_its_source(policies: Policies) -> None:
    own = {**SIGNED, "x-amz-copy-source": "/bakery-backups/data/ab/abcdef"}
    check("PUT", "/bakery-backups/copy", own, policies)
    theirs = {**SIGNED, "x-amz-copy-source": "studio-backups/config?versionId=3"}
    with pytest.raises(Denied, match=r"studio-backups/config \(s3:GetObjectVersion\)"):
        check("PUT", "/bakery-backups/copy?partNumber=1&uploadId=x", theirs, policies)
    stranger = {**SIGNED, "Authorization": SIGNED["Authorization"].replace(BAKERY, "AKIASTRANGER00000000")}
    with pytest.raises(Denied, match="copy source"):
        check("PUT", "/bakery-backups/copy", {**stranger, "x-amz-copy-source": "/bakery-backups/x"}, policies)


def test_policy_evaluation_and_parsing() -> None:
    policy = restic_policy("bakery-backups")
    assert allowed([policy], "s3:GetObject", "arn:aws:s3:::bakery-backups/any/key")
    assert not allowed([policy], "s3:GetObject", "arn:aws:s3:::bakery-backups-other/key")
    assert not allowed([policy], "s3:GetObjectVersion", "arn:aws:s3:::bakery-backups/key")
    deny = {"Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}
    assert not allowed([policy, deny], "s3:GetObject", "arn:aws:s3:::bakery-backups/key")
    assert copy_source("/b/k%20with%20space") == ("b", "k with space", None)
    assert caller({}, "") is None


def test_the_restic_policy_lets_a_client_write_its_own_evidence_and_no_one_elses() -> None:
    """The agent writes its evidence records with the restic keys: the policy production attaches must cover
    evidence/ in the client's bucket (listing included, for the reader) and nothing of another bucket."""
    own = [restic_policy("bakery-backups")]
    key = "evidence/bakery-www/backup/2026/12/20261201T010203Z-r1.json"
    for action in ("s3:PutObject", "s3:GetObject"):
        assert allowed(own, action, f"arn:aws:s3:::bakery-backups/{key}")
        assert not allowed(own, action, f"arn:aws:s3:::shop-backups/{key}")
    assert allowed(own, "s3:ListBucket", "arn:aws:s3:::bakery-backups")
    assert not allowed(own, "s3:ListBucket", "arn:aws:s3:::shop-backups")
