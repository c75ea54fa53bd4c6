#!/usr/bin/env bash
# Side by side with what users would do instead (issue #11 item 5): each workload under each
# contender on the same memory budget, then docs/benchmarks.md (every cell) and
# docs/benchmarks.svg (wall ÷ oracle per contender) are regenerated from the raw results.
#
#   benches/compare.sh [--runs N] [--quick] [--workloads LIST] [--run-timeout SECONDS]
#
#   --runs N   runs per contender and workload (default 10; the medians are reported)
#   --workloads LIST  the workloads to run, comma-separated (default: all; same as WORKLOADS)
#   --run-timeout SECONDS  one run that lasts longer is stopped (SIGTERM to its process
#              group, SIGKILL 10 s later) and counted as not finished, exit 124 (default
#              1800, 300 with --quick; RUN_TIMEOUT)
#   --quick    small task counts and times, at most 4 workers: the whole comparison in a few
#              minutes, to try it (the report says it is a quick run). The default sizes make
#              each job run for at least a minute at the oracle's count.
#
# Workloads (sizes and budgets from the environment; defaults without / with --quick):
#   uniform   worker_pool, POOL_TASKS (320 / 16) tasks of UNIFORM_MEMORY (24M) for
#             POOL_TASK_TIME (1s / 400ms), budget UNIFORM_BUDGET (128M / 80M)
#   variable  worker_pool, VARIABLE_TASKS (400 / 16) tasks of VARIABLE_MEMORY (20M..60M: seeded
#             sizes skewed low), budget VARIABLE_BUDGET (192M / 112M)
#   phased    worker_pool, PHASED_TASKS (240 / 24) tasks of PHASED_MEMORY (8M,36M,8M),
#             budget PHASED_BUDGET (128M / 96M)
#   make      a generated Makefile of MAKE_RECIPES (128 / 12) recipes, each `alloc
#             MAKE_RECIPE_MEMORY (48M) --hold MAKE_RECIPE_TIME (2s / 500ms)`, budget
#             MAKE_BUDGET (200M / 128M)
#   cargo     a cold `cargo build --offline` of this crate's CARGO_BUILD_ARGS ("--lib" / small
#             dependencies: "-p memchr -p itoa -p anstyle -p clap_lex -p libc -p humantime")
#             into a private target folder, budget CARGO_BUDGET (1G / 512M), at most
#             CARGO_MAX_WORKERS (4 / 3) jobs; one probe build first: if it cannot build offline
#             the workload is skipped and the report says why (COMPARE_CARGO=0 skips it too)
#   MAX_WORKERS (8 / 4) is the largest count of the pools and make; WORKLOADS (default all:
#   "uniform variable phased make cargo") picks some.
# Contenders, each on the workload's budget B:
#   unmanaged max   `resctl run --memory-max B -- JOB` at MAX workers, not steered (the pool
#                   with --ignore-file, make -jMAX): what does not fit is OOM-killed
#   systemd-run MemoryMax / MemoryHigh+Max / systemd-oomd   the job at MAX in `systemd-run
#                   --scope -p MemoryMax=B` (+ `-p MemoryHigh=0.9B`; + `-p
#                   ManagedOOMMemoryPressure=kill`); only where systemd is PID 1 on cgroup v2
#                   (oomd: where systemd-oomd is active), else recorded as not available and why
#   static K        K = 1..MAX as `unmanaged max`; the oracle is the fastest median among the
#                   counts that finished every run
#   resctl first    `resctl run --memory-max B -- JOB` following the file (make and cargo:
#                   `--jobserver=MAX`), no history
#   resctl second   the same with a private history taught by one earlier run (and by each run)
# In the VM test bed (`tests/vm/run.sh --bench compare:'--quick --runs 2'`, no cargo there):
# RESCTL_BIN names resctl and RESCTL_EXAMPLES the folder of the examples, nothing is built,
# and the raw results are printed between "==== results.tsv" / "==== meta.tsv" lines for the
# host to render (examples/benchmarks_report --results FILE --meta FILE ...).
# Raw results: target/compare/results.tsv (one line per run), target/compare/meta.tsv (the
# machine, the command, the workloads), logs and summaries in target/compare/logs/. The report:
# examples/benchmarks_report.rs. Never a pass/fail: the exit status says only whether the
# comparison ran.
set -euo pipefail
cd "$(dirname "$0")/.."
# The command as typed, led by the settings it took from the environment (sizes, budgets,
# binaries), so that the report names the job it measured.
settings=()
for knob in WORKLOADS RUN_TIMEOUT MAX_WORKERS POOL_TASKS POOL_TASK_TIME UNIFORM_MEMORY \
    UNIFORM_BUDGET VARIABLE_TASKS VARIABLE_MEMORY VARIABLE_BUDGET PHASED_TASKS PHASED_MEMORY \
    PHASED_BUDGET MAKE_RECIPES MAKE_RECIPE_MEMORY MAKE_RECIPE_TIME MAKE_BUDGET CARGO_BUILD_ARGS \
    CARGO_BUDGET CARGO_MAX_WORKERS COMPARE_CARGO RESCTL_BIN RESCTL_EXAMPLES; do
    [[ -z ${!knob+set} ]] || settings+=("$knob=${!knob@Q}")
