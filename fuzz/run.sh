#!/usr/bin/env bash
# Runs resctl's cargo-fuzz targets, each for a given time, and reports per target:
#
#   TARGET executions=N crashes=C exec/s=R wall=Ws
#
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
#   SECONDS  time per target (default 20)
#   TARGET   targets to run (default: every fuzz/fuzz_targets/*.rs)
#
# Environment:
#   FUZZ_RUNS=N        also stop a target after N executions (libFuzzer -runs)
#   FUZZ_MAX_LEN=N     largest input, bytes (default 65536)
#   FUZZ_SANITIZER=S   address (default) or none: resctl's parsers are safe Rust, so a long
#                      campaign may trade AddressSanitizer for speed (debug assertions and
#                      overflow checks stay on either way)
#   FUZZ_EXTRA_ARGS    more libFuzzer flags, split on spaces
#   FUZZ_PROFILE=P     release (default) or dev: dev builds in about a third of the time but
#                      runs 5-50x fewer inputs per second; for CI's smoke run, not a campaign
#
# Installs what it needs when missing: the nightly toolchain (rustup, minimal profile) and
# cargo-fuzz (cargo install --locked). Builds all targets once (release unless FUZZ_PROFILE=dev, with
# debug assertions and overflow checks, AddressSanitizer). Each target fuzzes a scratch corpus
# fuzz/corpus-run/TARGET (git-ignored, kept between runs) seeded from the committed
# fuzz/corpus/TARGET, which is only read. Crash, leak, timeout and OOM inputs go to
# fuzz/artifacts/TARGET/. Exits non-zero if the build failed or any target crashed,
# leaked, timed out, ran out of memory or exited non-zero for any other reason.
set -euo pipefail

fuzz_dir="$(cd "$(dirname "$0")" && pwd)"
cd "$fuzz_dir"

die() {
    echo "fuzz/run.sh: $*" >&2
    exit 1
}

duration="${1:-20}"
[[ "$duration" =~ ^[1-9][0-9]*$ ]] || die "SECONDS must be a positive integer, got '$duration'"
shift || true

all_targets=()
for source in fuzz_targets/*.rs; do
    all_targets+=("$(basename "$source" .rs)")
done
if [ "$#" -gt 0 ]; then
    targets=("$@")
    for target in "${targets[@]}"; do
        [ -f "fuzz_targets/$target.rs" ] ||
            die "no fuzz target '$target' (have: ${all_targets[*]})"
    done
else
    targets=("${all_targets[@]}")
fi

max_len="${FUZZ_MAX_LEN:-65536}"
sanitizer="${FUZZ_SANITIZER:-address}"
[[ "$sanitizer" == address || "$sanitizer" == none ]] ||
    die "FUZZ_SANITIZER must be address or none, got '$sanitizer'"
profile="${FUZZ_PROFILE:-release}"
case "$profile" in
release) profile_flag=(-O) profile_dir=release ;;
dev) profile_flag=(--dev) profile_dir=debug ;;
*) die "FUZZ_PROFILE must be release or dev, got '$profile'" ;;
esac
runs_flag=()
if [ -n "${FUZZ_RUNS:-}" ]; then
    runs_flag=("-runs=$FUZZ_RUNS")
fi
read -r -a extra_args <<<"${FUZZ_EXTRA_ARGS:-}"

# --- tools ---------------------------------------------------------------------------
command -v rustup >/dev/null || die "rustup is needed (to get the nightly toolchain)"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing the nightly toolchain (cargo-fuzz needs it)" >&2
    rustup toolchain install nightly --profile minimal ||
        die "could not install the nightly toolchain"
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked || die "could not install cargo-fuzz"
fi

# The fuzz crate is its own workspace with its own target dir (fuzz/target): sanitizer
# builds must not share, and thrash, the main crate's target dir.
unset CARGO_TARGET_DIR
triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
[ -n "$triple" ] || die "cannot tell the host triple from rustc +nightly -vV"
bin_dir="$fuzz_dir/target/$triple/$profile_dir"

# --- build ---------------------------------------------------------------------------
echo "fuzz/run.sh: building ${#all_targets[@]} targets (cargo +nightly fuzz build ${profile_flag[*]} -a -s $sanitizer)"
build_start=$(date +%s)
if ! cargo +nightly fuzz build "${profile_flag[@]}" -a -s "$sanitizer"; then
    die "building the fuzz targets failed"
fi
echo "fuzz/run.sh: build took $(($(date +%s) - build_start))s"

# --- run -----------------------------------------------------------------------------
mkdir -p corpus-run artifacts logs
failed=()
results=()
for target in "${targets[@]}"; do
    binary="$bin_dir/$target"
    [ -x "$binary" ] || die "built target missing: $binary"
    run_corpus="corpus-run/$target"
    artifacts="artifacts/$target"
    log="logs/$target.log"
    mkdir -p "$run_corpus" "$artifacts"
    seeds=()
    if [ -d "corpus/$target" ]; then
        seeds=("corpus/$target")
    fi
    marker="$(mktemp)"
    echo "fuzz/run.sh: $target for ${duration}s (log: fuzz/$log)"
    start=$(date +%s)
    status=0
    # New inputs go to the first directory (the scratch corpus); the seeds are only read.
    "$binary" "$run_corpus" "${seeds[@]}" \
        -max_total_time="$duration" \
        -rss_limit_mb=2048 \
        -timeout=10 \
        -max_len="$max_len" \
        -print_final_stats=1 \
        -artifact_prefix="$artifacts/" \
        "${runs_flag[@]}" "${extra_args[@]}" >"$log" 2>&1 || status=$?
    wall=$(($(date +%s) - start))
    executions="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
    new_artifacts=()
    while IFS= read -r -d '' file; do
        new_artifacts+=("$file")
    done < <(find "$artifacts" -type f -newer "$marker" -print0)
    rm -f "$marker"
    crashes=${#new_artifacts[@]}
    if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        # A failure that left no input behind (e.g. the sanitizer runtime failed).
        crashes=1
    fi
    line="$target executions=${executions:-unknown} crashes=$crashes exec/s=${rate:-unknown} wall=${wall}s"
    results+=("$line")
    echo "$line"
    if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        failed+=("$target")
        echo "fuzz/run.sh: $target FAILED (exit status $status); last lines of fuzz/$log:" >&2
        tail -n 40 "$log" >&2
        for file in "${new_artifacts[@]}"; do
            echo "fuzz/run.sh: $target artifact: fuzz/$file" >&2
        done
    fi
done

echo
echo "fuzz/run.sh: summary (${duration}s per target, $profile build)"
printf '%s\n' "${results[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz/run.sh: FAILED: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz/run.sh: all ${#targets[@]} targets ran without a crash"
