//! Smoke tests of the VM test bed itself (`tests/vm/run.sh`): inside the VM, PID 1 is systemd,
//! cgroup v2 is the only hierarchy, the runner's delegated test cgroup enforces `memory.max`,
//! `systemd-analyze verify` accepts the project's unit files, and journald receives messages.
//!
//! Every test is `#[ignore = "needs VM"]`: a plain `cargo test` on the host skips them, and the
//! VM runner runs them with `--include-ignored`. Run with `tests/vm/run.sh --test vm_smoke`.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Root of the unified cgroup hierarchy in the guest.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Identifier the journald test logs under.
const JOURNAL_TAG: &str = "resctl-vmtest";
/// Unit file suffixes `systemd-analyze verify` understands.
const UNIT_SUFFIXES: &[&str] = &[
    "service",
    "socket",
    "slice",
    "scope",
    "target",
    "timer",
    "path",
    "mount",
    "automount",
    "swap",
];
/// How long a 32 MiB cgroup may take to OOM-kill its growing process (TCG is slow).
const OOM_DEADLINE: Duration = Duration::from_secs(120);
/// How long journald may take to make a message readable.
const JOURNAL_DEADLINE: Duration = Duration::from_secs(20);

/// What `tests/vm/guest/runner.sh` exports to the tests inside the VM.
struct VmEnv {
    /// `RESCTL_VM_CGROUP`: delegated cgroup v2 directory; tests create their cgroups under it.
    test_cgroup: PathBuf,
    /// `RESCTL_BIN`: the resctl binary built on the host.
    resctl_bin: PathBuf,
    /// `RESCTL_EXAMPLES`: folder holding the example binaries.
    examples: PathBuf,
    /// `RESCTL_SHARE`: the share, with the project's `systemd/` and `config/` folders.
    share: PathBuf,
}

/// Reads the VM runner's environment; panics with a skip reason outside the VM.
fn vm_env() -> VmEnv {
    if std::env::var_os("RESCTL_VM").is_none() {
        panic!(
            "skipped: this test needs the VM test bed (RESCTL_VM is unset); \
             run it with tests/vm/run.sh"
        );
    }
    let path_from = |name: &str| -> PathBuf {
        match std::env::var_os(name) {
            Some(value) => PathBuf::from(value),
            None => {
                panic!("{name} is unset although RESCTL_VM is set: the VM runner must export it")
            }
        }
    };
    VmEnv {
        test_cgroup: path_from("RESCTL_VM_CGROUP"),
        resctl_bin: path_from("RESCTL_BIN"),
        examples: path_from("RESCTL_EXAMPLES"),
        share: path_from("RESCTL_SHARE"),
    }
}

/// Reads a file to a string, naming the path on failure.
fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// Splits a space-separated cgroup list file (`cgroup.controllers`, `cgroup.subtree_control`).
fn words(path: impl AsRef<Path>) -> Vec<String> {
    read(path).split_whitespace().map(str::to_owned).collect()
}

/// The value of `key` in a flat-keyed cgroup file such as `memory.events`.
fn keyed_value(path: impl AsRef<Path>, key: &str) -> u64 {
    let path = path.as_ref();
    let text = read(path);
    let line = text
        .lines()
        .find(|line| line.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("{}: no `{key}` line in:\n{text}", path.display()));
    line.split_whitespace()
        .nth(1)
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("{}: bad line `{line}`", path.display()))
}

/// Runs a command to completion, panicking if it cannot be started.
fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program} {args:?}: {error}"))
}

/// A unique token, so a test never matches an earlier run's leftovers.
fn unique_token(label: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!("{label}-{}-{nanos}", std::process::id())
}

/// A child cgroup under `RESCTL_VM_CGROUP`, killed and removed when dropped.
struct TestCgroup {
    /// Absolute path of the cgroup directory.
    path: PathBuf,
}

impl TestCgroup {
    /// Creates `<RESCTL_VM_CGROUP>/<unique name>`.
    fn create(env: &VmEnv, label: &str) -> Self {
        let path = env.test_cgroup.join(unique_token(label));
        fs::create_dir(&path)
            .unwrap_or_else(|error| panic!("cannot create cgroup {}: {error}", path.display()));
        TestCgroup { path }
    }

    /// Writes `value` into the cgroup's `file`.
    fn write(&self, file: &str, value: &str) {
        let path = self.path.join(file);
        fs::write(&path, value).unwrap_or_else(|error| {
            panic!("cannot write {value:?} to {}: {error}", path.display())
        });
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = fs::write(self.path.join("cgroup.kill"), "1");
        let removed =
            common::eventually(Duration::from_secs(10), Duration::from_millis(100), || {
                fs::remove_dir(&self.path).is_ok()
            });
        if !removed {
            eprintln!("warning: could not remove cgroup {}", self.path.display());
        }
    }
}