done
invocation="${settings[*]+${settings[*]} }benches/compare.sh${*:+ $*}"
usage="usage: benches/compare.sh [--runs N] [--quick] [--workloads LIST] [--run-timeout SECONDS]"
runs=10
quick=0
workload_list=${WORKLOADS:-}
run_timeout=${RUN_TIMEOUT:-}
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) runs=${2:-}; shift 2 || { echo "$usage" >&2; exit 2; } ;;
        --runs=*) runs=${1#--runs=}; shift ;;
        --quick) quick=1; shift ;;
        --workloads) workload_list=${2:-}; shift 2 || { echo "$usage" >&2; exit 2; } ;;
        --workloads=*) workload_list=${1#--workloads=}; shift ;;
        --run-timeout) run_timeout=${2:-}; shift 2 || { echo "$usage" >&2; exit 2; } ;;
        --run-timeout=*) run_timeout=${1#--run-timeout=}; shift ;;
        -h | --help) echo "$usage"; exit 0 ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
done
if ! [[ $runs =~ ^[1-9][0-9]*$ ]]; then
    echo "compare.sh: --runs wants a positive whole number, not '$runs'" >&2
    exit 2
fi
# pick QUICK_VALUE FULL_VALUE: the default for this mode.
pick() { if ((quick)); then echo "$1"; else echo "$2"; fi; }
run_timeout=${run_timeout:-$(pick 300 1800)}
if ! [[ $run_timeout =~ ^[1-9][0-9]*$ ]]; then
    echo "compare.sh: --run-timeout wants a positive number of seconds, not '$run_timeout'" >&2
    exit 2
fi

