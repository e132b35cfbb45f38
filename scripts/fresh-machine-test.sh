#!/usr/bin/env bash
# Runs the README's first-run commands on a fresh Debian 12 machine: a container built from a local
# `debootstrap bookworm` (default variant, what an installer leaves) plus Node 20 and npm, nothing
# else. Each command runs first and on its own, as root, in its own new container, from its own
# `git clone` of this repository placed under /root (a 0700 directory):
#   npm run demo
#   KEEPALIVE_TS_REQUIRE_NETNS=1 npm test     (namespace and IPv6 tests must run, not skip)
# and the script reports exit status, duration and ava's pass/fail/skip counts of each.
#
# What comes from the host, because this sandbox has no image registry and no direct internet:
# - Node 20 and npm (Debian 12's nodejs is 18), copied from the host's installation;
# - apt's Acquire:: settings not owned by a Debian package (proxy, Check-Valid-Until…), the host's
#   CA bundle (the egress proxy's CA) for npm and Node, and npm's registry/proxy settings;
# - node-gyp's header cache (~/.cache/node-gyp/<node version>), filled from the host's
#   /usr/include/node, since node-gyp cannot download the headers from nodejs.org here.
# The container gets the capabilities the labs need (NET_ADMIN, NET_RAW, SYS_ADMIN), a writable
# /proc/sys (systempaths=unconfined: per-namespace sysctls), no seccomp filter (unshare/setns/mount),
# an init (--init) and, like a machine, the host's initial network and PID namespaces (IPv6 on, the
# process events connector available); --privileged is refused here. keepalived's sample configs
# are placed beside the clone (../shared/keepalived-samples), where the import tests read them.
#
# Usage (as root, from the repository): scripts/fresh-machine-test.sh [--rebuild] [--keep] [--no-ipv6] [demo] [test]
#   --rebuild   debootstrap again (the base image is otherwise reused)
#   --keep      keep the containers (docker ps -a) for inspection
#   --no-ipv6   run in Docker's default bridged network namespace with IPv6 disabled, without
#               KEEPALIVE_TS_REQUIRE_NETNS: shows that ::1 / initial-namespace tests skip, not hang
#   demo/test   which commands to run (default: both, demo first)
# Work files, logs and the base image's debootstrap log: $KT_FRESH_WORK (default /var/tmp/kt-fresh).
# A command still running after $KT_FRESH_TIMEOUT_S seconds (default 2700) is killed and fails.
# Host packages it needs: docker.io and debootstrap (installed here if missing; not test packages).
# dockerd is started (logs in the work directory) and stopped again unless one already runs.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${KT_FRESH_WORK:-/var/tmp/kt-fresh}"
MIRROR="${KT_FRESH_MIRROR:-http://deb.debian.org/debian}"
limit="${KT_FRESH_TIMEOUT_S:-2700}" # per command
BASE_IMAGE=kt-fresh-debootstrap:bookworm
IMAGE=kt-fresh-node:bookworm
rebuild=0 keep=0 ipv6=1 cmds=()
for a in "$@"; do
  case "$a" in
    --rebuild) rebuild=1 ;;
    --keep) keep=1 ;;
    --no-ipv6) ipv6=0 ;;
    demo | test) cmds+=("$a") ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown argument: $a (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#cmds[@]} -gt 0 ] || cmds=(demo test)

say() { printf '[fresh] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, dockerd)"
mkdir -p "$WORK"

# ---------------------------------------------------------------------------------------------
# Host tools

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v dockerd >/dev/null || need+=(docker.io)
if [ ${#need[@]} -gt 0 ]; then
  say "installing on the host: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2
fi

started_dockerd=""
cleanup() {
  if [ -n "$started_dockerd" ]; then
    say "stopping the dockerd this script started (pid $started_dockerd)"
    kill "$started_dockerd" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$started_dockerd" 2>/dev/null || break; sleep 0.2; done
  fi
}
trap cleanup EXIT
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd (log: $WORK/dockerd.log)"
  dockerd >"$WORK/dockerd.log" 2>&1 &
  started_dockerd=$!
  for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || die "dockerd did not come up; see $WORK/dockerd.log"
fi

# ---------------------------------------------------------------------------------------------
# Base image: debootstrap bookworm, default variant

if [ "$rebuild" -eq 1 ]; then docker rmi -f "$IMAGE" "$BASE_IMAGE" >/dev/null 2>&1 || true; fi
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  rootfs="$WORK/rootfs"
  rm -rf "$rootfs"
  say "debootstrap bookworm (default variant) from $MIRROR (log: $WORK/debootstrap.log)"
  t0=$(date +%s)
  debootstrap bookworm "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
  say "debootstrap took $(( $(date +%s) - t0 )) s; importing as $BASE_IMAGE"
  tar -C "$rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  docker rmi -f "$IMAGE" >/dev/null 2>&1 || true
fi

# ---------------------------------------------------------------------------------------------
# Image: the base plus Node 20, npm and the host's network settings

node_bin="$(command -v node)"
node_version="$(node -p process.versions.node)"
npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")" # …/node_modules/npm
[ -f "$npm_dir/package.json" ] || die "cannot find npm's directory (got $npm_dir)"
if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  say "building $IMAGE: Node $node_version and npm $(npm --version) from the host, plus its proxy/CA settings"
  ctx="$WORK/overlay"
  rm -rf "$ctx"
  mkdir -p "$ctx/usr/bin" "$ctx/usr/lib/node_modules" "$ctx/etc/apt/apt.conf.d" "$ctx/usr/local/share/kt-host-ca" \
    "$ctx/root/.cache/node-gyp/$node_version/include"
  cp "$node_bin" "$ctx/usr/bin/node"
  cp -a "$npm_dir" "$ctx/usr/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/usr/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/usr/bin/npx"
  # apt: Acquire:: settings from files no Debian package owns (this network's, not Debian's).
  for f in /etc/apt/apt.conf.d/*; do
    [ -f "$f" ] || continue
    grep -q 'Acquire::' "$f" || continue
    dpkg -S "$f" >/dev/null 2>&1 && continue
    cp "$f" "$ctx/etc/apt/apt.conf.d/"
    say "  apt setting carried in: $f"
  done
  apt-config dump | grep -iE '^Acquire::(http|https|ftp)::Proxy' | sed 's/$/;/' >"$ctx/etc/apt/apt.conf.d/99host-proxy" || true
  [ -s "$ctx/etc/apt/apt.conf.d/99host-proxy" ] || rm -f "$ctx/etc/apt/apt.conf.d/99host-proxy"
  # CA bundle (includes the egress proxy's CA), at a path no package owns.
  ca_src="${NODE_EXTRA_CA_CERTS:-}"
  [ -n "$ca_src" ] && [ -f "$ca_src" ] || ca_src="$(npm config get cafile 2>/dev/null || true)"
  [ -n "$ca_src" ] && [ "$ca_src" != null ] && [ -f "$ca_src" ] || ca_src=/etc/ssl/certs/ca-certificates.crt
  cp "$ca_src" "$ctx/usr/local/share/kt-host-ca/ca-bundle.crt"
  # npm: registry, proxies, CA.
  {
    echo "cafile=/usr/local/share/kt-host-ca/ca-bundle.crt"
    for k in registry proxy https-proxy noproxy strict-ssl; do
      v="$(npm config get "$k" 2>/dev/null || true)"
      case "$v" in "" | null | undefined) ;; *) echo "$k=$v" ;; esac
    done
  } >"$ctx/root/.npmrc"
  # node-gyp's header cache for this Node version (what it would download from nodejs.org).
  cp -a /usr/include/node "$ctx/root/.cache/node-gyp/$node_version/include/node"
  gyp_install_version="$(node -p "require('$npm_dir/node_modules/node-gyp/package.json').installVersion")"
  echo "$gyp_install_version" >"$ctx/root/.cache/node-gyp/$node_version/installVersion"

  cid="$(docker create "$BASE_IMAGE" /bin/true)"
  tar -C "$ctx" -c . | docker cp - "$cid:/"
  env_changes=()
  for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [ -n "${!v:-}" ] && env_changes+=(--change "ENV $v=${!v}")
  done
  docker commit \
    --change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/kt-host-ca/ca-bundle.crt' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'WORKDIR /root' \
    "${env_changes[@]}" "$cid" "$IMAGE" >/dev/null
  docker rm "$cid" >/dev/null
  rm -rf "$ctx"
fi

# ---------------------------------------------------------------------------------------------
# The runs

run_flags=(
  --init # an init that reaps orphans, as on a real machine (npm as PID 1 would leave zombies)
  --cap-add NET_ADMIN --cap-add NET_RAW --cap-add SYS_ADMIN
  --security-opt seccomp=unconfined --security-opt systempaths=unconfined
  --tmpfs /tmp:exec,mode=1777
)
if [ "$ipv6" -eq 1 ]; then
  # Like a machine: the initial network and PID namespaces (the kernel's process events connector
  # exists only there), IPv6 on, everything else — filesystem, packages, /run/netns — the container's.
  run_flags+=(--network host --pid host)
  require_netns=1
else
  # Docker's default: a bridged network namespace of the container's own, IPv6 disabled in it.
  # Tests that need ::1 or the initial namespace then skip with their reason (they would fail
  # under KEEPALIVE_TS_REQUIRE_NETNS=1, which is therefore not set): shows they skip, not hang.
  run_flags+=(--sysctl net.ipv6.conf.all.disable_ipv6=1 --sysctl net.ipv6.conf.default.disable_ipv6=1)
  require_netns=0
fi
# Tests read keepalived's samples from ../shared/keepalived-samples (or ../../shared: a worktree).
samples=""
for d in "$REPO/../shared/keepalived-samples" "$REPO/../../shared/keepalived-samples"; do
  [ -d "$d" ] && { samples="$d"; break; }
done
[ -n "$samples" ] || say "warning: no shared/keepalived-samples beside $REPO: the import sample tests will fail"

declare -A result
for cmd in "${cmds[@]}"; do
  stamp="$(date +%Y%m%d-%H%M%S)"
  clone="$WORK/clone-$cmd-$stamp"
  log="$WORK/$cmd-$stamp.log"
  git clone --quiet "$REPO" "$clone"
  commit="$(git -C "$clone" rev-parse --short HEAD)"
  say "$cmd: git clone $REPO ($commit, $(git -C "$REPO" rev-parse --abbrev-ref HEAD))"
  case "$cmd" in
    demo) script='cd /root/keepalive-ts && exec npm run demo' ;;
    test) script="cd /root/keepalive-ts && KEEPALIVE_TS_REQUIRE_NETNS=$require_netns exec npm test" ;;
  esac
  name="kt-fresh-$cmd-$$"
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker create --name "$name" "${run_flags[@]}" "$IMAGE" bash -c "$script" >/dev/null
  tar -C "$clone" --transform 's,^\.,keepalive-ts,' -c . | docker cp - "$name:/root" || die "docker cp into $name failed"
  if [ -n "$samples" ]; then
    tar -C "$samples" --transform 's,^\.,shared/keepalived-samples,' -c . | docker cp - "$name:/root" || die "docker cp of the samples failed"
  fi
  rm -rf "$clone"
  say "$cmd: running in $name (log: $log)"
  t0=$(date +%s)
  set +e
  timeout "$limit" docker start -a "$name" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  if [ "$status" -eq 124 ]; then
    say "$cmd: still running after $limit s: killing the container"
    docker kill "$name" >/dev/null 2>&1 || true
  fi
  set -e
  secs=$(( $(date +%s) - t0 ))
  plain="$(sed 's/\x1b\[[0-9;]*m//g' "$log")"
  counts=""
  if [ "$cmd" = test ]; then
    passed=$(grep -cE '^\s*✔ ' <<<"$plain" || true)
    failed=$(grep -cE '^\s*✘ ' <<<"$plain" || true)
    skipped=$(grep -Eo '[0-9]+ tests? skipped' <<<"$plain" | tail -n 1 | grep -Eo '^[0-9]+' || echo 0)
    counts=", ava: $passed passed, $failed failed, $skipped skipped"
  fi
  result[$cmd]="exit $status after ${secs} s$counts (commit $commit, log: $log)"
  say "$cmd: ${result[$cmd]}"
  if [ "$keep" -eq 0 ]; then docker rm -f "$name" >/dev/null; fi
done

say "summary (image $IMAGE, $([ "$ipv6" -eq 1 ] && echo 'host network and PID namespaces' || echo 'bridged network, IPv6 off')):"
rc=0
for cmd in "${cmds[@]}"; do
  say "  npm ${cmd/demo/run demo}: ${result[$cmd]}"
  case "${result[$cmd]}" in "exit 0 "*) ;; *) rc=1 ;; esac
done
exit "$rc"
