"""The lab's server of the studio client, prepared for update tests (marked `lab`).

Everything the update tests need on the server is built here and shipped
there: two flat apt repositories (security and updates suites) with test
packages, release tarballs of the PHP site, zips of a test plugin and a
directory feed for the WordPress site. Before the first test, both sites get
a copy of their files and a dump of their database (put back at the end, so
the lab's sites are as they were; snapshots would not do: the plan's
retention forgets them as soon as the next backups run),
the test packages' 1.0 versions are installed (one held), the plugin's 1.0 is
installed and activated, and the PHP site gets its release 1.0 through the
agent itself.

Tests run the agent with their own config (`TEST_CONFIG`): the server's
agent.toml with the apt provider reading only the test repositories
(`apt_sources`), the WordPress site's feed, and the providers each scenario
needs. Every site value comes from the studio client's plan.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
import tarfile
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra import agent_config
from infra.plan import SitePlan
from lab.state import LabState
from tests.updates import artifacts

CLIENT = "studio"
TEST_ROOT = "/var/lib/carestack-test"
TEST_CONFIG = "/etc/carestack/update-tests.toml"
JOURNAL = f"{agent_config.STATE_DIR}/journal.jsonl"
KILL_SCRIPT = Path(__file__).with_name("kill_at_step.py")
# What the test packages are called on the server (all purged at the end).
PACKAGES = (artifacts.TOOLS, artifacts.EXTRAS, artifacts.HELD, artifacts.NGINX)

# A fingerprint of a site root: every entry's path, type, mode, owner, mtime and content hash.
MANIFEST = r"""
import hashlib, json, os, stat, sys
root = sys.argv[1]
rows = []
for base, dirs, files in os.walk(root):
    dirs.sort()
    for name in sorted(dirs + files):
        path = os.path.join(base, name)
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode):
            what = hashlib.sha256(open(path, "rb").read()).hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            what = "-> " + os.readlink(path)
        else:
            what = "dir"
        mtime = "" if stat.S_ISDIR(st.st_mode) else int(st.st_mtime)
        rows.append([os.path.relpath(path, root), st.st_mode, st.st_uid, st.st_gid, mtime, what])
