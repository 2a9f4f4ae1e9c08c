"""What a traffic switch does: point each site's name at an address, the way the stack says.

A failover calls `switch` with the standby's address after the standby
answers every checked page; a failback calls it with the own server's address.
`check` runs first, before anything changes, so a switch that cannot work
(no hosted zone, nobody to confirm a manual change) refuses the failover
instead of stranding it half way. Providers: `route53`, `manual`, and the lab's
own (in `lab/`, which moves its Kuma checks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TextIO


class SwitchError(Exception):
    pass


@dataclass(frozen=True)
class DnsRecord:
    name: str  # the site's domain
    type: str  # "A"
    value: str  # the address traffic goes to
    ttl: int  # seconds

    def zone_line(self) -> str:
        """The record as a zone file line, for people to type into their DNS provider."""
        return f"{self.name}. {self.ttl} IN {self.type} {self.value}"


class TrafficSwitch(Protocol):
    name: str

    def check(self, records: Sequence[DnsRecord]) -> None:
        """Raise SwitchError if the switch could not be made (called before anything changes)."""

    def switch(self, records: Sequence[DnsRecord], out: TextIO) -> str:
        """Make the records so; returns a one-line summary of what changed."""
