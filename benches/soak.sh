#!/usr/bin/env bash
# Many consecutive `resctl run`s mixing normal exits, crashes, SIGTERMs to resctl and a check
# of the descriptors the job inherits; afterwards nothing may be left behind: no resctl-<pid>
# cgroup, no run folder, no process of a job, and no descriptor the job got that a plain
# child of this shell would not have. Prints the figures; exits 1 when anything was wrong.
#
#   benches/soak.sh [RUNS]            (default 1000)
#
# Runs as root with resctl's default placement for this host (a v1 memory cgroup on hybrid
# hosts, a systemd scope on v2 hosts with systemd).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1000}
resctl=${RESCTL_BIN:-}
if [[ -z $resctl ]]; then
    cargo build --release --quiet --bin resctl
    resctl=$PWD/target/release/resctl
fi
marker="resctl-soak-$$"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Where leftovers would be.
cgroup_parent=""
if [[ -d /sys/fs/cgroup/memory ]]; then
    cgroup_parent=/sys/fs/cgroup/memory$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
fi
run_base=${XDG_RUNTIME_DIR:-/run}/resctl
count_cgroups() {
    if [[ -n $cgroup_parent ]]; then
        find "$cgroup_parent" -maxdepth 1 -name 'resctl-*' -type d | wc -l
    elif [[ -d /sys/fs/cgroup/resctl.slice ]]; then
        find /sys/fs/cgroup/resctl.slice -mindepth 1 -maxdepth 1 -type d | wc -l
    else
        echo 0
    fi
}
count_run_folders() {
    if [[ -d $run_base ]]; then
        find "$run_base" -mindepth 1 -maxdepth 1 | wc -l
    else
        echo 0
    fi
}
cgroups_before=$(count_cgroups)
folders_before=$(count_run_folders)

declare -A done_by_mode=() wrong_by_mode=()
wrong=0
started=$(date +%s.%N)
for ((i = 0; i < runs; i++)); do
    case $((i % 4)) in
    0)
        mode="exit 3"
        "$resctl" run -- sh -c "exit 3 # $marker" 2>/dev/null && code=0 || code=$?
        expected=3
        ;;
    1)
        mode="crash (SIGSEGV)"
        "$resctl" run -- sh -c "kill -SEGV \$\$ # $marker" 2>/dev/null && code=0 || code=$?
        expected=139
        ;;
    2)
        mode="SIGTERM to resctl"
        setsid "$resctl" run -- sleep "30.$i" 2>/dev/null &
        pid=$!
        sleep "0.0$((RANDOM % 10))"
        kill -TERM "$pid"
        wait "$pid" && code=0 || code=$?
        expected=143
        ;;
    3)
        mode="inherited descriptors"
        # What a plain child of this shell inherits here: the job may get that and no more.
        # (`ls` lists its own descriptors: the inherited ones and the one it reads with.)
        plain=$(ls /proc/self/fd | sort -n | tr '\n' ' ')
        fds=$("$resctl" run -- ls /proc/self/fd 2>/dev/null | sort -n | tr '\n' ' ') && code=0 || code=$?
        expected=0
        if [[ $fds != "$plain" ]]; then
            echo "run $i: the job inherited [$fds], a plain child [$plain]" >&2
            code=-1
        fi
        ;;
    esac
    done_by_mode[$mode]=$((${done_by_mode[$mode]:-0} + 1))
    if [[ $code != "$expected" ]]; then
        wrong=$((wrong + 1))
        wrong_by_mode[$mode]=$((${wrong_by_mode[$mode]:-0} + 1))
        echo "run $i ($mode): exit $code, expected $expected" >&2
    fi
done
ended=$(date +%s.%N)
sleep 1
leftover_cgroups=$(($(count_cgroups) - cgroups_before))
leftover_folders=$(($(count_run_folders) - folders_before))
leftover_processes=$(pgrep -f -c "$marker|sleep 30\.[0-9]" || true)

echo "soak: $runs runs in $(awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.1f", b - a }') s, $(nproc) CPUs, kernel $(uname -r)"
for mode in "${!done_by_mode[@]}"; do
    printf '  %-24s %5d runs, %d wrong exit statuses\n' "$mode" "${done_by_mode[$mode]}" "${wrong_by_mode[$mode]:-0}"
done
echo "  left behind: $leftover_cgroups cgroups, $leftover_folders run folders, $leftover_processes processes"
if ((wrong > 0 || leftover_cgroups > 0 || leftover_folders > 0 || leftover_processes > 0)); then
    echo "soak: FAILED" >&2
    exit 1
fi
echo "soak: nothing left behind, every exit status as a shell would give it"
