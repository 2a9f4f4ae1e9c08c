"""docs/stack-keys.md, generated from the schema in infra/spec.py so the reference cannot drift.

    python -m infra.stack_keys_doc           # rewrite docs/stack-keys.md
    python -m infra.stack_keys_doc --check   # exit 1 when the file is not what the schema gives

Every key of a client stack, a platform stack, the deployment settings and the
catalog's agency section, with its type, whether it is required (or its
default) and its description (the field's docstring in infra/spec.py). The
tier keys an override may set follow, as the catalog's schema has them.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from infra import spec
from infra.spec import NAMESPACE

DOC = Path(__file__).resolve().parent.parent / "docs" / "stack-keys.md"
GENERATOR = "python -m infra.stack_keys_doc"

# The named value types of the spec, by the validator they carry.
_NAMED = {
    "domain name": spec.DomainName,
    "slug: a letter, then up to 11 lower-case letters or digits": spec.Slug,
    "e-mail address": spec.Email,
    'phone number, international ("+4930123456")': spec.Phone,
    "http(s) URL": spec.WebhookUrl,
    "https:// URL": spec.HttpsUrl,
    "network in CIDR notation (not /0)": spec.Cidr,
    "IANA time zone (Europe/Berlin, UTC)": spec.TimeZone,
    'path starting with "/"': spec.PagePath,
    "duration: 30s, 5m, 2h, 3d": spec.Duration,
    "support time: 4h, 1bd (business days)": spec.SupportDuration,
    "time of day HH:MM": spec.TimeOfDay,
    "3-36 of a-z, 0-9, -": spec.BucketPrefix,
}
_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "min_length": "at least", "max_length": "at most"}


def _named(metadata: list[Any]) -> str | None:
    for name, alias in _NAMED.items():
        markers = get_args(alias)[1:]
        if any(m is marker for m in metadata for marker in markers):
            return name
    return None


def _bounds(annotation: Any, metadata: list[Any]) -> str:
    parts = []
    for item in metadata:
        for attr, word in _BOUNDS.items():
            value = getattr(item, attr, None)
            if value is not None:
                unit = "" if not attr.endswith("length") else " character(s)" if annotation is str else " item(s)"
                parts.append(f"{word} {value}{unit}")
    return f" ({', '.join(parts)})" if parts else ""


def _type_name(annotation: Any, metadata: list[Any] | None = None) -> str:
    named = _named(metadata or [])
    if named:
        return named
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        return _type_name(base, list(extra))
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        return " or ".join(_type_name(a) for a in options)
    if origin is Literal:
        return " \\| ".join(f"`{v}`" for v in get_args(annotation))
    if origin is list:
        return f"list of {_type_name(get_args(annotation)[0])}"
    if origin is dict:
        values = get_args(annotation)[1]
        return "mapping" if values is Any else f"mapping of name to {_type_name(values)}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping (keys below)"
    return {str: "text", int: "whole number", float: "number", bool: "true \\| false"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def _models_in(annotation: Any) -> list[tuple[str, type[BaseModel]]]:
    """The models nested in a field's type, with how their keys are addressed below it."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType, Annotated):
        return [m for a in get_args(annotation)[: 1 if origin is Annotated else None] for m in _models_in(a)]
    if origin is list:
        return [("[]" + suffix, m) for suffix, m in _models_in(get_args(annotation)[0])]
    if origin is dict:
        return [(".<name>" + suffix, m) for suffix, m in _models_in(get_args(annotation)[1])]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [("", annotation)]
    return []


def _required(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    default = field.get_default(call_default_factory=True)
    if default is None or default == {} or default == []:
        return "optional"
    if isinstance(default, BaseModel):  # a section whose keys all have defaults: they are listed below it
        return "optional"
    return f"default `{yaml.safe_dump(default).removesuffix(chr(10)).removesuffix('...').strip()}`"


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        kind = _type_name(field.annotation, field.metadata) + _bounds(field.annotation, field.metadata)
        # "<client id>" would read as an HTML tag where the table is rendered
        description = " ".join((field.description or "").split()).replace("<", "&lt;")
        rows.append(f"| `{key}` | {kind} | {_required(field)} | {description} |")
        for suffix, nested in _models_in(field.annotation):
            rows += _rows(nested, f"{key}{suffix}.")
    return rows


def _table(model: type[BaseModel], prefix: str) -> str:
    header = "| key | type | required | meaning |\n|---|---|---|---|\n"
    return header + "\n".join(_rows(model, prefix)) + "\n"


def render() -> str:
    ns = f"{NAMESPACE}:"
    return f"""<!-- Generated by `{GENERATOR}` from infra/spec.py; do not edit by hand. -->
# Stack keys

A stack file is a Pulumi stack configuration, `stacks/Pulumi.<stack>.yaml`,
with its settings under `config:`. `carestack validate` checks every key below
and names each problem with its key path; unknown keys are refused with the
valid ones listed. Keys of nested mappings are written with dots, list items
with `[]`.

## Client stacks

{_table(spec.ClientStack, ns)}
## The platform stack

The agency's shared hosts and standby (one per region); marked by `{ns}role: platform`.

{_table(spec.PlatformStack, ns)}
## Deployment settings

Set with `pulumi config set` (they end up in the same file) and checked by
`pulumi up` before it creates anything, not by `carestack validate`: they
belong to a deployment, not to the contract. Which of them a stack needs depends on
the stack (the meaning says when); `aws:region` is always needed (where the client's
bucket and servers live).

{_table(spec.DeploymentSettings, ns)}
## The catalog's agency section

In `infra/catalog/tiers.yaml`, beside `tiers:`; the same for all of the agency's clients.

{_table(spec.Agency, "agency.")}
## Tier keys (`{ns}overrides` and the catalog's tiers)

`{ns}overrides` takes any of these keys and merges them over the client's
tier (mappings key by key; a key set to null is removed; lists and values
replace). The catalog's tiers are written with the same keys.

{_table(spec.Tier, "")}"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=GENERATOR, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is stale, change nothing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not DOC.exists() or DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC}: stale; regenerate it with `{GENERATOR}`", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