#[test]
#[ignore = "needs VM"]
fn pid_1_is_systemd() {
    let _env = vm_env();
    assert_eq!(read("/proc/1/comm").trim(), "systemd");
}

#[test]
#[ignore = "needs VM"]
fn cgroup_root_is_pure_v2_with_memory_cpu_pids() {
    let _env = vm_env();
    let mountinfo = read("/proc/self/mountinfo");
    let filesystem_types: Vec<(&str, &str)> = mountinfo
        .lines()
        .filter_map(|line| {
            let mount_point = line.split_whitespace().nth(4)?;
            let (_, after_separator) = line.split_once(" - ")?;
            Some((mount_point, after_separator.split_whitespace().next()?))
        })
        .collect();
    assert!(
        filesystem_types.contains(&(CGROUP_ROOT, "cgroup2")),
        "{CGROUP_ROOT} is not a cgroup2 mount:\n{mountinfo}"
    );
    let v1_mounts: Vec<_> = filesystem_types
        .iter()
        .filter(|(_, fs_type)| *fs_type == "cgroup")
        .collect();
    assert!(
        v1_mounts.is_empty(),
        "cgroup v1 hierarchies mounted: {v1_mounts:?}"
    );

    let controllers = words(Path::new(CGROUP_ROOT).join("cgroup.controllers"));
    for wanted in ["memory", "cpu", "pids"] {
        assert!(
            controllers.iter().any(|controller| controller == wanted),
            "{wanted} missing from {CGROUP_ROOT}/cgroup.controllers: {controllers:?}"
        );
    }
}

#[test]
#[ignore = "needs VM"]
fn test_cgroup_is_writable_and_delegates_memory() {
    let env = vm_env();
    assert!(
        env.test_cgroup.starts_with(CGROUP_ROOT) && env.test_cgroup.is_dir(),
        "RESCTL_VM_CGROUP {} is not a cgroup directory",
        env.test_cgroup.display()
    );
    let subtree_control = words(env.test_cgroup.join("cgroup.subtree_control"));
    for wanted in ["memory", "cpu", "pids"] {
        assert!(
            subtree_control
                .iter()
                .any(|controller| controller == wanted),
            "{wanted} not enabled in {}/cgroup.subtree_control: {subtree_control:?}",
            env.test_cgroup.display()
        );
    }
    let child = TestCgroup::create(&env, "smoke-writable");
    child.write("memory.high", "64M");
    assert_eq!(
        read(child.path.join("memory.high")).trim(),
        (64u64 << 20).to_string()
    );
    assert!(child.path.join("memory.max").is_file());
    assert!(child.path.join("pids.max").is_file());
}

#[test]
#[ignore = "needs VM"]
fn runner_sits_in_a_leaf_beside_the_test_cgroup() {
    let env = vm_env();
    let own = read("/proc/self/cgroup");
    let own_path = own
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("no cgroup v2 line in /proc/self/cgroup: {own}"));
    let own_dir = Path::new(CGROUP_ROOT).join(own_path.trim_start_matches('/'));
    assert_eq!(
        own_dir.file_name().and_then(|name| name.to_str()),
        Some("runner")
    );
    assert_eq!(own_dir.parent(), env.test_cgroup.parent());
    assert!(read(own_dir.join("cgroup.subtree_control"))
        .trim()
        .is_empty());
}

#[test]
#[ignore = "needs VM"]
fn resctl_binary_and_project_folders_are_staged() {
    let env = vm_env();
    let mode = fs::metadata(&env.resctl_bin)
        .unwrap_or_else(|error| panic!("RESCTL_BIN {}: {error}", env.resctl_bin.display()))
        .permissions()
        .mode();
    assert_ne!(
        mode & 0o111,
        0,
        "{} is not executable",
        env.resctl_bin.display()
    );
    assert!(
        env.examples.is_dir(),
        "RESCTL_EXAMPLES {} is not a folder",
        env.examples.display()
    );
    for folder in ["systemd", "config"] {
        let path = env.share.join(folder);
        assert!(path.is_dir(), "{} missing from the share", path.display());
    }
}

#[test]
#[ignore = "needs VM"]
fn memory_max_oom_kills_a_growing_process() {
    let env = vm_env();
    let cgroup = TestCgroup::create(&env, "smoke-oom");
    cgroup.write("memory.max", "32M");
    if cgroup.path.join("memory.swap.max").exists() {
        cgroup.write("memory.swap.max", "0");
    }
    // `tail` keeps the last line in memory; /dev/zero never ends one, so it grows until killed.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"echo $$ > "$1/cgroup.procs" && exec tail /dev/zero"#)
        .arg("sh")
        .arg(&cgroup.path)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start sh: {error}"));
    let status = common::wait_for_exit(
        &mut child,
        OOM_DEADLINE,
        "tail /dev/zero under memory.max=32M",
    );

    assert_eq!(
        status.signal(),
        Some(9),
        "expected SIGKILL from the OOM killer, got {status}"
    );
    let events = cgroup.path.join("memory.events");
    let oom_kills = keyed_value(&events, "oom_kill");
    assert!(
        oom_kills >= 1,
        "{}: oom_kill = {oom_kills}",
        events.display()
    );
    let peak_path = cgroup.path.join("memory.peak");
    if peak_path.exists() {
        let peak: u64 = read(&peak_path).trim().parse().unwrap_or_default();
        assert!(
            (16 << 20..=32 << 20).contains(&peak),
            "memory.peak {peak} not between 16 MiB and the 32 MiB limit"
        );
    }
}

