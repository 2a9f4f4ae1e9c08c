#!/usr/bin/python3
"""Removes a leaving client's sites from this server: what the converge made for them, nothing else.

Reads, on stdin,

    {"client": "bakery", "config_dir": "/etc/carestack", "state_dir": "/var/lib/carestack",
     "sites": [{"id": "bakery-www", "user": "bakery-www", "root": "/srv/www/bakery-www",
                "home": "/home/bakery-www", "database": "bakery_www"}, ...],
     "secret_files": ["/etc/carestack/secrets/bakery.restic-password", ...]}

and, in this order: refuses (exit 3, nothing changed) while a site's evidence outbox still holds
records the bucket has not taken; stops and disables every carestack timer and job unit of the sites
and removes the timers; removes their nginx vhosts and PHP-FPM pools and reloads both; ends the
sites' users' processes; drops their databases and database users; removes their roots, homes, users,
certificates, logs, the client's /etc/hosts block, its secret files, the agent's per-site state and the hand-over
files the controller fetched.
On the standby a site is named by its "id" alone (its drill timer and state; it is not served there).
The agent's configuration piece is the playbook's (it re-assembles agent.toml). Every step skips
what is already gone, so a run cut short is simply run again. Prints {"changed": [what it did]}.
"""

import glob
import json
import os
import pwd
import re
import shutil
import subprocess
import sys

UNIT_DIR = "/etc/systemd/system"
NGINX_SITES = "/etc/nginx/sites-enabled"
LETSENCRYPT = "/etc/letsencrypt"


def run(argv: list, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        sys.exit(f"{' '.join(argv)}: {(done.stderr or done.stdout).strip()}")
    return done


def remove(path: str, done: list, what: str) -> bool:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)
    else:
        return False
    done.append(f"removed {what} {path}")
    return True


def pending_evidence(state_dir: str, sites: list) -> list:
    outboxes = [os.path.join(state_dir, "evidence", "outbox", site["id"]) for site in sites]
    return [box for box in outboxes if os.path.isdir(box) and os.listdir(box)]


def stop_units(sites: list, done: list) -> None:
    units = []
    for site in sites:
        units += [os.path.basename(p) for p in glob.glob(f"{UNIT_DIR}/carestack-*@{site['id']}.timer")]
    if units:
        run(["systemctl", "disable", "--now", *units])
        for unit in units:
            remove(f"{UNIT_DIR}/{unit}", done, "timer")
        run(["systemctl", "daemon-reload"])
    # A job already running (its service, started by a timer or by hand) is stopped as well.
    services = [f"carestack-*@{site['id']}.service" for site in sites]
    run(["systemctl", "stop", *services], check=False)
    run(["systemctl", "reset-failed", *services], check=False)


def remove_serving(sites: list, done: list) -> None:
    vhosts = [remove(f"{NGINX_SITES}/{site['id']}.conf", done, "vhost") for site in sites]
    pools = []
    for site in sites:
        for pool in glob.glob(f"/etc/php/*/fpm/pool.d/{site['id']}.conf"):
            remove(pool, done, "PHP-FPM pool")
            pools.append(pool.split("/")[3])
    if any(vhosts):
        run(["nginx", "-t", "-q"])
        run(["systemctl", "reload", "nginx"])
    for version in sorted(set(pools)):
        run(["systemctl", "reload", f"php{version}-fpm"])


def remove_databases(sites: list, done: list) -> None:
    dynamic = [site for site in sites if site.get("database") and site.get("user")]
    if not dynamic or not shutil.which("mariadb"):
        return
    for site in dynamic:
        exists = run(["mariadb", "-N", "-e", f"SHOW DATABASES LIKE '{site['database']}'"]).stdout.strip()
        user = run(["mariadb", "-N", "-e", f"SELECT 1 FROM mysql.global_priv WHERE User='{site['user']}'"]).stdout
        if exists or user.strip():
            sql = f"DROP DATABASE IF EXISTS `{site['database']}`; DROP USER IF EXISTS '{site['user']}'@'localhost';"
            run(["mariadb", "-e", sql])
            done.append(f"dropped database {site['database']} and its user")


def remove_users(sites: list, done: list) -> None:
    for site in sites:
        for key, what in (("root", "site root"), ("home", "home")):
            if site.get(key):
                remove(site[key], done, what)
        if not site.get("user"):
            continue  # drilled here, never served here (the standby)
        try:
            pwd.getpwnam(site["user"])
        except KeyError:
            continue
        run(["pkill", "-KILL", "-u", site["user"]], check=False)  # what the pool's reload left running
        run(["userdel", site["user"]])
        done.append(f"removed user {site['user']}")


def remove_certificates(sites: list, done: list) -> None:
    for site in sites:
        if os.path.isdir(f"{LETSENCRYPT}/live/{site['id']}") and shutil.which("certbot"):
            run(["certbot", "delete", "--non-interactive", "--cert-name", site["id"]])
            done.append(f"deleted certificate {site['id']}")
        remove(f"{LETSENCRYPT}/carestack/{site['id']}.names", done, "certificate record")


def remove_hosts_block(client: str, done: list) -> None:
    marker = f"carestack sites of {client}"
    with open("/etc/hosts", encoding="utf-8") as f:
        text = f.read()
    kept = re.sub(rf"^# BEGIN {re.escape(marker)}\n.*?^# END {re.escape(marker)}\n", "", text, flags=re.M | re.S)
    if kept != text:
        with open("/etc/hosts", "w", encoding="utf-8") as f:
            f.write(kept)
        done.append(f"removed the /etc/hosts block of {client}")


def remove_state(state_dir: str, sites: list, secret_files: list, done: list) -> None:
    for path in secret_files:
        remove(path, done, "secret")
        remove(path + ".new", done, "secret")  # a password rotation's marker
    for site in sites:
        for log in glob.glob(f"/var/log/nginx/{site['id']}.*.log*"):
            remove(log, done, "log")
        # <state_dir>/<what>/<site>[.json|.lock|...], and the evidence outbox one level deeper (empty by now)
        for pattern in ("*/{id}", "*/{id}.*", "*/*/{id}"):
            for entry in glob.glob(f"{state_dir}/" + pattern.format(id=site["id"])):
                remove(entry, done, "agent state")


def main() -> None:
    wanted = json.load(sys.stdin)
    sites, state_dir = wanted["sites"], wanted["state_dir"]
    waiting = pending_evidence(state_dir, sites)
    if waiting:
        print(
            f"evidence records not yet in the bucket: {', '.join(waiting)}; run a backup of the site "
            "(it sends them) or look at why the bucket refuses them, then offboard again",
            file=sys.stderr,
        )
        sys.exit(3)
    done: list = []
    stop_units(sites, done)
    remove_serving(sites, done)
    remove_databases(sites, done)
    remove_users(sites, done)
    remove_certificates(sites, done)
    remove_hosts_block(wanted["client"], done)
    remove_state(state_dir, sites, wanted["secret_files"], done)
    remove(f"{state_dir}/handover/{wanted['client']}", done, "hand-over")  # fetched by the controller by now
    print(json.dumps({"changed": done}))


if __name__ == "__main__":
    main()
