#!/usr/bin/env bash
# resctl daemon's own cost while it watches 3 slices holding 1,000 threads in total: CPU
# time (as % of one core) and resident memory of the daemon process, read from /proc at the
# end of the watch. Goals (issue "resctl daemon"): <= 0.2 % of one core and <= 10 MiB RSS
# over 60 s. Needs cgroup v2 and systemd (the VM test bed: tests/vm/run.sh --bench daemon:60).
#
#   benches/daemon.sh [SECONDS] [THREADS]      (defaults 60 1000)
# RESCTL_BIN: the resctl binary (default target/release/resctl, built here).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
threads=${2:-1000}
if [[ -z ${RESCTL_BIN:-} ]]; then
    cargo build --release --quiet --bins --examples
    RESCTL_BIN=target/release/resctl
fi
# The VM runner stages the debug examples and says where (RESCTL_EXAMPLES).
examples=${RESCTL_EXAMPLES:-$(dirname "$RESCTL_BIN")/examples}
[[ -d /run/systemd/system ]] || { echo "daemon.sh: needs systemd (run it in the VM test bed)" >&2; exit 2; }
work=$(mktemp -d)
slices=(resctl-bench-a.slice resctl-bench-b.slice resctl-bench-c.slice)
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
pids=()
trap cleanup EXIT
{
    echo "interval: 1s"
    echo "slices:"
    for slice in "${slices[@]}"; do
        echo "  $slice: { limits: { memory_max: 1G }, memory: { high: 75% } }"
    done
} >"$work/resctl.yaml"
per_slice=$((threads / ${#slices[@]}))
for slice in "${slices[@]}"; do
    systemd-run --scope --quiet --slice="$slice" \
        "$examples/threads" "$per_slice" --hold "$((seconds + 15))s" &
    pids+=($!)
done
"$RESCTL_BIN" daemon --config "$work/resctl.yaml" 2>"$work/daemon.log" &
daemon=$!
pids+=("$daemon")
sleep 3
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$daemon/stat"; }
start_cpu=$(cpu)
start=$(date +%s%N)
sleep "$seconds"
end_cpu=$(cpu)
end=$(date +%s%N)
hwm_kib=$(awk '/^VmHWM/ {print $2}' "/proc/$daemon/status")
rss_kib=$(awk '/^VmRSS/ {print $2}' "/proc/$daemon/status")
watched=0
for slice in "${slices[@]}"; do
    dir=/sys/fs/cgroup$(systemctl show -P ControlGroup "$slice")
    n=$(cat "$dir/pids.current" 2>/dev/null || echo 0)
    watched=$((watched + n))
done
awk -v c0="$start_cpu" -v c1="$end_cpu" -v t0="$start" -v t1="$end" -v hz="$ticks" \
    -v rss="$rss_kib" -v hwm="$hwm_kib" -v tasks="$watched" -v n="${#slices[@]}" 'BEGIN {
    cpu = (c1 - c0) / hz; wall = (t1 - t0) / 1e9; pct = 100 * cpu / wall
    printf "slices watched:   %d, holding %d tasks (threads)\n", n, tasks
    printf "watched for:      %.1f s\n", wall
    printf "daemon CPU:       %.3f s = %.3f %% of one core   (goal <= 0.2 %%: %.2fx of the goal)\n", cpu, pct, pct / 0.2
    printf "daemon RSS:       %.1f MiB (peak %.1f MiB)   (goal <= 10 MiB: %.2fx of the goal)\n", rss / 1024, hwm / 1024, hwm / 1024 / 10
}'
echo "daemon log:"
sed 's/^/  /' "$work/daemon.log"
