#!/bin/bash
# Guest side of tests/vm/run.sh: runs inside the VM as the oneshot unit resctl-vmtest.service,
# from the 9p share mounted at /mnt. Staged fresh for every run (not part of the image).
#
# 1. moves itself into a leaf cgroup `runner` of its unit's (delegated) cgroup, enables
#    +memory +cpu +pids for the unit's children, creates the sibling `tests` whose children get
#    the same controllers;
# 2. exports RESCTL_VM, RESCTL_VM_CGROUP, RESCTL_BIN, RESCTL_EXAMPLES, RESCTL_SHARE;
# 3. runs every staged test binary with --include-ignored --test-threads=1 (+ filters);
# 4. writes results/<name>.log, results/<name>.rc, results/journal.txt, results/runner.log and,
#    last, results/exit-code (0 all passed, 1 something failed) into the share.
set -u

readonly SHARE=/mnt
readonly RESULTS=$SHARE/results
mkdir -p "$RESULTS"
exec > >(tee "$RESULTS/runner.log") 2>&1

say() { echo "resctl-vm: $*"; }
overall=0
fail_setup() {
    say "SETUP FAILED: $*"
    overall=1
}

# The executables come again through a second, read-only 9p export with the page cache on
# (cache=loose): through the uncached share every exec of a 70 MB debug binary re-reads its
# pages over 9p (~2 s under TCG), cached it costs what a local file does. Safe because the
# host never changes a run's staged files.
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro target "$SHARE/target"; then
    say "warning: cannot mount the cached 9p export 'target'; executables load uncached (slow)"
fi

# shellcheck source=/dev/null
. "$SHARE/run.env" # HOST_MANIFEST_DIR HOST_TARGET_DIR BINARY_TIMEOUT TEST_FILTERS PASS_ENV_LINES

# Make the host's absolute paths (baked into test binaries by env!("CARGO_MANIFEST_DIR") and
# env!("CARGO_BIN_EXE_resctl")) resolve to the share in the guest.
link_host_path() {
    local host_path=$1 guest_path=$2
    [[ -e $host_path || -L $host_path ]] && return 0
    mkdir -p "$(dirname "$host_path")" && ln -s "$guest_path" "$host_path"
}
link_host_path "$HOST_MANIFEST_DIR" "$SHARE"
link_host_path "$HOST_TARGET_DIR" "$SHARE/target"
# Unit files under systemd/ may name the binary by an installed path.
for installed in /usr/local/bin/resctl /usr/bin/resctl; do
    [[ -e $installed ]] || ln -s "$SHARE/target/debug/resctl" "$installed"
done

# --- cgroups ----------------------------------------------------------------------------------
# No-internal-process rule: every process of the unit (this shell, tee) must sit in a leaf
# before the unit's cgroup may enable controllers for its children.
# The pid list is read whole first: `while read` re-reads cgroup.procs after each move (bash
# seeks back on regular files) and then skips pids.
move_unit_processes_to_runner() {
    local pid pids attempt
    for attempt in 1 2 3; do
        pids=$(cat "$unit_cgroup/cgroup.procs")
        [[ -z $pids ]] && return 0
        for pid in $pids; do
            # A pid may be gone already (the `cat` above lists itself).
            echo "$pid" 2>/dev/null >"$unit_cgroup/runner/cgroup.procs" || [[ ! -e /proc/$pid ]] ||
                say "cannot move $pid ($(cat "/proc/$pid/comm" 2>/dev/null)) to runner/ (attempt $attempt)"
        done
    done
    pids=$(cat "$unit_cgroup/cgroup.procs")
    [[ -z $pids ]] || say "processes left in the unit's cgroup: $pids"
    [[ -z $pids ]]
}
unit_cgroup_rel=$(sed -n 's/^0:://p' /proc/self/cgroup)
unit_cgroup=/sys/fs/cgroup$unit_cgroup_rel
tests_cgroup=$unit_cgroup/tests
if [[ -z $unit_cgroup_rel || ! -d $unit_cgroup ]]; then
    fail_setup "no cgroup v2 path in /proc/self/cgroup: $(cat /proc/self/cgroup)"
