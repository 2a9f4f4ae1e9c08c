"""The lab's way to the evidence records in a client's bucket: `infra.evidence`'s access, from the lab's state."""

from __future__ import annotations

from infra.evidence import EvidenceAccess
from lab.errors import LabError
from lab.s3 import REGION
from lab.state import LabState


def evidence_access(state: LabState, client_id: str) -> EvidenceAccess:
    """The client's bucket on the lab's S3, read with the client's own scoped keys (as production does)."""
    if state.s3_endpoint is None:
        raise LabError("the lab has no S3 yet (its step of `carestack lab up` did not run)")
    access_key_id, secret_access_key = state.s3_credentials(client_id)
    return EvidenceAccess(
        bucket=state.client(client_id).bucket,
        region=REGION,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        endpoint=state.s3_endpoint,
    )
