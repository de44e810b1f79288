#!/usr/bin/env bash
# Throughput of the whole pipeline against a decode-only floor (pcapgo read
# + DecodingLayerParser) and against nDPI's ndpiReader, in the same run.
#
# 1. Bulk: the bundled one-flow SoftEther capture (Go benchmarks, one core).
# 2. Mix: the many-flow capture of scripts/build-mix.sh (nDPI's test
#    captures and the SoftEther corpus, address-rewritten copies, all at
#    once): floor and pipeline (Go benchmarks, one core), then the sewatch
#    binary with one and two workers, then ndpiReader, on the same file.
#
# On the mix, the pipeline is measured reading the file as `sewatch -r` does
# (BenchmarkPipelineFile: the shared block reader) and, as before, through
# pcapgo and bufio like the floor (BenchmarkPipeline); the first is the
# headline ratio, the second shows what the detection work alone costs.
#
# Each run measures everything back to back and the medians of RUNS runs
# are printed. Throughput is packets per CPU-second (user + system), which
# a busy shared machine disturbs far less than wall time; the 1 -> 2 worker
# scaling can only be wall time (packets per second), so it needs an idle
# machine to mean anything (each run also measures the machine itself:
# scripts/corescale, its 1 -> 2 core scaling on a table walk). Needs
# ndpiReader (Debian libndpi-bin) for the nDPI figure. Times are bash's own
# `time` to the millisecond: /usr/bin/time prints hundredths, which on a
# 0.17 s two-worker run is a 3 % step in the scaling.
#
#   RUNS=5 MIX=/tmp/sewatch-mix.pcap scripts/bench-ratio.sh [bulk|mix|all]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
what=${1:-all}
MIX=${MIX:-/tmp/sewatch-mix.pcap}
go test -c -o /tmp/sewatch-engine.test ./internal/engine >/dev/null
go build -o /tmp/sewatch-bench ./cmd/sewatch
go build -o /tmp/sewatch-corescale ./scripts/corescale
T=/tmp/sewatch-engine.test

