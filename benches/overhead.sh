#!/usr/bin/env bash
# resctl's own cost while it watches a job of many threads: CPU time (as % of
# one core) and resident memory of the resctl process, measured from /proc at
# the end of the watch. Goals (issue "resctl run"): <= 0.2 % of one core and
# <= 8 MiB RSS while watching a 1,000-thread job for 60 s.
#
#   benches/overhead.sh [THREADS] [SECONDS]      (defaults 1000 60)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-1000}
seconds=${2:-60}
cargo build --release --quiet --bins --examples
ticks=$(getconf CLK_TCK)
# resctl's log goes to a private folder of this run (a fixed name in /tmp could be planted).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

target/release/resctl run --interval 1s -- \
    target/release/examples/threads "$threads" --hold "$((seconds + 2))s" 2>"$work/resctl.log" &
resctl_pid=$!
sleep 1
start_cpu=$(awk '{print $14 + $15}' "/proc/$resctl_pid/stat")
start=$(date +%s.%N)
sleep "$seconds"
end_cpu=$(awk '{print $14 + $15}' "/proc/$resctl_pid/stat")
end=$(date +%s.%N)
rss_kib=$(awk '/^VmRSS/ {print $2}' "/proc/$resctl_pid/status")
hwm_kib=$(awk '/^VmHWM/ {print $2}' "/proc/$resctl_pid/status")
job_threads=$(awk '/^Threads/ {print $2}' "/proc/$(pgrep -P "$resctl_pid" | head -1)/status" 2>/dev/null || echo "?")
wait "$resctl_pid" || true

python3 - "$start_cpu" "$end_cpu" "$start" "$end" "$ticks" "$rss_kib" "$hwm_kib" "$job_threads" <<'PY'
import sys
c0, c1, t0, t1, hz, rss, hwm, jt = sys.argv[1:]
cpu = (float(c1) - float(c0)) / float(hz)
wall = float(t1) - float(t0)
pct = 100.0 * cpu / wall
print(f"job threads:      {jt}")
print(f"watched for:      {wall:.1f} s")
print(f"resctl CPU:       {cpu:.3f} s = {pct:.3f} % of one core   (goal <= 0.2 %: ratio {pct/0.2:.2f}x of the goal)")
print(f"resctl RSS:       {int(rss)/1024:.1f} MiB (peak {int(hwm)/1024:.1f} MiB)   (goal <= 8 MiB: ratio {int(hwm)/1024/8:.2f}x)")
PY
