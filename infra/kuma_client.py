"""One logged-in connection to Uptime Kuma, with the few calls the monitor sync needs.

Built on `uptime-kuma-api` (its socket.io client, login and list readers),
with deliberate departures where the library's way is slow or blind
(what they save is measured in bench/README.md, "Monitor sync"):

- Creating monitors: on 1.23 and 2.0.0-dev.0 Kuma's `add` handler rebuilds and
  broadcasts the whole monitor list before it answers, and the library's
  `add_monitor` adds version look-ups on top, so creating N monitors that way
  costs N list rebuilds. There `create_monitors` sends them in one
  `uploadBackup` call ("keep" mode: nothing existing is touched), which stores each monitor with its tags and
  notifications and rebuilds the list once. The import copies a fixed list of
  fields (server/server.js, uploadBackup): `parent` is not among them, and
  `expiryNotification` is left to its column default (true); the sync edits
  the latter afterwards where it must be false. 2.x stable has no
  `uploadBackup` but an `add` that sends only the new monitor: there each
  monitor is one pipelined `add`, then its two tags (`infra.kuma_versions`).
- The server's version is read at login; an unsupported one is refused.
- Edits and deletes are pipelined: every request is sent before the first
  answer is awaited, so round trips overlap.
- A status page's sections and monitors are read from Kuma's public status
  page API with its cache bypassed (`x-apicache-bypass`): the socket API gives
  only the page's settings, and the public API caches answers for 5 minutes.
- Password logins are rate-limited by Kuma (20 a minute, for everyone): the
  first login of a process remembers its token, and later sessions to the same
  server and user log in with the token.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import socketio.exceptions  # type: ignore[import-untyped]
from uptime_kuma_api import UptimeKumaApi, UptimeKumaException

from infra.kuma_versions import KumaVersion, UnsupportedKumaVersion, kuma_version

# Backup format version the import parses; tags and retry intervals need 1.7.0 or newer.
_IMPORT_FORMAT_VERSION = "1.23.0"
# What Kuma answers getStatusPage for a slug it doesn't know (status-page-socket-handler.js).
_NO_STATUS_PAGE = "No slug?"
# Requests in flight at once when pipelining; Kuma handles them concurrently.
_PIPELINE_DEPTH = 16
# Kuma 2.x answers some refusals with a translation key instead of the sentence 1.23 sends.
_REASONS = {
    "authIncorrectCreds": "Incorrect username or password.",
    "authUserInactiveOrDeleted": "The user is inactive or deleted.",
}
_TOKENS: dict[tuple[str, str, str], str] = {}
_TOKENS_LOCK = threading.Lock()


class KumaError(RuntimeError):
    """Kuma is unreachable, refused the login, or refused a change; the message says which."""


@dataclass(frozen=True)
class KumaLogin:
    url: str
    username: str
    password: str

    def __repr__(self) -> str:  # never print the password
        return f"KumaLogin(url={self.url!r}, username={self.username!r}, password=***)"

    def to_json(self) -> str:
        """The credentials file's content (`read_login` reads it back); write it with `infra.secret_file`."""
        return json.dumps({"url": self.url, "username": self.username, "password": self.password})


def read_login(path: Path) -> KumaLogin:
    """Kuma's URL and login from a credentials file: JSON {url, username, password}."""
    try:
        data = json.loads(Path(path).read_text())
        return KumaLogin(str(data["url"]), str(data["username"]), str(data["password"]))
    except FileNotFoundError:
        raise KumaError(f"{path}: no such credentials file") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise KumaError(f"{path}: expected JSON with url, username and password ({exc})") from None


def _plain(value: Any) -> Any:
    """The library parses some fields into Enums; Kuma wants the plain values back."""
    return value.value if isinstance(value, Enum) else value


