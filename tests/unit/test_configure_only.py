"""`carestack configure --only ROLE`: a role name that site.yml does not tag is refused before Ansible runs."""

from __future__ import annotations

import pytest
import yaml

from infra.configure import ANSIBLE_DIR, ROLES, ConfigureError, converge


def test_every_role_of_the_playbook_is_tagged_with_its_name() -> None:
    play = yaml.safe_load((ANSIBLE_DIR / "site.yml").read_text())[0]
    assert [(r["role"], r["tags"]) for r in play["roles"]] == [(role, [role]) for role in ROLES]


def test_an_unknown_role_is_refused_naming_the_valid_ones() -> None:
    with pytest.raises(ConfigureError, match=r"--only: nginx is not a role; valid: common, web, site, agent"):
        converge([], None, only=["nginx"])  # type: ignore[arg-type]
