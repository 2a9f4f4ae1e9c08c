"""carestack-agent: backups, restores, integrity checks and heartbeats for the sites on one server."""

__version__ = "0.1.0"
