"""The lab's services: Uptime Kuma (`kuma_server`), the alert receiver (`alert_receiver`), the CA (`acme_server`).

Kuma listens on loopback, and through a relay on the bridge address so the
servers' agents can push heartbeats; its admin account is created on first
start and its credentials kept 0600 in the state directory. The alert receiver
(loopback only: only Kuma on this machine calls it) records every notification;
`lab_alerting` routes every channel of every contact to it, and the same
settings are written as an alerting file for `carestack monitors sync --alerting`.

The lab's CA (pebble) stands in for Let's Encrypt: the servers order their
sites' certificates from it, and Kuma trusts its root, so Kuma checks the sites
over HTTPS with verification on, as production's Kuma does with public roots.
Pebble makes a new root at each start; Kuma is restarted to trust the new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from infra.alerting import AlertingConfig
from lab import acme_server, alert_receiver, kuma_server, procs
from lab.config import LabConfig
from lab.errors import LabError
from lab.kuma_sources import KumaSourceError, check_available, ensure_source_install

ALERTING_FILE = "alerting.yaml"


@dataclass(frozen=True)
class Monitoring:
    kuma_url: str  # this machine's URL of Kuma
    push_base_url: str  # what the servers' agents push to
    credentials_file: Path
    alert_url: str
    alert_log: Path
    alerting_file: Path  # the receiver as an agency alerting file (`infra.alerting`)
    kuma_started: bool
    receiver_started: bool
    restarted: tuple[str, ...] = ()  # what had died and was started again, for the user


def lab_alerting(receiver_url: str) -> AlertingConfig:
    """Every alert channel as a webhook to the lab's alert receiver."""
    return AlertingConfig(receiver_url=receiver_url)


def acme_dir(config: LabConfig) -> Path:
    return config.run_dir / "acme"


def acme_ports(config: LabConfig) -> acme_server.AcmePorts:
    return acme_server.AcmePorts(config.acme_port)


def start_acme(config: LabConfig) -> acme_server.AcmeServer:
    """The lab's CA on the bridge address (reused while it runs: the same root)."""
    return acme_server.start(acme_dir(config), acme_ports(config), bridge_host=config.bridge_address)


def trusted_roots_file(config: LabConfig) -> Path:
    """The roots the lab's Kuma trusts beside the public ones: the lab CA's."""
    return kuma_dir(config) / "trusted-roots.pem"


def kuma_dir(config: LabConfig) -> Path:
    return config.run_dir / "kuma"


def alerts_dir(config: LabConfig) -> Path:
    return config.run_dir / "alerts"


def credentials_file(config: LabConfig) -> Path:
    return kuma_dir(config) / kuma_server.CREDENTIALS_FILE


def kuma_running(config: LabConfig) -> bool:
    return kuma_server.running(kuma_dir(config)) is not None


def receiver_running(config: LabConfig) -> bool:
    return alert_receiver.running(alerts_dir(config)) is not None


def pid_files(config: LabConfig) -> list[Path]:
    """Where Kuma, its relay and the receiver are recorded (whether they still run or not)."""
    return [
        kuma_dir(config) / kuma_server.PID_FILE,
        kuma_dir(config) / kuma_server.RELAY_PID_FILE,
        alerts_dir(config) / alert_receiver.PID_FILE,
        *acme_server.pid_files(acme_dir(config)),
    ]


def _what_died(config: LabConfig) -> list[str]:
    """Services this lab started that have stopped or no longer answer, in words for the user."""
    kuma, relay = kuma_dir(config) / kuma_server.PID_FILE, kuma_dir(config) / kuma_server.RELAY_PID_FILE
    receiver = alerts_dir(config) / alert_receiver.PID_FILE
    died: list[str] = []
    if kuma.exists() and not kuma_running(config):
        if procs.running(kuma) is None:
            died.append("Kuma (it had stopped)")
        elif relay.exists() and procs.running(relay) is None:
            died.append("Kuma's relay on the bridge (it had stopped)")
        else:
            died.append("Kuma (it did not answer)")
    if receiver.exists() and not receiver_running(config):
        died.append("the alert receiver (it had stopped)")
    return died


def check_kuma_available(config: LabConfig) -> None:
    """Raise LabError if the lab's Kuma version is neither installed nor installable from files at hand."""
    if config.kuma_version == kuma_server.KUMA_VERSION:
        return  # npm installs it
    try:
        check_available(config.kuma_version, kuma_server.default_cache_dir())
    except KumaSourceError as exc:
        raise LabError(f"--kuma-version {config.kuma_version}: {exc}") from None


def kuma_package(config: LabConfig) -> Path | None:
    """The installed tree of the lab's Kuma version (None: the npm package, installed by `start`)."""
    if config.kuma_version == kuma_server.KUMA_VERSION:
        return None
    try:
        return ensure_source_install(config.kuma_version, kuma_server.default_cache_dir())
    except KumaSourceError as exc:
        raise LabError(f"--kuma-version {config.kuma_version}: {exc}") from None


def _trust(config: LabConfig, roots_pem: str) -> bool:
    """Write the roots Kuma trusts; True if they changed (a running Kuma must restart to read them)."""
    path = trusted_roots_file(config)
    if path.exists() and path.read_text() == roots_pem:
        return False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(roots_pem)
    return True


def bring_up(config: LabConfig, trusted_roots_pem: str | None = None) -> Monitoring:
    """Kuma (trusting `trusted_roots_pem` beside the public roots) and the alert receiver."""
    restarted = _what_died(config)
    if trusted_roots_pem is not None and _trust(config, trusted_roots_pem) and kuma_running(config):
        kuma_server.stop(kuma_dir(config))
        restarted.append("Kuma (to trust the lab CA's new root)")
    kuma_started = not kuma_running(config)
    server = kuma_server.start(
        kuma_dir(config),
        host="127.0.0.1",
        port=config.kuma_port,
        bridge_host=config.bridge_address,
        package=kuma_package(config),
        extra_ca_file=trusted_roots_file(config) if trusted_roots_pem is not None else None,
        # The servers' addresses: Kuma checks the sites there, past its closed proxy.
        direct_hosts=[str(address) for address in config.network.hosts()],
    )
    kuma_server.ensure_admin(server, kuma_dir(config))
    receiver_started = not receiver_running(config)
    receiver = alert_receiver.start(alerts_dir(config), host="127.0.0.1", port=config.alert_port)
    alerting_file = alerts_dir(config) / ALERTING_FILE
    alerting_file.write_text(yaml.safe_dump(lab_alerting(receiver.url).model_dump(exclude_none=True)))
    return Monitoring(
        kuma_url=server.url,
        push_base_url=f"{server.bridge_url}/api/push",
        credentials_file=credentials_file(config),
        alert_url=receiver.url,
        alert_log=alerts_dir(config) / alert_receiver.ALERTS_FILE,
        alerting_file=alerting_file,
        kuma_started=kuma_started,
        receiver_started=receiver_started,
        restarted=tuple(restarted),
    )


def stop(config: LabConfig) -> dict[str, bool]:
    return {
        "Kuma": kuma_server.stop(kuma_dir(config)),
        "alert receiver": alert_receiver.stop(alerts_dir(config)),
        "ACME server": acme_server.stop(acme_dir(config)),
    }
