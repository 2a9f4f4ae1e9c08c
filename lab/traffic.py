"""The lab's traffic switch: where the lab's "DNS" sends each site, and Kuma's checks with it.

The lab has no DNS: Kuma checks each site at its server's address with the
domain in the Host header (`onboard.site_addresses`). A switch records the
site's new server in `<state dir>/traffic/<client>.json` and re-syncs the
client's monitors, so Kuma's page checks, and the alert path behind them, hit
the standby after a failover and the own server after a failback; a later
`lab up` keeps the switched addresses.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from infra.plan import CarePlan
from infra.traffic.base import DnsRecord, SwitchError
from lab.errors import LabError
from lab.state import LabState

Resync = Callable[[CarePlan], object]  # re-sync the client's monitors (they read `switched`)


def _file(state: LabState, client_id: str) -> Path:
    return state.state_dir / "traffic" / f"{client_id}.json"


def switched(state: LabState, client_id: str) -> dict[str, str]:
    """site id -> the lab server its traffic goes to, for sites switched away from their own server."""
    path = _file(state, client_id)
    return json.loads(path.read_text()) if path.exists() else {}


class LabSwitch:
    name = "lab"

    def __init__(self, state: LabState, plan: CarePlan, resync: Resync) -> None:
        self.state = state
        self.plan = plan
        self.resync = resync

    def _server(self, address: str) -> str:
        for host in self.state.hosts:
            if host.address == address:
                return host.name
        raise SwitchError(f"{address} is no lab server's address")

    def check(self, records: Sequence[DnsRecord]) -> None:
        by_domain = {site.domain for site in self.plan.sites}
        for record in records:
            if record.name not in by_domain:
                raise SwitchError(f"{record.name}: not a site of {self.plan.client.id}")
            self._server(record.value)
        if self.state.kuma_url is None:
            raise SwitchError("the lab has no Kuma whose checks could follow the switch")

    def switch(self, records: Sequence[DnsRecord], out: TextIO) -> str:
        targets = switched(self.state, self.plan.client.id)
        for record in records:
            site = next(s for s in self.plan.sites if s.domain == record.name)
            server = self._server(record.value)
            if server == self.plan.hosting.server:
                targets.pop(site.id, None)
            else:
                targets[site.id] = server
        path = _file(self.state, self.plan.client.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(targets, indent=2, sort_keys=True) + "\n")
        try:
            self.resync(self.plan)
        except LabError as exc:
            raise SwitchError(str(exc)) from None
        for record in records:
            out.write(f"  lab: {record.zone_line()} (Kuma checks {record.name} at {record.value})\n")
        return f"lab: Kuma checks {len(records)} site(s) at {', '.join(sorted({r.value for r in records}))}"
