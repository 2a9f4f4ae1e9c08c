"""Pulumi components that realize a CarePlan on AWS.

bucket.BackupBucket      one client's backup bucket and the restic credentials scoped to it
server.Server            a Debian 12 EC2 instance with an elastic address (IMDSv2, encrypted root)
server.WebSecurityGroup  80/443 from anywhere, 22 from the agency's admin range
hosting.DedicatedHost    a client's own server (dedicated tiers)
hosting.SharedHostPool   the platform stack's shared hosts and the standby
hosting.SharedPlacement  a shared-tier client's place on a host of the platform's pool
onboarding.Onboarding    the client's monitors and the Ansible run, both fed from the CarePlan
"""
