"""Real parts for the agent's tests: moto S3 with IAM enforcement, a private mariadbd, restic.

Nothing here is a fake: restic is the system binary, the S3 server is moto in
server mode with IAM enforcement on and per-site credentials scoped by
`infra.storage_policy`, the database is a private mariadbd (own datadir, own
unix socket, no networking), the push endpoint is a tiny HTTP server on
loopback that records what it receives (stand-in until the lab's Kuma is
wired in).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "agent"))

from carestack_agent import config as agent_config  # noqa: E402

from infra.agent_config import dumps  # noqa: E402
from lab import s3 as lab_s3  # noqa: E402

RESTIC = shutil.which("restic") or "/usr/bin/restic"
PASSWORD = "correct horse battery staple"
# The values the controller renders from the plan (the agent has no defaults for them); a site's
# `retention` and `jobs` below override these.
PLAN_RETENTION = {f"keep_{k}": 0 for k in ("last", "hourly", "daily", "weekly", "monthly", "yearly")}
PLAN_JOBS = {
    "backup_timeout_seconds": 3600, "check_timeout_seconds": 3600, "prune_timeout_seconds": 3600,
    "restore_timeout_seconds": 3600, "check_read_data_subsets": 1, "update_timeout_seconds": 3600,
    "repository_stall_seconds": 300,
    "scan_timeout_seconds": 3600, "perf_timeout_seconds": 600,
}  # fmt: skip
PLAN_UPDATES = {"providers": [], "apt_policy": "security", "wordpress_policy": "minor", "rollback": True,
                "probe_slowdown_limit": 3.0}  # fmt: skip
PLAN_PERF = {"requests_per_page": 3, "limit_percent": 20.0, "floor_ms": 100, "baseline_weeks": 4, "keep_days": 35}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- S3 -------------------------------------------------------------------------------


@dataclass
class S3:
    endpoint: str
    admin: lab_s3.Credentials
    state_dir: Path
    _seq: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def bucket(self, prefix: str = "cs-test") -> tuple[str, lab_s3.Credentials]:
        name = f"{prefix}-{next(self._seq)}-{os.getpid()}"
        creds = lab_s3.provision_bucket(self.endpoint, self.admin, name, object_lock_days=0)
        return name, creds

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.admin.access_key_id,
            aws_secret_access_key=self.admin.secret_access_key,
            config=BotoConfig(s3={"addressing_style": "path"}),
        )


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    state = tmp_path_factory.mktemp("moto")
    server = lab_s3.start(state, port=free_port())
    try:
        admin = lab_s3.bootstrap_admin(server.endpoint)
        lab_s3.enable_iam_enforcement(server.endpoint)
        yield S3(server.endpoint, admin, state)
    finally:
        lab_s3.stop(state)


class TcpProxy:
    """A loopback TCP forwarder in front of the S3 server: `stop()` makes S3 unreachable.

    moto keeps its data in memory, so stopping moto itself would lose the
    repository; cutting the network path is the outage that can come back.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(64)
        self._server = srv
        threading.Thread(target=self._accept, args=(srv,), daemon=True).start()

    def _accept(self, srv: socket.socket) -> None:
        while True:
            try:
                client, _ = srv.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._server is not srv:  # stopped meanwhile
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        with self._lock:
            srv, self._server = self._server, None
        if srv is not None:
            with contextlib.suppress(OSError):  # wakes the thread blocked in accept(); close() alone does not
                srv.shutdown(socket.SHUT_RDWR)
            srv.close()
        with self._lock:
            for c in self._conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()
            self._conns.clear()


# -- MariaDB --------------------------------------------------------------------------


@dataclass
class MariaDB:
    socket: Path
    datadir: Path
    proc: subprocess.Popen[bytes]

    def sql(self, statement: str, database: str | None = None) -> list[list[str]]:
        argv = ["mariadb", f"--socket={self.socket}", "--user=root", "--batch", "--skip-column-names"]
        if database:
            argv.append(f"--database={database}")
        out = subprocess.run([*argv, "-e", statement], check=True, capture_output=True, text=True).stdout
        return [line.split("\t") for line in out.splitlines()]


