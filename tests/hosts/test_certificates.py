"""The site role's certificates: a live https site serves the certificate the CA issued for all of its
names; the challenge directory answers for every name; certbot renews on its timer and reloads nginx."""

from __future__ import annotations

import pytest

from tests.hosts.conftest import Server

LIVE = "/etc/letsencrypt/live"
WEBROOT_PROBE = "/.well-known/acme-challenge/carestack-probe"


def test_every_name_of_every_site_serves_the_challenge_directory(server: Server) -> None:
    if not any(site.certificate for _, site in server.sites):
        pytest.skip(f"{server.name} has no site to certify: the probe is put there with the first")
    for _, site in server.sites:
        for name in site.names:
            body = server.run_ok("curl -s -f -H %s http://127.0.0.1%s", f"Host: {name}", WEBROOT_PROBE)
            assert body == "carestack\n", name


def test_a_live_https_site_serves_its_issued_certificate_for_each_name(server: Server) -> None:
    certified = [site for _, site in server.sites if site.certificate]
    if not certified:
        pytest.skip(f"{server.name} has no site to certify")
    for site in certified:
        issued = server.host.file(f"{LIVE}/{site.id}/fullchain.pem")
        assert issued.exists, site.id
        vhost = server.host.file(f"/etc/nginx/sites-enabled/{site.id}.conf").content_string
        assert f"ssl_certificate {LIVE}/{site.id}/fullchain.pem;" in vhost
        for name in site.names:
            served = server.run_ok(
                "openssl s_client -connect 127.0.0.1:443 -servername %s </dev/null 2>/dev/null"
                " | openssl x509 -noout -fingerprint -sha256",
                name,
            )
            on_disk = server.run_ok("openssl x509 -noout -fingerprint -sha256 -in %s", issued.path)
            assert served == on_disk, name


def test_certbot_renews_on_its_timer_and_reloads_nginx(server: Server) -> None:
    if not any(site.certificate for _, site in server.sites):
        pytest.skip(f"{server.name} has no site to certify")
    timer = server.host.service("certbot.timer")
    assert timer.is_enabled and timer.is_running
    hook = server.host.file("/etc/letsencrypt/renewal-hooks/deploy/carestack-reload-nginx")
    assert hook.mode & 0o111 and "systemctl reload nginx" in hook.content_string
