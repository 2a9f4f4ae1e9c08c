"""Run on a lab server: start `carestack-agent update SITE`, SIGKILL it once it reaches a step.

    python3 kill_at_step.py CONFIG SITE STEP [DELAY]
    python3 kill_at_step.py CONFIG SITE rollback-swap


The agent waits for the site's lock (a timer's backup may hold it). Watches
the agent's journal (the same file `status` reads) for the run's `step` event
named STEP and kills the agent with SIGKILL, DELAY seconds later
(to land inside a step that takes a while, such as dpkg during apply). Prints
one JSON line: the run id, the steps the run journaled, whether it was killed
(an agent that finished first was not). Stdlib only: the servers' python3.

`rollback-swap` kills the agent inside its rollback, after the files were
swapped back and while its RENAME TABLE waits (the caller holds a lock on a
live table): the agent is killed, then the waiting statement, as if it had
never been sent. The database is still the broken version's.
"""

from __future__ import annotations

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


def kill_in_the_swap(agent: subprocess.Popen[bytes], deadline: float) -> list[str]:
    """SIGKILL the agent once its RENAME TABLE waits, then that statement; the threads killed."""
    while agent.poll() is None and time.monotonic() < deadline and not pending_renames():
        time.sleep(0.05)
    os.kill(agent.pid, signal.SIGKILL)
    threads = pending_renames()
    for thread in threads:
        subprocess.run(["mariadb", "-e", f"KILL {thread}"], check=True)
    return threads


def main() -> int:
    config, site, step = sys.argv[1:4]
    in_swap = step == "rollback-swap"
    if in_swap:
        step = "rollback"
    renames: list[str] = []
    delay = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    offset = os.path.getsize(JOURNAL) if os.path.exists(JOURNAL) else 0
    agent = subprocess.Popen(
        ["carestack-agent", "--config", config, "update", site, "--wait"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run_id, steps, killed, pending = None, [], False, ""
    deadline = time.monotonic() + TIMEOUT
    with open(JOURNAL, encoding="utf-8") as journal:
        journal.seek(offset)
        while agent.poll() is None and time.monotonic() < deadline and not killed:
            pending += journal.read()
            *lines, pending = pending.split("\n")
            for line in lines:
                record = json.loads(line)
                if record.get("site") != site or record.get("job") != "update":
                    continue
                if record.get("event") == "start" and record.get("pid") == agent.pid:
                    run_id = record["run_id"]
                if record.get("run_id") != run_id or record.get("event") != "step":
                    continue
                steps.append(record["step"])
                if record["step"] == step:
                    if in_swap:
                        renames = kill_in_the_swap(agent, deadline)
                    else:
                        time.sleep(delay)
                        os.kill(agent.pid, signal.SIGKILL)
                    killed = True
                    break
            time.sleep(0.005)
    agent.wait()
    print(json.dumps({"run_id": run_id, "steps": steps, "killed": killed, "returncode": agent.returncode,
                      "renames_killed": renames}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
