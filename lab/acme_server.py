"""The lab's certificate authority: Let's Encrypt's test CA `pebble`, with `pebble-challtestsrv` as its DNS.

    server = start(state_dir, ports, bridge_host="10.77.0.1")  # idempotent; both processes by PID
    server.directory                        # the ACME directory the lab's servers order from
    server.endpoint_ca_pem                  # the CA of pebble's own HTTPS endpoint (servers trust it)
    resolve(server, {"www.bakery.example": "10.77.0.10"})   # what pebble's validation resolves
    root_pem(server)                        # the root pebble issues under (Kuma, the tests trust it)
    stop(state_dir)

Everything listens on the lab's bridge address, which is the lab's own (several
labs on one machine never collide); the lab's firewall lets the servers reach
only the ACME port. Pebble validates HTTP-01 for real: it asks
pebble-challtestsrv's DNS for a site's name, which answers with the site's
server as `resolve` set it, and fetches the token from that server's port 80
through the bridge. Unknown names do not resolve.

Pebble's HTTPS endpoint needs a certificate: Debian's package ships none, so
a small CA and a leaf for the bridge address and loopback are made once with
openssl and kept in the state directory. Pebble makes a new issuing root at
every start: certificates issued before a restart no longer chain to the root
it hands out, and whoever trusts the root (Kuma) must be restarted with the new
one (`root_pem` after `start`; `Started.fresh` says whether it is new).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lab import procs
from lab.config import ACME_PORT_STRIDE as PORT_STRIDE
from lab.errors import LabError

PEBBLE = "/usr/bin/pebble"
CHALLTESTSRV = "/usr/bin/pebble-challtestsrv"
PID_FILE = "pebble.pid"
LOG_FILE = "pebble.log"
DNS_PID_FILE = "challtestsrv.pid"
DNS_LOG_FILE = "challtestsrv.log"
CONFIG_FILE = "pebble-config.json"
ADDRESS_FILE = "pebble.json"
CA_CERT = "endpoint-ca.pem"
CA_KEY = "endpoint-ca.key"
LEAF_CERT = "endpoint.pem"
LEAF_KEY = "endpoint.key"
LOOPBACK = "127.0.0.1"
# The other three ports follow the ACME port, PORT_STRIDE apart (pebble's own defaults are
# 14000 and 15000), so one option places all of them.
HTTP_01_PORT = 80  # where the CA fetches tokens: the sites' nginx
# No artificial 0-15 s pause before each validation; no nonce rejected on purpose (certbot
# retries a rejected nonce once, and a second rejection would fail an order at random).
_PEBBLE_ENV = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}


class AcmeServerError(LabError):
    """pebble could not be started or asked; the message says why, with the tail of its log."""


@dataclass(frozen=True)
class AcmePorts:
    acme: int

    @property
    def management(self) -> int:
        return self.acme + PORT_STRIDE

    @property
    def dns(self) -> int:
        return self.acme + 2 * PORT_STRIDE

    @property
    def dns_management(self) -> int:
        return self.acme + 3 * PORT_STRIDE

    def all(self) -> list[int]:
        return [self.acme, self.management, self.dns, self.dns_management]


@dataclass(frozen=True)
class AcmeServer:
    state_dir: Path
    bridge_host: str
    ports: AcmePorts
    fresh: bool  # started now: its issuing root is new

    @property
    def directory(self) -> str:
        return f"https://{self.bridge_host}:{self.ports.acme}/dir"

    @property
    def endpoint_ca_file(self) -> Path:
        return self.state_dir / CA_CERT

    @property
    def endpoint_ca_pem(self) -> str:
        return self.endpoint_ca_file.read_text()


def available() -> str | None:
    """None, or what is missing to run the lab's CA."""
    missing = [path for path in (PEBBLE, CHALLTESTSRV) if not Path(path).exists()]
    return f"{', '.join(missing)} missing (apt-get install pebble)" if missing else None


def _openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AcmeServerError(f"openssl {args[0]} failed: {done.stderr.strip()[-400:]}")


def ensure_endpoint_certificate(state_dir: Path, bridge_host: str) -> None:
    """A CA and a leaf for pebble's HTTPS endpoint (bridge address and loopback), made once."""
    leaf = state_dir / LEAF_CERT
    marker = state_dir / "endpoint.host"
    if leaf.exists() and marker.exists() and marker.read_text() == bridge_host:
        return
    ca_cert, ca_key, leaf_key = state_dir / CA_CERT, state_dir / CA_KEY, state_dir / LEAF_KEY
    request = state_dir / "endpoint.csr"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        str(ca_key),
        "-out",
        str(ca_cert),
        "-days",
        "3650",
        "-subj",
        "/CN=carestack lab ACME endpoint CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    _openssl("req", "-new", *ec, "-keyout", str(leaf_key), "-out", str(request), "-subj", "/CN=pebble")
    extensions = state_dir / "endpoint.ext"
    extensions.write_text(
        f"subjectAltName=IP:{bridge_host},IP:{LOOPBACK}\nbasicConstraints=critical,CA:FALSE\n"
        "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        str(request),
        "-CA",
        str(ca_cert),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "3650",
        "-out",
        str(leaf),
        "-extfile",
        str(extensions),
    )
    for key in (ca_key, leaf_key):
        os.chmod(key, 0o600)
    marker.write_text(bridge_host)


