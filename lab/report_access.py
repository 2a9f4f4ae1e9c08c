"""The report's access to a lab client's S3 data, in the shape of a client stack's outputs.

`carestack report --outputs FILE` reads what `pulumi stack output --show-secrets --json` prints in
production; the lab writes the same keys from its state (0600), so the report runs the same path.
"""

from __future__ import annotations

import json
from pathlib import Path

from infra.secret_file import write_secret
from lab.errors import LabError
from lab.s3 import REGION
from lab.state import LabState


def lab_outputs(state: LabState, client_id: str) -> dict[str, str]:
    if state.s3_endpoint is None:
        raise LabError("the lab has no S3 yet (its step of `carestack lab up` did not run)")
    client = state.client(client_id)
    access_key_id, secret_access_key = state.s3_credentials(client_id)
    return {
        "client": client_id,
        "bucket": client.bucket,
        "repository": f"s3:{state.s3_endpoint.rstrip('/')}/{client.bucket}",
        "s3_endpoint": state.s3_endpoint,
        "s3_region": REGION,
        "s3_access_key_id": access_key_id,
        "s3_secret_access_key": secret_access_key,
        "restic_password": client.restic_password_file.read_text().strip(),
    }


def write_lab_outputs(state: LabState, client_id: str, path: Path) -> Path:
    write_secret(path, json.dumps(lab_outputs(state, client_id), indent=2) + "\n")
    return path