print(json.dumps({"entries": len(rows), "sha256": hashlib.sha256(json.dumps(rows).encode()).hexdigest()}))
"""


@dataclass
class Server:
    lab: LabState
    name: str

    def sh(self, command: str, *, check: bool = True, timeout: float = 600, stdin: str | None = None) -> str:
        done = subprocess.run(
            ["ssh", "-F", str(self.lab.ssh_config), self.name, command],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{self.name}: {command!r} exited {done.returncode}:\n{done.stdout}{done.stderr}")
        return done.stdout

    def run(self, command: str, *, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ssh", "-F", str(self.lab.ssh_config), self.name, command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def upload(self, local: Path, remote: str) -> None:
        """The directory's content into `remote` (created), as root."""
        with tempfile.TemporaryFile() as buffer:
            with tarfile.open(fileobj=buffer, mode="w") as archive:
                archive.add(local, arcname=".")
            buffer.seek(0)
            subprocess.run(
                ["ssh", "-F", str(self.lab.ssh_config), self.name,
                 f"mkdir -p {shlex.quote(remote)} && tar -C {shlex.quote(remote)} --no-same-owner -xf -"],
                stdin=buffer, check=True, capture_output=True, timeout=300,
            )  # fmt: skip

    def agent(self, verb: str, site: str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """A verb on a site with the tests' config; waits for the site's lock (timers, the lab's converge)."""
        command = shlex.join([verb, site, "--wait", *args])
        return self.run(f"carestack-agent --config {TEST_CONFIG} {command}", timeout=timeout)

    def journal(self, run_id: str | None = None) -> list[dict[str, Any]]:
        records = [json.loads(line) for line in self.sh(f"cat {JOURNAL}").splitlines() if line.strip()]
        return [r for r in records if run_id is None or r.get("run_id") == run_id]

    def last_update(self, site: SitePlan) -> dict[str, Any]:
        """The newest `end` of an update run of the site, with the run's other events under `events`."""
        records = self.journal()
        end = next(r for r in reversed(records) if r.get("event") == "end" and r.get("job") == "update"
                   and r.get("site") == site.id)  # fmt: skip
        return {**end, "events": [r for r in records if r.get("run_id") == end["run_id"] and r is not end]}


@dataclass
class UpdatesLab:
    server: Server
    web: SitePlan  # the WordPress site
    plans: SitePlan  # the PHP site
    release_dir: dict[str, str]  # site id -> where its release artifacts go

    def configure(self, providers: dict[str, list[str]]) -> None:
        """TEST_CONFIG: agent.toml with the test repositories and feed, and exactly these providers."""
        doc = tomllib.loads(self.server.sh("cat /etc/carestack/agent.toml"))
        doc["agent"]["apt_sources"] = f"{TEST_ROOT}/apt/sources"
        for site_id, site in doc["sites"].items():
            updates = site.setdefault("updates", {})
            updates["providers"] = providers.get(site_id, [])
        for plan_site in (self.web, self.plans):
            site = doc["sites"][plan_site.id]
            site["checks"] = [{"path": c.path, "keyword": c.keyword, "status": c.status} for c in plan_site.checks]
        doc["sites"][self.web.id]["updates"]["wordpress_feed"] = f"{TEST_ROOT}/feed"
        self.server.sh(f"cat > {TEST_CONFIG}", stdin=agent_config.dumps(doc))

    # -- what the updates offer ----------------------------------------------------------------

    def publish_apt(self, offered: dict[str, list[str]]) -> None:
        """Each repository's index lists only these package versions ({"security": ["tools_1.1", ...]})."""
        script = "\n".join(
            f"python3 {TEST_ROOT}/index_repo.py {TEST_ROOT}/apt/{repo} {' '.join(names)}"
            for repo, names in offered.items()
        )
        self.server.sh(script)

    def offer_plugin(self, *versions: str) -> None:
        index = artifacts.feed_index({v: f"{artifacts.PLUGIN}.{v}.zip" for v in versions})
        self.server.sh(f"cat > {TEST_ROOT}/feed/index.json", stdin=index)

    def offer_release(self, *versions: str) -> None:
        """The release directory holds exactly these artifacts of the PHP site."""
        target = self.release_dir[self.plans.id]
        files = " ".join(f"{TEST_ROOT}/releases/{self.plans.name}-{v}.tar.gz" for v in versions)
        self.server.sh(f"mkdir -p {target} && rm -f {target}/* && {'cp ' + files + ' ' + target if files else 'true'}")

    def forget_failed(self) -> None:
        """Forget the versions earlier scenarios rolled back (each scenario states what is offered)."""
        self.server.sh(f"rm -f {agent_config.STATE_DIR}/updates/*.failed.json")

    # -- what the tests compare ----------------------------------------------------------------

    def state(self, site: SitePlan) -> dict[str, Any]:
        """Files (manifest) and database (tables, row counts, checksums) of a site, as they are now.

        WordPress's own bookkeeping rows (transients, the cron schedule) may change on any page view,
        including the agent's probes, so those option rows are left out of the wp_options checksum.
        """
        files = json.loads(self.server.sh(f"python3 - {site.root}", stdin=MANIFEST))
        db = site.database
        tables = self.server.sh(f"mariadb -N -e 'SHOW TABLES' {db}").split()
        counts = {}
        for table in tables:
            if table.endswith("_options"):
                query = (
                    "SET SESSION group_concat_max_len = 1073741824; SELECT COUNT(*), "
                    "MD5(GROUP_CONCAT(option_name, option_value ORDER BY option_name)) FROM "
                    f"{table} WHERE option_name NOT LIKE '%transient%' AND option_name <> 'cron'"
                )
            else:
                query = f"SELECT COUNT(*) FROM {table}; CHECKSUM TABLE {table}"
            counts[table] = self.server.sh(f"mariadb -N -e {shlex.quote(query)} {db}").split()
        return {"files": files, "tables": counts}

    def pages(self, site: SitePlan) -> list[tuple[str, int, bool]]:
        """Each check page of the site as the web server answers it now: (path, status, keyword found)."""
        found = []
        for check in site.checks:
            out = self.server.sh(
                f"curl -s -o /tmp/page.html -w '%{{http_code}}\n' -H 'Host: {site.domain}' http://127.0.0.1{check.path}"
                f" && grep -c {shlex.quote(check.keyword)} /tmp/page.html || true"
            ).split()
            found.append((check.path, int(out[0]), len(out) > 1 and out[1] != "0"))
        return found

    def healthy(self, site: SitePlan) -> bool:
        expected = [(c.path, c.status, True) for c in site.checks]
        return self.pages(site) == expected

    def installed(self) -> dict[str, str]:
        out = self.server.sh(
            f"dpkg-query -W -f '${{Package}} ${{Version}} ${{db:Status-Abbrev}}\\n' {' '.join(PACKAGES)}"
        )
        return {p: f"{v} {s}" for p, v, s in (line.split() for line in out.splitlines())}


INDEX_REPO = r"""
# Rewrites a flat repository's Packages/Release to list only the given debs (NAME_VERSION), all kept in pool/.
import gzip, hashlib, os, subprocess, sys, email.utils
repo, wanted = sys.argv[1], sys.argv[2:]
stanzas = []
for name in wanted:
    deb = f"pool/{name}_all.deb"
    data = open(os.path.join(repo, deb), "rb").read()
    fields = subprocess.run(["dpkg-deb", "--field", os.path.join(repo, deb)], capture_output=True, text=True,
                            check=True).stdout.rstrip("\n")
    stanzas.append(f"{fields}\nFilename: ./{deb}\nSize: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n")
packages = "\n".join(stanzas).encode()
open(os.path.join(repo, "Packages"), "wb").write(packages)
open(os.path.join(repo, "Packages.gz"), "wb").write(gzip.compress(packages, mtime=0))
head = open(os.path.join(repo, "Release")).read().split("Date:")[0]
sums = "".join(f" {hashlib.sha256(open(os.path.join(repo, f), 'rb').read()).hexdigest()} "
               f"{os.path.getsize(os.path.join(repo, f))} {f}\n" for f in ("Packages", "Packages.gz"))
open(os.path.join(repo, "Release"), "w").write(
    f"{head}Date: {email.utils.formatdate(usegmt=True)}\nArchitectures: all amd64\nSHA256:\n{sums}")
"""


def _build(out: Path, web: SitePlan, plans: SitePlan) -> None:
    repos = artifacts.build_apt_repos(out / "apt", broken_domain=plans.domain)
    for repo in repos.values():  # every deb goes to pool/, the index lists what a scenario offers
        (repo / "pool").mkdir()
        for deb in repo.glob("*.deb"):
            deb.rename(repo / "pool" / deb.name)
    (out / "apt" / "sources").mkdir()
    (out / "apt" / "sources" / "lab.list").write_text(artifacts.sources_list(f"{TEST_ROOT}/apt"))
    (out / "index_repo.py").write_text(INDEX_REPO)
    (out / "kill_at_step.py").write_text(KILL_SCRIPT.read_text())
    releases = out / "releases"
    releases.mkdir()
    keyword = plans.checks[0].keyword
    for version, broken in (("1.0", False), ("1.1", False), ("1.2", True), ("1.4", False)):
        artifacts.release_tarball(releases, plans.name, version, keyword=keyword, user=plans.linux_user,
                                  database=str(plans.database), broken=broken)  # fmt: skip
    for step in KILL_STEPS:
        artifacts.release_tarball(releases, plans.name, f"1.3.{KILL_STEPS.index(step)}", keyword=keyword,
                                  user=plans.linux_user, database=str(plans.database), broken=True)  # fmt: skip
    feed = out / "feed"
    feed.mkdir()
    for version, broken in (("1.0", False), ("1.1", False), ("1.2", True)):
        artifacts.plugin_zip(feed, version, broken=broken)


KILL_STEPS = ("health", "snapshot", "apply", "probe", "rollback")

# php -r: activate a plugin the way the dashboard does (arguments: domain, plugin file).
ACTIVATE_PLUGIN = (
    "$_SERVER['HTTP_HOST'] = $argv[1]; require 'wp-load.php'; require_once ABSPATH . 'wp-admin/includes/plugin.php';"
    " $r = activate_plugin($argv[2]); exit(is_wp_error($r) ? 1 : 0);"
)


@contextlib.contextmanager
def updates_lab(lab: LabState, workdir: Path) -> Iterator[UpdatesLab]:
    """The studio server prepared for update scenarios, and put back as it was afterwards (also the bench's)."""
    plan = lab.plan(CLIENT)
    web = next(s for s in plan.sites if "wordpress" in s.providers)
    plans = next(s for s in plan.sites if "release" in s.providers)
    server = Server(lab, plan.hosting.server)
    doc = tomllib.loads(server.sh("cat /etc/carestack/agent.toml"))
    state_dir = doc["agent"].get("state_dir", agent_config.STATE_DIR)
    release_dir = {s.id: doc["sites"][s.id].get("updates", {}).get("release_dir", f"{state_dir}/releases/{s.id}")
                   for s in (web, plans)}  # fmt: skip

    _build(workdir, web, plans)
    server.sh(f"rm -rf {TEST_ROOT}")
    server.upload(workdir, TEST_ROOT)
    server.sh(f"chmod -R a+rX {TEST_ROOT}")  # the sites' users read the plugin zips

    for site in (web, plans):
        original = f"{TEST_ROOT}/original-{site.id}"
        server.sh(f"cp -a {site.root} {original} && mariadb-dump --single-transaction {site.database} > {original}.sql")
    ctx = UpdatesLab(server, web, plans, release_dir)
    try:
        _prepare(ctx)
        yield ctx
    finally:
        _restore(ctx)


@pytest.fixture(scope="module")
def updates(lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpdatesLab]:
    with updates_lab(lab, tmp_path_factory.mktemp("update-artifacts")) as ctx:
        yield ctx


def _prepare(ctx: UpdatesLab) -> None:
    server, web, plans = ctx.server, ctx.web, ctx.plans
    ctx.publish_apt({"security": [f"{artifacts.TOOLS}_1.0", f"{artifacts.HELD}_1.0", f"{artifacts.NGINX}_1.0"],
                     "updates": [f"{artifacts.EXTRAS}_1.0"]})  # fmt: skip
    pool = f"{TEST_ROOT}/apt"
    server.sh(
        f"apt-get install -y -q {pool}/security/pool/{artifacts.TOOLS}_1.0_all.deb "
        f"{pool}/security/pool/{artifacts.HELD}_1.0_all.deb {pool}/security/pool/{artifacts.NGINX}_1.0_all.deb "
        f"{pool}/updates/pool/{artifacts.EXTRAS}_1.0_all.deb && apt-mark hold {artifacts.HELD}"
    )
    plugins = f"{web.root}/wp-content/plugins"
    server.sh(
        f"cd {plugins} && rm -rf {artifacts.PLUGIN} && runuser -u {web.linux_user} -- python3 -c "
        f"\"import zipfile; zipfile.ZipFile('{TEST_ROOT}/feed/{artifacts.PLUGIN}.1.0.zip').extractall('.')\" && "
        f"cd {web.root} && runuser -u {web.linux_user} -- php -r {shlex.quote(ACTIVATE_PLUGIN)} "
        f"{web.domain} {artifacts.PLUGIN_FILE}"
    )
    ctx.forget_failed()
    ctx.offer_release("1.0")
    ctx.configure({plans.id: ["release"]})
    first = server.agent("update", plans.id)
    assert first.returncode == 0, first.stdout + first.stderr
    ctx.offer_release()


def _restore(ctx: UpdatesLab) -> None:
    """The lab's sites and server as before the tests: their files and databases back, test packages gone.

    A failed test may have left an update interrupted (dpkg cut short): any agent verb finishes it first.
    Every step runs even when one fails, and then the failures are raised: a put-back that did not
    happen would otherwise change the shared lab for every later test.
    """
    server = ctx.server
    failed: list[str] = []

    def step(command: str) -> None:
        done = server.run(command)
        if done.returncode != 0:
            failed.append(f"{command!r} exited {done.returncode}:\n{done.stdout}{done.stderr}")

    for site in (ctx.web, ctx.plans):
        step(f"carestack-agent --config {TEST_CONFIG} init {site.id}")
        original = f"{TEST_ROOT}/original-{site.id}"
        step(
            f"test -d {original} && rm -rf {site.root} && mv {original} {site.root} && "
            f"mariadb {site.database} < {original}.sql"
        )
    packages = " ".join(PACKAGES)
    step("dpkg --configure -a")
    step(f"apt-mark unhold {artifacts.HELD}")
    step(f"apt-get purge -y -q {packages} || dpkg --purge --force-remove-reinstreq {packages}")
    dirs = " ".join(ctx.release_dir.values())
    state = agent_config.STATE_DIR
    step(f"rm -rf {TEST_ROOT} {TEST_CONFIG} {dirs} {state}/apt/lists {state}/apt/rollback "
         f"{state}/updates/*.failed.json")  # fmt: skip
    listed = server.run(f"dpkg-query -W -f '${{Package}} ${{db:Status-Abbrev}}\\n' {packages}").stdout.splitlines()
    left = [line for line in listed if len(line.split()) == 2 and line.split()[1][1] != "n"]
    if left:
        failed.append(f"test packages still on the server: {left}")
    for site in (ctx.web, ctx.plans):
        if not ctx.healthy(site):
            failed.append(f"{site.id} does not answer its pages after the put-back: {ctx.pages(site)}")
    if failed:
        raise AssertionError(
            f"putting {server.name} back failed; later tests would see a changed lab:\n" + "\n".join(failed)
        )
