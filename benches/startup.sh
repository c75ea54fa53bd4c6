#!/usr/bin/env bash
# Start-up cost of `resctl run -- true` against plain `true`, side by side in one run, with
# the kernel's own floor for putting a job in a cgroup of its own on this host (and
# systemd's scope creation where systemd runs): examples/startup.rs says what each command
# is. Goal (hardening issue): resctl run -- true at most 15 ms over plain true.
# In the VM test bed: tests/vm/run.sh --bench startup
#
#   benches/startup.sh [ROUNDS]        (default 40)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin resctl --example startup
exec target/release/examples/startup "${1:-40}" --resctl target/release/resctl