max_workers=${MAX_WORKERS:-$(pick 4 8)}
pool_tasks=${POOL_TASKS:-$(pick 16 320)}
pool_task_time=${POOL_TASK_TIME:-$(pick 400ms 1s)}
uniform_memory=${UNIFORM_MEMORY:-24M}
uniform_budget=${UNIFORM_BUDGET:-$(pick 80M 128M)}
variable_tasks=${VARIABLE_TASKS:-$(pick 16 400)}
variable_memory=${VARIABLE_MEMORY:-20M..60M}
variable_budget=${VARIABLE_BUDGET:-$(pick 112M 192M)}
phased_tasks=${PHASED_TASKS:-$(pick 24 240)}
phased_memory=${PHASED_MEMORY:-8M,36M,8M}
phased_budget=${PHASED_BUDGET:-$(pick 96M 128M)}
make_recipes=${MAKE_RECIPES:-$(pick 12 128)}
make_recipe_memory=${MAKE_RECIPE_MEMORY:-48M}
make_recipe_time=${MAKE_RECIPE_TIME:-$(pick 500ms 2s)}
make_budget=${MAKE_BUDGET:-$(pick 128M 200M)}
cargo_build_args=${CARGO_BUILD_ARGS:-$(pick "-p memchr -p itoa -p anstyle -p clap_lex -p libc -p humantime" "--lib")}
cargo_budget=${CARGO_BUDGET:-$(pick 512M 1G)}
cargo_max_workers=${CARGO_MAX_WORKERS:-$(pick 3 4)}
read -r -a workloads <<<"${workload_list//,/ }"
((${#workloads[@]})) || workloads=(uniform variable phased make cargo)
for count in "$max_workers" "$cargo_max_workers"; do
    [[ $count =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: worker counts must be positive: $count" >&2; exit 2; }
done

root=$PWD
if [[ -n ${RESCTL_BIN:-} ]]; then
    # Given binaries (the VM bed): nothing is built, and the report is rendered elsewhere.
    resctl=$RESCTL_BIN
    examples=${RESCTL_EXAMPLES:-$(dirname "$RESCTL_BIN")/examples}
    render=0
    out=${COMPARE_OUT:-$(mktemp -d)/compare}
else
    render=1
    cargo build --release --quiet --bins --examples
    resctl=$root/target/release/resctl
    examples=$root/target/release/examples
fi
pool=$examples/worker_pool
alloc=$examples/alloc
report=$examples/benchmarks_report
for binary in "$resctl" "$pool" "$alloc"; do
    [[ -x $binary ]] || { echo "compare.sh: $binary is not an executable" >&2; exit 2; }
done
out=${out:-${COMPARE_OUT:-$root/target/compare}}
logs=$out/logs
results=$out/results.tsv
meta=$out/meta.tsv
rm -rf "$logs"
mkdir -p "$logs"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Every run starts from the configuration, not from what earlier runs taught resctl; the
# "resctl second" contender turns a private history on for its own runs.
export RESCTL_NO_HISTORY=1
started=$(date +%s)

# to_bytes SIZE: 128M -> 134217728 (binary units, as resctl and systemd read them).
to_bytes() {
    local number=${1%[KkMmGgTt]} unit=${1: -1} shift=0
    case $unit in
        K | k) shift=10 ;; M | m) shift=20 ;; G | g) shift=30 ;; T | t) shift=40 ;;
        *) number=$1 ;;
    esac
    [[ $number =~ ^[0-9]+$ ]] || { echo "compare.sh: size '$1' must be a whole number with K, M, G or T" >&2; exit 2; }
    echo $((number << shift))
}

# psi_some_total: the host's memory PSI "some" total stall, microseconds ("-" without PSI).
psi_some_total() {
    local total
    total=$(sed -n 's/^some .*total=\([0-9]*\).*/\1/p' /proc/pressure/memory 2>/dev/null || true)
    echo "${total:--}"
}

# json_number FILE KEY: a top-level number of a summary JSON ("-" if absent).
json_number() {
    local value
    value=$(grep -o "\"$2\": *[0-9]*" "$1" 2>/dev/null | head -n 1 | grep -o '[0-9]*$' || true)
    echo "${value:--}"
}

# Where a systemd contender can run, or why not (empty: available).
systemd_missing=""
if [[ ! -d /run/systemd/system ]]; then
    systemd_missing="systemd is not PID 1 (/run/systemd/system does not exist)"
elif ! command -v systemd-run >/dev/null; then
    systemd_missing="systemd-run is not installed"
elif [[ $(stat -fc %T /sys/fs/cgroup) != cgroup2fs ]]; then
    systemd_missing="not a cgroup v2 host (MemoryMax= and MemoryHigh= need the unified hierarchy)"
fi
oomd_missing=$systemd_missing
if [[ -z $oomd_missing ]] && ! systemctl is-active --quiet systemd-oomd; then
    oomd_missing="systemd-oomd is not active (systemctl is-active systemd-oomd)"
