#!/usr/bin/env bash
# Captures real BIRD 2 `birdc` answers as fixtures for the status parser
# (test/unit/announce-bird-status.test.ts).
#
# Two network namespaces cabled to a bridge in a third: a "router" BIRD and a "director" BIRD configured
# the way src/announce/bird-config.ts generates it (kernel-table learn, BFD, one BGP protocol per
# peer named kt_peer_<address>, epoch time format). Three peers on the director: an IPv4 one with
# BFD and a TCP MD5 password, an IPv6 one without BFD, and one whose neighbour does not exist.
#
# Output in test/fixtures/bird/ (or $OUT):
#   protocols-established.txt  `show protocols all`, sessions up, one route exported per family
#   protocols-withdrawn.txt    the same after the host routes were deleted (0 exported)
#   protocols-admin-down.txt   after the router's BIRD shut down (Cease notification)
#   protocols-bfd-down.txt     after the router's BIRD was killed and its switch port set down (BFD)
#   protocols-link-down.txt    after the director's own switch port went down (no carrier)
#   protocols-disabled.txt     after `birdc disable` of the IPv4 peer
#   bfd-sessions.txt           `show bfd sessions`, session up
#   status.txt                 `show status`
#
# Requirements: root, iproute2, bird2 (tested with 2.0.12). Everything (namespaces, processes,
# temp files) is removed on exit, even on failure. Traffic stays inside the two namespaces.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/test/fixtures/bird}
NS_R="kb-$$-r"
NS_D="kb-$$-d"
NS_S="kb-$$-s"
WORK=$(mktemp -d /tmp/kb-$$-bird.XXXXXX)

