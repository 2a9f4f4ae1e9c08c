"""The lab: the CarePlan realized on this machine with real parts.

Servers are Debian systems booted with systemd-nspawn (one overlay on a cached
base image each, one network namespace each, on a bridge that reaches nothing
outside the lab), an apt proxy for them, a moto S3 server with IAM enforcement
(on loopback; the servers reach its S3 API only, through `s3_gateway`),
Uptime Kuma and a webhook receiver standing in for the alert gateway.
Everything lives under one state directory (`config.LabConfig.state_dir`).

Entry points: `up.lab_up`, `down.lab_down`, `status.lab_status`; tests and
other engineers read the running lab through `state.LabState`.
"""
