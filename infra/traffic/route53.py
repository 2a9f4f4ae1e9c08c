"""The `route53` traffic switch: UPSERT the sites' A records in the client's hosted zone.

One change batch for all sites (Route 53 applies a batch atomically), with the
plan's failover TTL, then wait until Route 53 reports the change INSYNC.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

from infra.traffic.base import DnsRecord, SwitchError


class Route53Switch:
    name = "route53"

    def __init__(self, client: Any, hosted_zone_id: str | None, wait: bool = True) -> None:
        self.client = client  # boto3 route53 client
        self.zone = hosted_zone_id
        self.wait = wait

    def check(self, records: Sequence[DnsRecord]) -> None:
        if not self.zone:
            raise SwitchError("carestack:traffic.hosted_zone_id is not set: route53 has no zone to change")
        try:
            zone = self.client.get_hosted_zone(Id=self.zone)["HostedZone"]["Name"].rstrip(".")
        except self.client.exceptions.NoSuchHostedZone:
            raise SwitchError(f"route53: no hosted zone {self.zone} (carestack:traffic.hosted_zone_id)") from None
        outside = [r.name for r in records if not (r.name == zone or r.name.endswith("." + zone))]
        if outside:
            raise SwitchError(f"route53: {', '.join(outside)} not in the hosted zone {self.zone} ({zone})")

    def switch(self, records: Sequence[DnsRecord], out: TextIO) -> str:
        assert self.zone is not None  # check() ran first
        changes = [
            {
                "Action": "UPSERT",
                "ResourceRecordSet": {
                    "Name": record.name,
                    "Type": record.type,
                    "TTL": record.ttl,
                    "ResourceRecords": [{"Value": record.value}],
                },
            }
            for record in records
        ]
        answer = self.client.change_resource_record_sets(
            HostedZoneId=self.zone, ChangeBatch={"Comment": "carestack traffic switch", "Changes": changes}
        )
        change = answer["ChangeInfo"]["Id"]
        if self.wait:
            self.client.get_waiter("resource_record_sets_changed").wait(
                Id=change, WaiterConfig={"Delay": 5, "MaxAttempts": 60}
            )
        for record in records:
            out.write(f"  route53 {self.zone}: UPSERT {record.zone_line()}\n")
        return f"route53: {len(records)} record(s) now point at {', '.join(sorted({r.value for r in records}))}"


def route53_client() -> Any:
    import boto3  # only the route53 switch needs it; credentials from the usual AWS environment

    return boto3.client("route53")