class KumaSession:
    """A logged-in connection; `writes` counts every change request sent."""

    def __init__(self, api: UptimeKumaApi, login: KumaLogin, timeout: float, version: KumaVersion) -> None:
        self.api = api
        self.login = login
        self.timeout = timeout
        self.version = version
        self.writes = 0

    # -- reading -----------------------------------------------------------------------

    def monitors(self) -> list[dict[str, Any]]:
        """Every monitor of the account (the list Kuma sends after login or a change)."""
        try:
            monitors: list[dict[str, Any]] = self.api.get_monitors()
            return monitors
        except UptimeKumaException as exc:
            raise KumaError(f"Uptime Kuma at {self.login.url} sent no monitor list: {exc}") from None

    def refresh_monitors(self) -> None:
        """Ask Kuma to send the monitor list again (after changes whose broadcasts may arrive out of order)."""
        self._call("getMonitorList")

    def wait_for_monitors(self, ready: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        """The monitor list once `ready(list)` holds; asks for a fresh list if broadcasts lag."""
        deadline = time.monotonic() + self.timeout
        asked = time.monotonic()
        while True:
            monitors = self.monitors()
            if ready(monitors):
                return monitors
            now = time.monotonic()
            if now > deadline:
                raise KumaError(f"Uptime Kuma at {self.login.url} did not report the expected monitors in time")
            if now - asked > 5:
                self.refresh_monitors()
                asked = now

    def notifications(self) -> list[dict[str, Any]]:
        """Every notification, its provider fields merged in (as `get_notifications` gives them)."""
        return [{k: _plain(v) for k, v in n.items()} for n in self.api.get_notifications()]

    def maintenances(self) -> list[dict[str, Any]]:
        return [{k: _plain(v) for k, v in m.items()} for m in self.api.get_maintenances()]

    def maintenance_monitors(self, maintenance_id: int) -> set[int]:
        return {int(m["id"]) for m in self.api.get_monitor_maintenance(maintenance_id)}

    def settings(self) -> dict[str, Any]:
        data: dict[str, Any] = self._call("getSettings")["data"]
        return data

    def beats(self, monitor_id: int, hours: int) -> list[dict[str, Any]]:
        """The monitor's heartbeats of the last `hours` (every one Kuma still holds), oldest first, as stored."""
        data: list[dict[str, Any]] = self._call("getMonitorBeats", monitor_id, hours)["data"]
        return data

    def important_beats(self, monitor_id: int, offset: int, count: int) -> list[dict[str, Any]]:
        """A page of the monitor's status changes (2.x stable), newest first, as stored."""
        data: list[dict[str, Any]] = self._call("monitorImportantHeartbeatListPaged", monitor_id, offset, count)["data"]
        return data

    def chart_data(self, monitor_id: int, hours: int) -> list[dict[str, Any]]:
        """The monitor's aggregate counts (2.x stable): per minute up to 24 h, per hour up to 720, else per day."""
        data: list[dict[str, Any]] = self._call("getMonitorChartData", monitor_id, hours)["data"]
        return data

    def status_page(self, slug: str) -> dict[str, Any] | None:
        """The status page's settings and its `publicGroupList` (sections with their monitors); None if absent."""
        answer = self._ask("getStatusPage", slug)
        if isinstance(answer, dict) and answer.get("ok") is False and answer.get("msg") == _NO_STATUS_PAGE:
            return None
        config: dict[str, Any] = self._checked("getStatusPage", answer)["config"]
        try:
            public = read_public(f"{self.login.url}/api/status-page/{urllib.parse.quote(slug)}", self.timeout)
            if not isinstance(public, dict):
                raise KumaError("no such page in the public API")
        except KumaError as exc:
            raise KumaError(f"Uptime Kuma at {self.login.url} did not show status page {slug}: {exc}") from None
        return {**config, "publicGroupList": public.get("publicGroupList") or []}

    # -- writing -----------------------------------------------------------------------

    def create_monitors(self, monitors: Sequence[dict[str, Any]]) -> None:
        """Create monitors (records with their `tags` and `notificationIDList`) the fastest way the version has."""
        if not monitors:
            return
        if self.version.bulk_import:
            backup = {
                "version": _IMPORT_FORMAT_VERSION,
                "notificationList": [],
                "proxyList": [],
                "monitorList": list(monitors),
            }
            self._write("uploadBackup", json.dumps(backup), "keep")
            return
        tag_ids = self._tag_ids({str(t["name"]): str(t["color"]) for m in monitors for t in m.get("tags") or []})
        added = self._pipeline(
            "add",
            [
                ({**{k: _plain(v) for k, v in m.items() if k != "tags"}, "conditions": m.get("conditions", [])},)
                for m in monitors
            ],
        )
        self._pipeline(
            "addMonitorTag",
            [
                (tag_ids[str(t["name"])], int(answer["monitorID"]), str(t["value"]))
                for m, answer in zip(monitors, added, strict=True)
                for t in m.get("tags") or []
            ],
        )
        # `add` on 2.x sends each new monitor alone, which the list reader does not follow: ask for the list.
        self.refresh_monitors()

    def add_monitor_tags(self, monitors: Sequence[tuple[int, Sequence[dict[str, str]]]]) -> None:
        """Give existing monitors tags (name, color, value), the tags created where missing; pipelined."""
        if not monitors:
            return
        tag_ids = self._tag_ids({str(t["name"]): str(t["color"]) for _, tags in monitors for t in tags})
        self._pipeline(
            "addMonitorTag",
            [(tag_ids[str(t["name"])], monitor_id, str(t["value"])) for monitor_id, tags in monitors for t in tags],
        )
        self.refresh_monitors()

    def _tag_ids(self, wanted: dict[str, str]) -> dict[str, int]:
        """The ids of the named tags, created (with their colour) where missing."""
        have = {str(t["name"]): int(t["id"]) for t in self._call("getTags").get("tags") or []}
        for name, color in wanted.items():
            if name not in have:
                have[name] = int(self._write("addTag", {"name": name, "color": color})["tag"]["id"])
        return have

    def edit_monitors(self, monitors: Sequence[dict[str, Any]]) -> None:
        """Save full monitor records (as read, with changed fields), pipelined."""
        self._pipeline("editMonitor", [({k: _plain(v) for k, v in m.items()},) for m in monitors])

    def delete_monitors(self, ids: Sequence[int]) -> None:
        self._pipeline("deleteMonitor", [(i,) for i in ids])

    def save_notification(self, fields: dict[str, Any], notification_id: int | None) -> int:
        answer = self._write("addNotification", fields, notification_id)
        return int(answer["id"])

    def delete_notification(self, notification_id: int) -> None:
        self._write("deleteNotification", notification_id)

    def save_maintenance(self, fields: dict[str, Any], maintenance_id: int | None) -> int:
        if maintenance_id is None:
            return int(self._write("addMaintenance", fields)["maintenanceID"])
        self._write("editMaintenance", {**fields, "id": maintenance_id})
        return maintenance_id

    def set_maintenance_monitors(self, maintenance_id: int, monitor_ids: Sequence[int]) -> None:
        self._write("addMonitorMaintenance", maintenance_id, [{"id": i} for i in monitor_ids])

    def delete_maintenance(self, maintenance_id: int) -> None:
        self._write("deleteMaintenance", maintenance_id)

    def add_status_page(self, slug: str, title: str) -> None:
        self._write("addStatusPage", title, slug)

    def save_status_page(self, slug: str, config: dict[str, Any], groups: Sequence[dict[str, Any]]) -> None:
        """Save the page's settings and its sections (all of them: sections not sent are deleted).

        Kuma takes the logo as a separate argument and stores `config.logo`:
        both get the current icon, so an agency's logo stays.
        """
        icon = str(config.get("icon") or "")
        self._write("saveStatusPage", slug, {**config, "slug": slug, "logo": icon}, icon, list(groups))

    def delete_status_page(self, slug: str) -> None:
        self._write("deleteStatusPage", slug)

    def save_settings(self, settings: dict[str, Any]) -> None:
        # The password is only checked when disabling authentication, which this never does.
        self._write("setSettings", settings, "")

    # -- plumbing ----------------------------------------------------------------------

    def _ask(self, event: str, *args: Any) -> Any:
        """Kuma's answer to `event`, refusals included."""
        data = args[0] if len(args) == 1 else (tuple(args) if args else None)
        try:
            return self.api.sio.call(event, data, timeout=self.timeout)
        except socketio.exceptions.TimeoutError:
            raise KumaError(
                f"Uptime Kuma at {self.login.url} did not answer {event} within {self.timeout:.0f}s"
            ) from None
        except socketio.exceptions.SocketIOError as exc:
            raise KumaError(f"lost the connection to Uptime Kuma at {self.login.url}: {exc}") from None

    @staticmethod
    def _checked(event: str, answer: Any) -> Any:
        if isinstance(answer, dict) and answer.get("ok") is False:
            raise KumaError(f"Uptime Kuma refused {event}: {answer.get('msg')}")
        return answer

    def _call(self, event: str, *args: Any) -> Any:
        return self._checked(event, self._ask(event, *args))

    def _write(self, event: str, *args: Any) -> Any:
        self.writes += 1
        return self._call(event, *args)

    def _pipeline(self, event: str, calls: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send `event` once per argument tuple, at most _PIPELINE_DEPTH unanswered at a time; the answers in order."""
        slots = threading.Semaphore(_PIPELINE_DEPTH)
        failures: list[str] = []
        pending = threading.Semaphore(0)
        answers: list[Any] = [None] * len(calls)

        def answered_as(index: int) -> Callable[..., None]:
            def answered(answer: Any = None, *_: Any) -> None:
                answers[index] = answer
                if isinstance(answer, dict) and answer.get("ok") is False:
                    failures.append(str(answer.get("msg")))
                slots.release()
                pending.release()

            return answered

        for index, args in enumerate(calls):
            if not slots.acquire(timeout=self.timeout):
                raise KumaError(f"Uptime Kuma at {self.login.url} stopped answering {event}")
            self.writes += 1
            self.api.sio.emit(event, args[0] if len(args) == 1 else args, callback=answered_as(index))
        for _ in calls:
            if not pending.acquire(timeout=self.timeout):
                raise KumaError(f"Uptime Kuma at {self.login.url} did not answer every {event} in time")
        if failures:
            raise KumaError(
                f"Uptime Kuma refused {len(failures)} {event} request(s): {'; '.join(sorted(set(failures)))}"
            )
        return answers


def read_public(url: str, timeout: float) -> Any:
    """An answer of Kuma's public (status page) API, its cache bypassed; None where Kuma answers 404.

    Those answers are cached for 1 to 5 minutes; the bypass header asks for the current state.
    """
    request = urllib.request.Request(url, headers={"x-apicache-bypass": "1"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # a slug Kuma does not know
            return None
        raise KumaError(f"{url}: {exc}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise KumaError(f"{url}: {exc}") from None


def need_setup(api: UptimeKumaApi, url: str, timeout: float = 30.0) -> bool:
    """Whether the Kuma behind `api` still needs its first user; also waits until it listens to requests.

    Kuma 2.x attaches its request handlers to a new connection only after a database read, and a
    request sent before that is dropped without an answer: this asks again until one comes.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return bool(api.sio.call("needSetup", timeout=2))
        except socketio.exceptions.TimeoutError:
            if time.monotonic() > deadline:
                raise KumaError(f"Uptime Kuma at {url} accepted the connection but answered no request") from None
        except socketio.exceptions.SocketIOError as exc:
            raise KumaError(f"lost the connection to Uptime Kuma at {url}: {exc}") from None


def _login(api: UptimeKumaApi, login: KumaLogin) -> None:
    # The password is part of the key: a token must not let a wrong password in.
    key = (login.url, login.username, hashlib.sha256(login.password.encode()).hexdigest())
    with _TOKENS_LOCK:
        token = _TOKENS.get(key)
    if token:
        try:
            api.login_by_token(token)
            return
        except UptimeKumaException:
            pass  # the password changed or the server's secret is new: log in again
    try:
        answer = api.login(login.username, login.password)
    except UptimeKumaException as exc:
        reason = _REASONS.get(str(exc), str(exc))
        raise KumaError(f"Uptime Kuma at {login.url} refused the login of {login.username!r}: {reason}") from None
    if not answer.get("token"):
        raise KumaError(
            f"Uptime Kuma at {login.url} wants a second factor for {login.username!r}; use an account without 2FA"
        )
    with _TOKENS_LOCK:
        _TOKENS[key] = str(answer["token"])


@contextlib.contextmanager
def connect(login: KumaLogin, *, timeout: float = 120.0, connect_timeout: float = 10.0) -> Iterator[KumaSession]:
    """A logged-in session; errors say whether Kuma is unreachable or refused the credentials."""
    try:
        # wait_events: how long the library waits for more events of a kind before reading one;
        # the lists read here arrive as single events, so its default 0.2 s per read is pure delay.
        api = UptimeKumaApi(login.url, timeout=connect_timeout, wait_events=0.02)
    except UptimeKumaException:
        raise KumaError(f"cannot reach Uptime Kuma at {login.url} (is it running, is the URL right?)") from None
    try:
        api.timeout = timeout  # lists of many monitors take seconds to build
        need_setup(api, login.url, connect_timeout)
        _login(api, login)
        try:
            version = kuma_version(api.version, login.url)
        except UnsupportedKumaVersion as exc:
            raise KumaError(str(exc)) from None
        yield KumaSession(api, login, timeout, version)
    finally:
        api.disconnect()
