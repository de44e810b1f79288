#!/usr/bin/env bash
# Floods sewatch with half-finished TLS handshakes (scripts/floodgen: FLOWS
# connections, each announcing a 16,000-byte ClientHello and sending 8
# segments of it, never finishing) with a SoftEther session spliced into the
# middle, and reports sewatch's peak RSS (/usr/bin/time %M) against its flow
# buffer budget, the buffers shed, and whether the session was still found.
# Fails if the session is missed, the budget's accounting passed the budget,
# or the peak RSS passed the footprint the defaults promise (budget +
# 262,144 flows x 1 KiB + 192 MiB).
#
#   scripts/mem-flood.sh [FLOWS]      (default 250000)
#   BUDGET=64MiB scripts/mem-flood.sh (default 256MiB; BUDGET= runs without
#   the flag, e.g. with BIN= an older sewatch)
set -euo pipefail
cd "$(dirname "$0")/.."
FLOWS=${1:-250000}
BUDGET=${BUDGET-256MiB}
[ -x /usr/bin/time ] || { echo "mem-flood: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/sewatch-flood.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
BIN=${BIN:-}
if [ -z "$BIN" ]; then
  go build -o "$tmp/sewatch" ./cmd/sewatch
  BIN=$tmp/sewatch
fi
go build -o "$tmp/floodgen" ./scripts/floodgen
flag=()
[ -n "$BUDGET" ] && flag=(--flow-buffer-budget "$BUDGET")
"$tmp/floodgen" -flows "$FLOWS" | /usr/bin/time -f '%M %U %S' -o "$tmp/time" \
  "$BIN" -r - "${flag[@]}" >"$tmp/eve.json" 2>"$tmp/log"
read -r rss user sys <"$tmp/time"
alerts=$(grep -c '"event_type":"alert"' "$tmp/eve.json" || true)
done_line=$(grep 'msg=done' "$tmp/log" || true)
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$done_line"; }
shed=$(field buffers_shed)
peak=$(field buffer_peak_bytes)
printf 'flows=%s budget=%s peak_rss=%d MiB (%d KiB) buffer_peak=%s MiB shed=%s alerts=%s cpu=%ss+%ss load=%s\n' \
  "$FLOWS" "${BUDGET:-none}" $((rss / 1024)) "$rss" "$([ -n "$peak" ] && echo $((peak >> 20)) || echo -)" "${shed:--}" "$alerts" \
  "$user" "$sys" "$(cut -d' ' -f1-3 /proc/loadavg)"
[ "$alerts" -ge 1 ] || { echo "mem-flood: the SoftEther session was not detected" >&2; exit 1; }
if [ -n "$BUDGET" ] && [ -n "$peak" ]; then
  case "$BUDGET" in
    *GiB) limit=$(( ${BUDGET%GiB} << 30 )) ;; *MiB) limit=$(( ${BUDGET%MiB} << 20 )) ;; *KiB) limit=$(( ${BUDGET%KiB} << 10 )) ;; *) limit=$BUDGET ;;
  esac
  [ "$peak" -le "$limit" ] || { echo "mem-flood: buffers held $peak bytes, budget $limit" >&2; exit 1; }
  # The whole process stays under the footprint the settings promise:
  # budget + max-flows (default 262,144) x 1 KiB + 192 MiB, unless
  # GOMEMLIMIT moves the runtime's share.
  if [ -z "${GOMEMLIMIT:-}" ]; then
    bound=$(( (limit + 262144 * 1024 + (192 << 20)) >> 10 ))
    echo "footprint bound $((bound / 1024)) MiB, peak RSS $((rss / 1024)) MiB"
    [ "$rss" -le "$bound" ] || { echo "mem-flood: peak RSS ${rss} KiB over the ${bound} KiB footprint bound" >&2; exit 1; }
  fi
fi
