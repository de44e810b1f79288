#!/usr/bin/env bash
# Compares the full pipeline with the decode-only floor (pcapgo read +
# DecodingLayerParser) on the bundled bulk capture, on one core. Each run
# measures both back to back, so the ratio of a run is what counts on a
# shared, noisy machine; the median ratio of RUNS runs is printed last.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
go test -c -o /tmp/sewatch-engine.test ./internal/engine >/dev/null
cd internal/engine # the benchmarks read ../../testdata
ratios=()
for i in $(seq 1 "$runs"); do
  out=$(/tmp/sewatch-engine.test -test.cpu 1 -test.run '^$' -test.bench 'Pipeline$|DecodeFloor$' -test.benchtime 30x -test.benchmem 2>&1)
  p=$(echo "$out" | awk '/^BenchmarkPipeline/ { for (i = 1; i <= NF; i++) if ($(i+1) == "pkts/s") print $i }')
  f=$(echo "$out" | awk '/^BenchmarkDecodeFloor/ { for (i = 1; i <= NF; i++) if ($(i+1) == "pkts/s") print $i }')
  mbs=$(echo "$out" | awk '/^BenchmarkPipeline/ { for (i = 1; i <= NF; i++) if ($(i+1) == "MB/s") print $i }')
  allocs=$(echo "$out" | awk '/^BenchmarkPipeline/ { for (i = 1; i <= NF; i++) if ($(i+1) == "allocs/op") print $i }')
  r=$(awk -v p="$p" -v f="$f" 'BEGIN { printf "%.2f", p / f }')
  ratios+=("$r")
  echo "run $i: pipeline ${p} pkts/s (${mbs} MB/s, ${allocs} allocs per 12452 packets), floor ${f} pkts/s, ratio ${r}"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { print "median ratio (pipeline / decode floor, one core): " a[int((NR + 1) / 2)] }'