fi
systemd_user=()
((EUID == 0)) || systemd_user=(--user)
# Runs inside a systemd scope: the job, then the scope's memory.peak and oom_kill count into
# the file named by $1, and the job's exit status. (If systemd stops the scope after an OOM
# kill the wrapper dies with the job: watch_scope's last reading and the kernel log stand in.)
# shellcheck disable=SC2016 # expanded by the inner bash
scope_wrapper='figures=$1; shift; code=0; "$@" || code=$?
cg=/sys/fs/cgroup$(sed -n "s/^0:://p" /proc/self/cgroup)
{ sed "s/^/peak /" "$cg/memory.peak"; grep "^oom_kill " "$cg/memory.events"; } >"$figures" 2>/dev/null
exit "$code"'
scope_serial=0
scope_unit=""

# watch_scope UNIT FILE: while UNIT's cgroup exists, writes its memory.peak and oom_kill
# count to FILE every 0.2 s (bash builtins only, so the job under test is barely disturbed):
# what is known of a scope that systemd stopped, wrapper and all, after an OOM kill.
watch_scope() {
    local unit=$1 file=$2 cg="" i peak line kills
    for ((i = 0; i < 100; i++)); do
        cg=$(systemctl ${systemd_user[@]+"${systemd_user[@]}"} show -p ControlGroup --value \
            "$unit.scope" 2>/dev/null || true)
        [[ -z $cg ]] || break
        sleep 0.1
    done
    [[ -n $cg ]] || return 0
    cg=/sys/fs/cgroup$cg
    while read -r peak 2>/dev/null <"$cg/memory.peak"; do
        kills=""
        while read -r line; do
            [[ $line == "oom_kill "* ]] && kills=$line
        done 2>/dev/null <"$cg/memory.events"
        printf 'peak %s\n%s\n' "$peak" "$kills" >"$file.tmp" && mv -f "$file.tmp" "$file"
        sleep 0.2
    done
}

# scope_oom_kills UNIT: the OOM kills the kernel logged for UNIT's scope (one
# "oom-kill:... oom_memcg=.../UNIT.scope," line each); nothing when the log cannot be read.
scope_oom_kills() {
    local log
    log=$(dmesg 2>/dev/null) || return 0
    grep -c "oom_memcg=[^,]*/$1\.scope," <<<"$log" || true
}

# The workloads' jobs. job_static KIND K and job_follow KIND set the array `job` (the command
# at K workers, unsteered; the command that follows resctl) and `follow_options` (resctl
# options the following form needs). prepare KIND runs before each run; tasks_done KIND OUT
# prints the tasks that finished ("-" if unknown).
job_static() {
    case $1 in
        uniform | variable | phased) pool_job "$1"; job+=(--workers "$2" --ignore-file) ;;
        make) job=(make -s -C "$work/make" "-j$2") ;;
        cargo) cargo_job; job+=("-j$2") ;;
    esac
}
job_follow() {
    follow_options=()
    case $1 in
        uniform | variable | phased) pool_job "$1" ;;
        make) job=(make -s -C "$work/make"); follow_options=("--jobserver=$max_workers") ;;
        cargo) cargo_job; follow_options=("--jobserver=$cargo_max_workers") ;;
    esac
}
pool_job() {
    case $1 in
        uniform) job=("$pool" --tasks "$pool_tasks" --task-memory "$uniform_memory") ;;
        variable) job=("$pool" --tasks "$variable_tasks" --task-memory "$variable_memory") ;;
        phased) job=("$pool" --tasks "$phased_tasks" --task-memory "$phased_memory") ;;
    esac
    job+=(--task-time "$pool_task_time")
}
cargo_job() {
    local args
    read -r -a args <<<"$cargo_build_args"
    job=(env "CARGO_TARGET_DIR=$work/cargo-target" cargo build --offline --quiet
        --manifest-path "$root/Cargo.toml" "${args[@]}")
}
prepare() {
    case $1 in
        make) rm -rf "$work/make/done"; mkdir "$work/make/done" ;;
        cargo) rm -rf "$work/cargo-target" ;;
    esac
}
tasks_done() {
    local done_count
    case $1 in
        uniform | variable | phased)
            done_count=$(sed -n 's/^worker_pool: done tasks=\([0-9]*\).*/\1/p' "$2" | tail -n 1) ;;
        make) done_count=$(find "$work/make/done" -type f | wc -l) ;;
        *) done_count="" ;;
    esac
    echo "${done_count:--}"
}
workload_budget() {
    case $1 in
        uniform) echo "$uniform_budget" ;; variable) echo "$variable_budget" ;;
        phased) echo "$phased_budget" ;; make) echo "$make_budget" ;; cargo) echo "$cargo_budget" ;;
    esac
}
workload_max() { if [[ $1 == cargo ]]; then echo "$cargo_max_workers"; else echo "$max_workers"; fi; }

