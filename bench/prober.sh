#!/usr/bin/env bash
# Benchmark: 2,000 probes (1,000 allowed, 1,000 dropped; half TCP, half UDP) from one network
# namespace to another with a 1 s timeout, run by `netcanary agent` and then "by hand" — one
# `curl -m 1` (TCP) or `nc -u -w 1` (UDP) process per probe, 8 in parallel (xargs -P 8) —
# in the same run. Prints wall time, peak memory and the ratio.
#
# Needs root, iproute2, nftables, curl, netcat-openbsd and GNU time (/usr/bin/time).
# Usage: sudo bench/prober.sh                 # builds the release binary with cargo
#        NETCANARY_BIN=path/to/netcanary bench/prober.sh
# Env:   PROBES (default 2000), TIMEOUT_MS (default 1000), MANUAL_PARALLEL (default 8)
# Only the namespaces this script creates (ncb<pid>-*) ever see a packet; they are deleted
# on exit, also on failure.
set -euo pipefail

PROBES=${PROBES:-2000}
TIMEOUT_MS=${TIMEOUT_MS:-1000}
MANUAL_PARALLEL=${MANUAL_PARALLEL:-8}
TIMEOUT_S=$(awk "BEGIN { printf \"%g\", $TIMEOUT_MS / 1000 }")
ROOT=$(cd "$(dirname "$0")/.." && pwd)

if [[ $(id -u) != 0 ]]; then
  echo "bench/prober.sh: needs root (network namespaces)" >&2
  exit 2
fi
for tool in ip nft curl nc /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench/prober.sh: missing $tool" >&2; exit 2; }
done
if [[ -z ${NETCANARY_BIN:-} ]]; then
  (cd "$ROOT" && cargo build --release --quiet)
  NETCANARY_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/netcanary
fi

NS_A="ncb$$-agent"
NS_T="ncb$$-target"
WORK=$(mktemp -d)
cleanup() {
  for ns in "$NS_A" "$NS_T"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Two namespaces joined by a veth pair; 10.78.0.0/24 exists only between them.
ip netns add "$NS_A"
ip netns add "$NS_T"
ip -n "$NS_A" link add eth0 type veth peer name eth0 netns "$NS_T"
ip -n "$NS_A" addr add 10.78.0.1/24 dev eth0
ip -n "$NS_T" addr add 10.78.0.2/24 dev eth0
for ns in "$NS_A" "$NS_T"; do
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
done
TARGET=10.78.0.2

# Allowed: 20001-20010. Dropped by the target's input chain: 30001-30010 (a listener is
# there too, so only the firewall makes the difference).
ip netns exec "$NS_T" nft -f - <<'NFT'
table inet bench {
  chain input {
    type filter hook input priority 0; policy accept;
    meta l4proto { tcp, udp } th dport 30001-30010 drop
  }
}
NFT
ip netns exec "$NS_T" "$NETCANARY_BIN" target --tcp 20001-20010,30001-30010 \
  --udp 20001-20010,30001-30010 >"$WORK/target.out" 2>"$WORK/target.err" &
disown # killed by cleanup; no job-control notice
for _ in $(seq 100); do grep -q listening "$WORK/target.out" 2>/dev/null && break; sleep 0.05; done
grep -q listening "$WORK/target.out" || { cat "$WORK/target.err" >&2; exit 1; }

# The probe list: a quarter each of TCP allowed, UDP allowed, TCP dropped, UDP dropped.
: >"$WORK/probes.txt"
for ((i = 1; i <= PROBES; i++)); do
  case $(((i - 1) * 4 / PROBES)) in
    0) kind=tcp base=20000 ;;
    1) kind=udp base=20000 ;;
    2) kind=tcp base=30000 ;;
    *) kind=udp base=30000 ;;
  esac
  echo "$i $kind $((base + 1 + i % 10))" >>"$WORK/probes.txt"
