"""The lab's S3 server: moto in server mode, with IAM enforcement and scoped credentials.

The lab (and the agent's tests) need a real S3 endpoint that authorizes requests
the way AWS does, so the credentials restic gets are exercised with exactly the
policy production attaches (`infra.storage_policy`). Flow:

    server = start(state_dir, port=9000)               # idempotent
    admin = bootstrap_admin(server.endpoint, secrets)   # before enforcement
    enable_iam_enforcement(server.endpoint)            # from now on every request is checked
    creds = provision_bucket(server.endpoint, admin, "cs-bakery-backups",
                             object_lock_days=30, secrets_dir=secrets)   # idempotent
    stop(state_dir)

moto keeps everything in memory: stopping the server loses buckets, users and
keys. Credentials are cached in `secrets_dir` (0600 files in the agent's
env-file format) and re-used when the server still knows them, so a second
provisioning run returns the same keys; after a restart they are re-issued.

Object lock retention mode: COMPLIANCE. A care contract promises that backups
survive for the tier's lock period even if the agency's own admin keys are
stolen; GOVERNANCE lets any principal with s3:BypassGovernanceRetention delete
versions, and moto even treats `BypassGovernanceRetention: false` as true, so
GOVERNANCE would neither give that promise in AWS nor be tested here. restic's
prune on a locked bucket only adds delete markers; the versions expire with
the bucket lifecycle once the lock ends.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from infra.secret_file import write_secret
from infra.storage_policy import OBJECT_LOCK_MODE, restic_policy, restic_user_name
from lab import procs

REGION = "us-east-1"
PID_FILE = "moto.pid"
LOG_FILE = "moto.log"
ADMIN_USER = "carestack-lab-admin"
STATE_DIR_ENV = "CARESTACK_S3_STATE_DIR"
ADMIN_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str = ""

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(access_key_id={self.access_key_id!r}, secret_access_key=***)"

    def env_text(self) -> str:
        return f"AWS_ACCESS_KEY_ID={self.access_key_id}\nAWS_SECRET_ACCESS_KEY={self.secret_access_key}\n"


@dataclass(frozen=True)
class S3Server:
    host: str
    port: int
    pid: int

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"


class S3LabError(RuntimeError):
    pass


# -- server process -----------------------------------------------------------------


def _moto_server_binary() -> str:
    candidate = Path(sys.executable).with_name("moto_server")
    return str(candidate) if candidate.exists() else "moto_server"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _accepts(host: str, port: int, timeout: float = 5.0) -> bool:
    """The port takes connections: cheap, and true for a busy (or stopped) server whose PID lives.

    The kernel completes the handshake for a listening socket whatever the server is doing,
    so load never reads as "dead"; whether it answers is the business of its clients' timeouts.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _serves(host: str, port: int) -> bool:
    """The server answers HTTP (after start-up): any status will do, the answer is small."""
    try:
        connection = http.client.HTTPConnection(host, port, timeout=5)
        try:
            connection.request("HEAD", "/")
            connection.getresponse().read()
            return True
        finally:
            connection.close()
    except (OSError, http.client.HTTPException):
        return False


def _record(state_dir: Path) -> tuple[S3Server, int | None] | None:
    try:
        record = json.loads((Path(state_dir) / PID_FILE).read_text())
        server = S3Server(str(record["host"]), int(record["port"]), int(record["pid"]))
        started = record.get("start_time")
        return server, int(started) if started is not None else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _ours(pid: int, started: int | None) -> bool:
    """The recorded PID is alive and still the process we started (not a reused PID)."""
    return _pid_alive(pid) and (started is None or procs.start_time(pid) == started)


def recorded_pid(state_dir: Path) -> int | None:
    """The PID of the recorded server if it is still ours, answering or not."""
    found = _record(state_dir)
    return found[0].pid if found is not None and _ours(found[0].pid, found[1]) else None


def running(state_dir: Path) -> S3Server | None:
    """The server recorded in `state_dir` if it is still our process and its port takes connections."""
    found = _record(state_dir)
    if found is None:
        return None
    server, started = found
    if _ours(server.pid, started) and _accepts(server.host, server.port):
        return server
    return None


def start(state_dir: Path, host: str = "127.0.0.1", port: int = 9000, *, timeout: float = 15.0) -> S3Server:
    """Start moto_server on host:port (idempotent: a live recorded server is returned as is)."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    live = running(state_dir)
    if live is not None:
        if (live.host, live.port) != (host, port):
            raise S3LabError(f"a server from {state_dir} already runs on {live.host}:{live.port}")
        return live
    stop(state_dir)  # a recorded server that no longer takes connections
    with socket.socket() as probe:
        if probe.connect_ex((host, port)) == 0:
            raise S3LabError(f"{host}:{port} is already in use by another process")
    log = open(state_dir / LOG_FILE, "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            [_moto_server_binary(), "-H", host, "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the caller's terminal; stopped by PID
            # names its state directory, so the process is found as this state's even without its PID file
            env={**os.environ, STATE_DIR_ENV: str(state_dir.resolve())},
        )
    finally:
        log.close()
    server = S3Server(host, port, proc.pid)
    deadline = time.monotonic() + timeout
    while not _serves(host, port):
        if proc.poll() is not None:
            raise S3LabError(f"moto_server exited with {proc.returncode}; see {state_dir / LOG_FILE}")
        if time.monotonic() > deadline:
            proc.kill()
            raise S3LabError(f"moto_server not ready on {host}:{port} after {timeout:.0f}s")
        time.sleep(0.05)
    tmp = state_dir / (PID_FILE + ".tmp")
    tmp.write_text(json.dumps({"host": host, "port": port, "pid": proc.pid, "start_time": procs.start_time(proc.pid)}))
    tmp.replace(state_dir / PID_FILE)
    return server


def stop(state_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the recorded server by PID; True if one was running."""
    pid_file = Path(state_dir) / PID_FILE
    pid = recorded_pid(state_dir)
    if pid is None:  # none recorded, or it ended (its PID may belong to someone else by now)
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)
    pid_file.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