# measure WORKLOAD CONTENDER RUN COMMAND...: runs COMMAND once (@SUMMARY@ and @FIGURES@ in it
# become this run's summary and scope-figures files) and appends its line to the results.
measure() {
    local workload=$1 contender=$2 run=$3
    shift 3
    local base="$logs/$workload.$contender.$run"
    local summary="$base.json" figures="$base.scope"
    local command=("${@//@SUMMARY@/$summary}")
    command=("${command[@]//@FIGURES@/$figures}")
    printf '\r%-10s %-20s run %s/%d ' "$workload" "$contender" "$run" "$runs" >&2
    prepare "$workload"
    local psi_before psi_after start end code=0
    psi_before=$(psi_some_total)
    start=$(date +%s%N)
    timeout --kill-after=10 "$run_timeout" "${command[@]}" >"$base.out" 2>"$base.err" </dev/null ||
        code=$?
    local note=""
    ((code != 124)) || note="stopped after the run timeout of $run_timeout s"
    end=$(date +%s%N)
    psi_after=$(psi_some_total)
    local stall=- peak=- oom=- wall
    wall=$(printf '%d.%03d' $(((end - start) / 1000000000)) $((((end - start) / 1000000) % 1000)))
    [[ $psi_before == - || $psi_after == - ]] || stall=$((psi_after - psi_before))
    if [[ -s $summary ]]; then
        peak=$(json_number "$summary" peak_memory)
        oom=$(json_number "$summary" oom_kills)
    elif [[ -s $figures ]]; then
        peak=$(sed -n 's/^peak \([0-9]*\)$/\1/p' "$figures")
        oom=$(sed -n 's/^oom_kill \([0-9]*\)$/\1/p' "$figures")
    fi
    if [[ -n $scope_unit ]]; then
        # The kernel's own count: a kill just before systemd stopped the scope may have
        # come after the watcher's last reading.
        local logged
        logged=$(scope_oom_kills "$scope_unit")
        [[ -z $logged ]] || oom=$logged
    fi
    printf '%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$contender" "$run" "$code" \
        "$wall" "${peak:--}" "$stall" "$(tasks_done "$workload" "$base.out")" "${oom:--}" "$note" \
        >>"$results"
}

# unavailable WORKLOAD CONTENDER WHY: one line saying the contender could not run here.
unavailable() {
    printf '%s\t%s\t-\t-\t-\t-\t-\t-\t-\t%s\n' "$1" "$2" "not available here: $3" >>"$results"
}

# systemd_runs WORKLOAD CONTENDER WHY_MISSING SYSTEMD_PROPERTIES...: the job at MAX in a
# transient scope with those properties, or one "not available" line.
systemd_runs() {
    local workload=$1 contender=$2 missing=$3 i
    shift 3
    if [[ -n $missing ]]; then
        unavailable "$workload" "$contender" "$missing"
        return
    fi
    job_static "$workload" "$max"
    for ((i = 1; i <= runs; i++)); do
        scope_serial=$((scope_serial + 1))
        # --scope runs the command in the foreground, as a child of nothing: systemd-run
        # execs it, so its exit status is the job's own; --collect drops the unit even when
        # it failed (an OOM kill), so no failed unit is left behind.
        scope_unit="resctl-compare-$$-$scope_serial"
        # The wrapper writes the figures file when it outlives the job; the watcher keeps
        # it current until then (both replace it whole).
        watch_scope "$scope_unit" "$logs/$workload.$contender.$i.scope" &
        local watcher=$!
        measure "$workload" "$contender" "$i" systemd-run ${systemd_user[@]+"${systemd_user[@]}"} \
            --scope --quiet --collect --unit "$scope_unit" "$@" -- \
            bash -c "$scope_wrapper" scope-wrapper @FIGURES@ "${job[@]}"
        kill "$watcher" 2>/dev/null || true
        wait "$watcher" 2>/dev/null || true
        scope_unit=""
    done
}

