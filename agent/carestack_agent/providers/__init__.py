"""Update providers: what `update SITE` may change, one module per kind of software.

- apt: Debian packages of the host (the plan's apt_policy; held packages stay);
  rolled back by reinstalling the previous .debs, kept before upgrading.
- wordpress: plugins and themes through WordPress's own upgrader (the plan's
  wordpress_policy); rolled back with the pre-update snapshot.
- release: the site's own code from an artifact the agency drops on the host;
  rolled back with the pre-update snapshot.
"""
