#!/usr/bin/env bash
# Makes a fresh sample of the traffic sewatch is judged on and scores it: runs
# the reference capture lab the shared corpus was made with
# (../shared/lab-reference: softether-lab.sh, and with NEG=1 negatives-lab.sh)
# from a copy, so every SoftEther session, padding and timing is new, then
# scores sewatch on the new captures with ../shared/tools/evalcorpus.py as the
# product is judged (captures detected, false alerts, schema, time to alert).
# The bundled and shared captures are one draw each; this is another.
#
# Root (network namespaces), Debian's SoftEther packages and the lab's tools
# (see the reference scripts' headers; the negatives also use stunnel4,
# tinyproxy, dnsmasq, socat, ethtool, dnsutils and strongswan-swanctl: without
# the last two the dns-normal and ipsec negatives fail); about 30 minutes for the 28 SoftEther
# scenarios, 15 more for the negatives. Not run by CI.
#
#   scripts/fresh-corpus.sh [OUTDIR]     (default /tmp/sewatch-fresh)
#   BIN=/path/to/sewatch NEG=1 scripts/fresh-corpus.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
OUT=${1:-/tmp/sewatch-fresh}
BIN=${BIN:-}
[ -d "$SHARED/lab-reference" ] || { echo "fresh-corpus: no $SHARED/lab-reference (set SHARED)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "fresh-corpus: needs root (network namespaces)" >&2; exit 1; }
if [ -z "$BIN" ]; then
  go build -o /tmp/sewatch-fresh-bin ./cmd/sewatch
  BIN=/tmp/sewatch-fresh-bin
fi
rm -rf "$OUT" && mkdir -p "$OUT/lab"
cp -r "$SHARED"/lab-reference/. "$OUT/lab/"
chmod -R u+w "$OUT/lab"
SE_RUN="$OUT/se-run" SE_CAP="$OUT/se" bash "$OUT/lab/softether-lab.sh" all >"$OUT/se.log" 2>&1 ||
  echo "fresh-corpus: softether-lab.sh ended with status $? (see $OUT/se.log)" >&2
manifests=(--manifest "$OUT/se/manifest.jsonl")
if [ "${NEG:-0}" = 1 ]; then
  NEG_RUN="$OUT/neg-run" NEG_CAP="$OUT/neg" bash "$OUT/lab/negatives-lab.sh" all >"$OUT/neg.log" 2>&1 ||
    echo "fresh-corpus: negatives-lab.sh ended with status $? (see $OUT/neg.log)" >&2
  for m in "$OUT"/neg/manifest*.jsonl; do [ -f "$m" ] && manifests+=(--manifest "$m"); done
fi
python3 "$SHARED/tools/evalcorpus.py" --bin "$BIN" --schema "$SHARED/reference/suricata-eve-schema.json" "${manifests[@]}"
