#!/usr/bin/env bash
# The README's demo: builds resctl and the demo worker pool, then runs the same
# pool twice under the same 96M memory budget — once ignoring resctl (the
# kernel OOM-kills it), once following resctl's thread count (it finishes).
# Needs root for cgroups (on a systemd host, resctl creates a delegated scope);
# as another user resctl runs monitor-only and says so.
set -uo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bins --examples || exit 1
resctl=target/release/resctl
pool=target/release/examples/worker_pool
job=(--tasks 12 --task-memory 24M --task-time 400ms)

echo "== 1. unmanaged: 8 workers x 24M in a 96M budget"
"$resctl" run --memory-max 96M -- "$pool" "${job[@]}" --workers 8 --ignore-file
echo "   exit status $? (137 = killed by the kernel's OOM killer)"

echo
echo "== 2. the same pool steered by resctl (it follows RESCTL_THREADS_FILE)"
"$resctl" run --memory-max 96M --interval 250ms -- "$pool" "${job[@]}"
echo "   exit status $?"
