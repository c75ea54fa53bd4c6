#!/usr/bin/env bash
# Runs every test of resctl: formatting and lints, the host suite (unit tests on
# fixture trees, CLI tests, real v1 cgroup tests on hybrid hosts), then the VM
# suite (real cgroup v2 + systemd + journald under qemu). Fails loudly on the
# first failing stage; a VM suite that cannot run is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each stage's header says how long the one before it took (CI should stay well under 30 min).
stage_started=$SECONDS
stage() {
    printf '\n==== %s (previous stage: %d s, total: %d s)\n' "$*" $((SECONDS - stage_started)) "$SECONDS"
    stage_started=$SECONDS
}

stage "cargo fmt --check"
cargo fmt --all -- --check

stage "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

stage "host test suite: cargo test"
cargo test

stage "the examples' own unit tests: cargo test --examples"
cargo test --examples

# A smoke run: the targets build and survive their corpus and 10 s of new inputs each. The dev
# build saves CI about 3 minutes; a campaign runs the release build (fuzz/README.md).
stage "fuzz smoke: FUZZ_PROFILE=dev fuzz/run.sh 10"
FUZZ_PROFILE=dev fuzz/run.sh 10

stage "Debian package: packaging/build-deb.sh (installed and checked in the VM suite)"
packaging/build-deb.sh

stage "VM test suite: tests/vm/run.sh"
if [ "${RESCTL_SKIP_VM:-0}" = 1 ]; then
    echo "RESCTL_SKIP_VM=1: VM suite NOT run (never set this in CI)" >&2
    exit 1
fi
PROPTEST_CASES=32 RESCTL_TEST_REQUIRE_DEB=1 tests/vm/run.sh

stage "all test suites passed"
