#!/usr/bin/env bash
# Live capture loss, sewatch against tcpdump: one capture replayed at a
# list of rates into a veth pair between two network namespaces, once with
# `sewatch -i` on the receiving end and once with `tcpdump -w /dev/null` on
# the same end, at the same rate. Prints a table: packets sent, what each
# one read and what the kernel dropped for it.
#
#   sudo scripts/live-replay.sh [CAPTURE] [RATE...]
#
# RATE is packets per second or "top" (as fast as the sender goes).
# Defaults: the first PACKETS (100000) packets of /tmp/sewatch-mix.pcap
# (scripts/build-mix.sh), else testdata/pcap/se-bulk.pcap; rates 50000
# 100000 200000 300000 top. Environment: SENDER (sewatch-send, the default
# where go is installed: scripts/sewatch-send, a PACKET_TX_RING sender that
# preloads the capture; or tcpreplay, which tops out near 200 kpps on a
# small machine), SEND_ARGS
# (extra sewatch-send options, e.g. "-mode mmsg"), LOOPS (1: times the
# capture is sent in one run; more loops test a sustained rate, which the
# ring cannot hide), WORKERS (1), PACKETS,
# SEWATCH (a built binary; built from this tree otherwise), SEWATCH_ARGS
# (extra options, e.g. "-ring-blocks 128"), TCPDUMP_ARGS (e.g. "-B 65536"
# for a 64 MiB buffer like sewatch's ring; tcpdump's default is 2 MiB),
# PIN (1, the default: the sender runs on CPU 0 and the reader on the
# others, CPU 1 on a 2-core machine; 0: no pinning), PREFIX (names of the
# namespaces and links, default lr<pid>).
#
# The counts are exact: the replayed copy drops IPv4 fragments (the fanout
# group reassembles them, so sewatch would count a datagram where tcpdump
# counts fragments), IPv6 is off on both ends so nothing else crosses the
# link, the MTU admits every frame, and each reader is stopped with SIGINT
# after the last block has been handed over. "sent" is the sending veth's
# own tx_packets over the run (sewatch-send) or tcpreplay's count less its
# failures. sewatch's figures come from its final EVE stats event
# (decoder.pkts, capture.kernel_drops) and the "capture ended" log line
# (ring freezes); tcpdump's from its exit summary. CPU is the reader's
# user+system seconds for the whole run (/proc), start included (the
# kernel clearing sewatch's 64 MiB ring is about 0.1 s of it), and beside
# it the seconds the reader's threads were ready to run but waited for a
# CPU (schedstat, summed over threads: another process had it, or another
# of the reader's own threads on its one CPU; a large figure with drops
# says more about the machine than about the reader). Both senders
# preload the capture. On veth the receiving side's kernel work (the
# AF_PACKET copy into the reader's ring) runs on the sender's CPU, inside
# its send calls; the reader's CPU only walks its ring.
# Needs root, tcpdump, editcap and capinfos (wireshark-common), python3,
# go (sewatch-send) or tcpreplay.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "live-replay: needs root (network namespaces)" >&2; exit 1; }
if [ -z "${SENDER:-}" ]; then
  # The faster sender when it can be built here, else tcpreplay.
  SENDER=tcpreplay
  command -v go >/dev/null && SENDER=sewatch-send
fi
case $SENDER in
  sewatch-send) need=go ;;
  tcpreplay) need=tcpreplay ;;
  *) echo "live-replay: SENDER must be sewatch-send or tcpreplay" >&2; exit 2 ;;
esac
for t in $need tcpdump editcap capinfos python3; do
  command -v "$t" >/dev/null || { echo "live-replay: $t is missing" >&2; exit 1; }