# -- IAM and buckets ------------------------------------------------------------------


def _client(service: str, endpoint: str, creds: Credentials) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        config=Config(retries={"max_attempts": 2}, s3={"addressing_style": "path"}),
    )


def enable_iam_enforcement(endpoint: str) -> None:
    """From now on moto authorizes every request against IAM (create users first)."""
    req = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=b"0",
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        if r.status != 200:
            raise S3LabError(f"reset-auth answered {r.status}")


def read_env_file(path: Path | None) -> Credentials | None:
    """Keys from an env file (AWS_ACCESS_KEY_ID=..., AWS_SECRET_ACCESS_KEY=...), None if absent."""
    return _read_cached(path)


def _read_cached(path: Path | None) -> Credentials | None:
    if path is None or not path.exists():
        return None
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    if "AWS_ACCESS_KEY_ID" in values and "AWS_SECRET_ACCESS_KEY" in values:
        return Credentials(values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"])
    return None


def _write_cached(path: Path | None, creds: Credentials) -> None:
    if path is not None:
        write_secret(path, creds.env_text())


def _ensure_user_key(iam: Any, user: str, cache: Path | None) -> Credentials:
    try:
        iam.create_user(UserName=user)
    except ClientError as e:
        if e.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
    existing = [k["AccessKeyId"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]]
    cached = _read_cached(cache)
    if cached is not None and cached.access_key_id in existing:
        return cached
    for key_id in existing:  # secrets of unknown keys cannot be recovered: rotate
        iam.delete_access_key(UserName=user, AccessKeyId=key_id)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    creds = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    _write_cached(cache, creds)
    return creds


def bootstrap_admin(endpoint: str, secrets_dir: Path | None = None) -> Credentials:
    """An IAM user allowed everything: call before enable_iam_enforcement (idempotent)."""
    bootstrap = Credentials("AKIABOOTSTRAP0000000", "bootstrap")  # any key works before enforcement
    cache = Path(secrets_dir) / "s3-admin.env" if secrets_dir is not None else None
    cached = _read_cached(cache)
    iam = _client("iam", endpoint, cached or bootstrap)
    try:
        iam.get_user(UserName=ADMIN_USER)
    except ClientError:
        iam = _client("iam", endpoint, bootstrap)
    creds = _ensure_user_key(iam, ADMIN_USER, cache)
    iam.put_user_policy(UserName=ADMIN_USER, PolicyName="lab-admin", PolicyDocument=json.dumps(ADMIN_POLICY))
    return creds


def _default_retention(s3: Any, bucket: str) -> tuple[str, int] | None:
    """The bucket's default lock as (mode, days), or None without one."""
    try:
        config = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    except ClientError as e:
        if e.response["Error"]["Code"] == "ObjectLockConfigurationNotFoundError":
            return None
        raise
    retention = config.get("Rule", {}).get("DefaultRetention", {})
    return retention.get("Mode"), retention.get("Days")


def provision_bucket(
    endpoint: str,
    admin: Credentials,
    bucket: str,
    *,
    object_lock_days: int,
    versioning: bool = True,
    user_name: str | None = None,
    secrets_dir: Path | None = None,
) -> Credentials:
    """Create (or confirm) a client's bucket and its scoped IAM user; return that user's keys.

    object_lock_days > 0 creates the bucket with object lock and a default
    COMPLIANCE retention of that many days (object lock implies versioning).
    The user gets exactly `infra.storage_policy`'s restic policy on this bucket.
    """
    if object_lock_days < 0:
        raise ValueError("object_lock_days must be >= 0")
    if object_lock_days and not versioning:
        raise ValueError("object lock requires versioning")
    s3 = _client("s3", endpoint, admin)
    iam = _client("iam", endpoint, admin)
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
            raise
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=object_lock_days > 0)
    if versioning:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    # Only when it differs: moto refuses to set a lock again once the bucket holds objects.
    if object_lock_days and _default_retention(s3, bucket) != (OBJECT_LOCK_MODE, object_lock_days):
        s3.put_object_lock_configuration(
            Bucket=bucket,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": OBJECT_LOCK_MODE, "Days": object_lock_days}},
            },
        )
    user = user_name or restic_user_name(bucket)
    cache = Path(secrets_dir) / f"{bucket}.s3.env" if secrets_dir is not None else None
    creds = _ensure_user_key(iam, user, cache)
    iam.put_user_policy(UserName=user, PolicyName="restic", PolicyDocument=json.dumps(client_policy(bucket)))
    return creds


def client_policy(bucket: str) -> dict[str, Any]:
    """The policy a client's user gets: production's (`infra.storage_policy`), plus moto's name for HEAD."""
    return restic_policy(bucket, extra_bucket_actions=("s3:HeadBucket",))
