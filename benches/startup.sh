#!/usr/bin/env bash
# Start-up cost of `resctl run -- true` against plain `true`, side by side in one run, with
# the kernel's own floor for putting a job in a cgroup of its own on this host:
#   - cgroup v1 (hybrid hosts): mkdir a memory cgroup, fork, move the child in (write "0" to
#     cgroup.procs), exec true, wait, rmdir — a small C program, no resctl;
#   - cgroup v2 with systemd: `systemd-run --scope --quiet true` (resctl re-executes itself in
#     such a scope), and the same C program under the delegated cgroup named by
#     $RESCTL_BENCH_CGROUP when set.
# Goal (hardening issue): resctl run -- true at most 15 ms over plain true.
#
#   benches/startup.sh [ROUNDS]        (default 40; each round runs every command once,
#                                       in turn, so drift hits all of them alike)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-40}
resctl=${RESCTL_BIN:-}
if [[ -z $resctl ]]; then
    cargo build --release --quiet --bin resctl
    resctl=target/release/resctl
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The floor: the kernel work of a job in a new cgroup, without resctl.
cat >"$work/floor.c" <<'C'
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char dir[4096], procs[4200];
    snprintf(dir, sizeof dir, "%s/floor-%d", argv[1], getpid());
    if (mkdir(dir, 0755) != 0) { perror(dir); return 125; }
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    int fd = open(procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0) { perror(procs); rmdir(dir); return 125; }
    pid_t pid = fork();
    if (pid == 0) {
        if (write(fd, "0", 1) != 1) _exit(125);
        execl("/bin/true", "true", (char *)0);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    close(fd);
    if (rmdir(dir) != 0) { perror(dir); return 125; }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}
C
gcc -O2 -o "$work/floor" "$work/floor.c"

commands=("true|/bin/true")
parent=""
if [[ -d /sys/fs/cgroup/memory ]]; then
    layout="cgroup v1 memory (hybrid host)"
    parent=/sys/fs/cgroup/memory$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
elif [[ -n ${RESCTL_BENCH_CGROUP:-} ]]; then
    layout="cgroup v2 (delegated $RESCTL_BENCH_CGROUP)"
    parent=$RESCTL_BENCH_CGROUP
else
    layout="cgroup v2"
fi
[[ -n $parent ]] && commands+=("kernel floor (mkdir, move, exec, rmdir)|$work/floor $parent")
if [[ -d /run/systemd/system ]]; then
    commands+=("systemd-run --scope true|systemd-run --scope --quiet /bin/true")
fi
commands+=("resctl run --monitor-only -- true|$resctl run --monitor-only -- /bin/true")
commands+=("resctl run -- true|$resctl run -- /bin/true")

echo "start-up, $rounds rounds, $(nproc) CPUs, kernel $(uname -r), $layout"
python3 - "$rounds" "${commands[@]}" <<'PY'
import statistics, subprocess, sys, time
rounds = int(sys.argv[1])
entries = [entry.split("|", 1) for entry in sys.argv[2:]]
times = {name: [] for name, _ in entries}
for _ in range(rounds):
    for name, command in entries:
        start = time.perf_counter()
        done = subprocess.run(command.split(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times[name].append((time.perf_counter() - start) * 1000)
        if done.returncode != 0:
            sys.exit(f"{name}: exit {done.returncode}")
base = statistics.median(times["true"])
floor = next((statistics.median(t) for n, t in times.items() if n.startswith(("kernel floor", "systemd-run"))), None)
print(f"{'command':<40} {'median':>8} {'p90':>8} {'over true':>10} {'over floor':>11}")
for name, values in times.items():
    values.sort()
    median = statistics.median(values)
    p90 = values[int(0.9 * (len(values) - 1))]
    over_floor = f"{median - floor:+9.1f} ms" if floor is not None and name.startswith("resctl") else ""
    print(f"{name:<40} {median:7.1f}ms {p90:7.1f}ms {median - base:+8.1f} ms {over_floor:>11}")
resctl = statistics.median(times["resctl run -- true"])
print(f"resctl run -- true over plain true: {resctl - base:.1f} ms (goal <= 15 ms: {(resctl - base) / 15:.2f}x of the goal)")
PY