done
P=${PREFIX:-lr$$}
WORKERS=${WORKERS:-1}
LOOPS=${LOOPS:-1}
PACKETS=${PACKETS:-100000}
TMP=$(mktemp -d /tmp/sewatch-live-replay.XXXXXX)
TX=${P}tx RX=${P}rx A=${P}a B=${P}b
cleanup() {
  [ -n "${READER:-}" ] && kill "$READER" 2>/dev/null && wait "$READER" 2>/dev/null
  ip netns del "$TX" 2>/dev/null || true
  ip netns del "$RX" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

src=${1:-}
name=${src:-default}
[ $# -gt 0 ] && shift
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(50000 100000 200000 300000 top)
if [ -z "$src" ]; then
  if [ -f /tmp/sewatch-mix.pcap ]; then
    name="first $PACKETS packets of /tmp/sewatch-mix.pcap"
    src=/tmp/sewatch-mix.pcap
    editcap -r "$src" "$TMP/head.pcap" "1-$PACKETS" >/dev/null
    src=$TMP/head.pcap
  else
    src=testdata/pcap/se-bulk.pcap
    name=$src
  fi
fi
# No IPv4 fragments (see above); one VLAN tag is looked through.
tcpdump -r "$src" -w "$TMP/replay.pcap" \
  'not (ip and ip[6:2] & 0x3fff != 0) and not (vlan and ip and ip[6:2] & 0x3fff != 0)' 2>/dev/null
if [ "$SENDER" = sewatch-send ]; then
  go build -o "$TMP/sewatch-send" ./scripts/sewatch-send
fi
PIN=${PIN:-1}
pin_send=() pin_read=() pinned=
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  cpus=1
  [ "$(nproc)" -gt 2 ] && cpus=1-$(($(nproc) - 1))
  pin_send=(taskset -c 0) pin_read=(taskset -c "$cpus") pinned=" on CPU 0, readers on CPU $cpus"
fi
bin=${SEWATCH:-}
if [ -z "$bin" ]; then
  bin=$TMP/sewatch
  go build -o "$bin" ./cmd/sewatch
fi

ip netns add "$TX"
ip netns add "$RX"
ip -n "$TX" link add "$A" type veth peer name "$B" netns "$RX"
for pair in "$TX $A" "$RX $B"; do
  set -- $pair
  ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
  ip -n "$1" link set "$2" mtu 65535 2>/dev/null || ip -n "$1" link set "$2" mtu 9000
  ip -n "$1" link set "$2" up
done

if [ "$SENDER" = sewatch-send ]; then
  # A kernel without PACKET_TX_RING or qdisc bypass: say so before any run
  # (a short capture at top speed; nothing reads the link yet).
  ip netns exec "$TX" "$TMP/sewatch-send" -i "$A" testdata/pcap/se-bulk.pcap >/dev/null 2>"$TMP/send.err" ||
    { echo "live-replay: sewatch-send does not work here (SENDER=tcpreplay uses tcpreplay):" >&2; cat "$TMP/send.err" >&2; exit 1; }
fi

cpu() { # "CPU/WAIT": user+system seconds of a running process, and the
  # seconds its threads were ready to run but waited for a CPU
  local w=0 t
  for t in /proc/"$1"/task/*/schedstat; do
    w=$((w + $(cut -d' ' -f2 "$t" 2>/dev/null || echo 0)))
  done
  awk -v w="$w" '{ printf "%.2f/%.2f", ($14 + $15) / 100, w / 1e9 }' "/proc/$1/stat" 2>/dev/null || echo -
}
wait_for() { # wait_for FILE PATTERN: the reader is listening
  for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "live-replay: reader did not start:" >&2
  cat "$1" >&2
  exit 1
}
replay() { # replay RATE: prints "sent rate" (packets, achieved pps)
  if [ "$SENDER" = sewatch-send ]; then
    local rate=$1
    [ "$1" = top ] && rate=0
    # shellcheck disable=SC2086
    ip netns exec "$TX" "${pin_send[@]}" "$TMP/sewatch-send" -i "$A" -rate "$rate" -loops "$LOOPS" ${SEND_ARGS:-} \
      "$TMP/replay.pcap" >"$TMP/send.out" 2>&1 || { cat "$TMP/send.out" >&2; exit 1; }
    # The veth's own count is what left; the rate is the sender's clock.
    awk '/^sent/ { printf "%d %.0f\n", $10, $8 }' "$TMP/send.out"
    return
  fi
  local speed=(--pps="$1")
  [ "$1" = top ] && speed=(-t)
  ip netns exec "$TX" "${pin_send[@]}" tcpreplay -K --loop="$LOOPS" "${speed[@]}" -i "$A" "$TMP/replay.pcap" >"$TMP/tcpreplay.out" 2>&1 ||
    { cat "$TMP/tcpreplay.out" >&2; exit 1; }
  awk '/Actual:/ { n = $2 } /Rated:/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^pps/) r = $i }
       /Failed packets:/ { f = $3 } END { printf "%d %d\n", n - f, r }' "$TMP/tcpreplay.out"
}

run_sewatch() { # run_sewatch RATE: "sent pps read drops freezes cpu"
  # shellcheck disable=SC2086
  ip netns exec "$RX" "${pin_read[@]}" "$bin" -i "$B" --workers "$WORKERS" -o "file:$TMP/eve.json" ${SEWATCH_ARGS:-} \
    2>"$TMP/sewatch.err" &
  READER=$!
  wait_for "$TMP/sewatch.err" "capturing"
  local sr; sr=$(replay "$1")
  sleep 1.5 # the last ring block is handed over within the retire timeout
  local c; c=$(cpu "$READER")
  kill -INT "$READER"
  wait "$READER" || { cat "$TMP/sewatch.err" >&2; exit 1; }
  READER=
  python3 - "$TMP/eve.json" "$TMP/sewatch.err" "$sr" "$c" <<'EOF'
import json, re, sys
stats = [json.loads(l) for l in open(sys.argv[1]) if '"event_type":"stats"' in l][-1]["stats"]
log = open(sys.argv[2]).read()
m = re.search(r"ring_freezes=(\d+)", log)
print(sys.argv[3], stats["decoder"]["pkts"], stats["capture"]["kernel_drops"], m.group(1) if m else "-", sys.argv[4])
EOF
  rm -f "$TMP/eve.json"
}

run_tcpdump() { # run_tcpdump RATE: "sent pps read drops cpu"
  # shellcheck disable=SC2086
  ip netns exec "$RX" "${pin_read[@]}" tcpdump -i "$B" -w /dev/null ${TCPDUMP_ARGS:-} 2>"$TMP/tcpdump.err" &
  READER=$!
  wait_for "$TMP/tcpdump.err" "listening on"
  local sr; sr=$(replay "$1")
  sleep 1.5 # libpcap's ring retires a block after its 1 s read timeout
  local c; c=$(cpu "$READER")
  kill -INT "$READER"
  wait "$READER" || true
  READER=
  awk -v sr="$sr" -v c="$c" '/packets captured/ { n = $1 } /dropped by kernel/ { d = $1 }
       END { printf "%s %d %d %s\n", sr, n, d, c }' "$TMP/tcpdump.err"
}

total=$(capinfos -M -c "$TMP/replay.pcap" | awk '/Number of packets/ { print $NF }')
echo "capture: $total packets ($name, IPv4 fragments removed) × $LOOPS, sender: $SENDER$pinned, sewatch workers: $WORKERS, load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| rate | sent | pps achieved | sewatch read | sewatch kernel drops | ring freezes | sewatch CPU s / run-queue wait s | tcpdump read | tcpdump kernel drops | tcpdump CPU s / wait s |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
for r in "${rates[@]}"; do
  run_sewatch "$r" >"$TMP/row"
  read -r s1 p1 n1 d1 f1 c1 <"$TMP/row"
  run_tcpdump "$r" >"$TMP/row"
  read -r s2 p2 n2 d2 c2 <"$TMP/row"
  printf '| %s | %s / %s | %s / %s | %s | %s | %s | %s | %s | %s | %s |\n' "$r" "$s1" "$s2" "$p1" "$p2" "$n1" "$d1" "$f1" "$c1" "$n2" "$d2" "$c2"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