def _config(state_dir: Path, bridge_host: str, ports: AcmePorts) -> dict[str, object]:
    return {
        "pebble": {
            "listenAddress": f"{bridge_host}:{ports.acme}",
            "managementListenAddress": f"{bridge_host}:{ports.management}",
            "certificate": str(state_dir / LEAF_CERT),
            "privateKey": str(state_dir / LEAF_KEY),
            "httpPort": HTTP_01_PORT,
            "tlsPort": 443,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def running(state_dir: Path, bridge_host: str, ports: AcmePorts) -> bool:
    """Whether both processes run as recorded, with these addresses, and answer."""
    try:
        recorded = json.loads((state_dir / ADDRESS_FILE).read_text())
    except (OSError, ValueError):
        return False
    if recorded != {"bridge_host": bridge_host, "acme_port": ports.acme}:
        return False
    if procs.running(state_dir / PID_FILE) is None or procs.running(state_dir / DNS_PID_FILE) is None:
        return False
    return _answers(bridge_host, ports.acme) and _answers(bridge_host, ports.dns_management)


def start(state_dir: Path, ports: AcmePorts, *, bridge_host: str, timeout: float = 20.0) -> AcmeServer:
    """pebble and its DNS, started unless they run as recorded (then reused: same root)."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if running(state_dir, bridge_host, ports):
        return AcmeServer(state_dir, bridge_host, ports, fresh=False)
    if problem := available():
        raise AcmeServerError(f"the lab's ACME server needs pebble: {problem}")
    stop(state_dir)
    ensure_endpoint_certificate(state_dir, bridge_host)
    config = state_dir / CONFIG_FILE
    config.write_text(json.dumps(_config(state_dir, bridge_host, ports), indent=2))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    dns = procs.spawn(
        [
            CHALLTESTSRV,
            "-dns01",
            f"{bridge_host}:{ports.dns}",
            "-management",
            f"{bridge_host}:{ports.dns_management}",
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-defaultIPv4",
            "",
            "-defaultIPv6",
            "",
        ],
        pid_file=state_dir / DNS_PID_FILE,
        log_file=state_dir / DNS_LOG_FILE,
        cwd=state_dir,
        env=env,
    )
    pebble = procs.spawn(
        [PEBBLE, "-config", str(config), "-dnsserver", f"{bridge_host}:{ports.dns}"],
        pid_file=state_dir / PID_FILE,
        log_file=state_dir / LOG_FILE,
        cwd=state_dir,
        env=env | _PEBBLE_ENV,
    )
    (state_dir / ADDRESS_FILE).write_text(json.dumps({"bridge_host": bridge_host, "acme_port": ports.acme}))
    deadline = time.monotonic() + timeout
    waits = [(bridge_host, port) for port in (ports.acme, ports.management, ports.dns_management)]
    while not all(_answers(host, port) for host, port in waits):
        for record, log in ((pebble, LOG_FILE), (dns, DNS_LOG_FILE)):
            if not procs.alive(record):
                stop(state_dir)
                raise AcmeServerError(f"{log.split('.')[0]} exited during start-up:\n{procs.log_tail(state_dir / log)}")
        if time.monotonic() > deadline:
            stop(state_dir)
            raise AcmeServerError(
                f"pebble did not answer on {bridge_host}:{ports.acme} within {timeout:.0f}s:\n"
                f"{procs.log_tail(state_dir / LOG_FILE)}"
            )
        time.sleep(0.1)
    return AcmeServer(state_dir, bridge_host, ports, fresh=True)


def stop(state_dir: Path) -> bool:
    """Stop both processes; True if any was running."""
    stopped = [procs.stop_recorded(state_dir / name) for name in (PID_FILE, DNS_PID_FILE)]
    return any(stopped)


def pid_files(state_dir: Path) -> list[Path]:
    return [state_dir / PID_FILE, state_dir / DNS_PID_FILE]


def _endpoint_context(server: AcmeServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.endpoint_ca_file))


def root_pem(server: AcmeServer) -> str:
    """The root certificate pebble issues under now (its management API, /roots/0)."""
    url = f"https://{server.bridge_host}:{server.ports.management}/roots/0"
    try:
        with urllib.request.urlopen(url, timeout=10, context=_endpoint_context(server)) as answer:
            pem: str = answer.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        raise AcmeServerError(f"pebble's root could not be read from {url}: {exc}") from None
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise AcmeServerError(f"pebble's {url} answered without a certificate")
    return pem


def resolve(server: AcmeServer, names: dict[str, str]) -> None:
    """Make pebble's validation resolve each name to its address alone (challtestsrv's A records).

    challtestsrv's add-a adds to the addresses a name has: a name that moved (a cutover, another
    server) is cleared first, or the CA would still reach the old server.
    """
    for name, address in sorted(names.items()):
        for verb, body in (("clear-a", {"host": name}), ("add-a", {"host": name, "addresses": [address]})):
            url = f"http://{server.bridge_host}:{server.ports.dns_management}/{verb}"
            request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    answer.read()
            except (urllib.error.URLError, OSError) as exc:
                raise AcmeServerError(f"pebble-challtestsrv did not take the address of {name}: {exc}") from None


def remove_state(state_dir: Path) -> None:
    shutil.rmtree(state_dir, ignore_errors=True)
