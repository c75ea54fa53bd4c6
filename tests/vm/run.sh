#!/usr/bin/env bash
# Run resctl's test binaries inside a qemu VM with a real cgroup v2 + systemd + journald.
#
# Usage: tests/vm/run.sh [--rebuild] [--keep] [--test NAME]... [FILTER]...
#        tests/vm/run.sh --bench EXAMPLE[:ARGS]...
#
#   --rebuild    rebuild the kernel, initramfs and root image even if the cache is current
#   --keep       never prune this run's folder (normally only the newest 3 runs are kept)
#   --test NAME  build and run only the integration test target NAME (repeatable; passed to
#                `cargo test --no-run --test NAME`); default: every test target of the crate
#   FILTER       passed to every test binary as a libtest name filter
#   --bench EXAMPLE[:ARGS]  instead of the tests, run the release build of examples/EXAMPLE.rs
#                in the guest with ARGS (split on spaces) and `--resctl <release resctl>`,
#                and print what it printed (e.g. --bench 'startup:40'); repeatable. Where
#                examples/EXAMPLE.rs does not exist but benches/EXAMPLE.sh does, that script
#                runs in the guest with bash, ARGS and RESCTL_BIN=<release resctl>
#                (e.g. --bench 'soak:200')
#   --baseline PATH  with --bench: also stage the resctl binary PATH (e.g. the previous
#                commit's release build); a bench script finds it in RESCTL_BASELINE_BIN
#                and runs it side by side with the binary under test (benches/daemon.sh)
#
# Environment:
#   RESCTL_VM_TIMEOUT   seconds the VM may run (default 1200: the whole suite takes 9-11 min
#                       under TCG on 2 CPUs)
#   RESCTL_VM_ACCEL     tcg | kvm (default: kvm only if the CPU has vmx/svm and a probe boots)
#   RESCTL_VM_MIRROR    Debian mirror for debootstrap (default: from the host's apt sources)
#   RESCTL_VM_CONSOLE   0 hides the guest console (default: streamed to stdout)
#   RESCTL_VM_MEMORY    guest memory in MiB (default 2048)
#   RESCTL_VM_BINARY_TIMEOUT  seconds one test binary may run in the guest (default: the VM's
#                       time less a minute, for a test binary at most 420: the longest takes
#                       about 3 min)
#   RESCTL_TEST_*, PROPTEST_*, RUST_LOG, RUST_BACKTRACE   passed into the guest's test environment
#
# Exit codes: 0 all tests passed; 1 a test failed; 2 host-side setup/build failed;
#             3 no result came back from the VM; 124 the VM timed out.
# See tests/vm/README.md.
set -euo pipefail

readonly EXIT_TEST_FAILED=1
readonly EXIT_SETUP_FAILED=2
readonly EXIT_NO_RESULT=3
readonly EXIT_TIMED_OUT=124
readonly RUNS_KEPT=3
readonly HOST_PACKAGES=(qemu-system-x86 debootstrap busybox-static cpio kmod zstd xz-utils e2fsprogs)

vm_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project_dir=$(cd "$vm_dir/../.." && pwd)
cache_dir=$vm_dir/.cache
bed_dir=$cache_dir/bed
deb_cache_dir=$cache_dir/debs
vm_timeout=${RESCTL_VM_TIMEOUT:-1200}
vm_memory=${RESCTL_VM_MEMORY:-2048}

log() { echo "[vm] $*" >&2; }
die() {
    echo "[vm] ERROR: $*" >&2
    exit "$EXIT_SETUP_FAILED"
}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

rebuild=0
keep=0
cargo_test_targets=()
test_filters=()
benches=()
baseline_bin=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --rebuild) rebuild=1 ;;
    --keep) keep=1 ;;
    --test)
        [[ $# -ge 2 ]] || die "--test needs a target name"
        cargo_test_targets+=(--test "$2")
        shift
        ;;
    --test=*) cargo_test_targets+=(--test "${1#--test=}") ;;
    --bench)
        [[ $# -ge 2 ]] || die "--bench needs an example name"
        benches+=("$2")
        shift
        ;;
    --bench=*) benches+=("${1#--bench=}") ;;
    --baseline)
        [[ $# -ge 2 ]] || die "--baseline needs the path of a resctl binary"
        baseline_bin=$2
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    --) ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) test_filters+=("$1") ;;
    esac
    shift
