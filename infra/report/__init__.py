"""`carestack report`: the monthly SLA compliance report of a client, from what happened only.

period (the range in the client's zone) -> accounting modules (uptime, incidents, backups, evidence,
credits; support from infra/support_stats) -> build (the JSON document, the source of every format)
-> render_md / render_html (+ charts) -> pdf. Sources (Kuma history, restic snapshots, evidence records)
are read in `sources`; where one is missing the section says so and never fills the gap.
"""
