"""Run on a lab server: start `carestack-agent update SITE`, SIGKILL it once it reaches a step.

    python3 kill_at_step.py CONFIG SITE STEP [DELAY] [--systemd] [--instead COMMAND]
    python3 kill_at_step.py CONFIG SITE rollback-swap


The agent waits for the site's lock (a timer's backup may hold it). Watches
the agent's journal (the same file `status` reads) for the run's `step` event
named STEP and kills the agent with SIGKILL, DELAY seconds later
(to land inside a step that takes a while, such as dpkg during apply). Prints
one JSON line: the run id, the steps the run journaled, whether it was killed
(an agent that finished first was not). Stdlib only: the servers' python3.

--systemd starts the run as systemd does (`carestack-update@SITE.service`; its
config comes from the unit, CONFIG is not used) and kills the unit's agent,
so the unit fails the way a crash makes it fail. The unit's run does not wait
for the site's lock: if a timer's job holds it, the unit is started again. --instead runs COMMAND (a
shell line) at the step rather than killing, and lets the run finish.

`rollback-swap` kills the agent inside its rollback, after the files were
swapped back and while its RENAME TABLE waits (the caller holds a lock on a
live table): the agent is killed, then the waiting statement, as if it had
never been sent. The database is still the broken version's.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

JOURNAL = "/var/lib/carestack/journal.jsonl"
TIMEOUT = 300
PENDING_RENAMES = "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'RENAME TABLE%'"


def pending_renames() -> list[str]:
    out = subprocess.run(["mariadb", "-N", "-e", PENDING_RENAMES], capture_output=True, text=True, check=True)
    return out.stdout.split()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill_in_the_swap(pid: int, deadline: float) -> list[str]:
    """SIGKILL the agent once its RENAME TABLE waits, then that statement; the threads killed."""
    while alive(pid) and time.monotonic() < deadline and not pending_renames():
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    threads = pending_renames()
    for thread in threads:
        subprocess.run(["mariadb", "-e", f"KILL {thread}"], check=True)
    return threads


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("site")
    parser.add_argument("step")
    parser.add_argument("delay", nargs="?", type=float, default=0.0)
    parser.add_argument("--systemd", action="store_true")
    parser.add_argument("--instead")
    args = parser.parse_args()
    site, step = args.site, args.step
    in_swap = step == "rollback-swap"
    if in_swap:
        step = "rollback"
    renames: list[str] = []
    offset = os.path.getsize(JOURNAL) if os.path.exists(JOURNAL) else 0
    agent: subprocess.Popen[bytes] | None = None
    unit = f"carestack-update@{site}.service"
    if args.systemd:
        subprocess.run(["systemctl", "start", "--no-block", unit], check=True)
    else:
        agent = subprocess.Popen(
            ["carestack-agent", "--config", args.config, "update", site, "--wait"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    run_id, pid, steps, killed, done, pending = None, None, [], False, False, ""
    deadline = time.monotonic() + TIMEOUT
    with open(JOURNAL, encoding="utf-8") as journal:
        journal.seek(offset)
        while not done and time.monotonic() < deadline and not killed:
            pending += journal.read()
            *lines, pending = pending.split("\n")
            for line in lines:
                record = json.loads(line)
                if record.get("site") != site or record.get("job") != "update":
                    continue
                if record.get("event") == "busy" and args.systemd and run_id is None:  # another job held the lock
                    time.sleep(1)
                    subprocess.run(["systemctl", "start", "--no-block", unit], check=True)
                    continue
                ours = agent is None or record.get("pid") == agent.pid  # under systemd: the site's next run
                if record.get("event") == "start" and run_id is None and ours:
                    run_id, pid = record["run_id"], record["pid"]
                if record.get("run_id") != run_id:
                    continue
                if record.get("event") == "end":
                    done = True
                if record.get("event") != "step":
                    continue
                steps.append(record["step"])
                if record["step"] == step:
                    if in_swap:
                        renames = kill_in_the_swap(pid, deadline)
                        killed = True
                        break
                    time.sleep(args.delay)
                    if args.instead:
                        subprocess.run(args.instead, shell=True, check=True)
                        continue
                    os.kill(pid, signal.SIGKILL)
                    killed = True
                    break
            if agent is not None and agent.poll() is not None:
                done = True
            time.sleep(0.005)
    returncode = agent.wait() if agent is not None else None
    if args.systemd and killed:
        returncode = -signal.SIGKILL
    print(json.dumps({"run_id": run_id, "steps": steps, "killed": killed, "returncode": returncode,
                      "renames_killed": renames}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