cleanup() {
  set +e
  for p in "$WORK"/*.pid; do [ -e "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null; done
  ip netns del "$NS_R" 2>/dev/null
  ip netns del "$NS_D" 2>/dev/null
  ip netns del "$NS_S" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

ip netns add "$NS_R"
ip netns add "$NS_D"
ip netns add "$NS_S"
ip -n "$NS_S" link add br0 type bridge stp_state 0 forward_delay 0
ip -n "$NS_S" link set br0 up
ip -n "$NS_S" link add name port-r type veth peer name eth0 netns "$NS_R"
ip -n "$NS_S" link add name port-d type veth peer name eth0 netns "$NS_D"
ip -n "$NS_S" link set port-r master br0 up
ip -n "$NS_S" link set port-d master br0 up
ip -n "$NS_R" addr add 10.88.0.1/24 dev eth0
ip -n "$NS_D" addr add 10.88.0.11/24 dev eth0
ip -n "$NS_R" addr add fd88::1/64 dev eth0 nodad
ip -n "$NS_D" addr add fd88::11/64 dev eth0 nodad
for ns in "$NS_R" "$NS_D"; do
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.eth0.keep_addr_on_down=1
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
done

cat > "$WORK/router.conf" <<'EOF'
router id 10.88.0.1;
log stderr all;
protocol device { scan time 10; }
protocol kernel { merge paths on; ipv4 { import none; export all; }; }
protocol kernel { merge paths on; ipv6 { import none; export all; }; }
protocol bfd { interface "eth0" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }
protocol bgp d1 { local as 65000; neighbor 10.88.0.11 as 65001; hold time 9; bfd on; password "s3cret";
  connect delay time 1; connect retry time 2; error wait time 1,10;
  ipv4 { import where net ~ [ 10.99.0.0/24{32,32} ]; export none; }; }
protocol bgp d1v6 { local as 65000; neighbor fd88::11 as 65001; hold time 9;
  connect delay time 1; connect retry time 2; error wait time 1,10;
  ipv6 { import where net ~ [ fd99::/64{128,128} ]; export none; }; }
EOF

cat > "$WORK/director.conf" <<'EOF'
log stderr { info, remote, warning, error, auth, fatal, bug };
timeformat protocol "%s.%3f";
router id 10.88.0.11;
protocol device kt_device { scan time 10; }
protocol kernel kt_vips4 { kernel table 100; learn; scan time 10; ipv4 { import where krt_source = 200 && net.len = 32; export none; }; }
protocol kernel kt_vips6 { kernel table 100; learn; scan time 10; ipv6 { import where krt_source = 200 && net.len = 128; export none; }; }
protocol bfd kt_bfd { interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }
filter kt_export4 { if proto != "kt_vips4" || net.len != 32 then reject; accept; }
filter kt_export6 { if proto != "kt_vips6" || net.len != 128 then reject; accept; }
protocol bgp kt_peer_10_88_0_1 { local as 65001; neighbor 10.88.0.1 as 65000; hold time 9; keepalive time 3;
  connect delay time 1; connect retry time 2; error wait time 1, 10; graceful restart off; long lived graceful restart off;
  bfd on; password "s3cret"; ipv4 { import none; export filter kt_export4; }; }
protocol bgp kt_peer_fd88__1 { local as 65001; neighbor fd88::1 as 65000; hold time 9; keepalive time 3;
  connect delay time 1; connect retry time 2; error wait time 1, 10; graceful restart off; long lived graceful restart off;
  ipv6 { import none; export filter kt_export6; }; }
protocol bgp kt_peer_10_88_0_99 { local as 65001; neighbor 10.88.0.99 as 65000; hold time 9; keepalive time 3;
  connect delay time 1; connect retry time 2; error wait time 1, 10; graceful restart off; long lived graceful restart off;
  ipv4 { import none; export filter kt_export4; }; }
EOF

start_bird() { # ns name
  ip netns exec "$1" bird -f -c "$WORK/$2.conf" -s "$WORK/$2.ctl" -P "$WORK/$2.pid" >"$WORK/$2.log" 2>&1 &
  for _ in $(seq 50); do [ -S "$WORK/$2.ctl" ] && return 0; sleep 0.1; done
  echo "bird $2 did not start"; cat "$WORK/$2.log"; exit 1
}
dbirdc() { birdc -s "$WORK/director.ctl" "$@" | sed '1{/^BIRD .* ready\.$/d}'; }
wait_for() { # description, command...
  local what=$1; shift
  for _ in $(seq 100); do "$@" && return 0; sleep 0.1; done
  echo "timed out: $what"; dbirdc show protocols; exit 1
}
established() { [ "$(dbirdc show protocols | grep -c Established)" = 2 ]; }
exported() { dbirdc show protocols all kt_peer_fd88__1 | grep -q "$1 exported"; }

mkdir -p "$OUT"
start_bird "$NS_R" router
start_bird "$NS_D" director
ip -n "$NS_D" route add 10.99.0.10/32 dev lo table 100 proto 200
ip -n "$NS_D" -6 route add fd99::10/128 dev lo table 100 proto 200
wait_for "sessions established" established
wait_for "IPv6 route exported" exported "1"
sleep 1 # the unreachable peer has tried to connect at least once
dbirdc show protocols all >"$OUT/protocols-established.txt"
dbirdc show bfd sessions >"$OUT/bfd-sessions.txt"
dbirdc show status >"$OUT/status.txt"

ip -n "$NS_D" route del 10.99.0.10/32 dev lo table 100 proto 200
ip -n "$NS_D" -6 route del fd99::10/128 dev lo table 100 proto 200
wait_for "IPv6 route withdrawn" exported "0"
dbirdc show protocols all >"$OUT/protocols-withdrawn.txt"

birdc -s "$WORK/router.ctl" down >/dev/null
wait_for "sessions down" sh -c "! birdc -s '$WORK/director.ctl' show protocols | grep -q Established"
dbirdc show protocols all >"$OUT/protocols-admin-down.txt"

start_bird "$NS_R" router
wait_for "sessions established again" established
ip -n "$NS_S" link set port-r down
kill -9 "$(cat "$WORK/router.pid")"
wait_for "BFD down" sh -c "birdc -s '$WORK/director.ctl' show protocols all kt_peer_10_88_0_1 | grep -q 'BFD session down'"
dbirdc show protocols all >"$OUT/protocols-bfd-down.txt"

ip -n "$NS_S" link set port-d down
wait_for "link down seen" sh -c "birdc -s '$WORK/director.ctl' show protocols | grep -q 'Link down'"
dbirdc show protocols all >"$OUT/protocols-link-down.txt"
ip -n "$NS_S" link set port-d up

dbirdc disable kt_peer_10_88_0_1 >/dev/null
dbirdc show protocols all >"$OUT/protocols-disabled.txt"
echo "fixtures written to $OUT (bird $(bird --version 2>&1 | awk '{print $3}'))"
