#!/usr/bin/env bash
# negatives.sh: runs sewatch over every capture file under the given
# directories, captures that hold no SoftEther (another project's test
# traces, a day of an office uplink), and reports what it found there:
#   - every SoftEther alert, with its file (each one is a false alert);
#   - the other alerts by signature (other VPNs: right or wrong, a person
#     judges);
#   - the runs that did not end with status 0, with sewatch's message;
#   - the session evidence the detectors reported, by kind: one connection
#     never alerts, so evidence here shows how near ordinary traffic comes.
#
# Usage: scripts/negatives.sh [-b BIN] DIR...
#   BIN defaults to a build of ./cmd/sewatch; JOBS (default: the cores) runs
#   that many files at once; TIMEOUT (default 120 s) bounds one file.
# Exit status: 0 when no SoftEther alert was raised, 1 otherwise, 2 on usage.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=
if [ "${1:-}" = -b ]; then bin=$2; shift 2; fi
[ $# -ge 1 ] || { sed -n '2,16p' "$0" >&2; exit 2; }
for d in "$@"; do [ -d "$d" ] || { echo "negatives.sh: $d: not a directory" >&2; exit 2; }; done
work=$(mktemp -d /tmp/sewatch-neg.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ -z "$bin" ]; then
  bin=$work/sewatch
  go build -o "$bin" ./cmd/sewatch
fi

find "$@" -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' -o -name '*.trace' \
  -o -name '*.pcap.gz' -o -name '*.pcapng.gz' \) -size +0 -print0 | sort -z > "$work/files"
total=$(tr -cd '\0' < "$work/files" | wc -c)
[ "$total" -gt 0 ] || { echo "negatives.sh: no capture files under $*" >&2; exit 2; }

# One file: EVE to $work/N.eve, the debug log (JSON) to $work/N.log, the
# status to $work/N.rc; N numbers the files so names with any character
# are safe.
export bin work TIMEOUT=${TIMEOUT:-120}
one() {
  n=$1 f=$2
  set +e
  timeout "$TIMEOUT" "$bin" -r "$f" --log-level debug --log-format json >"$work/$n.eve" 2>"$work/$n.log"
  echo $? >"$work/$n.rc"
  printf '%s' "$f" >"$work/$n.name"
}
export -f one
tr '\0' '\n' < "$work/files" | awk '{printf "%d\t%s\n", NR, $0}' |
  xargs -d '\n' -P "${JOBS:-$(nproc)}" -n 1 bash -c 'one "${0%%	*}" "${0#*	}"'

# A SoftEther alert is one whose signature names SoftEther (as
# evalcorpus.py judges); other alerts can mention it in their evidence
# (an OpenVPN server that probes like SoftEther's).
sesig='"signature":"[^"]*SoftEther'
se=0
echo "== SoftEther alerts (each one a false alert on traffic without SoftEther)"
for rc in "$work"/*.rc; do
  n=${rc%.rc}
  c=$(grep '"event_type":"alert"' "$n.eve" | grep -c "$sesig" || true)
  if [ "$c" -gt 0 ]; then
    se=$((se + c))
    echo "$(cat "$n.name"): $c: $(grep '"event_type":"alert"' "$n.eve" | grep "$sesig" |
      grep -o '"signature_id":[0-9]*' | cut -d: -f2 | sort | uniq -c | tr -s ' ' | tr '\n' ' ')"
  fi
done
echo "== other alerts by signature"
cat "$work"/*.eve | grep '"event_type":"alert"' | grep -v "$sesig" |
  grep -o '"signature":"[^"]*"' | sort | uniq -c | sort -rn || true
echo "== runs that did not end with status 0"
for rc in "$work"/*.rc; do
  n=${rc%.rc}
  if [ "$(cat "$rc")" != 0 ]; then
    msg=$(grep -v '^{' "$n.log" | tail -n 1 || true)
    echo "$(cat "$n.name"): status $(cat "$rc"): ${msg:-timed out or killed}"
  fi
done
echo "== session evidence by kind"
cat "$work"/*.log | grep '"msg":"evidence"' | grep -o '"kind":"[^"]*"' | cut -d'"' -f4 |
  sort | uniq -c | sort -rn || true
bad=0
for rc in "$work"/*.rc; do
  [ "$(cat "$rc")" = 0 ] || bad=$((bad + 1))
done
echo "== $total files, $se SoftEther alerts, $bad runs with a non-zero status"
[ "$se" -eq 0 ]