/// Runs `systemd-analyze verify` on `units`, returning (success, combined output).
/// `--man=no`: the guest has no man pages to check `Documentation=` against.
fn systemd_analyze_verify(units: &[PathBuf]) -> (bool, String) {
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(units)
        .output()
        .unwrap_or_else(|error| panic!("cannot run systemd-analyze: {error}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
#[ignore = "needs VM"]
fn systemd_analyze_verify_rejects_a_broken_unit() {
    let _env = vm_env();
    // Proves the verify test below can fail: a relative ExecStart= is an error, and a template
    // (like systemd/resctl-job@.service) is instantiated and checked too.
    let folder = tempfile::tempdir().unwrap();
    let unit = folder.path().join("resctl-vmtest-broken@.service");
    let mut file = fs::File::create(&unit).unwrap();
    writeln!(file, "[Service]\nExecStart=relative/path/to/nothing %i").unwrap();
    let (success, text) = systemd_analyze_verify(&[unit]);
    assert!(
        !success,
        "systemd-analyze verify accepted a broken unit:\n{text}"
    );
    assert!(
        text.contains("relative/path/to/nothing"),
        "systemd-analyze verify failed without naming the bad line:\n{text}"
    );
}

#[test]
#[ignore = "needs VM"]
fn project_unit_files_pass_systemd_analyze_verify() {
    let env = vm_env();
    let folder = env.share.join("systemd");
    let mut units: Vec<PathBuf> = fs::read_dir(&folder)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", folder.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.is_file()
                && path
                    .extension()
                    .and_then(|suffix| suffix.to_str())
                    .is_some_and(|suffix| UNIT_SUFFIXES.contains(&suffix))
        })
        .collect();
    units.sort();
    if units.is_empty() {
        eprintln!(
            "note: no unit files in {} yet; nothing to verify",
            folder.display()
        );
        return;
    }
    let (success, text) = systemd_analyze_verify(&units);
    assert!(success, "systemd-analyze verify {units:?} failed:\n{text}");
    eprintln!("systemd-analyze verify {units:?}: ok\n{text}");
}

#[test]
#[ignore = "needs VM"]
fn journald_receives_logger_and_systemd_cat_messages() {
    let _env = vm_env();
    let via_logger = unique_token("via-logger");
    let via_systemd_cat = unique_token("via-systemd-cat");
    let logged = run("logger", &["-t", JOURNAL_TAG, &via_logger]);
    assert!(logged.status.success(), "logger failed: {logged:?}");
    let mut cat = Command::new("systemd-cat")
        .args(["-t", JOURNAL_TAG])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start systemd-cat: {error}"));
    if let Some(mut stdin) = cat.stdin.take() {
        writeln!(stdin, "{via_systemd_cat}").unwrap();
    }
    assert!(cat.wait().unwrap().success(), "systemd-cat failed");

    let (mut text, mut errors) = (String::new(), String::new());
    let found_both = common::eventually(JOURNAL_DEADLINE, Duration::from_millis(250), || {
        let journal = run(
            "journalctl",
            &["-t", JOURNAL_TAG, "-o", "cat", "--no-pager"],
        );
        text = String::from_utf8_lossy(&journal.stdout).into_owned();
        errors = String::from_utf8_lossy(&journal.stderr).into_owned();
        text.lines().any(|line| line == via_logger)
            && text.lines().any(|line| line == via_systemd_cat)
    });
    assert!(
        found_both,
        "journalctl -t {JOURNAL_TAG} lacks {via_logger} or {via_systemd_cat} after \
         {JOURNAL_DEADLINE:?}:\n{text}{errors}"
    );
}

#[test]
#[ignore = "needs VM"]
fn fails_on_request_to_prove_failures_propagate() {
    let _env = vm_env();
    // `RESCTL_TEST_FORCE_FAIL=1 tests/vm/run.sh` must end with exit code 1.
    assert_ne!(
        std::env::var("RESCTL_TEST_FORCE_FAIL").as_deref(),
        Ok("1"),
        "failing on purpose: RESCTL_TEST_FORCE_FAIL=1 was passed into the VM"
    );
}
