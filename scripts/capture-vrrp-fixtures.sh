#!/usr/bin/env bash
# Captures real keepalived VRRP advertisements as known-answer fixtures for the codec tests
# (test/unit/vrrp-packet-fixtures.test.ts).
#
# Two network namespaces joined by a veth pair: keepalived runs in "a" as the only router of
# each virtual router (so it becomes MASTER and advertises), tcpdump listens in "b". Each
# scenario gets its own keepalived run so that every fixture file holds adverts of one
# instance only. The expected fields in the JSON files come from this script's own
# configuration, never from our decoder, so the tests compare against an independent truth.
#
# Output, per scenario NAME in test/fixtures/vrrp/ (or $OUT):
#   NAME.hex   one captured IP packet per line (IPv4 header or IPv6 header + VRRP), lower hex
#   NAME.json  { family, src, dst, ttl, advert: { version, vrid, priority, advertIntCs, addresses,
#                authType?, password? }, keepalived }
#
# Requirements: root, iproute2, keepalived (tested with 2.2.7), tcpdump, node.
# Everything (namespaces, processes, temp files) is removed on exit, even on failure.
# Traffic stays inside the two namespaces created here.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/test/fixtures/vrrp}
PACKETS=${PACKETS:-3}
NS_A="kc-$$-a"
NS_B="kc-$$-b"
WORK=$(mktemp -d /tmp/kc-$$-vrrp.XXXXXX)
TCPDUMP_PID=""
KEEPALIVED_PID=""

cleanup() {
  set +e
  [ -n "$TCPDUMP_PID" ] && kill "$TCPDUMP_PID" 2>/dev/null && wait "$TCPDUMP_PID" 2>/dev/null
  stop_keepalived
  ip netns del "$NS_A" 2>/dev/null
  ip netns del "$NS_B" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

stop_keepalived() {
  if [ -n "$KEEPALIVED_PID" ]; then
    kill "$KEEPALIVED_PID" 2>/dev/null || true
    # keepalived removes its VIPs and exits within a second or two.
    for _ in $(seq 1 50); do kill -0 "$KEEPALIVED_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$KEEPALIVED_PID" 2>/dev/null || true
    wait "$KEEPALIVED_PID" 2>/dev/null || true
    KEEPALIVED_PID=""
  fi
}

# Fixed MACs give fixed IPv6 link-local addresses (EUI-64), so the IPv6 fixtures are reproducible.
MAC_A=02:00:00:00:00:0a
MAC_B=02:00:00:00:00:0b
LL_A=fe80::ff:fe00:a
V4_A=10.99.0.1
V4_B=10.99.0.2

ip netns add "$NS_A"
ip netns add "$NS_B"
ip -n "$NS_A" link add eth0 address "$MAC_A" type veth peer name eth0 address "$MAC_B" netns "$NS_B"
for ns in "$NS_A" "$NS_B"; do
  # No DAD: the link-local address must be usable at once or keepalived's IPv6 instance faults.
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.eth0.accept_dad=0
  ip -n "$ns" link set lo up
done
ip -n "$NS_A" addr add "$V4_A/24" dev eth0
ip -n "$NS_B" addr add "$V4_B/24" dev eth0
ip -n "$NS_A" addr add fd00::1/64 dev eth0 nodad
ip -n "$NS_B" addr add fd00::2/64 dev eth0 nodad
ip -n "$NS_A" link set eth0 up
ip -n "$NS_B" link set eth0 up

# sed, not head: head would close the pipe early and, with pipefail, SIGPIPE would abort us.
KEEPALIVED_VERSION=$(keepalived --version 2>&1 | sed -n 1p)

# capture NAME FILTER CONFIG_BODY EXPECTED_JSON
# Runs keepalived with CONFIG_BODY (one vrrp_instance), captures $PACKETS adverts in NS_B and
# writes NAME.hex and NAME.json.
capture() {
  local name=$1 filter=$2 body=$3 expected=$4
  local conf="$WORK/$name.conf" pcap="$WORK/$name.pcap"
  cat >"$conf" <<EOF
global_defs {
  router_id kc_capture
  vrrp_garp_master_delay 0
}
$body
EOF
  ip netns exec "$NS_B" tcpdump -i eth0 -U -n -c "$PACKETS" -w "$pcap" "$filter" 2>"$WORK/$name.tcpdump.log" &
  TCPDUMP_PID=$!
  sleep 1 # let tcpdump open the interface before the first advert
  ip netns exec "$NS_A" keepalived -n -l -D -P -f "$conf" -p "$WORK/keepalived.pid" \
    -r "$WORK/vrrp.pid" -c "$WORK/checkers.pid" >"$WORK/$name.keepalived.log" 2>&1 &
  KEEPALIVED_PID=$! # `ip netns exec` execs keepalived, and -n keeps it in the foreground
  local ok=0
  for _ in $(seq 1 300); do
    if ! kill -0 "$TCPDUMP_PID" 2>/dev/null; then ok=1; break; fi
    sleep 0.1
  done
  if [ "$ok" != 1 ]; then
    echo "capture $name: timed out; keepalived log:" >&2
    cat "$WORK/$name.keepalived.log" >&2
    exit 1
  fi
  wait "$TCPDUMP_PID" || true
  TCPDUMP_PID=""
  stop_keepalived
  # pcap (Ethernet link type) -> one IP packet per line, Ethernet header stripped.
  node -e '
    const fs = require("fs");
    const b = fs.readFileSync(process.argv[1]);
    const magic = b.readUInt32LE(0);
    const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
    const u32 = (o) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    if (u32(20) !== 1) throw new Error("not an Ethernet capture");
    const lines = [];
    for (let o = 24; o + 16 <= b.length; ) {
      const len = u32(o + 8);
      const frame = b.subarray(o + 16, o + 16 + len);
      lines.push(frame.subarray(14).toString("hex"));
      o += 16 + len;
    }
    fs.writeFileSync(process.argv[2], lines.join("\n") + "\n");
  ' "$pcap" "$OUT/$name.hex"
  printf '%s\n' "$expected" | node -e '
    const fs = require("fs");
    const j = JSON.parse(fs.readFileSync(0, "utf8"));
    j.keepalived = process.argv[2];
    fs.writeFileSync(process.argv[1], JSON.stringify(j, null, 2) + "\n");
  ' "$OUT/$name.json" "$KEEPALIVED_VERSION"
  echo "captured $name: $(wc -l <"$OUT/$name.hex") packets"
}

mkdir -p "$OUT"

# (a) VRRPv2 with simple password authentication.
capture v2-ipv4-pass "proto 112" "
vrrp_instance V2PASS {
  version 2
  state MASTER
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass s3cret
  }
  virtual_ipaddress {
    10.99.0.100/24
  }
}" '{"family":4,"src":"'$V4_A'","dst":"224.0.0.18","ttl":255,
     "advert":{"version":2,"vrid":51,"priority":150,"advertIntCs":100,
               "addresses":["10.99.0.100"],"authType":1,"password":"s3cret"}}'

