"""The one error type the lab raises for anything a user can act on."""

from __future__ import annotations


class LabError(RuntimeError):
    """A failure with a message that says what went wrong and what to do."""
