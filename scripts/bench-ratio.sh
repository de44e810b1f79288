#!/usr/bin/env bash
# Compares the full pipeline with the decode-only floor (pcapgo read +
# DecodingLayerParser) on the bundled bulk capture, on one core, in the same
# run. Shared machines are noisy: read the ratio, not the absolute figures.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
out=$(go test -cpu 1 -run '^$' -bench 'Pipeline$|DecodeFloor$' -benchtime 30x -count "$runs" ./internal/engine/)
echo "$out" | grep '^Benchmark'
echo "$out" | awk '
  /^BenchmarkPipeline/    { for (i = 1; i <= NF; i++) if ($(i+1) == "pkts/s") { p += $i; np++ } }
  /^BenchmarkDecodeFloor/ { for (i = 1; i <= NF; i++) if ($(i+1) == "pkts/s") { f += $i; nf++ } }
  END { printf "pipeline %.0f pkts/s, floor %.0f pkts/s, ratio %.2f (mean of %d runs)\n", p/np, f/nf, (p/np)/(f/nf), np }'
