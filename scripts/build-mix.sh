#!/usr/bin/env bash
# Builds a capture that looks like a busy uplink rather than one bulk flow:
# every Ethernet capture of the third-party nDPI test set, COPIES times, and
# every SoftEther corpus capture, SECOPIES times, each copy with its addresses
# rewritten (tcprewrite --seed, a different seed per copy and file, so copies
# are distinct hosts) and its clock shifted to one common start, so thousands
# of flows of every protocol are open at once. Needs mergecap/editcap/capinfos
# (Debian wireshark-common) and tcprewrite (Debian tcpreplay).
#
#   scripts/build-mix.sh [OUT]     (default /tmp/sewatch-mix.pcap)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SEWATCH_SHARED:-}
if [ -z "$SHARED" ]; then
  for d in ../shared ../../shared; do [ -d "$d/thirdparty" ] && SHARED=$(cd "$d" && pwd) && break; done
fi
[ -d "$SHARED/thirdparty/ndpi/pcap" ] || { echo "build-mix: set SEWATCH_SHARED to the shared material" >&2; exit 1; }
OUT=${1:-/tmp/sewatch-mix.pcap}
COPIES=${COPIES:-8}
SECOPIES=${SECOPIES:-4}
JOBS=${JOBS:-$(nproc)}
for t in mergecap editcap capinfos tcprewrite; do
  command -v "$t" >/dev/null || { echo "build-mix: $t missing (apt-get install wireshark-common tcpreplay)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/sewatch-mix.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Ethernet captures only: one link type for the merged file.
list() {
  for f in "$@"; do
    enc=$(capinfos -T -r -E "$f" 2>/dev/null | awk -F'\t' '{ print $2 }')
    if [ "$enc" = ether ]; then echo "$f"; fi
  done
}
list "$SHARED"/thirdparty/ndpi/pcap/* >"$work/ndpi.txt"
list "$SHARED"/corpus/*.pcap* >"$work/corpus.txt"

# One job per (copy, file): rewrite addresses, then move the start to T0.
T0=1767225600 # 2026-01-01T00:00:00Z
jobs() {
  local n=0
  for c in $(seq 1 "$COPIES"); do
    while read -r f; do n=$((n + 1)); echo "$c $n $f"; done <"$work/ndpi.txt"
  done
  for c in $(seq 1 "$SECOPIES"); do
    while read -r f; do n=$((n + 1)); echo "$((100 + c)) $n $f"; done <"$work/corpus.txt"
  done
}
one() {
  local c=$1 n=$2 f=$3 w=$4 t0=$5
  local r="$w/r$n.pcap" o="$w/o$n.pcap"
  tcprewrite --seed="$((c * 1000 + n))" --infile="$f" --outfile="$r" 2>/dev/null || return 0
  local start
  start=$(capinfos -T -r -S -a "$r" 2>/dev/null | awk -F'\t' '{ print $2 }')
  [ -n "$start" ] && [ "$start" != "n/a" ] || { rm -f "$r"; return 0; }
  editcap -t "$(awk -v s="$start" -v t="$t0" 'BEGIN { printf "%.6f", t - s }')" "$r" "$o" 2>/dev/null && rm -f "$r"
}
export -f one
jobs | xargs -P "$JOBS" -L 1 bash -c 'one "$0" "$1" "$2" "'"$work"'" '"$T0"
mergecap -F pcap -w "$OUT" "$work"/o*.pcap
capinfos -T -r -c -d -u "$OUT" | awk -F'\t' -v out="$OUT" '{ printf "%s: %s packets, %s bytes, %s s\n", out, $2, $3, $4 }'
