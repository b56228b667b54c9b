#!/usr/bin/env bash
# Turns a fresh host (Ubuntu 24.04, Debian 12 or Amazon Linux 2023) into an fta host:
#   1. Docker Engine and its compose plugin (Docker's own packages: Debian's 20.10 lets
#      containers of internal networks resolve outside names and does not block io_uring);
#   2. /etc/docker/daemon.json: live-restore (containers outlive a daemon restart), log
#      rotation, Docker's own address pools outside the VPC, no inter-container traffic on the
#      default bridge, no-new-privileges by default, no userland proxy, overlay2, the systemd
#      cgroup driver (keys already there and not ours are kept);
#   3. systemd units: the host firewall (deploy/host-firewall.sh, applied again whenever Docker
#      starts), the tenant disk helper (before Docker: it mounts the tenants' disks), and the
#      stack itself (scripts/up.sh at boot, scripts/down.sh at shutdown);
#   4. .env with generated secrets (scripts/gen-env.sh: an existing one is kept);
#   5. checks: cgroup v2, and on EC2 that the metadata service requires tokens (IMDSv2).
# Idempotent: a second run changes nothing and says so.
#
# usage: sudo deploy/install.sh [--root DIR] [--no-packages] [--no-start]
#   --root DIR     write the host's files under DIR instead of / (a throw-away root, to review
#                  what it writes); implies --no-packages and --no-start
#   --no-packages  leave packages as they are (Docker Engine and compose already installed)
#   --no-start     write the files, but neither reload systemd nor start anything
# env:
#   FTA_DOCKER_ADDRESS_POOL  Docker's pool for networks made without a subnet, cut in /24s
#                            (default 10.224.0.0/12); pick one outside the VPC's CIDR
#   FTA_TENANT_DISK_ROOT, FTA_TENANT_DISK_RUN_DIR  as in .env (defaults as there)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
root=""
packages=1
start=1
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root=${2:?--root needs a directory}; packages=0; start=0; shift 2 ;;
    --no-packages) packages=0; shift ;;
    --no-start) start=0; shift ;;
    *) echo "usage: $0 [--root DIR] [--no-packages] [--no-start]" >&2; exit 2 ;;
  esac
done
if [ -n "$root" ]; then
  mkdir -p "$root"
  root=$(cd "$root" && pwd)
elif [ "$(id -u)" != 0 ]; then
  echo "install: run as root (it writes /etc and installs packages)" >&2
  exit 2
fi

pool=${FTA_DOCKER_ADDRESS_POOL:-10.224.0.0/12}
disk_root=${FTA_TENANT_DISK_ROOT:-/var/lib/fta/tenant-disks}
disk_run=${FTA_TENANT_DISK_RUN_DIR:-/run/fta-tenant-disk}
if ! [[ $pool =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$ ]]; then
  echo "install: FTA_DOCKER_ADDRESS_POOL must be an IPv4 CIDR, such as 10.224.0.0/12" >&2
  exit 2
fi
for path in "$repo" "$disk_root" "$disk_run"; do
  if ! [[ $path =~ ^/[A-Za-z0-9_./-]+$ ]]; then
    echo "install: $path: only plain absolute paths are supported" >&2
    exit 2
  fi
done

changed=0
# put MODE DEST: standard input becomes DEST (under the root) when it differs.
put() {
  local mode=$1 dest=$root$2 new
  new=$(mktemp)
  cat >"$new"
  if [ -f "$dest" ] && cmp -s "$new" "$dest"; then
    rm -f "$new"
    echo "unchanged $2"
    return
  fi
  mkdir -p "$(dirname "$dest")"
  chmod "$mode" "$new"
  mv "$new" "$dest"
  changed=1
  echo "wrote     $2"
}

# 1. Packages.
install_docker() {
  # shellcheck source=/dev/null
  . /etc/os-release
  case "${ID:-}" in
    debian | ubuntu)
      if ! docker compose version >/dev/null 2>&1; then
        apt-get update
        apt-get install -y ca-certificates curl gnupg iptables e2fsprogs util-linux python3 \
          python3-boto3
        install -m 0755 -d /etc/apt/keyrings
        curl -fsSL "https://download.docker.com/linux/$ID/gpg" -o /etc/apt/keyrings/docker.asc
        echo "deb [signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/$ID $VERSION_CODENAME stable" \
          >/etc/apt/sources.list.d/docker.list
        apt-get update
        apt-get install -y docker-ce docker-ce-cli containerd.io docker-compose-plugin
        changed=1
      fi
      ;;
    amzn)
      if ! docker compose version >/dev/null 2>&1; then
        dnf install -y docker iptables-nft e2fsprogs util-linux python3 python3-boto3
        # Amazon Linux packages the engine but not the compose plugin: Docker's release.
        install -m 0755 -d /usr/libexec/docker/cli-plugins
        curl -fsSL "https://github.com/docker/compose/releases/latest/download/docker-compose-linux-$(uname -m)" \
          -o /usr/libexec/docker/cli-plugins/docker-compose
        chmod 0755 /usr/libexec/docker/cli-plugins/docker-compose
        changed=1
      fi
      ;;
    *)
      echo "install: ${PRETTY_NAME:-this system} is not supported (Ubuntu 24.04, Debian 12, Amazon Linux 2023)" >&2
      exit 1
      ;;
  esac
}
if [ "$packages" = 1 ]; then install_docker; fi

