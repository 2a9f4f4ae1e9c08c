"""How the report reaches a client's S3 data: the client stack's outputs, as `pulumi stack output` prints them.

    pulumi stack output --stack <client> --show-secrets --json > <client>.outputs.json   (chmod 600)

The keys used: `repository` (restic's repository base; each site adds /<site id>), `bucket` (the
evidence records), `s3_access_key_id`, `s3_secret_access_key`, `restic_password`, `s3_endpoint`
(AWS's `https://s3.<region>.amazonaws.com`, or another S3 with `s3_region` beside it). The lab writes
the same shape from its state. The file holds secrets: the report refuses one that others can read,
and hands the secrets to restic in its environment, never in argv.
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path

from infra.evidence import EvidenceAccess
from infra.spec import SpecError

KEYS = ("repository", "bucket", "s3_access_key_id", "s3_secret_access_key", "restic_password")
# An S3 that is not AWS (the lab's) names no region in its address.
DEFAULT_REGION = "us-east-1"


class AccessError(SpecError):
    """An outputs file the report can't use: names the file and the key."""


@dataclass(frozen=True)
class ClientAccess:
    repository: str
    bucket: str
    access_key_id: str
    secret_access_key: str
    restic_password: str
    s3_endpoint: str | None
    s3_region: str | None

    def __repr__(self) -> str:  # never the secrets
        return f"ClientAccess(repository={self.repository!r})"

    def site_repository(self, site_id: str) -> str:
        return f"{self.repository.rstrip('/')}/{site_id}"

    def evidence(self) -> EvidenceAccess:
        """The evidence reader's access to the same bucket, with the same scoped keys."""
        outputs = {"bucket": self.bucket, "s3_endpoint": self.s3_endpoint, "s3_access_key_id": self.access_key_id,
                   "s3_secret_access_key": self.secret_access_key}  # fmt: skip
        if self.s3_region is None:
            return EvidenceAccess.from_stack_outputs(outputs)
        return EvidenceAccess(self.bucket, self.s3_region, self.access_key_id, self.secret_access_key, self.s3_endpoint)


def outputs_path(folder: Path, client_id: str) -> Path:
    """Where --outputs-dir keeps a client's outputs: `<client id>.outputs.json`."""
    return Path(folder) / f"{client_id}.outputs.json"


def load_access(path: Path) -> ClientAccess:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise AccessError(str(path), [f"can't read the stack outputs: {e.strerror}"]) from e
    problems = []
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        problems.append(f"holds secrets but is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
    try:
        data = json.loads(text)
    except ValueError as e:
        raise AccessError(str(path), [*problems, f"not JSON ({e})"]) from e
    if not isinstance(data, dict):
        raise AccessError(str(path), [*problems, "expected a JSON object (pulumi stack output --json)"])
    for key in KEYS:
        if not isinstance(data.get(key), str) or not data[key]:
            problems.append(f"{key}: missing (expected the stack output of that name, --show-secrets)")
    if problems:
        raise AccessError(str(path), problems)
    endpoint = data.get("s3_endpoint")
    region = data.get("s3_region")
    return ClientAccess(
        data["repository"],
        data["bucket"],
        data["s3_access_key_id"],
        data["s3_secret_access_key"],
        data["restic_password"],
        endpoint if isinstance(endpoint, str) and endpoint else None,
        region if isinstance(region, str) and region else None,
    )
