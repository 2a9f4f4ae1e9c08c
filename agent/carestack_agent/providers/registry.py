"""The update providers by the name the plan gives them (`updates.providers`)."""

from __future__ import annotations

from ..jobs import Context
from .apt import AptProvider
from .base import Provider
from .release import ReleaseProvider
from .wordpress import WordPressProvider

PROVIDERS: dict[str, type[AptProvider] | type[WordPressProvider] | type[ReleaseProvider]] = {
    "apt": AptProvider,
    "wordpress": WordPressProvider,
    "release": ReleaseProvider,
}


def make_provider(name: str, ctx: Context) -> Provider:
    """The provider `name` for this run (the config's checks allow only the names above)."""
    provider: Provider = PROVIDERS[name](ctx)
    return provider