printf 'workload\tcontender\trun\texit\twall_s\tpeak_bytes\thost_psi_some_us\ttasks_done\toom_kills\tnote\n' >"$results"
{
    printf 'info\tdate\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'info\tcommand\t%s\n' "$invocation"
    printf 'info\tmode\t%s\n' "$(pick quick full)"
    printf 'info\truns\t%s\n' "$runs"
    printf 'info\trun timeout\t%s s\n' "$run_timeout"
    printf 'info\tkernel\t%s\n' "$(uname -r)"
    printf 'info\tcpus\t%s\n' "$(nproc)"
    printf 'info\tmemory\t%s MiB\n' "$(($(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo) / 1024))"
    case $(stat -fc %T /sys/fs/cgroup) in
        cgroup2fs) layout="cgroup v2 (unified)" ;;
        *) if [[ -d /sys/fs/cgroup/unified ]]; then layout="hybrid (cgroup v1 controllers, v2 at /sys/fs/cgroup/unified)"; else layout="cgroup v1"; fi ;;
    esac
    [[ -e /.dockerenv ]] && layout+=", in a Docker container"
    printf 'info\tcgroup\t%s\n' "$layout"
    printf 'info\tsystemd\t%s\n' "$(if [[ -d /run/systemd/system ]]; then echo "PID 1"; else echo "not PID 1"; fi)"
    printf 'info\tpsi\t%s\n' "$(if [[ -r /proc/pressure/memory ]]; then echo "host-wide /proc/pressure/memory"; else echo "not available (no /proc/pressure/memory)"; fi)"
} >"$meta"

