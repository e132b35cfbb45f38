#!/bin/bash
# Runs the docker/ lab pair where no image can be pulled, with Debian 12's own docker.io and
# docker-compose (v1), and checks that it works: the two directors elect exactly one MASTER, the
# VIP answers through it, and when the MASTER is killed (SIGKILL) the other one takes over and
# the VIP answers again.
#
#   sudo scripts/container-test.sh            # from the repository root
#
# Steps:
#   1. a local base image, debootstrap bookworm + the host's Node 20 (scripts/lib/debian-base.sh),
#      laid out like node:20-bookworm-slim;
#   2. the keepalive-ts image from docker/Dockerfile on that base (KEEPALIVE_TS_NODE_IMAGE), built
#      by docker-compose from docker/compose.yaml as it is;
#   3. stand-ins for the nginx and curl images (docker/offline/lab-tools.Dockerfile);
#   4. docker-compose up, checks, docker-compose kill of the MASTER, checks, down.
#
# Needs root, docker.io, docker-compose, debootstrap. A docker daemon already running is used
# and left running; otherwise dockerd is started here and stopped at the end.
#
# Environment: COMPOSE (default docker-compose; "docker compose" for v2), KEEP=1 leaves the lab up,
# DEBIAN_BASE_REBUILD=1 rebuilds the base image, TIMEOUT_S (default 90) bounds each wait.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. scripts/lib/debian-base.sh

COMPOSE=${COMPOSE:-docker-compose}
PROJECT=${PROJECT:-kt-container-test}
TIMEOUT_S=${TIMEOUT_S:-90}
BASE=keepalive-ts-base:bookworm
TOOLS=keepalive-ts-lab-tools:local
VIP=10.77.0.50

log() { printf '[container-test %s] %s\n' "$(date +%T)" "$*"; }
die() { log "FAIL: $*"; exit 1; }

DOCKERD_PID=""
cleanup() {
  local rc=$?
  if [ "${KEEP:-0}" != 1 ] && [ -n "${COMPOSE_UP:-}" ]; then
    log "logs of the directors (last 15 lines each)"
    compose logs --no-color --tail 15 director-a director-b 2>&1 | sed 's/^/    /' || true
    compose down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  if [ -n "$DOCKERD_PID" ]; then
    log "stopping the dockerd started here (pid $DOCKERD_PID)"
    kill "$DOCKERD_PID" 2>/dev/null || true
    wait "$DOCKERD_PID" 2>/dev/null || true
  fi
  exit $rc
}
trap cleanup EXIT

compose() {
  # shellcheck disable=SC2086
  KEEPALIVE_TS_NODE_IMAGE=$BASE KEEPALIVE_TS_NGINX_IMAGE=$TOOLS KEEPALIVE_TS_CLIENT_IMAGE=$TOOLS \
    $COMPOSE -p "$PROJECT" -f docker/compose.yaml "$@"
}

for tool in docker debootstrap ${COMPOSE%% *}; do
  command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install docker.io docker-compose debootstrap)"
done
[ "$(id -u)" = 0 ] || die "run as root (debootstrap, dockerd)"

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (log: /tmp/dockerd.log)"
  dockerd > /tmp/dockerd.log 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || die "dockerd did not come up; see /tmp/dockerd.log"
fi
log "docker $(docker version --format '{{.Server.Version}}'), $($COMPOSE version 2>/dev/null | head -1)"

t0=$(date +%s)
debian_base_image "$BASE" || die "cannot build the base image"
log "base image $BASE ready ($(( $(date +%s) - t0 )) s)"

t0=$(date +%s)
docker build -q --build-arg BASE_IMAGE="$BASE" -f docker/offline/lab-tools.Dockerfile -t "$TOOLS" docker/offline >/dev/null \
  || die "cannot build $TOOLS"
log "lab tools image $TOOLS ready ($(( $(date +%s) - t0 )) s)"

t0=$(date +%s)
compose build director-a > /tmp/container-test-build.log 2>&1 || { tail -30 /tmp/container-test-build.log; die "docker-compose build failed (log /tmp/container-test-build.log)"; }
log "keepalive-ts image built by $COMPOSE from docker/Dockerfile on $BASE ($(( $(date +%s) - t0 )) s)"

compose down -v --remove-orphans >/dev/null 2>&1 || true
COMPOSE_UP=1
compose up -d > /tmp/container-test-up.log 2>&1 || { cat /tmp/container-test-up.log; die "docker-compose up failed"; }
log "lab up: $(compose ps --services 2>/dev/null | tr '\n' ' ')"

# "MASTER" / "BACKUP" / ... of director $1's only VRRP instance, or "down" when it does not answer.
state() {
  local json
  json=$(compose exec -T "$1" keepalive-ts status --json 2>/dev/null) || { echo down; return; }
  printf '%s' "$json" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).vrrp[0].state)}catch{console.log("down")}})'
}
through_vip() { compose exec -T client curl -s --max-time 2 "http://$VIP/" 2>/dev/null | tr -d '\r\n' || true; }

# Waits until `$1` (a shell condition) holds; returns 1 after TIMEOUT_S.
wait_for() {
  local deadline=$(( $(date +%s) + TIMEOUT_S ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if eval "$1"; then return 0; fi
    sleep 1
  done
  return 1
}

elected() { A=$(state director-a); B=$(state director-b); [ "$A:$B" = MASTER:BACKUP ] || [ "$A:$B" = BACKUP:MASTER ]; }
t0=$(date +%s)
wait_for elected || die "no single MASTER after ${TIMEOUT_S} s: director-a=$A director-b=$B"
log "elected after $(( $(date +%s) - t0 )) s: director-a=$A director-b=$B"
if [ "$A" = MASTER ]; then MASTER=director-a; OTHER=director-b; else MASTER=director-b; OTHER=director-a; fi
# Checked again a few seconds later: still exactly one MASTER (no flapping, no split brain).
sleep 3
elected || die "the election did not hold: director-a=$A director-b=$B"

answer_ok() { R=$(through_vip); case "$R" in rs1|rs2) return 0 ;; *) return 1 ;; esac; }
wait_for answer_ok || die "the VIP $VIP does not answer through $MASTER (got '${R:-nothing}')"
seen=""
for _ in $(seq 1 8); do R=$(through_vip); case " $seen " in *" $R "*) ;; *) seen="$seen $R" ;; esac; done
log "VIP $VIP answers through $MASTER; real servers seen:$seen"

log "killing $MASTER (SIGKILL)"
t0=$(date +%s)
compose kill -s SIGKILL "$MASTER" >/dev/null 2>&1 || die "cannot kill $MASTER"
took_over() { S=$(state "$OTHER"); [ "$S" = MASTER ]; }
wait_for took_over || die "$OTHER did not become MASTER within ${TIMEOUT_S} s (state $S)"
wait_for answer_ok || die "the VIP does not answer through $OTHER after the takeover (got '${R:-nothing}')"
log "failed over: $OTHER is MASTER and the VIP answers ($R) $(( $(date +%s) - t0 )) s after the kill"
[ "$(state "$MASTER")" = down ] || die "$MASTER still answers after the kill"

log "PASS: the pair elected one MASTER ($MASTER) and failed over to $OTHER when it was killed"
