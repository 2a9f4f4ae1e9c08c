"""The hardening baseline: each test checks one control of dev-sec's ssh-baseline, linux-baseline or nginx
baseline (named in its docstring) as docs/hardening.md adopts it, on the running server.

The expected values are the baseline's, written here on purpose: they are what the roles are checked
against, not a copy of the roles' own variables.
"""

from __future__ import annotations

import ipaddress
import json

import pytest

from tests.hosts.conftest import Server

# ssh-baseline's lists for OpenSSH 8.5 and later (its libraries/ssh_crypto.rb), as `sshd -T` prints them.
BASELINE_CIPHERS = (
    "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr"
)
BASELINE_MACS = (
    "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-512,hmac-sha2-256"
)
BASELINE_KEX = "sntrup761x25519-sha512@openssh.com,curve25519-sha256@libssh.org,diffie-hellman-group-exchange-sha256"

# linux-baseline's network controls (sysctl-01 to sysctl-20) with the values it requires.
BASELINE_NETWORK = {
    "net.ipv4.ip_forward": 0,  # sysctl-01
    "net.ipv6.conf.all.forwarding": 0,  # sysctl-19
    "net.ipv4.conf.all.rp_filter": 1,  # sysctl-02
    "net.ipv4.conf.default.rp_filter": 1,
    "net.ipv4.icmp_ignore_bogus_error_responses": 1,  # sysctl-03
    "net.ipv4.icmp_echo_ignore_broadcasts": 1,  # sysctl-04
    "net.ipv4.icmp_ratelimit": 100,  # sysctl-05
    "net.ipv4.icmp_ratemask": 88089,  # sysctl-06
    "net.ipv4.conf.all.arp_ignore": 1,  # sysctl-08
    "net.ipv4.conf.all.arp_announce": 2,  # sysctl-09
    "net.ipv4.tcp_rfc1337": 1,  # sysctl-10
    "net.ipv4.tcp_syncookies": 1,  # sysctl-11
    "net.ipv4.conf.all.accept_source_route": 0,  # sysctl-13
    "net.ipv4.conf.default.accept_source_route": 0,
    "net.ipv6.conf.all.accept_source_route": 0,
    "net.ipv6.conf.default.accept_source_route": 0,
    "net.ipv4.conf.all.accept_redirects": 0,  # sysctl-14
    "net.ipv4.conf.default.accept_redirects": 0,
    "net.ipv4.conf.all.secure_redirects": 0,  # sysctl-15
    "net.ipv4.conf.default.secure_redirects": 0,
    "net.ipv4.conf.all.send_redirects": 0,  # sysctl-16
    "net.ipv4.conf.default.send_redirects": 0,
    "net.ipv4.conf.all.log_martians": 1,  # sysctl-17
    "net.ipv4.conf.default.log_martians": 1,
    "net.ipv6.conf.all.accept_redirects": 0,  # sysctl-20
    "net.ipv6.conf.default.accept_redirects": 0,
}

# CIS 3.5 (protocols) and linux-baseline os-10 (file systems; vfat stays for UEFI's /boot/efi).
UNLOADABLE = ("dccp", "sctp", "rds", "tipc", "cramfs", "freevxfs", "jffs2", "hfs", "hfsplus", "squashfs", "udf")


def sshd_settings(server: Server) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in server.run_ok("sshd -T").splitlines() if " " in line)