else
    say "unit cgroup $unit_cgroup offers: $(cat "$unit_cgroup/cgroup.controllers")"
    mkdir -p "$unit_cgroup/runner" "$tests_cgroup" || fail_setup "cannot create runner/ and tests/ in $unit_cgroup"
    move_unit_processes_to_runner || fail_setup "cannot move the runner into $unit_cgroup/runner"
    echo "+memory +cpu +pids" >"$unit_cgroup/cgroup.subtree_control" ||
        fail_setup "cannot enable +memory +cpu +pids in $unit_cgroup/cgroup.subtree_control"
    echo "+memory +cpu +pids" >"$tests_cgroup/cgroup.subtree_control" ||
        fail_setup "cannot enable +memory +cpu +pids in $tests_cgroup/cgroup.subtree_control"
fi
say "unit cgroup $unit_cgroup; runner in $(sed -n 's/^0:://p' /proc/self/cgroup)"

export RESCTL_VM=1
export RESCTL_VM_CGROUP=$tests_cgroup
export RESCTL_BIN=$SHARE/target/debug/resctl
export RESCTL_EXAMPLES=$SHARE/target/debug/examples
export RESCTL_SHARE=$SHARE
export CARGO_MANIFEST_DIR=$HOST_MANIFEST_DIR
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}
export HOME=${HOME:-/root} USER=${USER:-root} # a system service has neither
for line in "${PASS_ENV_LINES[@]}"; do
    export "${line?}"
done

# --- tests ------------------------------------------------------------------------------------
cd "$HOST_MANIFEST_DIR" || cd "$SHARE" || true # cargo runs tests from the package root
while IFS=$'\t' read -r name relative_path; do
    [[ -n $name ]] || continue
    say "running $name"
    started=$SECONDS
    # A hung binary is killed before the VM's own timeout, so the journal still comes back.
    timeout --kill-after=10 "$BINARY_TIMEOUT" \
        "$SHARE/$relative_path" --include-ignored --test-threads=1 "${TEST_FILTERS[@]}" \
        >"$RESULTS/$name.log" 2>&1 </dev/null
    rc=$?
    [[ $rc -eq 124 || $rc -eq 137 ]] && say "$name: KILLED after $BINARY_TIMEOUT s (binary timeout)"
    echo "$rc" >"$RESULTS/$name.rc"
    summary=$(grep -E '^test result:' "$RESULTS/$name.log" | tail -n 1)
    say "$name: exit $rc in $((SECONDS - started)) s: ${summary:-no summary line}"
    [[ $rc -eq 0 ]] || overall=1
done <"$SHARE/tests.list"

# --- benchmarks (tests/vm/run.sh --bench) -----------------------------------------------------
if [[ -s $SHARE/benches.list ]]; then
    while IFS=$'\t' read -r name relative_path args; do
        [[ -n $name ]] || continue
        say "bench $name $args"
        if [[ $relative_path == *.sh ]]; then
            # A bench script (benches/NAME.sh): told where resctl is through RESCTL_BIN, and
            # a baseline binary (run.sh --baseline) through RESCTL_BASELINE_BIN.
            baseline=""
            [[ -x $SHARE/target/baseline/resctl ]] && baseline=$SHARE/target/baseline/resctl
            # shellcheck disable=SC2086 # ARGS are split on spaces, as documented
            RESCTL_BIN="$SHARE/target/release/resctl" RESCTL_BASELINE_BIN=$baseline \
                timeout --kill-after=10 "$BINARY_TIMEOUT" \
                bash "$SHARE/$relative_path" $args >"$RESULTS/bench-$name.log" 2>&1 </dev/null
        else
            # shellcheck disable=SC2086 # ARGS are split on spaces, as documented
            timeout --kill-after=10 "$BINARY_TIMEOUT" "$SHARE/$relative_path" $args \
                --resctl "$SHARE/target/release/resctl" >"$RESULTS/bench-$name.log" 2>&1 </dev/null
        fi
        rc=$?
        say "bench $name: exit $rc"
        [[ $rc -eq 0 ]] || overall=1
    done <"$SHARE/benches.list"
fi

journalctl -b --no-pager -o verbose >"$RESULTS/journal.txt" 2>&1
sync
echo "$overall" >"$RESULTS/exit-code"
sync
say "done, exit code $overall"
exit "$overall"
