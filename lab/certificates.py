"""The lab's sites and its CA: which names resolve where, and what a new root means for the servers.

Pebble keeps everything in memory: after it restarts (a rebooted machine), its
root, its accounts and its orders are new, so a certificate a server holds no
longer chains to the root Kuma trusts and certbot's account is unknown to it.
The servers then forget their ACME state, and the next converge orders every
certificate again (the root is part of what a converge depends on).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from lab.config import LabConfig
from lab.errors import LabError
from lab.placement import PlacedClient
from lab.state import LabState

ROOT_FILE = "root.pem"
LETSENCRYPT = "/etc/letsencrypt"
# What certbot keeps per CA: the account, the certificates and their renewal settings, and
# carestack's record of the names each was ordered for.
_ACME_STATE = ("accounts", "archive", "live", "renewal", "carestack")


def root_file(config: LabConfig) -> Path:
    return config.run_dir / "acme" / ROOT_FILE


def save_root(config: LabConfig, root_pem: str) -> Path:
    path = root_file(config)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != root_pem:
        path.write_text(root_pem)
    return path


def site_names(state: LabState, clients: Sequence[PlacedClient]) -> dict[str, str]:
    """Every name of every site, to the address of the server it runs on (what DNS says after a cutover)."""
    return {
        name: state.host(client.server).address
        for client in clients
        for site in client.plan.sites
        for name in site.names
    }


def reissue_under(config: LabConfig, state: LabState, root_pem: str) -> list[str]:
    """If the CA's root changed since the last `lab up`, make the servers forget their ACME state;
    the servers that did, by name."""
    recorded = root_file(config)
    if not recorded.exists() or recorded.read_text() == root_pem:
        return []
    paths = " ".join(shlex.quote(f"{LETSENCRYPT}/{part}") for part in _ACME_STATE)
    forgot = []
    for host in state.hosts:
        answer = state.ssh(host.name, f"if [ -d {LETSENCRYPT}/live ]; then rm -rf {paths}; echo forgot; fi", timeout=60)
        if answer.returncode != 0:
            raise LabError(f"{host.name}: could not remove its certificates of the old lab CA: {answer.stderr.strip()}")
        if answer.stdout.strip() == "forgot":
            forgot.append(host.name)
    return forgot
