#!/usr/bin/env bash
# Goodput: how fast a job whose total need exceeds its memory budget finishes under resctl,
# compared with the best fixed worker count that fits. Goal: resctl's wall time <= 1.10x
# the best static count that survived.
#
#   benches/goodput.sh [REPEATS]        (default 3; the median of the repeats is reported)
#
# The job is the demo pool examples/worker_pool.rs: TASKS tasks of TASK_MEMORY each, held
# for TASK_TIME, under `resctl run --memory-max BUDGET`:
#   resctl     the pool follows RESCTL_THREADS_FILE (resctl steers its worker count);
#   static K   `--workers K --ignore-file` for K in 1..MAX_WORKERS under the same budget
#              (resctl still places and watches it, the pool ignores its advice): the
#              counts that do not fit are OOM-killed by the kernel (exit 137).
# Environment: TASKS (24), TASK_MEMORY (24M), TASK_TIME (1s), BUDGET (128M), MAX_WORKERS (8),
# RESCTL_ARGS (extra options for the managed run only, e.g. "--threads 8 --interval 200ms").
# Never a pass/fail: numbers only.
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-3}
if ! [[ $repeats =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: benches/goodput.sh [REPEATS]" >&2
    exit 2
fi
tasks=${TASKS:-24}
task_memory=${TASK_MEMORY:-24M}
task_time=${TASK_TIME:-1s}
budget=${BUDGET:-128M}
max_workers=${MAX_WORKERS:-8}
read -r -a extra <<<"${RESCTL_ARGS:-}"

cargo build --release --quiet --bins --example worker_pool
resctl=target/release/resctl
pool=target/release/examples/worker_pool
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
job=("$pool" --tasks "$tasks" --task-memory "$task_memory" --task-time "$task_time")

# run NAME [resctl options...] -- [pool options...]: one line "wall_milliseconds exit_code" per
# repeat into $work/NAME.
run() {
    local name=$1
    shift
    local resctl_options=() pool_options=()
    while [[ $# -gt 0 && $1 != -- ]]; do
        resctl_options+=("$1")
        shift
    done
    [[ $# -gt 0 ]] && shift
    pool_options=("$@")
    local i start end code
    for ((i = 1; i <= repeats; i++)); do
        printf '\r%-12s repeat %d/%d' "$name" "$i" "$repeats" >&2
        start=$(date +%s%N)
        code=0
        "$resctl" run --memory-max "$budget" ${resctl_options[@]+"${resctl_options[@]}"} -- \
            "${job[@]}" ${pool_options[@]+"${pool_options[@]}"} \
            >>"$work/$name.out" 2>>"$work/$name.log" || code=$?
        end=$(date +%s%N)
        echo "$(((end - start) / 1000000)) $code" >>"$work/$name"
    done
    printf '\r%40s\r' '' >&2
}

run resctl ${extra[@]+"${extra[@]}"} --
for ((k = 1; k <= max_workers; k++)); do
    run "static-$k" -- --workers "$k" --ignore-file
done

python3 - "$work" "$max_workers" "$repeats" "$tasks" "$task_memory" "$task_time" "$budget" "${RESCTL_ARGS:-}" <<'PY'
import os, re, statistics, sys
work, max_workers, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tasks, task_memory, task_time, budget, extra = sys.argv[4:9]

def load(name):
    rows = [line.split() for line in open(os.path.join(work, name))]
    walls = [int(w) / 1000 for w, _ in rows]
    codes = [int(c) for _, c in rows]
    return walls, codes

def describe(codes):
    if all(c == 0 for c in codes):
        return "ok"
    oom = sum(1 for c in codes if c == 137)
    other = sum(1 for c in codes if c not in (0, 137))
    parts = []
    if oom:
        parts.append(f"{oom}x OOM")
    if other:
        parts.append(f"{other}x exit {sorted(set(c for c in codes if c not in (0, 137)))}")
    return ", ".join(parts)

print(f"goodput: {tasks} tasks x {task_memory} x {task_time} under --memory-max {budget}, "
      f"median of {repeats} (wall seconds of the whole resctl run)")
print(f"{'run':<28}{'median s':>10}{'min s':>8}{'max s':>8}  outcome")
walls, codes = load("resctl")
label = "resctl (follows the file)" + (f" {extra}" if extra else "")
resctl_median = statistics.median(walls) if all(c == 0 for c in codes) else None
print(f"{label:<28}{statistics.median(walls):>10.2f}{min(walls):>8.2f}{max(walls):>8.2f}  {describe(codes)}")
best = None
for k in range(1, max_workers + 1):
    walls_k, codes_k = load(f"static-{k}")
    median = statistics.median(walls_k)
    survived = all(c == 0 for c in codes_k)
    print(f"{f'static --workers {k}':<28}{median:>10.2f}{min(walls_k):>8.2f}{max(walls_k):>8.2f}  {describe(codes_k)}")
    if survived and (best is None or median < best[1]):
        best = (k, median)
print()
if best is None:
    print("no static worker count survived every repeat")
elif resctl_median is None:
    print(f"best static: {best[0]} workers, {best[1]:.2f} s; resctl's run did not succeed every time")
else:
    ratio = resctl_median / best[1]
    print(f"best static that survived: {best[0]} workers, {best[1]:.2f} s")
    print(f"resctl / best static = {resctl_median:.2f} / {best[1]:.2f} = {ratio:.2f}x (goal <= 1.10x)")
    # The controller apart from its margin: resctl against the static count it settled on.
    finals = [int(m.group(1)) for m in (re.search(r"threads \d+ at start, \d+ lowest, (\d+) at end", l)
              for l in open(os.path.join(work, "resctl.log"))) if m]
    if finals:
        settled = statistics.median_low(finals)
        walls_s, codes_s = load(f"static-{settled}") if settled <= max_workers else ([], [])
        if walls_s and all(c == 0 for c in codes_s):
            settled_median = statistics.median(walls_s)
            print(f"resctl ended at {settled} workers (median of its runs); resctl / static {settled} = "
                  f"{resctl_median:.2f} / {settled_median:.2f} = {resctl_median / settled_median:.2f}x "
                  f"(the ramp; the rest of the gap to the best static count is the growth ceiling, "
                  f"high less 5 %)")
# What resctl did: its thread-count changes in the last managed run's log.
changes = [l.split("resctl: ", 1)[-1] for l in open(os.path.join(work, "resctl.log")) if "threads " in l and "->" in l and "summary" not in l]
if changes:
    print("resctl's changes (all repeats):", len(changes))
    for line in changes[:12]:
        print("  " + line.rstrip())
PY
