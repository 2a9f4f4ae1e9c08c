"""Code where no code belongs: PHP or other files a server would run, under upload directories."""

from __future__ import annotations

from .base import EXECUTABLE_SUFFIXES, SERVER_CONFIG_NAMES, Baseline, Finding, ScanSite

NAME = "uploads"


def _runs(rel: str) -> bool:
    # Double extensions (shell.php.jpg) are run as PHP by some server configurations: any .php part counts.
    name = rel.rsplit("/", 1)[-1].lower()
    parts = name.split(".")[1:]
    return name in SERVER_CONFIG_NAMES or any(f".{p}" in EXECUTABLE_SUFFIXES for p in parts)


class CodeInUploads:
    name = NAME

    def run(self, site: ScanSite, baseline: Baseline | None) -> list[Finding]:
        prefixes = tuple(d.strip("/") + "/" for d in site.upload_dirs)
        return [
            Finding(NAME, "critical", f"executable file in an upload directory: {rel}", rel)
            for rel in sorted(site.files)
            if rel.startswith(prefixes) and _runs(rel)
        ]