metric() { # metric NAME UNIT <benchmark output>
  awk -v n="$1" -v u="$2" '$1 ~ "^"n"(-[0-9]+)?$" { for (i = 1; i <= NF; i++) if ($(i+1) == u) print $i }'
}
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
least() { sort -g | head -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
cputime() { # cputime OUTFILE cmd...: runs cmd, prints "wall cpu" seconds
  local out=$1 t
  shift
  t=$( { TIMEFORMAT='%3R %3U %3S'; time "$@" >"$out" 2>/dev/null; } 2>&1)
  awk '{ printf "%s %.3f\n", $1, $2 + $3 }' <<<"$t"
}

if [ "$what" = bulk ] || [ "$what" = all ]; then
  echo "== bulk: testdata/pcap/se-bulk.pcap (one SoftEther flow, 12452 packets), one core"
  rb=()
  for i in $(seq 1 "$runs"); do
    out=$(cd internal/engine && $T -test.cpu 1 -test.run '^$' -test.bench 'Pipeline$|DecodeFloor$' -test.benchtime 30x -test.benchmem 2>&1)
    p=$(echo "$out" | metric BenchmarkPipeline pkts/cpu-s)
    f=$(echo "$out" | metric BenchmarkDecodeFloor pkts/cpu-s)
    allocs=$(echo "$out" | metric BenchmarkPipeline allocs/op)
    rb+=("$(ratio "$p" "$f")")
    echo "run $i: pipeline ${p} pkts/cpu-s (${allocs} allocs per run of 12452 packets), floor ${f} pkts/cpu-s, ratio ${rb[-1]}"
  done
  echo "bulk median ratio (pipeline / decode floor, one core, both reading the capture from memory): $(printf '%s\n' "${rb[@]}" | median)"
fi

if [ "$what" = mix ] || [ "$what" = all ]; then
  [ -f "$MIX" ] || scripts/build-mix.sh "$MIX"
  pkts=$(capinfos -T -r -c "$MIX" | awk -F'\t' '{ print $2 }')
  echo "== mix: $MIX ($pkts packets, $(du -m "$MIX" | cut -f1) MB)"
  cat "$MIX" >/dev/null # page cache: every reader below starts warm
  rf=() rg=() rn=() rs=() rw=() p1=() p2=() pn=() c1s=() w1s=() w2s=() nds=() ms=()
  for i in $(seq 1 "$runs"); do
    # Each pipeline first in a process of its own: the first run in a
    # process pays for touching fresh memory, as `sewatch -r` does.
    out=$(cd internal/engine && SEWATCH_BENCH_PCAP=$MIX $T -test.cpu 1 -test.run '^$' -test.bench 'PipelineFile$|DecodeFloor$' -test.benchtime 1x 2>&1)
    p=$(echo "$out" | metric BenchmarkPipelineFile pkts/cpu-s)
    f=$(echo "$out" | metric BenchmarkDecodeFloor pkts/cpu-s)
    out=$(cd internal/engine && SEWATCH_BENCH_PCAP=$MIX $T -test.cpu 1 -test.run '^$' -test.bench 'Pipeline$' -test.benchtime 1x 2>&1)
    pg=$(echo "$out" | metric BenchmarkPipeline pkts/cpu-s)
    read -r w1 c1 < <(cputime /tmp/sewatch-bench.eve1 /tmp/sewatch-bench -r "$MIX" --workers 1)
    read -r w2 c2 < <(cputime /tmp/sewatch-bench.eve2 /tmp/sewatch-bench -r "$MIX" --workers 2)
    # The same events in the same order (the stats line carries the wall clock).
    cmp -s <(grep -v '"event_type":"stats"' /tmp/sewatch-bench.eve1) <(grep -v '"event_type":"stats"' /tmp/sewatch-bench.eve2) ||
      { echo "events differ between 1 and 2 workers" >&2; exit 1; }
    # What the machine itself gives two cores right now (scripts/corescale:
    # a random table walk over 64 MiB per core, the scale of a many-flow
    # table): a VM's second core is sometimes slowed by its neighbours.
    ms+=("$(/tmp/sewatch-corescale -runs 3 -sizes 64M -modes touched -steps 30000000 | sed -n 's/.*cores scale \([0-9.]*\).*/\1/p')")
    nd="-" ndw="-"
    if command -v ndpiReader >/dev/null; then
      read -r ndw nd < <(cputime /dev/null ndpiReader -q -i "$MIX")
      rn+=("$(ratio "$nd" "$c1")")
      nds+=("$nd")
      pn+=("$(ratio "$pkts" "$nd")")
    fi
    rf+=("$(ratio "$p" "$f")")
    rg+=("$(ratio "$pg" "$f")")
    rs+=("$(ratio "$w1" "$w2")")
    c1s+=("$c1") w1s+=("$w1") w2s+=("$w2")
    p1+=("$(ratio "$pkts" "$c1")")
    p2+=("$(ratio "$pkts" "$w2")")
    rw+=("$(ratio "$pkts" "$w1")")
    echo "run $i: floor $f pkts/cpu-s, pipeline $p pkts/cpu-s reading as sewatch -r (ratio ${rf[-1]}), $pg on pcapgo (${rg[-1]});" \
      "sewatch -r: 1 worker ${c1} cpu-s ${w1} s wall, 2 workers ${w2} s wall ($(grep -c '"event_type":"alert"' /tmp/sewatch-bench.eve1) alerts, identical; machine 1 -> 2 cores ${ms[-1]});" \
      "ndpiReader ${nd} cpu-s ${ndw} s wall"
  done
  echo "mix median ratio (pipeline / decode floor, one core, pkts/cpu-s): $(printf '%s\n' "${rf[@]}" | median) reading as sewatch -r, $(printf '%s\n' "${rg[@]}" | median) on pcapgo"
  echo "mix median sewatch -r one worker: $(printf '%s\n' "${p1[@]}" | median) pkts/cpu-s"
  if [ ${#rn[@]} -gt 0 ]; then
    echo "mix median ndpiReader: $(printf '%s\n' "${pn[@]}" | median) pkts/cpu-s"
    echo "mix median ratio (sewatch / ndpiReader, CPU time): $(printf '%s\n' "${rn[@]}" | median)"
  fi
  echo "mix median wall: 1 worker $(printf '%s\n' "${rw[@]}" | median) pkts/s, 2 workers $(printf '%s\n' "${p2[@]}" | median) pkts/s, scaling $(printf '%s\n' "${rs[@]}" | median) (load average $(cut -d' ' -f1 /proc/loadavg)); the machine's own 1 -> 2 core scaling on a 64-MiB table walk, same runs: median $(printf '%s\n' "${ms[@]}" | median)"
  # A VM's speed can drift by a quarter from one minute to the next with
  # no steal time to show for it, independently for each program of a
  # run; each program's fastest run is the least disturbed estimate of its
  # own cost, so those are printed too, beside (not instead of) the medians.
  bc1=$(printf '%s\n' "${c1s[@]}" | least) bw1=$(printf '%s\n' "${w1s[@]}" | least) bw2=$(printf '%s\n' "${w2s[@]}" | least)
  best="mix fastest of $runs runs: sewatch -r one worker ${bc1} cpu-s"
  if [ ${#nds[@]} -gt 0 ]; then
    bnd=$(printf '%s\n' "${nds[@]}" | least)
    best+=", ndpiReader ${bnd} cpu-s (ratio $(ratio "$bnd" "$bc1"))"
  fi
  echo "$best; wall 1 worker ${bw1} s, 2 workers ${bw2} s (scaling $(ratio "$bw1" "$bw2"))"
fi
