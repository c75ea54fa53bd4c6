#!/usr/bin/env bash
# The README's demo: builds resctl and the demo worker pool, then runs the same
# pool twice under the same 96M memory budget — once ignoring resctl (the
# kernel OOM-kills it), once following resctl's thread count (it finishes).
# The budget needs a cgroup: as root resctl makes one anywhere; without root it asks your
# systemd user manager for a delegated scope (cgroup v2 hosts where you are logged in or have
# run `loginctl enable-linger`). Where neither is possible resctl refuses --memory-max
# (exit 125) and says what it needs; the demo stops there with that line.
set -uo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bins --examples || exit 1
resctl=target/release/resctl
pool=target/release/examples/worker_pool
job=(--tasks 12 --task-memory 24M --task-time 400ms)

echo "== 1. unmanaged: 8 workers x 24M in a 96M budget"
"$resctl" run --memory-max 96M -- "$pool" "${job[@]}" --workers 8 --ignore-file
status=$?
if [ "$status" -eq 125 ]; then
    echo "   resctl could not set a budget here (above: why, and the fix); 'resctl doctor' tells more"
    exit 125
fi
echo "   exit status $status (137 = killed by the kernel's OOM killer)"

echo
echo "== 2. the same pool steered by resctl (it follows RESCTL_THREADS_FILE)"
"$resctl" run --memory-max 96M --interval 250ms -- "$pool" "${job[@]}"
echo "   exit status $?"
