"""init SITE: create the restic repository if it does not exist (idempotent; Ansible calls it)."""

from __future__ import annotations

from .. import restic_commands
from ..config import Config
from ..jobs import Context, JobResult, Settle, run_job
from ..restic import ResticError

INIT_TIMEOUT = 300


def repository_exists(ctx: Context) -> bool:
    """Whether the site's repository is initialized (read with the configured password)."""

    def exists() -> bool:
        try:
            ctx.restic.run(restic_commands.cat_config(), ctx.deadline, what="cat config")
            return True
        except ResticError as e:
            if e.kind == "not_initialized":
                return False
            raise

    return ctx.retry(exists, "init")


def do_init(ctx: Context) -> str:
    if repository_exists(ctx):
        ctx.figures["created"] = False
        return f"repository {ctx.site.repository} already initialized"
    ctx.retry(lambda: ctx.restic.run(restic_commands.init(), ctx.deadline, what="init"), "init")
    ctx.figures["created"] = True
    return f"repository {ctx.site.repository} initialized"


def init(config: Config, site_id: str, *, wait: bool = True, settle: Settle | None = None) -> JobResult:
    return run_job(config, site_id, "init", do_init, timeout=INIT_TIMEOUT, wait=wait, push=False, settle=settle)
