"""What the lab converges its servers with, rebuilt from its public state (for converge tests and the bench).

The same inputs as the lab's onboarding: its clients' plans and secrets, the
push tokens Kuma holds for them, the lab's admin range and key. Converging
with them changes nothing the lab did not already set.
"""

from __future__ import annotations

from collections.abc import Sequence

from infra.ansible_vars import Client, ClientSecrets, Realization
from lab.onboard import realization, sync_monitors
from lab.placement import PlacedClient
from lab.state import LabState


def lab_clients(lab: LabState, servers: Sequence[str]) -> list[Client]:
    placed = [PlacedClient(c.stack, lab.plan(c.id)) for c in lab.clients if c.server in servers]
    tokens, _ = sync_monitors(lab, placed)
    clients = []
    for p in placed:
        key_id, secret = lab.s3_credentials(p.id)
        password = lab.client(p.id).restic_password_file.read_text().strip()
        clients.append(Client(p.plan, ClientSecrets(password, key_id, secret, tokens[p.id])))
    return clients


def lab_realization(lab: LabState) -> Realization:
    return realization(lab)


def secret_values(clients: Sequence[Client]) -> list[str]:
    values = []
    for client in clients:
        s = client.secrets
        values += [s.restic_password, s.s3_access_key_id, s.s3_secret_access_key]
        values += [token for jobs in s.push_tokens.values() for token in jobs.values()]
    return values