# 2. The Docker daemon's settings, merged into what is there.
daemon_json() {
  python3 - "$root/etc/docker/daemon.json" "$pool" <<'EOF'
import json, pathlib, sys
path, pool = pathlib.Path(sys.argv[1]), sys.argv[2]
current = json.loads(path.read_text()) if path.exists() and path.read_text().strip() else {}
current.update({
    "live-restore": True,
    "log-driver": "json-file",
    "log-opts": {"max-size": "10m", "max-file": "3"},
    "default-address-pools": [{"base": pool, "size": 24}],
    "icc": False,
    "no-new-privileges": True,
    "userland-proxy": False,
    "storage-driver": "overlay2",
    "exec-opts": ["native.cgroupdriver=systemd"],
})
print(json.dumps(current, indent=2, sort_keys=True))
EOF
}
daemon_json | put 0644 /etc/docker/daemon.json
daemon_changed=$changed

# 3. systemd units.
put 0644 /etc/systemd/system/fta-firewall.service <<EOF
# Written by deploy/install.sh. The host firewall for tenant networks (deploy/host-firewall.sh):
# applied after Docker starts, again at each of its restarts.
[Unit]
Description=fta host firewall for tenant networks
After=docker.service
PartOf=docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/env bash $repo/deploy/host-firewall.sh apply
ExecStop=/usr/bin/env bash $repo/deploy/host-firewall.sh remove

[Install]
WantedBy=docker.service
EOF

sed -e "s|/opt/fta/src|$repo/src|" \
  -e "s|--root /var/lib/fta/tenant-disks|--root $disk_root|" \
  -e "s|--socket /run/fta-tenant-disk/helper.sock|--socket $disk_run/helper.sock|" \
  -e "s|^RuntimeDirectory=fta-tenant-disk|RuntimeDirectory=${disk_run#/run/}|" \
  "$repo/deploy/fta-tenant-disk.service" | put 0644 /etc/systemd/system/fta-tenant-disk.service

put 0644 /etc/systemd/system/fta.service <<EOF
# Written by deploy/install.sh. The fta stack (Docker Compose), booted with the host.
[Unit]
Description=fta stack
Requires=docker.service fta-tenant-disk.service
After=docker.service fta-tenant-disk.service fta-firewall.service network-online.target
Wants=network-online.target fta-firewall.service

[Service]
Type=oneshot
RemainAfterExit=yes
WorkingDirectory=$repo
ExecStart=/usr/bin/env bash $repo/scripts/up.sh
ExecStop=/usr/bin/env bash $repo/scripts/down.sh
TimeoutStartSec=1200

[Install]
WantedBy=multi-user.target
EOF

# 4. .env: generated once, completed with settings added since, never overwritten.
env_file=$root$repo/.env
mkdir -p "$(dirname "$env_file")"
before=$(sha256sum "$env_file" 2>/dev/null || true)
bash "$repo/scripts/gen-env.sh" "$env_file" 2>/dev/null
if [ "$before" != "$(sha256sum "$env_file")" ]; then
  changed=1
  echo "wrote     $repo/.env"
else
  echo "unchanged $repo/.env"
fi

# 5. Checks.
if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
  echo "install: this host runs cgroup v1; fta needs cgroup v2: boot with" >&2
  echo "  systemd.unified_cgroup_hierarchy=1 on the kernel command line" >&2
  [ -n "$root" ] || exit 1
fi
if [ -z "$root" ]; then
  # IMDSv2: a request without a token must be refused (tokens required); the hop limit of 1
  # keeps the token away from containers. Asked with a short timeout: not on EC2, no answer.
  if curl -fsS -m 2 -o /dev/null http://169.254.169.254/latest/meta-data/ 2>/dev/null; then
    echo "install: the EC2 metadata service answers without a token (IMDSv1). Require tokens:" >&2
    echo "  aws ec2 modify-instance-metadata-options --instance-id ID \\" >&2
    echo "    --http-tokens required --http-put-response-hop-limit 1" >&2
  fi
fi

if [ "$start" = 1 ]; then
  systemctl daemon-reload
  systemctl enable fta-tenant-disk.service fta-firewall.service fta.service
  systemctl start fta-tenant-disk.service
  if [ "$daemon_changed" = 1 ]; then
    # live-restore keeps running containers through the restart (once it is on).
    systemctl restart docker.service
  fi
  systemctl start fta-firewall.service fta.service
fi
if [ "$changed" = 0 ]; then echo "install: nothing changed"; fi