done
if [[ -n $baseline_bin ]]; then
    [[ ${#benches[@]} -gt 0 ]] || die "--baseline is for --bench runs"
    [[ -f $baseline_bin && -x $baseline_bin ]] || die "--baseline $baseline_bin: not an executable file"
fi
[[ $vm_timeout =~ ^[0-9]+$ && $vm_timeout -gt 0 ]] || die "RESCTL_VM_TIMEOUT must be a positive number of seconds, got '$vm_timeout'"
[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap, mknod and apt-get need it)"

# --- cleanup: no qemu left running, no half-built cache ---------------------------------------
vm_group_pid=""    # `timeout` leads its own process group: qemu runs in it
child_group_pid="" # a build step (cargo, build-*.sh) running as leader of its own session
console_pid=""
build_tmp=""
run_dir=""

unmount_below() {
    local dir=$1
    [[ -n $dir && -d $dir ]] || return 0
    awk -v prefix="$dir/" 'index($2, prefix) == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r mount_point; do umount -l "$mount_point" 2>/dev/null || true; done
}

remove_build_dir() {
    local dir=$1
    [[ -n $dir && -d $dir ]] || return 0
    unmount_below "$dir"
    rm -rf --one-file-system "$dir"
}

# shellcheck disable=SC2317 # runs from the EXIT trap; shellcheck 0.9 calls it unreachable
prune_old_runs() {
    local dirs=() dir
    mapfile -t dirs < <(find "$cache_dir" -maxdepth 1 -type d -name 'run-*' -printf '%f\n' | sort -r)
    local kept=0
    for dir in "${dirs[@]}"; do
        [[ -e $cache_dir/$dir/.keep ]] && continue
        if [[ -f $cache_dir/$dir/.running ]] && kill -0 "$(cat "$cache_dir/$dir/.running")" 2>/dev/null; then
            continue # another run.sh is using it
        fi
        kept=$((kept + 1))
        [[ $kept -le $RUNS_KEPT ]] || rm -rf --one-file-system "${cache_dir:?}/$dir"
    done
}

# shellcheck disable=SC2317 # called from the EXIT trap
stop_process_group() { # LEADER_PID WHAT: SIGTERM the group, SIGKILL it after 5 s
    local leader=$1 what=$2
    [[ -n $leader ]] && kill -0 "$leader" 2>/dev/null || return 0
    log "stopping $what (process group $leader)"
    kill -TERM -- "-$leader" 2>/dev/null || kill -TERM "$leader" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 "$leader" 2>/dev/null || break
        sleep 0.5
    done
    kill -KILL -- "-$leader" 2>/dev/null || true
    wait "$leader" 2>/dev/null || true
}

# shellcheck disable=SC2317 # the EXIT trap
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_process_group "$vm_group_pid" "the VM"
    stop_process_group "$child_group_pid" "the build step"
    [[ -n $console_pid ]] && kill "$console_pid" 2>/dev/null
    [[ -n $build_tmp ]] && remove_build_dir "$build_tmp"
    [[ -n $run_dir ]] && rm -f "$run_dir/.running"
    [[ -d $cache_dir ]] && prune_old_runs
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs "$@" as the leader of a new session and waits for it. A signal to this script then
# runs the EXIT trap at once (bash defers traps while a foreground child runs), and the trap
# stops the whole group: cargo with its rustc children, debootstrap with its chroot's dpkg.
run_in_own_group() {
    local status=0
    setsid "$@" &
    child_group_pid=$!
    wait "$child_group_pid" || status=$?
    child_group_pid=""
    return "$status"
}

# --- 1. host packages -------------------------------------------------------------------------
ensure_host_packages() {
    local missing=() package
    for package in "${HOST_PACKAGES[@]}"; do
        [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$package" 2>/dev/null) == "ii "* ]] || missing+=("$package")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    log "installing ${missing[*]}"
    apt-get update -qq >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        die "apt-get install ${missing[*]} failed"
}
ensure_host_packages
command -v python3 >/dev/null || die "python3 is needed to read cargo's JSON output"
command -v cargo >/dev/null || die "cargo not found in PATH"

mkdir -p "$cache_dir"
run_dir=$cache_dir/run-$(date +%Y%m%d-%H%M%S)
[[ -e $run_dir ]] && run_dir=$run_dir-$$
share_dir=$run_dir/share
mkdir -p "$share_dir/results"
echo $$ >"$run_dir/.running"
[[ $keep -eq 1 ]] && touch "$run_dir/.keep"

# --- 2. build the test binaries on the host ---------------------------------------------------
# Prints "NAME<TAB>PATH" for every executable in cargo's JSON messages on stdin; with
# "tests" only test harness binaries (profile.test), with "examples" only example binaries.
list_executables() {
    python3 -c '
import json, sys
wanted = sys.argv[1]
seen = set()
for line in sys.stdin:
    try:
        message = json.loads(line)
    except ValueError:
        continue
    if message.get("reason") != "compiler-artifact" or not message.get("executable"):
        continue
    target, path = message["target"], message["executable"]
    kind = target["kind"][0]
    is_test = message["profile"]["test"]
    if wanted == "tests" and not is_test:
        continue
    if wanted == "examples" and (is_test or kind != "example"):
        continue
    if wanted == "bins" and (is_test or kind != "bin"):
        continue
    name = "%s-%s" % (kind, target["name"]) if wanted == "tests" else target["name"]
    if path not in seen:
        seen.add(path)
        print("%s\t%s" % (name, path))
' "$1"
}

cd "$project_dir"
log "building test binaries (cargo test --no-run ${cargo_test_targets[*]})"
run_in_own_group cargo test --no-run --message-format=json "${cargo_test_targets[@]}" >"$run_dir/cargo-test.json" ||
    die "cargo test --no-run failed"
log "building binaries and examples (cargo build --bins --examples)"
run_in_own_group cargo build --bins --examples --message-format=json >"$run_dir/cargo-build.json" ||
    die "cargo build --bins --examples failed"
target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])') ||
    die "cargo metadata failed"

mapfile -t test_executables < <(list_executables tests <"$run_dir/cargo-test.json")
if [[ ${#benches[@]} -gt 0 ]]; then
    # Benchmarks run on release builds, and instead of the tests.
    log "building release binaries and examples for --bench (cargo build --release)"
    run_in_own_group cargo build --release --bins --examples --message-format=json \
        >"$run_dir/cargo-build-release.json" || die "cargo build --release failed"
    test_executables=()
fi
mapfile -t example_executables < <(list_executables examples <"$run_dir/cargo-build.json")
resctl_bin=$(list_executables bins <"$run_dir/cargo-build.json" | awk -F'\t' '$1 == "resctl" { print $2 }')
[[ ${#test_executables[@]} -gt 0 || ${#benches[@]} -gt 0 ]] || die "cargo built no test executables"
[[ -n $resctl_bin && -x $resctl_bin ]] || die "cargo build produced no resctl binary"

# --- 3. kernel, initramfs, root image (cached) ------------------------------------------------
kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
debian_mirror() {
    if [[ -n ${RESCTL_VM_MIRROR:-} ]]; then
        echo "$RESCTL_VM_MIRROR"
        return
    fi
    local mirror
    # deb822 (.sources) first, then one-line sources.list entries; the plain suite, not -security.
    mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
        /^$/ { if (uris != "" && suites ~ /(^| )bookworm( |$)/) { print uris; exit } uris = ""; suites = "" }
        /^URIs:/ { uris = $2 }
        /^Suites:/ { $1 = ""; suites = $0 }
        END { if (uris != "" && suites ~ /(^| )bookworm( |$)/) print uris }' | head -n1)
    if [[ -z $mirror ]]; then
        mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            awk '$1 == "deb" && $0 ~ / bookworm / { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' | head -n1)
    fi
    echo "${mirror:-http://deb.debian.org/debian}"
}

kpkg=$(kernel_package)
if [[ -z $kpkg ]]; then
    apt-get update -qq >/dev/null || die "apt-get update failed"
    kpkg=$(kernel_package)
fi
[[ -n $kpkg ]] || die "cannot find the kernel package linux-image-amd64 depends on (apt-cache depends)"
kpkg_version=$(apt-cache policy "$kpkg" | awk '/Candidate:/ { print $2 }')
bed_key=$(
    cd "$vm_dir"
    cat build-kernel.sh build-image.sh initramfs-init guest/resctl-vmtest.service
    echo "$kpkg $kpkg_version"
)
bed_key=$(sha256sum <<<"$bed_key" | cut -c1-16)

bed_is_current() {
    [[ -f $bed_dir/key && $(cat "$bed_dir/key") == "$bed_key" ]] &&
        [[ -f $bed_dir/vmlinuz && -f $bed_dir/initrd.img && -f $bed_dir/rootfs.img ]]
}

build_bed() {
    local mirror started=$SECONDS
    mirror=$(debian_mirror)
    # Leftovers of builds that were killed (never of a running one: we hold the lock).
    for stale in "$cache_dir"/build.*; do
        [[ -d $stale ]] && remove_build_dir "$stale"
    done
    build_tmp=$(mktemp -d "$cache_dir/build.XXXXXX")
    log "building the VM bed (key $bed_key, kernel $kpkg $kpkg_version, mirror $mirror)"
    run_in_own_group bash "$vm_dir/build-kernel.sh" "$kpkg" "$deb_cache_dir" "$build_tmp" ||
        die "kernel/initramfs build failed"
    run_in_own_group bash "$vm_dir/build-image.sh" "$build_tmp" "$mirror" "$deb_cache_dir/debootstrap" ||
        die "root image build failed"
    unmount_below "$build_tmp"
    rm -rf --one-file-system "$build_tmp/kernel-root" "$build_tmp/rootfs"
    echo "$bed_key" >"$build_tmp/key"
    # Swap in the complete bed; an interrupted build never replaces a working one.
    if [[ -d $bed_dir ]]; then
        mv "$bed_dir" "$cache_dir/bed.old.$$"
    fi
    mv "$build_tmp" "$bed_dir"
    build_tmp=""
    rm -rf "$cache_dir/bed.old.$$"
    log "VM bed built in $((SECONDS - started)) s"
}

exec {lock_fd}>"$cache_dir/.lock"
flock "$lock_fd"
if [[ $rebuild -eq 1 ]] || ! bed_is_current; then
    build_bed
else
    log "using cached VM bed (key $bed_key, kernel $(cat "$bed_dir/kver"))"
fi
# Readers may share the bed; a rebuild by another run waits for this lock, and a running qemu
# keeps its already-open files even if the bed is swapped afterwards.
flock -u "$lock_fd"

# --- KVM or TCG ---------------------------------------------------------------------------------
qemu_base=(qemu-system-x86_64 -m "$vm_memory" -smp "$(nproc)" -display none -monitor none
    -serial stdio -no-reboot -nic none -kernel "$bed_dir/vmlinuz" -initrd "$bed_dir/initrd.img")
# shellcheck disable=SC2054 # the commas belong to qemu's option syntax
readonly TCG_ACCEL=(-accel tcg,thread=multi,tb-size=256 -cpu max)
readonly KVM_ACCEL=(-accel kvm -cpu host)

kvm_boots() {
    grep -qE '\b(vmx|svm)\b' /proc/cpuinfo || return 1
    [[ -w /dev/kvm ]] || return 1
    local probe_log=$run_dir/kvm-probe.log
    timeout 30 "${qemu_base[@]}" "${KVM_ACCEL[@]}" \
        -append "console=ttyS0 panic=-1 quiet resctl.probe=1" >"$probe_log" 2>&1 </dev/null || true
    grep -q RESCTL-PROBE-OK "$probe_log"
}

case ${RESCTL_VM_ACCEL:-auto} in
tcg) accel=("${TCG_ACCEL[@]}") ;;
kvm) accel=("${KVM_ACCEL[@]}") ;;
auto)
    if kvm_boots; then
        accel=("${KVM_ACCEL[@]}")
    else
        accel=("${TCG_ACCEL[@]}")
    fi
    ;;
*) die "RESCTL_VM_ACCEL must be tcg, kvm or auto, got '$RESCTL_VM_ACCEL'" ;;
esac

# --- 4. stage the share -----------------------------------------------------------------------
# Layout mirrors the project: share/ stands for the package root, share/target for the target dir.
stage_executable() { # HOST_PATH: copy to share/target/<path relative to the target dir>
    local relative=${1#"$target_dir"/}
    [[ $relative != "$1" ]] || die "$1 is not under the target directory $target_dir"
    mkdir -p "$share_dir/target/$(dirname "$relative")"
    cp "$1" "$share_dir/target/$relative"
    echo "target/$relative"
}

: >"$share_dir/tests.list"
for entry in "${test_executables[@]}"; do
    name=${entry%%$'\t'*}
    printf '%s\t%s\n' "$name" "$(stage_executable "${entry#*$'\t'}")" >>"$share_dir/tests.list"
done
mkdir -p "$share_dir/target/debug/examples"
for entry in "${example_executables[@]}"; do
    stage_executable "${entry#*$'\t'}" >/dev/null
done
: >"$share_dir/benches.list"
if [[ ${#benches[@]} -gt 0 ]]; then
    stage_executable "$(list_executables bins <"$run_dir/cargo-build-release.json" |
        awk -F'\t' '$1 == "resctl" { print $2 }')" >/dev/null
    for bench in "${benches[@]}"; do
        name=${bench%%:*}
        path=$(list_executables examples <"$run_dir/cargo-build-release.json" |
            awk -F'\t' -v name="$name" '$1 == name { print $2 }')
        args=""
        [[ $bench == *:* ]] && args=${bench#*:}
        if [[ -n $path ]]; then
            staged=$(stage_executable "$path")
        elif [[ -f $project_dir/benches/$name.sh ]]; then
            mkdir -p "$share_dir/benches"
            cp "$project_dir/benches/$name.sh" "$share_dir/benches/"
            staged=benches/$name.sh
        else
            die "--bench $name: no examples/$name.rs and no benches/$name.sh"
        fi
        printf '%s\t%s\t%s\n' "$name" "$staged" "$args" >>"$share_dir/benches.list"
    done
    if [[ -n $baseline_bin ]]; then
        mkdir -p "$share_dir/target/baseline"
        cp "$baseline_bin" "$share_dir/target/baseline/resctl"
    fi
fi
guest_resctl=$(stage_executable "$resctl_bin")
[[ $guest_resctl == target/debug/resctl ]] || die "resctl binary at unexpected place $resctl_bin"
# The Debian package, when packaging/build-deb.sh made one (always under ./target, whatever
# CARGO_TARGET_DIR says): the newest, for the package test.
newest_deb=$(ls -t "$project_dir"/target/debian/resctl_*.deb "$target_dir"/debian/resctl_*.deb \
    2>/dev/null | head -n 1 || true)
if [[ -n $newest_deb ]]; then
    mkdir -p "$share_dir/target/debian"
    cp "$newest_deb" "$share_dir/target/debian/"
fi
for folder in systemd config tests/fixtures; do
    mkdir -p "$share_dir/$folder"
    [[ -d $project_dir/$folder ]] && cp -a "$project_dir/$folder/." "$share_dir/$folder/"
done
cp "$vm_dir/guest/runner.sh" "$share_dir/runner.sh"

# Each test binary (or bench) gets the VM's time less a minute for boot and the journal (at
# least 30 s). A test binary gets at most 420 s, so that one hung binary fails alone and the
# others still run; a bench gets all of it.
test_binary_cap=420
default_binary_timeout=$((vm_timeout > 90 ? vm_timeout - 60 : 30))
if [[ ${#benches[@]} -eq 0 ]] && ((default_binary_timeout > test_binary_cap)); then
    default_binary_timeout=$test_binary_cap
fi
binary_timeout=${RESCTL_VM_BINARY_TIMEOUT:-$default_binary_timeout}
[[ $binary_timeout =~ ^[0-9]+$ && $binary_timeout -gt 0 ]] ||
    die "RESCTL_VM_BINARY_TIMEOUT must be a positive number of seconds, got '$binary_timeout'"
pass_env_lines=()
while IFS= read -r name; do
    pass_env_lines+=("$name=${!name}")
done < <(compgen -e | grep -E '^(RESCTL_TEST_[A-Za-z0-9_]*|PROPTEST_[A-Z_]*|RUST_LOG|RUST_BACKTRACE)$' || true)
{
    printf 'HOST_MANIFEST_DIR=%q\n' "$project_dir"
    printf 'HOST_TARGET_DIR=%q\n' "$target_dir"
    printf 'BINARY_TIMEOUT=%q\n' "$binary_timeout"
    printf 'TEST_FILTERS=('
    [[ ${#test_filters[@]} -gt 0 ]] && printf '%q ' "${test_filters[@]}"
    printf ')\nPASS_ENV_LINES=('
    [[ ${#pass_env_lines[@]} -gt 0 ]] && printf '%q ' "${pass_env_lines[@]}"
    printf ')\n'
} >"$share_dir/run.env"

# --- 5. boot ----------------------------------------------------------------------------------
console_log=$run_dir/console.log
: >"$console_log"
log "booting the VM (${accel[1]}, timeout ${vm_timeout} s, $(wc -l <"$share_dir/tests.list") test binaries)"
started=$SECONDS
# snapshot=on: the image is never written; qemu keeps the overlay in TMPDIR (the run folder).
TMPDIR=$run_dir timeout --kill-after=10 "$vm_timeout" "${qemu_base[@]}" "${accel[@]}" \
    -append "console=ttyS0 root=/dev/vda rw panic=-1 quiet loglevel=3 systemd.show_status=error" \
    -drive "file=$bed_dir/rootfs.img,if=virtio,format=raw,snapshot=on" \
    -virtfs "local,path=$share_dir,mount_tag=share,security_model=none,id=share" \
    -virtfs "local,path=$share_dir/target,mount_tag=target,security_model=none,id=target,readonly=on" \
    >"$console_log" 2>&1 </dev/null &
vm_group_pid=$!
if [[ ${RESCTL_VM_CONSOLE:-1} != 0 ]]; then
    tail -n +1 -F --pid="$vm_group_pid" "$console_log" 2>/dev/null | sed -u 's/^/  guest| /' &
    console_pid=$!
fi
vm_status=0
wait "$vm_group_pid" || vm_status=$?
vm_group_pid=""
elapsed=$((SECONDS - started))
if [[ -n $console_pid ]]; then
    wait "$console_pid" 2>/dev/null || true
    console_pid=""
fi

# --- 6. report --------------------------------------------------------------------------------
results=$share_dir/results
echo
echo "==== resctl VM tests ($elapsed s in the VM) ===="
while IFS=$'\t' read -r name _; do
    [[ -n $name ]] || continue
    if [[ -f $results/$name.rc ]]; then
        rc=$(cat "$results/$name.rc")
        summary=$(grep -E '^test result:' "$results/$name.log" | tail -n 1 || true)
        verdict=PASS
        [[ $rc == 0 ]] || verdict=FAIL
        printf '  %-4s %-28s %s\n' "$verdict" "$name" "${summary:-no 'test result' line, exit $rc}"
        if [[ $rc != 0 ]]; then
            awk '/^test .* FAILED$/ { print } /panicked at/ { getline message; print "    " $0 " " message }' \
                "$results/$name.log" | head -n 40 | sed 's/^/         /'
        fi
    else
        printf '  %-4s %-28s %s\n' "----" "$name" "not run"
    fi
done <"$share_dir/tests.list"
while IFS=$'\t' read -r name _; do
    [[ -n $name ]] || continue
    echo
    echo "==== bench $name (in the VM) ===="
    cat "$results/bench-$name.log" 2>/dev/null || echo "  no output came back"
done <"$share_dir/benches.list"
echo "artifacts: $run_dir"
echo "  console.log (serial console), share/results/<binary>.log|.rc, share/results/journal.txt,"
echo "  share/results/runner.log, share/results/exit-code"

if [[ $vm_status -eq 124 || $vm_status -eq 137 ]]; then
    echo "VM TIMED OUT after $vm_timeout s (RESCTL_VM_TIMEOUT); last console lines:" >&2
    tail -n 20 "$console_log" | sed 's/^/  /' >&2
    exit "$EXIT_TIMED_OUT"
fi
if [[ ! -s $results/exit-code ]]; then
    echo "NO RESULT came back from the VM (qemu exit status $vm_status); last console lines:" >&2
    tail -n 20 "$console_log" | sed 's/^/  /' >&2
    exit "$EXIT_NO_RESULT"
fi
guest_status=$(cat "$results/exit-code")
if [[ $guest_status == 0 ]]; then
    echo "ALL VM TESTS PASSED"
    exit 0
fi
echo "VM TESTS FAILED (guest exit code $guest_status)" >&2
exit "$EXIT_TEST_FAILED"
