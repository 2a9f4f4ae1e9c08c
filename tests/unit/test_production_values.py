"""Values that cannot be meant for production are warned about; the agency's bucket prefix is validated."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.cli import main
from infra.plan import build_plan
from infra.production_warnings import catalog_warnings, documentation_network, example_domain, stack_warnings
from infra.spec import CATALOG_PATH, STACKS_DIR, ClientSpec, SpecError, load_catalog, load_stack, parse_stack
from infra.storage_policy import restic_user_name


def catalog_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(CATALOG_PATH.read_text())
    return document


def write_catalog(tmp_path: Path, change: Any) -> Path:
    document = copy.deepcopy(catalog_document())
    change(document)
    path = tmp_path / "tiers.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def stack_config(name: str) -> dict[str, Any]:
    document = yaml.safe_load((STACKS_DIR / f"Pulumi.{name}.yaml").read_text())
    return {k.split(":", 1)[1]: v for k, v in document["config"].items() if k.startswith("carestack:")}


# --- the agency's bucket prefix ----------------------------------------------------


def test_bucket_names_carry_the_agencys_prefix(tmp_path: Path) -> None:
    path = write_catalog(tmp_path, lambda d: d["agency"].update(bucket_prefix="nordwerk"))
    spec = parse_stack("bakery", stack_config("bakery"), load_catalog(path))
    assert isinstance(spec, ClientSpec)
    assert build_plan(spec).storage.bucket == "nordwerk-bakery-backups"


def test_the_longest_names_fit_s3_and_iam(tmp_path: Path) -> None:
    prefix = "a" * 36
    path = write_catalog(tmp_path, lambda d: d["agency"].update(bucket_prefix=prefix))
    config = {**stack_config("bakery"), "client": {"id": "b" * 12, "name": "Long"}}
    spec = parse_stack("long", config, load_catalog(path))
    assert isinstance(spec, ClientSpec)
    bucket = build_plan(spec).storage.bucket
    assert len(bucket) <= 63 and len(restic_user_name(bucket)) <= 64


@pytest.mark.parametrize(
    ("prefix", "named"),
    [
        ("Nordwerk", "expected 3 to 36 lower-case letters"),
        ("nord_werk", "expected 3 to 36 lower-case letters"),
        ("nordwerk-", "expected 3 to 36 lower-case letters"),
        ("ab", "expected 3 to 36 lower-case letters"),
        ("a" * 37, "expected 3 to 36 lower-case letters"),
        ("xn--nordwerk", "S3 reserves bucket names starting with 'xn--'"),
        (7, "expected 3 to 36 lower-case letters"),
    ],
)
def test_a_bad_bucket_prefix_is_named(tmp_path: Path, prefix: object, named: str) -> None:
    path = write_catalog(tmp_path, lambda d: d["agency"].update(bucket_prefix=prefix))
    with pytest.raises(SpecError) as caught:
        load_catalog(path)
    assert caught.value.source == str(path)
    assert [p for p in caught.value.problems if p.startswith("agency.bucket_prefix: ") and named in p]


def test_the_catalog_must_name_its_agency(tmp_path: Path) -> None:
    path = write_catalog(tmp_path, lambda d: d.pop("agency"))
    with pytest.raises(SpecError) as caught:
        load_catalog(path)
    assert caught.value.problems[0].startswith("agency: is required")
    path = write_catalog(tmp_path, lambda d: d.update(agency={"bucket_prefx": "nordwerk"}))
    with pytest.raises(SpecError) as caught:
        load_catalog(path)
    assert caught.value.problems[:2] == [
        "agency.bucket_prefix: is required",
        "agency.bucket_prefx: unknown key; did you mean 'bucket_prefix'? "
        "(valid keys: bucket_prefix, acme, vulnerability_feed, core_checksums)",
    ]


def test_a_client_no_longer_picks_its_own_bucket_prefix() -> None:
    with pytest.raises(SpecError) as caught:
        parse_stack("bakery", {**stack_config("bakery"), "bucket_prefix": "mine"})
    assert [p for p in caught.value.problems if p.startswith("carestack:bucket_prefix: unknown key")]


# --- warnings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cidr", "range_"),
    [
        ("198.51.100.0/28", "198.51.100.0/24"),
        ("192.0.2.10/32", "192.0.2.0/24"),
        ("203.0.113.0/24", "203.0.113.0/24"),
        ("203.0.0.0/16", "203.0.113.0/24"),
        ("2001:db8:1::/48", "2001:db8::/32"),
        ("10.20.0.0/16", None),
        ("198.51.101.0/24", None),
        ("2a01:4f8::/32", None),
    ],
)
def test_documentation_ranges(cidr: str, range_: str | None) -> None:
    found = documentation_network(cidr)
    assert (str(found) if found else None) == range_


@pytest.mark.parametrize(
    ("domain", "example"),
    [
        ("www.bakery.example", True),
        ("example.com", True),
        ("shop.example.org", True),
        ("staging.bakery.test", True),
        ("x.invalid", True),
        ("bakery.localhost", True),
        ("www.baeckerei-korn.de", False),
        ("example.de", False),
        ("myexample.com", False),
        ("examples.shop", False),
    ],
)
def test_example_domains(domain: str, example: bool) -> None:
    assert example_domain(domain) is example


def test_an_example_stack_gets_a_warning_per_example_value() -> None:
    spec = load_stack(STACKS_DIR / "Pulumi.shop.yaml")
    keys = [w.split(": ", 1)[0] for w in stack_warnings(spec)]
    assert keys == [
        "carestack:admin_cidr",
        "carestack:sites[0].domain",
        "carestack:contacts[0].email",
        "carestack:contacts[1].email",
        "carestack:contacts[1].webhook",
    ]
    platform = load_stack(STACKS_DIR / "Pulumi.platform.yaml")
    assert [w.split(": ", 1)[0] for w in stack_warnings(platform)] == ["carestack:admin_cidr"]


def test_a_production_stack_gets_no_warning(tmp_path: Path) -> None:
    config = stack_config("studio")
    config.update(
        admin_cidr="192.168.40.0/24",
        contacts=[
            {"name": "Erik", "email": "erik@lindqvist-arkitekter.se", "phone": "+4930555010"},
            {"name": "On call", "webhook": "https://alerts.lindqvist-arkitekter.se/hooks"},
        ],
        sites=[
            {**site, "domain": domain}
            for site, domain in zip(
                config["sites"], ["www.lindqvist-arkitekter.se", "plans.lindqvist-arkitekter.se"], strict=True
            )
        ],
    )
    assert stack_warnings(parse_stack("studio", config)) == []
    path = write_catalog(
        tmp_path, lambda d: d["agency"].update(bucket_prefix="nordwerk", acme={"email": "certificates@nordwerk.de"})
    )
    assert catalog_warnings(load_catalog(path)) == []
    assert [w.split(":")[0] for w in catalog_warnings(load_catalog())] == ["agency.bucket_prefix", "agency.acme.email"]


def test_validate_warns_but_passes_and_still_fails_on_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shop = STACKS_DIR / "Pulumi.shop.yaml"
    assert main(["validate", str(shop)]) == 0
    out, err = capsys.readouterr()
    assert f"{shop}: ok (client on tier premium), 5 warning(s)" in out
    assert f"{shop}: warning: carestack:admin_cidr: 198.51.100.0/28 is in the documentation range" in err
    assert "warning: agency.bucket_prefix: 'example-agency'" in err

    broken = tmp_path / "Pulumi.broken.yaml"
    broken.write_text(shop.read_text().replace("tier: premium", "tier: platinum"))
    assert main(["validate", str(shop), str(broken)]) == 1
    assert "carestack:tier: unknown tier 'platinum'" in capsys.readouterr().err
