"""The DNS cutover's two stages on the lab (docs/certificates.md): pending pages no one, live is certified.

While a site's DNS is `pending` (its names still point at the old host), a
new server serves it with its own self-signed certificate and orders none, and
Kuma checks its pages by address over http with the domain as Host header,
alerting nobody. Set `live`, the next converge orders its certificate from the
lab's CA and Kuma checks it over https with verification on, alerting as the
plan routes. The lab's site is live again afterwards whatever happened.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import ssl
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from infra.ansible_vars import Client, ClientSecrets
from infra.configure import converge
from infra.kuma_client import connect
from infra.plan import CarePlan
from lab import onboard
from lab.placement import PlacedClient
from lab.state import LabState
from lab.status import fetch_page
from tests.ansible.lab_inputs import lab_clients, lab_realization
from tests.lab.test_certificates import served_certificate

pytestmark = pytest.mark.lab

CLIENT = "bakery"


def staged(plan: CarePlan, dns: str) -> CarePlan:
    return dataclasses.replace(plan, sites=tuple(dataclasses.replace(site, dns=dns) for site in plan.sites))


def converge_as(lab: LabState, plan: CarePlan) -> None:
    """The client's monitors synced and its server converged for this plan (its neighbours as they are)."""
    server = plan.hosting.server
    others = [c for c in lab_clients(lab, [server]) if c.plan.client.id != CLIENT]
    tokens, _ = onboard.sync_monitors(lab, [PlacedClient(lab.client(CLIENT).stack, plan)])
    key_id, secret = lab.s3_credentials(CLIENT)
    password = lab.client(CLIENT).restic_password_file.read_text().strip()
    ours = Client(plan, ClientSecrets(password, key_id, secret, tokens[CLIENT]))
    result = converge([*others, ours], lab_realization(lab), ssh_config=lab.ssh_config, ssh_key=lab.ssh_key,
                      stream=None, limit=[server])  # fmt: skip
    assert result.ok, result.output[-3000:]


def page_monitors(lab: LabState, plan: CarePlan) -> list[dict[str, Any]]:
    names = {f"{site.id} · {check.path}" for site in plan.sites for check in site.checks}
    with connect(lab.kuma_login()) as session:
        return [m for m in session.monitors() if m["name"] in names]


def issuer_unverified(address: str, name: str) -> str:
    """The issuer of the certificate served for `name`, taken without verifying it."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((address, 443), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    shown = subprocess.run(["openssl", "x509", "-noout", "-issuer"], input=ssl.DER_cert_to_PEM_cert(der),
                           capture_output=True, text=True, check=True)  # fmt: skip
    return shown.stdout.strip()


@pytest.fixture
def live_afterwards(lab: LabState) -> Iterator[CarePlan]:
    plan = lab.plan(CLIENT)
    assert all(site.dns == "live" and site.certificate for site in plan.sites), "the lab's bakery is live on https"
    try:
        yield plan
    finally:
        converge_as(lab, plan)


def test_a_pending_site_pages_nobody_and_the_cutover_certifies_it(lab: LabState, live_afterwards: CarePlan) -> None:
    live = live_afterwards
    server = lab.host(live.hosting.server).address
    site = live.sites[0]
    check = site.checks[0]
    # As on a new server for an existing site: no certificate for it yet.
    forget = (
        f"certbot delete --non-interactive --cert-name {site.id} && rm -f /etc/letsencrypt/carestack/{site.id}.names"
    )
    assert lab.ssh(live.hosting.server, forget).returncode == 0

    pending = staged(live, "pending")
    converge_as(lab, pending)
    assert lab.ssh(live.hosting.server, f"test -e /etc/letsencrypt/live/{site.id}").returncode != 0, "ordered"
    assert "Pebble" not in issuer_unverified(server, site.domain)  # the server's own certificate
    status, body = fetch_page(server, site.domain, check.path)
    assert status == check.status and check.keyword in body
    for monitor in page_monitors(lab, pending):
        assert monitor["url"].startswith(f"http://{server}/"), monitor["url"]
        assert json.loads(monitor["headers"]) == {"Host": site.domain}
        assert not monitor["notificationIDList"], f"{monitor['name']} would page someone"
        assert monitor["expiryNotification"] is False

    converge_as(lab, live)  # the cutover: dns live
    _, parsed = served_certificate(lab, server, site.domain)  # verified against the lab CA's root
    assert "Pebble" in dict(item[0] for item in parsed["issuer"])["commonName"]
    monitors = page_monitors(lab, live)
    assert monitors and all(m["url"].startswith(f"https://{server}/") for m in monitors)
    assert all(m["ignoreTls"] is False and m["expiryNotification"] is True for m in monitors)
    assert all(m["notificationIDList"] for m in monitors), "live pages alert as the plan routes them"
