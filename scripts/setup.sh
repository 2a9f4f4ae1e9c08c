#!/usr/bin/env bash
# Installs everything carestack needs on a fresh Debian 12 machine, as root:
# system packages (apt), the Python environment at .venv (pip), and Uptime Kuma (npm).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (the lab boots servers with systemd-nspawn and manages network namespaces)" >&2
  exit 1
fi

APT_PACKAGES=(
  # the lab: servers, their network, their apt proxy
  systemd-container debootstrap iproute2 iptables apt-cacher-ng openssh-client
  # the lab's certificate authority: Let's Encrypt's test CA and its DNS (pebble-challtestsrv)
  pebble openssl
  # the agent's real parts, used by its tests on this machine; `restic mount` (a live lock
  # holder in the robustness tests) needs fusermount from fuse3
  restic mariadb-server mariadb-client python3-pexpect fuse3
  # modprobe (the lab loads overlayfs when the kernel has it as a module)
  kmod
  # the security scan's pattern check, and a real WordPress (with the lab's theme) its tests scan
  yara wordpress wordpress-theme-twentytwentythree
  # PHP itself judges the import's serialize()-aware rewrite in its tests
  php-cli
  # Uptime Kuma from npm: its sqlite binding is compiled here (no prebuilt download)
  build-essential
  # a real headless browser: the SLA document (and reports) are printed and looked at in it
  chromium
  # tooling
  python3-venv ca-certificates curl git make rsync zip unzip
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: apt install ${missing[*]}"
  apt-get update -q
  # Services must not start on install: the lab and the tests start their own instances.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Every lab server's systemd takes inotify instances from the one user (root) the whole lab runs as:
# Debian's default of 128 runs out with a few labs or a fleet. Raised only, never lowered.
want=1024
have=$(sysctl -n fs.inotify.max_user_instances 2>/dev/null || echo "$want")
if [ "$have" -lt "$want" ]; then
  echo "fs.inotify.max_user_instances = $want" > /etc/sysctl.d/60-carestack-lab.conf
  sysctl -q -w fs.inotify.max_user_instances="$want" || echo "setup: could not raise fs.inotify.max_user_instances (now $have); large labs may fail to boot" >&2
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.carestack-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ agent/pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[dev,lab]" -e ./agent
  touch "$stamp"
fi

.venv/bin/carestack lab install
echo "setup: done"
