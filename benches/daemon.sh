#!/usr/bin/env bash
# resctl daemon's own cost while it watches 3 slices holding 1,000 threads in total: CPU
# time (as % of one core) and resident memory of the daemon process, read from /proc at the
# end of the watch. Goals (issue "resctl daemon"): <= 0.2 % of one core and <= 10 MiB RSS
# over 60 s. Needs cgroup v2 and systemd (the VM test bed: tests/vm/run.sh --bench daemon:60).
#
#   benches/daemon.sh [SECONDS] [THREADS]      (defaults 60 1000)
#
# Side by side, over the same seconds, each daemon with its own runtime folder:
#   sleeper   not resctl: a perl loop that only sleeps a second at a time, what any
#             process waking once a second costs here (under an emulator, a lot);
#   floor     the same binary watching no slice: what its loop alone costs (a wake-up a
#             second, its status file);
#   resctl    the binary under test watching the 3 slices;
#   baseline  (when RESCTL_BASELINE_BIN names another resctl, e.g. the previous commit's)
#             that binary watching the same 3 slices.
# CPU is read twice: the kernel's utime+stime (/proc/PID/stat, in clock ticks: sampled at
# the timer tick, coarse) and the scheduler's run time (/proc/PID/task/*/schedstat, in ns,
# threads alive at both readings). The ratios printed at the end are resctl / baseline, and
# (resctl - floor) per slice, from the scheduler's figure.
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
# In /run (tmpfs) where there is one, like the service's RuntimeDirectory=: the status file
# each daemon replaces every 2 s goes there.
work=$(mktemp -d -p "$([[ -w /run ]] && echo /run || echo "${TMPDIR:-/tmp}")")
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
} >"$work/slices.yaml"
echo "interval: 1s" >"$work/none.yaml"
per_slice=$((threads / ${#slices[@]}))
for slice in "${slices[@]}"; do
    systemd-run --scope --quiet --slice="$slice" \
        "$examples/threads" "$per_slice" --hold "$((seconds + 20))s" &
    pids+=($!)
done

# NAME BINARY CONFIG: starts a daemon in its own runtime folder; its pid goes in daemon_pid[NAME].
declare -A daemon_pid
start_daemon() {
    mkdir -p "$work/run-$1"
    RUNTIME_DIRECTORY="$work/run-$1" "$2" daemon --config "$3" 2>"$work/$1.log" &
    daemon_pid[$1]=$!
    pids+=($!)
}
perl -e 'select(undef, undef, undef, 1) while 1' &
daemon_pid[sleeper]=$!
pids+=($!)
names=(sleeper floor resctl)
start_daemon floor "$RESCTL_BIN" "$work/none.yaml"
start_daemon resctl "$RESCTL_BIN" "$work/slices.yaml"
if [[ -n ${RESCTL_BASELINE_BIN:-} ]]; then
    names+=(baseline)
    start_daemon baseline "$RESCTL_BASELINE_BIN" "$work/slices.yaml"
fi
sleep 5
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Scheduler run time of PID's threads, ns, one "tid ns name" line each.
run_time() {
    for task in /proc/"$1"/task/*; do
        echo "${task##*/} $(cut -d' ' -f1 "$task/schedstat") $(tr ' ' '_' <"$task/comm")"
    done
}
declare -A start_cpu end_cpu
for name in "${names[@]}"; do
    start_cpu[$name]=$(cpu "${daemon_pid[$name]}")
    run_time "${daemon_pid[$name]}" >"$work/$name.run0"
done
start=$(date +%s%N)
sleep "$seconds"
for name in "${names[@]}"; do
    end_cpu[$name]=$(cpu "${daemon_pid[$name]}")
    run_time "${daemon_pid[$name]}" >"$work/$name.run1"
done
end=$(date +%s%N)
watched=0
for slice in "${slices[@]}"; do
    dir=/sys/fs/cgroup$(systemctl show -P ControlGroup "$slice")
    n=$(cat "$dir/pids.current" 2>/dev/null || echo 0)
    watched=$((watched + n))
done
wall=$(awk -v t0="$start" -v t1="$end" 'BEGIN { printf "%.3f", (t1 - t0) / 1e9 }')
echo "slices watched:   ${#slices[@]}, holding $watched tasks (threads); watched for $wall s, side by side"
declare -A pct
printf '%-9s %-34s %-38s %s\n' "" "utime+stime (ticks)" "scheduler run time (ns)" "peak RSS"
for name in "${names[@]}"; do
    pid=${daemon_pid[$name]}
    hwm_kib=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
    used=$((end_cpu[$name] - start_cpu[$name]))
    # Threads alive at both readings; one that came and went in between is not counted.
    ran_ns=$(awk 'NR == FNR { at[$1] = $2; next } ($1 in at) { sum += $2 - at[$1] } END { printf "%d", sum }' \
        "$work/$name.run0" "$work/$name.run1")
    pct[$name]=$(awk -v ns="$ran_ns" -v w="$wall" 'BEGIN { printf "%.4f", 100 * ns / 1e9 / w }')
    awk -v name="$name" -v c="$used" -v hz="$ticks" -v w="$wall" -v ns="$ran_ns" -v p="${pct[$name]}" -v hwm="$hwm_kib" 'BEGIN {
        printf "%-9s %.2f s (%3d) = %.3f %% of a core   %.3f s = %.4f %% of a core (%.2fx the goal)   %.1f MiB\n",
            name, c / hz, c, 100 * c / hz / w, ns / 1e9, p, p / 0.2, hwm / 1024
    }'
done
echo "(goals: <= 0.2 % of one core, <= 10 MiB peak RSS)"
for name in floor resctl; do
    echo "$name's threads (scheduler run time over the watch):"
    awk 'NR == FNR { at[$1] = $2; next } ($1 in at) { printf "  %-8s %-16s %.4f s\n", $1, $3, ($2 - at[$1]) / 1e9 }' \
        "$work/$name.run0" "$work/$name.run1"
done
awk -v r="${pct[resctl]}" -v f="${pct[floor]}" -v n="${#slices[@]}" 'BEGIN {
    printf "per slice over the floor: %.3f %% of one core ((resctl - floor) / %d)\n", (r - f) / n, n
}'
if [[ -n ${pct[baseline]:-} ]]; then
    awk -v r="${pct[resctl]}" -v b="${pct[baseline]}" 'BEGIN {
        if (b > 0) printf "resctl / baseline: %.2fx\n", r / b
    }'
fi
for name in "${names[@]}"; do
    [[ -f $work/$name.log ]] || continue
    echo "$name daemon log:"
    sed 's/^/  /' "$work/$name.log"
done