def controller_address(server: Server) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address this test reaches the server from, as the server sees it (the controller's)."""
    return ipaddress.ip_address(server.run_ok("echo $SSH_CLIENT").split()[0])


def test_sshd_offers_only_the_baselines_ciphers_macs_and_key_exchanges(server: Server) -> None:
    """ssh-baseline sshd-01, sshd-02, sshd-03."""
    settings = sshd_settings(server)
    assert settings["ciphers"] == BASELINE_CIPHERS
    assert settings["macs"] == BASELINE_MACS
    assert settings["kexalgorithms"] == BASELINE_KEX


def test_sshd_uses_no_weak_diffie_hellman_groups(server: Server) -> None:
    """ssh-baseline sshd-48: no moduli shorter than 2048 bits for the group exchange."""
    weak = server.run_ok("awk '$1 !~ /^#/ && $5 < 2047' /etc/ssh/moduli")
    assert weak == ""


def test_sshd_bounds_each_login_attempt(server: Server) -> None:
    """ssh-baseline sshd-18 (LoginGraceTime 30s), sshd-19 (MaxAuthTries; 3 here, see docs/hardening.md),
    sshd-20 and sshd-21 (MaxSessions, MaxStartups), sshd-36 and sshd-37 (client alive)."""
    settings = sshd_settings(server)
    assert settings["logingracetime"] == "30"
    assert int(settings["maxauthtries"]) <= 3
    assert settings["maxsessions"] == "10"
    assert settings["maxstartups"] == "10:30:60"
    assert (settings["clientaliveinterval"], settings["clientalivecountmax"]) == ("300", "3")


def test_sshd_accepts_keys_and_nothing_else(server: Server) -> None:
    """ssh-baseline sshd-06, sshd-22 to sshd-25, sshd-27 to sshd-33, sshd-17: keys only (root by key
    only, which Ansible needs), no host-based, rhosts, Kerberos or GSSAPI logins, no user environment."""
    settings = sshd_settings(server)
    assert settings["permitrootlogin"] == "without-password"
    assert settings["pubkeyauthentication"] == "yes"
    for name in ("passwordauthentication", "kbdinteractiveauthentication", "permitemptypasswords"):
        assert settings[name] == "no", name
    for name in ("hostbasedauthentication", "kerberosauthentication", "gssapiauthentication"):
        assert settings[name] == "no", name
    assert settings["ignorerhosts"] == "yes"
    assert settings["ignoreuserknownhosts"] in ("yes", "no")  # present; host-based logins are off anyway
    assert settings["permituserenvironment"] == "no"
    assert settings["strictmodes"] == "yes"


def test_sshd_forwards_nothing(server: Server) -> None:
    """ssh-baseline sshd-38 to sshd-42: no tunnels, TCP, agent or X11 forwarding, no gateway ports
    (Ansible runs its modules over the session and copies files by sftp: it needs none of them)."""
    settings = sshd_settings(server)
    for name in (
        "permittunnel",
        "allowtcpforwarding",
        "allowstreamlocalforwarding",
        "allowagentforwarding",
        "gatewayports",
        "x11forwarding",
    ):
        assert settings[name] == "no", name
    assert settings["subsystem"].startswith("sftp ")


def test_sshd_logs_who_logged_in_and_says_little(server: Server) -> None:
    """ssh-baseline sshd-13 (LogLevel VERBOSE: each login's key fingerprint), sshd-35 (no TCPKeepAlive),
    sshd-45 and sshd-47 (no last-log line, no Debian banner), and no compression."""
    settings = sshd_settings(server)
    assert settings["loglevel"] == "VERBOSE"
    assert settings["tcpkeepalive"] == "no"
    assert settings["printlastlog"] == "no"
    banner = server.run_ok(
        "python3 -c %s", "import socket; print(socket.create_connection(('127.0.0.1', 22)).recv(255).decode())"
    )
    assert banner.startswith("SSH-2.0-OpenSSH_") and "Debian" not in banner, banner
    assert settings["compression"] == "no"


def test_the_kernels_network_settings_follow_the_baseline(server: Server) -> None:
    """linux-baseline sysctl-01 to sysctl-17, sysctl-19, sysctl-20: no forwarding or redirects, no source
    routing, reverse path filtering, SYN cookies, ICMP limits, martians logged."""
    values = server.run_ok("sysctl" + " %s" * len(BASELINE_NETWORK), *BASELINE_NETWORK)  # "a = 1" per key
    actual = {key: int(value) for key, value in (line.split(" = ") for line in values.splitlines())}
    assert actual == BASELINE_NETWORK


def test_setuid_programs_leave_no_core_dump(server: Server) -> None:
    """linux-baseline sysctl-31a: fs.suid_dumpable is 0 (set by the role; in a container the host's kernel
    owns the value, which must still be 0 or 2)."""
    assert server.host.file("/etc/sysctl.d/90-carestack.conf").contains(r"^-fs\.suid_dumpable = 0$")
    assert server.run_ok("sysctl -n fs.suid_dumpable").strip() in ("0", "2")


def test_no_core_dumps_from_logins_or_services(server: Server) -> None:
    """dev-sec os_hardening limits (sysctl-31 family): a hard core limit of 0 for logins (PAM) and for every
    service (systemd's DefaultLimitCORE, which the web services' units carry; a process started before
    the setting gets it at its next start), and systemd-coredump storing nothing."""
    assert server.login.check_output("ulimit -Hc").strip() == "0"  # a new ssh login goes through PAM's limits
    assert server.run_ok("systemctl show --property=DefaultLimitCORE").strip() == "DefaultLimitCORE=0"
    for unit in ("nginx", f"php{server.php_version}-fpm", "mariadb"):
        assert server.run_ok("systemctl show --property=LimitCORE %s", unit).strip() == "LimitCORE=0", unit
    coredump = server.host.file("/etc/systemd/coredump.conf.d/carestack.conf")
    assert coredump.contains("^Storage=none$")


def test_unused_protocols_and_file_systems_cannot_be_loaded(server: Server) -> None:
    """linux-baseline os-10 (cramfs, freevxfs, jffs2, hfs, hfsplus, squashfs, udf) and CIS 3.5 (dccp,
    sctp, rds, tipc): modprobe resolves each to a no-op install command."""
    for module in UNLOADABLE:
        plan = server.run_ok("modprobe --dry-run --verbose --show-depends %s 2>&1 || true", module)
        assert "install /bin/true" in plan, (module, plan)


def test_repeated_failed_logins_are_banned_but_never_the_controller(server: Server) -> None:
    """dev-sec os_hardening's intent for logins (sshd, WordPress): fail2ban runs the sshd jail on the
    journal and a jail for wp-login.php and xmlrpc.php, banning through nftables; the address that
    converges and checks this server, and the server itself, are on every jail's ignore list."""
    assert server.host.service("fail2ban").is_running
    jails = server.run_ok("fail2ban-client status")
    assert "sshd" in jails and "carestack-wordpress" in jails
    me = controller_address(server)
    for jail in ("sshd", "carestack-wordpress"):
        assert "nftables" in server.run_ok("fail2ban-client get %s actions", jail)
        # "These IP addresses/networks are ignored:" then one "|- address" line each
        ignored = server.run_ok("fail2ban-client get %s ignoreip", jail).splitlines()[1:]
        networks = [ipaddress.ip_network(line.split()[-1], strict=False) for line in ignored]
        assert any(me in network for network in networks), (jail, str(me), ignored)
        assert any(ipaddress.ip_address("127.0.0.1") in network for network in networks), jail


def test_the_wordpress_jail_counts_failed_logins_and_xmlrpc_posts_only(server: Server) -> None:
    """The login jail's filter on lines as nginx writes them to the journal: a failed login (200) and an
    XML-RPC POST count; a good login (a redirect) and a GET of the login form do not."""
    prefix = f"{server.name} carestack_login[123]:"
    lines = {
        f'{prefix} 203.0.113.9 "POST /wp-login.php" 200': 1,
        f'{prefix} 203.0.113.9 "POST //xmlrpc.php?rsd" 200': 1,
        f'{prefix} 203.0.113.9 "POST /wp-login.php" 302': 0,
        f'{prefix} 203.0.113.9 "GET /wp-login.php" 200': 0,
    }
    for line, matches in lines.items():
        out = server.run_ok("fail2ban-regex --print-no-missed %s carestack-wordpress", line)
        assert f"Lines: 1 lines, 0 ignored, {matches} matched" in out, (line, out)


def test_nginx_writes_wordpress_login_attempts_to_the_journal(server: Server) -> None:
    """The login jail's input: a failed login on each WordPress site reaches the journal as the filter
    expects it (from this server itself, which no jail bans)."""
    sites = [site for _, site in server.sites if site.kind in ("wordpress", "woocommerce")]
    if not sites:
        pytest.skip("no WordPress site on this server")
    for site in sites:
        marker = server.run_ok("date +%s.%N").strip()
        port = 443 if site.https else 80  # an HTTPS site redirects its login form there
        server.run_ok(
            "curl -sk -o /dev/null --resolve %s --data 'log=nobody&pwd=wrong' %s",
            f"{site.domain}:{port}:127.0.0.1",
            f"{site.url}wp-login.php?t={marker}",
        )
        logged = server.run_ok("journalctl -t carestack_login --since -1min -o cat --no-pager")
        assert f'"POST /wp-login.php?t={marker}" 200' in logged, (site.domain, logged)


def test_bans_survive_a_reload_of_the_firewall(server: Server) -> None:
    """fail2ban bans through nftables, in a table of its own that a reload of the firewall's rules (as a
    converge that changes them does) leaves alone, so no ban is lost. Bans a documentation address."""
    banned = "203.0.113.77"
    server.run_ok("fail2ban-client set sshd banip %s", banned)
    try:
        assert banned in server.run_ok("nft list table inet f2b-table")
        server.run_ok("systemctl reload nftables")
        assert banned in server.run_ok("nft list table inet f2b-table")
        assert "table inet carestack" in server.run_ok("nft list tables")
    finally:
        server.run_ok("fail2ban-client set sshd unbanip %s", banned)


def test_https_speaks_tls_1_2_and_1_3_only_with_forward_secret_ciphers(server: Server) -> None:
    """dev-sec nginx baseline (nginx_hardening ssl_protocols, ssl_ciphers): every HTTPS site refuses TLS 1.0
    and 1.1 and ciphers without forward secrecy, and answers TLS 1.2 and 1.3."""
    sites = [site for _, site in server.sites if site.https]
    if not sites:
        pytest.skip("no HTTPS site on this server")

    def handshake(domain: str, *options: str) -> bool:
        command = "openssl s_client -connect 127.0.0.1:443 -servername %s" + " %s" * len(options) + " </dev/null"
        return server.host.run(command, domain, *options).rc == 0

    for site in sites:
        assert handshake(site.domain, "-tls1_3"), site.domain
        # The certificate is the CA's ECDSA one once issued, the self-signed RSA one before: offer both.
        aead = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
        assert handshake(site.domain, "-tls1_2", "-cipher", aead), site.domain
        # The client allows the old protocols and ciphers here, so only the server can refuse them.
        assert not handshake(site.domain, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"), site.domain
        assert not handshake(site.domain, "-tls1_2", "-cipher", "AES256-SHA256:@SECLEVEL=0"), site.domain
        assert not handshake(
            site.domain, "-tls1_2", "-cipher", "ECDHE-RSA-AES256-SHA:ECDHE-ECDSA-AES256-SHA:@SECLEVEL=0"
        )


def test_nginx_hides_its_version_and_sends_the_baselines_headers(server: Server) -> None:
    """dev-sec nginx baseline: server_tokens off; X-Frame-Options and X-Content-Type-Options (and a
    referrer policy) on every site's answers."""
    for _, site in server.sites:
        headers = server.run_ok("curl -s -D - -o /dev/null -H %s http://127.0.0.1/", f"Host: {site.domain}").lower()
        assert "\nserver: nginx\r\n" in headers, site.domain
        assert "\nx-frame-options: sameorigin\r\n" in headers, site.domain
        assert "\nx-content-type-options: nosniff\r\n" in headers, site.domain
        assert "\nreferrer-policy: strict-origin-when-cross-origin\r\n" in headers, site.domain


def test_the_security_updates_pending_at_the_first_converge_were_applied(server: Server) -> None:
    """Pending security fixes are applied once, on the first converge (then the agent's update window
    owns updates): the marker exists, and no installed package has a candidate from the security suite
    in the package lists that converge used."""
    assert server.host.file("/var/lib/carestack/security-updates-applied").is_file
    pending = server.run_ok(
        "python3 -c %s",
        "import apt, json; print(json.dumps(sorted(p.name for p in apt.Cache() if p.is_upgradable"
        " and any(o.archive.endswith('-security') for o in p.candidate.origins))))",
    )
    assert json.loads(pending) == []
