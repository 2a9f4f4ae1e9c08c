"""The `manual` traffic switch: print the exact records to change, and go on only once confirmed.

For clients whose DNS the agency does not control. With `--confirm` the
operator has said the records are (being) changed; without it the command
waits for the operator to type `confirm` at the terminal, and refuses up
front when there is no terminal to ask.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from infra.traffic.base import DnsRecord, SwitchError


class ManualSwitch:
    name = "manual"

    def __init__(self, confirmed: bool, answers: TextIO | None = None) -> None:
        self.confirmed = confirmed
        self.answers = answers if answers is not None else sys.stdin

    def check(self, records: Sequence[DnsRecord]) -> None:
        if not self.confirmed and not self.answers.isatty():
            raise SwitchError(
                "the manual traffic switch needs someone to change the DNS records: run in a terminal, "
                "or with --confirm once the records below are being changed:\n" + _listing(records)
            )

    def switch(self, records: Sequence[DnsRecord], out: TextIO) -> str:
        out.write("Change these DNS records at the sites' DNS provider:\n" + _listing(records))
        if not self.confirmed:
            out.write("Type confirm once they are changed: ")
            out.flush()
            if self.answers.readline().strip() != "confirm":
                raise SwitchError("the DNS change was not confirmed")
        return f"manual: {len(records)} record(s) given to the operator"


def _listing(records: Sequence[DnsRecord]) -> str:
    return "".join(f"  {record.zone_line()}\n" for record in records)