done
awk -v t="$TIMEOUT_MS" -v host="$TARGET" 'BEGIN { printf "{\"timeout_ms\": %d, \"probes\": [", t }
  { printf "%s{\"id\": \"%s\", \"kind\": \"%s\", \"host\": \"%s\", \"port\": %s}", (NR > 1 ? "," : ""), $1, $2, host, $3 }
  END { print "]}" }' "$WORK/probes.txt" >"$WORK/plan.json"

# `/usr/bin/time -f` prints wall seconds and peak RSS (KiB) of the measured command.
measure() { /usr/bin/time -f '%e %M' -o "$WORK/time.$1" "${@:2}"; }

echo "netcanary agent: $PROBES probes, timeout ${TIMEOUT_MS} ms ..." >&2
measure agent ip netns exec "$NS_A" "$NETCANARY_BIN" agent --plan "$WORK/plan.json" \
  --termination-log "$WORK/termination-log" >"$WORK/agent.json" 2>"$WORK/agent.err" ||
  { echo "the agent failed:" >&2; cat "$WORK/agent.err" "$WORK/time.agent" >&2; exit 1; }
read -r AGENT_WALL AGENT_RSS <"$WORK/time.agent"
agent_count() { grep -o "\"observed\":\"$1\"" "$WORK/agent.json" | wc -l || true; }
AGENT_OK=$(agent_count connected)
AGENT_BLOCKED=$(($(agent_count timeout) + $(agent_count unreachable)))

echo "by hand: curl -m $TIMEOUT_S / nc -u -w $TIMEOUT_S, $MANUAL_PARALLEL in parallel ..." >&2
# One shell plus one curl or nc per probe, as a person scripting it would do. The UDP
# datagram carries netcanary's header so that the target echoes it.
cat >"$WORK/by-hand.sh" <<SH
case \$1 in
  tcp) curl -s -o /dev/null -m $TIMEOUT_S "http://$TARGET:\$2/"; [ \$? -eq 28 ] && echo blocked || echo ok ;;
  udp) if [ -n "\$(printf 'netcanary/1 %032x' "\$3" | nc -u -w $TIMEOUT_S $TARGET "\$2")" ]; then echo ok; else echo blocked; fi ;;
esac
SH
awk '{ print $2, $3, $1 }' "$WORK/probes.txt" >"$WORK/args.txt"
measure manual ip netns exec "$NS_A" xargs -P "$MANUAL_PARALLEL" -L 1 sh "$WORK/by-hand.sh" \
  <"$WORK/args.txt" >"$WORK/manual.out"
read -r MANUAL_WALL MANUAL_RSS <"$WORK/time.manual"
MANUAL_OK=$(grep -c '^ok' "$WORK/manual.out" || true)
MANUAL_BLOCKED=$(grep -c '^blocked' "$WORK/manual.out" || true)

RATIO=$(awk "BEGIN { printf \"%.0f\", $MANUAL_WALL / $AGENT_WALL }")
TIMEOUTS=$(awk "BEGIN { printf \"%.2f\", $AGENT_WALL / $TIMEOUT_S }")
printf '\n%-34s %10s %14s %9s %9s\n' "method ($PROBES probes, ${TIMEOUT_MS} ms)" "wall (s)" "peak RSS (MiB)" "allowed" "blocked"
printf '%-34s %10s %14.1f %9s %9s\n' "netcanary agent" "$AGENT_WALL" "$(awk "BEGIN{print $AGENT_RSS/1024}")" "$AGENT_OK" "$AGENT_BLOCKED"
printf '%-34s %10s %14.1f %9s %9s\n' "curl/nc, xargs -P $MANUAL_PARALLEL" "$MANUAL_WALL" "$(awk "BEGIN{print $MANUAL_RSS/1024}")" "$MANUAL_OK" "$MANUAL_BLOCKED"
echo
echo "agent wall time: $TIMEOUTS x the timeout (target < 1.5)"
echo "speed-up over by hand: ${RATIO}x (target >= 50x)"
echo "(peak RSS by hand is that of the largest single process, not the sum)"