# (b) VRRPv3 over IPv4 (checksum with the IPv4 pseudo-header, keepalived's default).
capture v3-ipv4 "proto 112" "
vrrp_instance V3V4 {
  version 3
  state MASTER
  interface eth0
  virtual_router_id 52
  priority 120
  advert_int 1
  virtual_ipaddress {
    10.99.0.101/24
  }
}" '{"family":4,"src":"'$V4_A'","dst":"224.0.0.18","ttl":255,
     "advert":{"version":3,"vrid":52,"priority":120,"advertIntCs":100,"addresses":["10.99.0.101"]}}'

# (c) VRRPv3 over IPv6: sent from the link-local address to ff02::12.
capture v3-ipv6 "ip6 proto 112" "
vrrp_instance V3V6 {
  version 3
  native_ipv6
  state MASTER
  interface eth0
  virtual_router_id 53
  priority 110
  advert_int 1
  virtual_ipaddress {
    fd00::50/64
  }
}" '{"family":6,"src":"'$LL_A'","dst":"ff02::12","ttl":255,
     "advert":{"version":3,"vrid":53,"priority":110,"advertIntCs":100,"addresses":["fd00::50"]}}'

# (d) VRRPv3 over IPv4 with several VIPs and a sub-second interval (centiseconds on the wire).
capture v3-ipv4-multi "proto 112" "
vrrp_instance V3MULTI {
  version 3
  state MASTER
  interface eth0
  virtual_router_id 54
  priority 200
  advert_int 0.5
  virtual_ipaddress {
    10.99.0.102/24
    10.99.0.103/24
    10.99.0.104/24
  }
}" '{"family":4,"src":"'$V4_A'","dst":"224.0.0.18","ttl":255,
     "advert":{"version":3,"vrid":54,"priority":200,"advertIntCs":50,
               "addresses":["10.99.0.102","10.99.0.103","10.99.0.104"]}}'

# (e) VRRPv3 over IPv6 with two VIPs.
capture v3-ipv6-multi "ip6 proto 112" "
vrrp_instance V3V6MULTI {
  version 3
  native_ipv6
  state MASTER
  interface eth0
  virtual_router_id 55
  priority 100
  advert_int 2
  virtual_ipaddress {
    fd00::51/64
    fd00::52/64
  }
}" '{"family":6,"src":"'$LL_A'","dst":"ff02::12","ttl":255,
     "advert":{"version":3,"vrid":55,"priority":100,"advertIntCs":200,"addresses":["fd00::51","fd00::52"]}}'
