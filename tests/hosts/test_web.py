"""The web role: nginx, PHP-FPM and MariaDB run, listen where they should, and are sized for the host."""

from __future__ import annotations

from tests.hosts.conftest import Server


def test_the_web_services_run_and_start_at_boot(server: Server) -> None:
    for name in ("nginx", f"php{server.php_version}-fpm", "mariadb", "nftables"):
        service = server.host.service(name)
        assert service.is_enabled, name
        if name != "nftables":  # a oneshot: loaded rules, no process
            assert service.is_running, name


def test_web_and_ssh_listen_and_the_database_only_on_its_socket(server: Server) -> None:
    for port in (22, 80, 443):
        assert server.host.socket(f"tcp://0.0.0.0:{port}").is_listening, port
    assert not server.host.socket("tcp://3306").is_listening
    assert server.host.socket("unix:///run/mysqld/mysqld.sock").is_listening


def test_mariadb_is_sized_for_the_host_and_reached_through_its_socket_only(server: Server) -> None:
    memory_kib = int(server.run_ok("awk '/^MemTotal/ {print $2}' /proc/meminfo"))
    cnf = server.run_ok("cat /etc/mysql/mariadb.conf.d/90-carestack.cnf")
    sized_mb = int(cnf.split("Sized for this host: ")[1].split()[0])  # MemTotal, or the server's share of it
    assert 256 <= sized_mb <= memory_kib // 1024
    pool = int(server.run_ok("mariadb -N -B -e 'SELECT @@innodb_buffer_pool_size'"))
    assert sized_mb * 2**20 * 0.1 < pool < sized_mb * 2**20 * 0.5
    assert server.run_ok("mariadb -N -B -e 'SELECT @@skip_networking'").strip() == "1"


def test_unknown_hosts_get_no_site(server: Server) -> None:
    answer = server.run_ok("curl -s -o /dev/null -w '%{http_code}' -H 'Host: not-a-client.example' http://127.0.0.1/")
    assert answer == "404"
