"""Exit codes of carestack-agent (systemd and the update flow act on them)."""

OK = 0
FAILED = 1  # the job ran and failed (details in the journal and the heartbeat)
USAGE = 2  # bad command line (argparse)
AUTH = 3  # wrong repository password or S3 keys: retrying will not help
NOT_INITIALIZED = 4  # no repository yet: run `carestack-agent init SITE`
TIMEOUT = 5  # killed by the watchdog at the job's deadline
ROLLED_BACK = 6  # update: it broke the site and was rolled back; the site runs the previous versions
REFUSED = 7  # update: the site already failed its probes; drill: the site is live on this host; nothing changed
FENCED = 8  # the site is held by another server (a failover lease): this server must not run its jobs
UNAVAILABLE = 69  # EX_UNAVAILABLE: repository unreachable after all retries
BUSY = 75  # EX_TEMPFAIL: another job holds the site's lock (use --wait)
CONFIG = 78  # EX_CONFIG: invalid configuration or secret files