def start_mariadb(base: Path) -> MariaDB:
    datadir, sock = base / "data", base / "mysqld.sock"
    subprocess.run(
        [
            "mariadb-install-db", "--no-defaults", f"--datadir={datadir}", "--user=root",
            "--skip-test-db", "--auth-root-authentication-method=socket",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    proc = subprocess.Popen(
        [
            "mariadbd", "--no-defaults", f"--datadir={datadir}", f"--socket={sock}", "--skip-networking",
            f"--pid-file={base / 'mysqld.pid'}", "--user=root", "--innodb-buffer-pool-size=64M",
            f"--log-error={base / 'error.log'}", "--innodb-log-file-size=48M",
        ],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        probe = subprocess.run(["mariadb", f"--socket={sock}", "-e", "SELECT 1"], capture_output=True)
        if probe.returncode == 0:
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"mariadbd did not start: {(base / 'error.log').read_text()[-2000:]}")
        time.sleep(0.1)
    return MariaDB(sock, datadir, proc)


def stop_mariadb(db: MariaDB) -> None:
    db.proc.terminate()
    try:
        db.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        db.proc.kill()
        db.proc.wait()


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    db = start_mariadb(tmp_path_factory.mktemp("mariadb"))
    yield db
    stop_mariadb(db)


@pytest.fixture(scope="session")
def standby_mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    """A second, separate database server: the standby a site is restored onto."""
    db = start_mariadb(tmp_path_factory.mktemp("standby"))
    yield db
    stop_mariadb(db)


# -- push endpoint --------------------------------------------------------------------


class PushRecorder:
    def __init__(self) -> None:
        self.requests: list[str] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.requests.append(self.path)
                body = b'{"ok":true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/push"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def push() -> Iterator[PushRecorder]:
    rec = PushRecorder()
    yield rec
    rec.close()


# -- a site ---------------------------------------------------------------------------

_site_seq = itertools.count(1)


def write_secret(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def make_files(root: Path, count: int = 60, seed: int = 1, size: int = 4096) -> None:
    rnd = random.Random(seed)
    for i in range(count):
        p = root / f"wp-content/uploads/{i % 7}/file-{i}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rnd.randbytes(rnd.randint(size // 4, size)))
    (root / "index.php").write_text("<?php echo 'hello';\n")
    (root / "wp-content/cache").mkdir(parents=True, exist_ok=True)
    (root / "wp-content/cache/page.html").write_text("cached")


def tree_digest(root: Path, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if any(rel == e or rel.startswith(e + "/") for e in exclude):
            continue
        if p.is_file() and not p.is_symlink():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        elif p.is_dir():
            out[rel + "/"] = oct(p.stat().st_mode & 0o7777)
    return out


@dataclass
class Site:
    id: str
    dir: Path
    root: Path
    state_dir: Path
    config_path: Path
    bucket: str
    creds: lab_s3.Credentials
    s3: S3
    db_name: str | None
    mariadb: MariaDB | None
    push: PushRecorder | None
    endpoint: str
    extra_agent: dict[str, Any] = field(default_factory=dict)
    extra_site: dict[str, Any] = field(default_factory=dict)
    retention: dict[str, int] = field(default_factory=lambda: {"keep_daily": 7})
    jobs: dict[str, int] = field(default_factory=dict)
    password: str = PASSWORD

    @property
    def repository(self) -> str:
        return f"s3:{self.endpoint}/{self.bucket}/{self.id}"

    def render(self) -> str:
        """The site's agent.toml, written by the controller's TOML writer."""
        agent = {"host": "test-host", "state_dir": str(self.state_dir), "restic": RESTIC, "nice": 0,
                 "retries": 2, "retry_backoff_seconds": 0.5, "push_timeout_seconds": 2, **self.extra_agent}  # fmt: skip
        site: dict[str, Any] = {
            "domain": f"{self.id}.example",
            "kind": "wordpress" if self.db_name else "static",
            "root": str(self.root),
            "paths": [str(self.root)],
            "exclude": [str(self.root / "wp-content/cache")],
            "repository": self.repository,
            "password_file": str(self.dir / "secrets/restic-password"),
            "credentials_file": str(self.dir / "secrets/s3.env"),
            "checks": [],
        }
        if self.push is not None:
            site["push_base_url"] = self.push.base_url
            site["push_tokens_file"] = str(self.dir / "secrets/push.env")
        site.update(self.extra_site)
        if self.db_name and self.mariadb:
            site["database"] = {"name": self.db_name, "socket": str(self.mariadb.socket)}
        site |= {
            "retention": PLAN_RETENTION | self.retention,
            "jobs": PLAN_JOBS | self.jobs,
            "updates": PLAN_UPDATES,
            "perf": PLAN_PERF,
        }
        return dumps({"agent": agent, "sites": {self.id: site}})

    def write_config(self) -> Path:
        write_secret(self.dir / "secrets/restic-password", self.password + "\n")
        write_secret(self.dir / "secrets/s3.env", self.creds.env_text())
        if self.push is not None:
            write_secret(
                self.dir / "secrets/push.env",
                "BACKUP=tok-backup-123\nCHECK=tok-check-456\nPRUNE=tok-prune-789\nUPDATE=tok-update-012\n",
            )
        self.config_path.write_text(self.render())
        return self.config_path

    def config(self) -> agent_config.Config:
        self.write_config()
        return agent_config.load(self.config_path)

    def restic(self, *args: str, check: bool = True, json_out: bool = False) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(self.dir),
            "RESTIC_CACHE_DIR": str(self.dir / "restic-cache"),
            "RESTIC_REPOSITORY": self.repository,
            "RESTIC_PASSWORD_FILE": str(self.dir / "secrets/restic-password"),
            "AWS_ACCESS_KEY_ID": self.creds.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.creds.secret_access_key,
        }
        argv = [RESTIC] + (["--json"] if json_out else []) + list(args)
        return subprocess.run(argv, env=env, capture_output=True, text=True, check=check)

    def agent(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The real CLI, as systemd runs it."""
        self.write_config()
        env = {**os.environ, "CARESTACK_AGENT_CONFIG": str(self.config_path), "PYTHONPATH": str(ROOT / "agent")}
        return subprocess.run(
            [sys.executable, "-m", "carestack_agent", *args], env=env, capture_output=True, text=True, timeout=timeout
        )

    def init_repo(self) -> None:
        copy_template_repo(self)


# One repository is initialized per session (restic init costs ~3 s) and copied
# object by object for each site: same password, independent data.
#
# Speed-up for tests only: restic calibrates its scrypt KDF to ~0.5 s of CPU per
# invocation, which dominated this suite (about 100 restic runs). The template's
# key is re-wrapped with cheap scrypt parameters (same master key, same format,
# restic verifies its MAC on every open); production repositories keep restic's
# own calibrated key. Uses `cryptography` from the dev venv (a moto dependency).
_template: dict[str, str] = {}


def _cheap_key(keyfile: bytes, password: str) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.poly1305 import Poly1305

    def derive(salt: bytes, n: int, r: int, p: int) -> tuple[bytes, bytes, bytes]:
        k = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=512 * 1024 * 1024, dklen=64)
        return k[:32], k[32:48], k[48:64]  # AES key, Poly1305-AES k and r (restic's layout)

    def mac(mac_k: bytes, mac_r: bytes, iv: bytes, ct: bytes) -> bytes:
        s = Cipher(algorithms.AES(mac_k), modes.ECB()).encryptor().update(iv)
        return Poly1305.generate_tag(mac_r + s, ct)

    kf = json.loads(keyfile)
    aes, mk, mr = derive(base64.b64decode(kf["salt"]), kf["N"], kf["r"], kf["p"])
    data = base64.b64decode(kf["data"])
    iv, ct, tag = data[:16], data[16:-16], data[-16:]
    assert mac(mk, mr, iv, ct) == tag
    plain = Cipher(algorithms.AES(aes), modes.CTR(iv)).decryptor().update(ct)
    salt, iv = os.urandom(64), os.urandom(16)
    aes, mk, mr = derive(salt, 1024, 8, 1)
    ct = Cipher(algorithms.AES(aes), modes.CTR(iv)).encryptor().update(plain)
    kf.update(N=1024, r=8, p=1, salt=base64.b64encode(salt).decode())
    kf["data"] = base64.b64encode(iv + ct + mac(mk, mr, iv, ct)).decode()
    return json.dumps(kf).encode()


def copy_template_repo(site: Site) -> None:
    client = site.s3.client()
    if not _template:
        bucket, creds = site.s3.bucket("cs-template")
        tmpl = Site(
            id="template", dir=site.dir / "tmpl", root=site.dir, state_dir=site.dir / "tmpl",
            config_path=site.dir / "tmpl.toml", bucket=bucket, creds=creds, s3=site.s3, db_name=None,
            mariadb=None, push=None, endpoint=site.s3.endpoint,
        )  # fmt: skip
        tmpl.write_config()
        tmpl.restic("init")
        for obj in client.list_objects_v2(Bucket=bucket, Prefix="template/keys/")["Contents"]:
            new = _cheap_key(client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read(), PASSWORD)
            client.put_object(Bucket=bucket, Key=f"template/keys/{hashlib.sha256(new).hexdigest()}", Body=new)
            client.delete_object(Bucket=bucket, Key=obj["Key"])
        _template.update(bucket=bucket, prefix="template/")
    src = _template["bucket"]
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=src, Prefix=_template["prefix"]):
        for obj in page.get("Contents", []):
            key = site.id + "/" + obj["Key"][len(_template["prefix"]) :]
            client.copy_object(Bucket=site.bucket, Key=key, CopySource={"Bucket": src, "Key": obj["Key"]})


@pytest.fixture
def make_site(tmp_path: Path, s3: S3, mariadb: MariaDB) -> Iterator[Any]:
    created: list[Site] = []

    def factory(
        *, database: bool = True, push: PushRecorder | None = None, init: bool = True, endpoint: str | None = None
    ) -> Site:
        n = next(_site_seq)
        site_id = f"site{n}"
        base = tmp_path / site_id
        root = base / "www"
        make_files(root)
        bucket, creds = s3.bucket()
        db_name = f"wp_{n}" if database else None
        if db_name:
            mariadb.sql(f"DROP DATABASE IF EXISTS {db_name}; CREATE DATABASE {db_name}")
            mariadb.sql(
                "CREATE TABLE posts (id INT PRIMARY KEY AUTO_INCREMENT, title VARCHAR(200), body TEXT) ENGINE=InnoDB;"
                "INSERT INTO posts (title, body) VALUES ('hello', 'first post'), ('second', REPEAT('x', 5000));",
                db_name,
            )
        site = Site(
            id=site_id, dir=base, root=root, state_dir=base / "state", config_path=base / "agent.toml",
            bucket=bucket, creds=creds, s3=s3, db_name=db_name, mariadb=mariadb if database else None,
            push=push, endpoint=endpoint or s3.endpoint,
        )  # fmt: skip
        site.write_config()
        if init:
            site.init_repo()
        created.append(site)
        return site

    yield factory
