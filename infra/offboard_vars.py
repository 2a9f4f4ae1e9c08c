"""The offboarding playbook's inventory (`ansible/offboard.yml`): per server, the leaving client's sites.

The client's server gets every site's names (user, root, home, database) and the client's secret
files; the standby that drills the client gets the drilled sites by id (their timers and state) and
the same secret files. Nothing secret is in it: it names files, never their contents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from infra import agent_config
from infra.ansible_vars import SITE_HOMES, HostAccess, drilled_sites
from infra.plan import CarePlan


def _secret_files(plan: CarePlan) -> list[str]:
    return [agent_config.password_file(plan.client.id), agent_config.credentials_file(plan.client.id)] + [
        agent_config.push_tokens_file(site.id) for site in plan.sites
    ]


def offboard_inventory(plan: CarePlan, hosts: Mapping[str, HostAccess], servers: Sequence[str]) -> dict[str, Any]:
    entries: dict[str, dict[str, Any]] = {}
    for server in servers:
        access = hosts[server]
        if server == plan.hosting.server:
            sites = [
                {"id": site.id, "user": site.linux_user, "root": site.root,
                 "home": f"{SITE_HOMES}/{site.linux_user}", "database": site.database}
                for site in plan.sites
            ]  # fmt: skip
        else:
            sites = [{"id": site.id} for site in drilled_sites(plan)]
        entries[server] = {
            "ansible_host": access.address,
            "ansible_user": access.ssh_user,
            "carestack_offboard": {"client": plan.client.id, "sites": sites, "secret_files": _secret_files(plan)},
        }
    return {"all": {"children": {"carestack": {"hosts": entries}}}}