for workload in "${workloads[@]}"; do
    case $workload in
        uniform | variable | phased | make | cargo) ;;
        *) echo "compare.sh: unknown workload '$workload' (uniform variable phased make cargo)" >&2; exit 2 ;;
    esac
    budget=$(workload_budget "$workload")
    max=$(workload_max "$workload")
    if [[ $workload == make ]] && ! command -v make >/dev/null; then
        echo "compare.sh: make workload skipped: make is not installed" >&2
        printf 'skipped\tmake\t%s\n' "make is not installed" >>"$meta"
        continue
    fi
    if [[ $workload == make ]]; then
        mkdir -p "$work/make"
        {
            printf 'RECIPES :='
            for ((i = 1; i <= make_recipes; i++)); do printf ' r%d' "$i"; done
            # shellcheck disable=SC2016 # make's variables
            printf '\n.PHONY: all $(RECIPES)\nall: $(RECIPES)\n$(RECIPES):\n'
            printf '\t@%s %s --hold %s 2>/dev/null && touch done/$@\n' "$alloc" \
                "$make_recipe_memory" "$make_recipe_time"
        } >"$work/make/Makefile"
    fi
    if [[ $workload == cargo ]]; then
        why=""
        if [[ ${COMPARE_CARGO:-1} == 0 ]]; then
            why="COMPARE_CARGO=0"
        elif ! command -v cargo >/dev/null; then
            why="cargo is not installed"
        else
            # One build with nothing downloaded tells whether it can run here at all (a
            # missing crate fails it at once) and how long one cold build takes.
            cargo_job
            probe_start=$(date +%s)
            if "${job[@]/#CARGO_TARGET_DIR=*/CARGO_TARGET_DIR=$work/cargo-probe}" \
                >"$logs/cargo-probe.log" 2>&1 </dev/null; then
                printf 'info\tcargo probe\tone cold build at the default -j took %s s\n' \
                    "$(($(date +%s) - probe_start))" >>"$meta"
            else
                why="it cannot build offline here ($(grep -m 1 '^error' "$logs/cargo-probe.log" || tail -n 1 "$logs/cargo-probe.log"))"
            fi
            rm -rf "$work/cargo-probe"
        fi
        if [[ -n $why ]]; then
            echo "compare.sh: cargo workload skipped: $why" >&2
            printf 'skipped\tcargo\t%s\n' "$why" >>"$meta"
            continue
        fi
    fi
    # The meta line: budget, largest count, the job at that count and the following job
    # (paths relative to the repository; the temporary folder as $TMPDIR).
    job_static "$workload" "$max"
    shown_static="${job[*]}"
    job_follow "$workload"
    shown_follow="${follow_options[*]+${follow_options[*]} -- }${job[*]}"
    for shown in shown_static shown_follow; do
        printf -v "$shown" '%s' "${!shown//$root\//}"
        printf -v "$shown" '%s' "${!shown//$work/\$TMPDIR}"
    done
    printf 'workload\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$budget" "$max" "$shown_static" \
        "$shown_follow" >>"$meta"
    budget_bytes=$(to_bytes "$budget")
    run_with_budget=("$resctl" run --memory-max "$budget" --summary-json @SUMMARY@)
    job_static "$workload" "$max"
    for ((i = 1; i <= runs; i++)); do
        measure "$workload" unmanaged-max "$i" "${run_with_budget[@]}" -- "${job[@]}"
    done
    systemd_runs "$workload" systemd-memorymax "$systemd_missing" -p "MemoryMax=$budget_bytes"
    systemd_runs "$workload" systemd-memoryhigh "$systemd_missing" \
        -p "MemoryHigh=$((budget_bytes * 9 / 10))" -p "MemoryMax=$budget_bytes"
    systemd_runs "$workload" systemd-oomd "$oomd_missing" -p "MemoryMax=$budget_bytes" \
        -p ManagedOOMMemoryPressure=kill
    for ((k = 1; k <= max; k++)); do
        job_static "$workload" "$k"
        for ((i = 1; i <= runs; i++)); do
            measure "$workload" "static-$k" "$i" "${run_with_budget[@]}" -- "${job[@]}"
        done
    done
    job_follow "$workload"
    for ((i = 1; i <= runs; i++)); do
        measure "$workload" resctl-first "$i" "${run_with_budget[@]}" \
            ${follow_options[@]+"${follow_options[@]}"} -- "${job[@]}"
    done
    # Second runs: one run teaches a private history, then each run starts from it (and adds
    # to it), as a user's second and later runs would.
    history_dir="$work/history-$workload"
    mkdir -m 700 "$history_dir"
    prepare "$workload"
    RESCTL_NO_HISTORY=0 RESCTL_HISTORY_DIR=$history_dir "$resctl" run --memory-max "$budget" \
        --job-key "compare-$workload" ${follow_options[@]+"${follow_options[@]}"} -- "${job[@]}" \
        >"$logs/$workload.resctl-seed.out" 2>"$logs/$workload.resctl-seed.err" </dev/null || true
    for ((i = 1; i <= runs; i++)); do
        RESCTL_NO_HISTORY=0 RESCTL_HISTORY_DIR=$history_dir measure "$workload" resctl-second "$i" \
            "${run_with_budget[@]}" --job-key "compare-$workload" \
            ${follow_options[@]+"${follow_options[@]}"} -- "${job[@]}"
    done
done
printf '\r%60s\r' '' >&2
printf 'info\telapsed\t%s s\n' "$(($(date +%s) - started))" >>"$meta"

if ((render)); then
    "$report" --results "$results" --meta "$meta" --markdown "$root/docs/benchmarks.md" \
        --svg "$root/docs/benchmarks.svg"
else
    echo "compare.sh: given binaries (RESCTL_BIN): the raw results follow, to be rendered elsewhere" >&2
    echo "==== results.tsv"
    cat "$results"
    echo "==== meta.tsv"
    cat "$meta"
    echo "==== end"
fi
