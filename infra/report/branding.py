"""The agency's branding for the client's report: its name, logo and accent colour, one small YAML file.

    name: Example Agency          # shown in the report's header
    logo: agency-logo.svg         # optional, beside this file: .svg, .png or .jpg, embedded (no URL)
    accent: "#1565c0"             # optional, headings and the header rule

It lives beside the stack files (`stacks/branding.yaml`, next to the agency's alerting file in spirit:
one per agency) or is named with `--branding FILE`. Errors name the file and the key.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from infra.spec import SpecError

FILE_NAME = "branding.yaml"
KEYS = ("name", "logo", "accent")
_MEDIA = {".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_LOGO_BYTES = 512 * 1024  # a logo larger than this bloats every report


class BrandingError(SpecError):
    """Every problem found in one branding file."""


@dataclass(frozen=True)
class Branding:
    name: str = ""
    logo_data_uri: str = ""
    accent: str = "#1565c0"


def branding_path(stack_file: Path) -> Path:
    return Path(stack_file).parent / FILE_NAME


def load_branding(path: Path) -> Branding:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise BrandingError(str(path), [f"can't read the file: {e.strerror}"]) from e
    except yaml.YAMLError as e:
        raise BrandingError(str(path), [f"not YAML: {e}"]) from e
    if not isinstance(data, dict):
        raise BrandingError(str(path), ["expected a mapping with name, logo, accent"])
    problems = [f"{k}: unknown key (valid: {', '.join(KEYS)})" for k in data if k not in KEYS]
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append("name: the agency's name is required (a non-empty string)")
    accent = data.get("accent", Branding.accent)
    if not isinstance(accent, str) or not _COLOUR.match(accent):
        problems.append(f'accent: expected a colour like "#1565c0", got {accent!r}')
    uri = ""
    logo = data.get("logo")
    if logo is not None:
        logo_path = path.parent / str(logo)
        media = _MEDIA.get(logo_path.suffix.lower())
        if media is None:
            problems.append(f"logo: {logo!r} must be one of {', '.join(_MEDIA)}")
        elif not logo_path.is_file():
            problems.append(f"logo: {logo_path} does not exist (paths are relative to the branding file)")
        elif logo_path.stat().st_size > MAX_LOGO_BYTES:
            problems.append(f"logo: {logo_path} is over {MAX_LOGO_BYTES // 1024} KiB")
        else:
            uri = f"data:{media};base64," + base64.b64encode(logo_path.read_bytes()).decode()
    if problems:
        raise BrandingError(str(path), problems)
    return Branding(str(name).strip(), uri, str(accent))
