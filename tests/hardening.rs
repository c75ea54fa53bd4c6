//! Regression tests of the hardening issue: a hostile job, early signals and bad input must
//! neither touch root's files nor lose a run. One test (or more) per finding, named after
//! it; tests that need root say "skipped" and return without it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{resctl, resctl_bin, run_with_pid, running_as_root, stderr, stdout};

/// A job that plants a symlink and a fifo where the thread file's temporary copy used to be
/// made, turns the thread file itself into a symlink, then makes resctl change the count
/// (24M of RSS over a 12M critical level, watched through /proc) and prints the file.
fn planting_job(victim: &Path) -> String {
    format!(
        "d=$(dirname \"$RESCTL_THREADS_FILE\"); \
         ln -s '{victim}' \"$d/.threads.tmp\" 2>/dev/null && echo planted-link; \
         mkfifo \"$d/.threads.fifo\" 2>/dev/null && echo planted-fifo; \
         ln -sf '{victim}' \"$RESCTL_THREADS_FILE\" 2>/dev/null && echo replaced-file; \
         '{alloc}' 24M --hold 1500ms 2>/dev/null; cat \"$RESCTL_THREADS_FILE\"",
        victim = victim.display(),
        alloc = common::example("alloc").display()
    )
}

/// Runs the planting job (as `user` when given) and checks that the victim kept its
/// contents, the thread file is a plain file again holding the new count, and resctl ended
/// with the job (no hang on a fifo). Returns the job's output.
fn assert_planting_is_harmless(user: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("root-only");
    std::fs::write(&victim, "root's secret\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut command = resctl();
    command
        .current_dir("/")
        .arg("run")
        .args(common::SMALL_LEVELS);
    if let Some(user) = user {
        command.args(["--user", user]);
    }
    command
        .args(["--interval", "200ms", "--", "sh", "-c"])
        .arg(planting_job(&victim));
    let started = Instant::now();
    let (output, _) = run_with_pid(&mut command);
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "resctl hung");
    assert!(err.contains("threads 3 -> 1"), "the count changed: {err}");
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "root's secret\n",
        "root's file was overwritten"
    );
    let out = stdout(&output);
    assert!(out.ends_with("1\n"), "the job read the new count: {out}");
    out
}

#[test]
fn finding_1_a_user_job_cannot_make_root_overwrite_a_file() {
    if !running_as_root() {
        return;
    }
    let out = assert_planting_is_harmless(Some("nobody"));
    // The run folder is resctl's: the job's user cannot create anything in it.
    assert!(!out.contains("planted"), "{out}");
    assert!(!out.contains("replaced"), "{out}");
}

#[test]
fn finding_1_2_a_job_of_resctls_own_user_cannot_redirect_or_block_the_thread_file() {
    // The job can write into the folder (it is the same user), so it plants all three; the
    // new count is still written beside them and renamed over the symlink, never through it,
    // and the fifo is never opened.
    let out = assert_planting_is_harmless(None);
    assert!(out.contains("planted-link"), "{out}");
    assert!(out.contains("planted-fifo"), "{out}");
    assert!(out.contains("replaced-file"), "{out}");
}

/// A private folder to stand for `$XDG_RUNTIME_DIR`.
fn private_runtime_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

#[test]
fn finding_8_the_run_folder_of_a_sigkilled_resctl_is_removed_by_the_next_run() {
    let runtime = private_runtime_dir();
    let info = runtime.path().join("info");
    let mut killed = resctl()
        .env("XDG_RUNTIME_DIR", runtime.path())
        .args(["run", "--monitor-only", "--", "sh", "-c"])
        .arg(format!(
            "echo \"$RESCTL_THREADS_FILE $$\" > '{}.tmp' && mv '{0}.tmp' '{0}'; exec sleep 60",
            info.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_for_file(&info, "the job never started");
    let text = std::fs::read_to_string(&info).unwrap();
    let (threads_file, job_pid) = text.trim().rsplit_once(' ').unwrap();
    let run_folder = PathBuf::from(threads_file).parent().unwrap().to_path_buf();
    assert!(
        run_folder.starts_with(runtime.path()),
        "{}",
        run_folder.display()
    );
    killed.kill().unwrap();
    killed.wait().unwrap();
    let _ = Command::new("kill").arg(job_pid).status();
    assert!(run_folder.exists(), "left behind by the SIGKILL");

    let output = resctl()
        .env("XDG_RUNTIME_DIR", runtime.path())
        .args(["run", "--monitor-only", "--", "true"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        !run_folder.exists(),
        "{} was not removed by the next run",
        run_folder.display()
    );
}

#[test]
fn finding_11_a_missing_xdg_runtime_dir_is_never_created() {
    let base = tempfile::tempdir().unwrap();
    let missing = base.path().join("nonexistent/x");
    let output = resctl()
        .env("XDG_RUNTIME_DIR", &missing)
        .args(["run", "--monitor-only", "--", "sh", "-c"])
        .arg("echo \"$RESCTL_THREADS_FILE\"")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!base.path().join("nonexistent").exists(), "it was created");
    assert!(!stdout(&output).starts_with(&missing.display().to_string()));
}

#[test]
fn finding_11_without_a_runtime_dir_a_user_gets_a_private_unguessable_folder() {
    if !running_as_root() {
        return;
    }
    // resctl itself as nobody, without XDG_RUNTIME_DIR, with a shared temporary folder.
    let temp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(resctl_bin())
        .env_remove("XDG_RUNTIME_DIR")
        .env("RESCTL_NO_HISTORY", "1")
        .env("TMPDIR", temp.path())
        .current_dir("/")
        .args(["run", "--monitor-only", "--", "sh", "-c"])
        .arg("f=\"$RESCTL_THREADS_FILE\"; echo \"$f\"; stat -c '%a %u' \"$(dirname \"$f\")\"")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    let mut lines = out.lines();
    let file = PathBuf::from(lines.next().unwrap());
    let folder = file.parent().unwrap();
    assert_eq!(folder.parent(), Some(temp.path()), "{out}");
    let name = folder.file_name().unwrap().to_string_lossy().into_owned();
    let (_, random) = name.split_once('.').unwrap();
    assert!(name.starts_with("resctl-") && random.len() >= 16, "{name}");
    assert_eq!(lines.next(), Some("700 65534"), "{out}");
    assert!(!folder.exists(), "removed at the end");
}

#[test]
fn finding_5_a_summary_json_path_that_cannot_be_written_stops_the_run_before_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    for (flag, path) in [
        ("--summary-json", dir.path().join("missing/summary.json")),
        ("--summary-json", dir.path().to_path_buf()),
        ("--record", dir.path().join("missing/trace.jsonl")),
    ] {
        let output = resctl()
            .args(["run", "--monitor-only", flag])
            .arg(&path)
            .args(["--", "touch"])
            .arg(&marker)
            .output()
            .unwrap();
        let err = stderr(&output);
        assert_eq!(
            output.status.code(),
            Some(125),
            "{flag} {}: {err}",
            path.display()
        );
        assert!(err.contains(flag), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(
            !marker.exists(),
            "the job ran although its figures would be lost"
        );
    }
}

#[test]
fn finding_5_the_summary_replaces_a_symlink_instead_of_writing_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "keep\n").unwrap();
    let summary = dir.path().join("summary.json");
    std::os::unix::fs::symlink(&victim, &summary).unwrap();
    let output = resctl()
        .args(["run", "--monitor-only", "--summary-json"])
        .arg(&summary)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(json["exit_code"], 0);
}

/// Runs resctl with `args`, failing the test if it takes longer than 20 s (it would block
/// for ever on a fifo, or read /dev/zero until memory runs out).
fn run_bounded(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let mut child = resctl()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain both pipes while waiting, so a child that writes more than a pipe holds is not
    // blocked on a full pipe until the bound (and then reported as stuck).
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let status = common::wait_for_exit(
        &mut child,
        Duration::from_secs(20),
        &format!("resctl {args:?}"),
    );
    std::process::Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Reads `pipe` to its end on a thread of its own; the handle yields the bytes read.
fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        pipe.read_to_end(&mut bytes).unwrap();
        bytes
    })
}

#[test]
fn finding_10_config_and_trace_inputs_must_be_regular_files_of_bounded_size() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let huge = dir.path().join("huge.yaml");
    std::fs::write(&huge, format!("# {}\n", "x".repeat(2 * 1024 * 1024))).unwrap();
    let long_line = dir.path().join("long.jsonl");
    std::fs::write(&long_line, vec![b'{'; 17 * 1024 * 1024]).unwrap();
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    let cases: Vec<(Vec<&std::ffi::OsStr>, &str)> = vec![
        (
            vec![os("config"), os("check"), os("/dev/zero")],
            "is a device",
        ),
        (vec![os("replay"), os("/dev/zero")], "is a device"),
        (
            vec![os("config"), os("check"), fifo.as_os_str()],
            "is a fifo",
        ),
        (vec![os("replay"), fifo.as_os_str()], "is a fifo"),
        (
            vec![os("config"), os("check"), dir.path().as_os_str()],
            "is a folder",
        ),
        (
            vec![os("config"), os("check"), huge.as_os_str()],
            "larger than",
        ),
        (
            vec![os("replay"), long_line.as_os_str()],
            "line longer than",
        ),
        (
            vec![os("run"), os("-c"), fifo.as_os_str(), os("--"), os("true")],
            "is a fifo",
        ),
    ];
    for (args, expected) in cases {
        let output = run_bounded(&args);
        let err = stderr(&output);
        assert!(!output.status.success(), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn finding_3_a_signal_during_start_up_is_never_dropped() {
    // SIGTERM at 0–95 ms after the start lands before, during or after the job's spawn; each
    // time resctl must end with 143 (job not started, or the job killed by the forwarded
    // signal), never 0 after the job ran its full 5 s.
    for placement in ["--monitor-only", "--interval=1s"] {
        for delay_ms in (0..100).step_by(5) {
            let child = resctl()
                .args(["run", placement, "--", "sleep", "5"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .process_group(0)
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(delay_ms));
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            )
            .unwrap();
            let output = child.wait_with_output().unwrap();
            // Killed by SIGTERM before its handlers were installed (nothing was created
            // yet) is what a shell reports as 143 too.
            let shell_code = output.status.code().or_else(|| {
                std::os::unix::process::ExitStatusExt::signal(&output.status).map(|n| 128 + n)
            });
            assert_eq!(
                shell_code,
                Some(143),
                "{placement}, SIGTERM after {delay_ms} ms: {}",
                stderr(&output)
            );
        }
    }
}

#[test]
fn finding_7_an_exec_refused_with_e2big_gives_126() {
    // resctl adds its variables (RESCTL_THREADS, RESCTL_THREADS_FILE, RESCTL_SOCKET) to the
    // job's environment, about 100 bytes more than it drops. Find the largest padding with
    // which resctl itself still starts: the job's exec is then over the kernel's limit.
    let pad = |bytes: usize| {
        let mut command = resctl();
        command.args(["run", "--monitor-only", "--", "true"]);
        let chunk = 100 * 1024; // below MAX_ARG_STRLEN (128 KiB) per string
        for (index, start) in (0..bytes).step_by(chunk).enumerate() {
            command.env(format!("PAD{index}"), "x".repeat(chunk.min(bytes - start)));
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    };
    let starts = |bytes: usize| match pad(bytes).spawn() {
        Ok(child) => Some(child.wait_with_output().unwrap()),
        Err(err) => {
            assert_eq!(err.raw_os_error(), Some(nix::libc::E2BIG), "{err}");
            None
        }
    };
    let (mut fits, mut too_big) = (0usize, 64 * 1024 * 1024);
    assert!(
        starts(too_big).is_none(),
        "64 MiB of environment is over any limit"
    );
    while too_big - fits > 1 {
        let middle = (fits + too_big) / 2;
        match starts(middle) {
            Some(_) => fits = middle,
            None => too_big = middle,
        }
    }
    let output = starts(fits).unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(126), "{err}");
    assert!(err.contains("Argument list too long"), "{err}");
}

/// A cgroup directory resctl may create children in: the VM's delegated test cgroup, else
/// this process's v1 memory cgroup on a hybrid host; `None` (test skipped) elsewhere.
fn parent_cgroup() -> Option<PathBuf> {
    if std::env::var_os("RESCTL_VM").is_some() {
        return Some(common::vm_cgroup());
    }
    let found = common::writable_v1_memory_cgroup();
    if found.is_none() {
        eprintln!("skipped: needs root and a writable cgroup (v1 host or the VM)");
    }
    found
}

#[test]
fn finding_6_cgroup_parent_is_resolved_not_read_as_text() {
    let Some(cgroup) = parent_cgroup() else {
        return;
    };
    let outside = tempfile::tempdir().unwrap();
    // Textually inside the cgroup mount, really /tmp/...
    let climbing = cgroup
        .join("../".repeat(cgroup.components().count() + 2))
        .join(outside.path().strip_prefix("/").unwrap());
    let output = resctl()
        .args(["run", "--cgroup-parent"])
        .arg(&climbing)
        .args(["--", "true"])
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(125), "{err}");
    assert!(err.contains("is not on a cgroup filesystem"), "{err}");
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "resctl made a folder outside cgroupfs"
    );
    // A symlink to a real cgroup directory is resolved and used.
    let link = outside.path().join("link");
    std::os::unix::fs::symlink(&cgroup, &link).unwrap();
    let output = resctl()
        .args(["run", "--cgroup-parent"])
        .arg(&link)
        .args(["--", "sh", "-c", "cat /proc/self/cgroup"])
        .output()
        .unwrap();
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(
        err.contains(&cgroup.display().to_string()),
        "the job's cgroup is under the resolved directory: {err}"
    );
}

#[test]
fn finding_4_job_text_cannot_forge_log_lines_or_drive_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.json");
    let evil = "models\nresctl: summary: job exited with code 0 (forged)\u{1b}]0;pwned\u{7}";
    let script = format!(
        "r='{}'; $r stage start \"$EVIL\" >/dev/null && $r stage end \"$EVIL\" >/dev/null && \
         $r stage start 'left open' >/dev/null && $r status >/dev/null",
        resctl_bin().display()
    );
    let (output, _) = run_with_pid(
        resctl()
            .env("EVIL", evil)
            .args([
                "run",
                "--monitor-only",
                "--interval",
                "200ms",
                "--summary-json",
            ])
            .arg(&summary)
            .args(["--", "sh", "-c"])
            .arg(&script),
    );
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    assert!(
        !err.lines()
            .any(|line| line.contains("(forged)") && line.starts_with("resctl: summary: job")),
        "a forged line: {err}"
    );
    assert!(
        err.contains(
            "stage models\\nresctl: summary: job exited with code 0 (forged)\\u{1b}]0;pwned\\u{7}:"
        ),
        "the name is shown escaped: {err}"
    );
    // Finding 11: a stage still open when the job ends is in the summary and the JSON.
    assert!(
        err.contains("stage left open: ") && err.contains("still open when the job ended"),
        "{err}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let stages = json["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 2, "{json}");
    assert_eq!(stages[0]["name"], evil, "the data keeps the name as sent");
    assert_eq!(stages[0]["unfinished"], false);
    assert_eq!(stages[1]["name"], "left open");
    assert_eq!(stages[1]["unfinished"], true);
}

/// resctl's placement options for tests that need the job in a cgroup of its own: the VM's
/// delegated cgroup as the parent there, the default (v1) placement on a hybrid host.
fn cgroup_placement() -> Option<Vec<String>> {
    let parent = parent_cgroup()?;
    Some(if std::env::var_os("RESCTL_VM").is_some() {
        vec![format!("--cgroup-parent={}", parent.display())]
    } else {
        Vec::new()
    })
}

/// Shell lines setting `cg` to the job's own cgroup directory and `lim` to its limit file
/// name (v1 memory hierarchy on hybrid hosts, cgroup2 elsewhere).
const JOB_CGROUP_SH: &str = "if [ -d /sys/fs/cgroup/memory ]; then \
     cg=/sys/fs/cgroup/memory$(grep ':memory:' /proc/self/cgroup | cut -d: -f3); \
     lim=memory.limit_in_bytes; else \
     cg=/sys/fs/cgroup$(grep '^0::' /proc/self/cgroup | cut -d: -f3); lim=memory.max; fi; ";

#[test]
fn finding_9_a_limit_changed_during_the_run_is_followed() {
    let Some(placement) = cgroup_placement() else {
        return;
    };
    // The job lowers its own limit from 200M to 100M, then allocates 90M: critical under
    // the real limit (87.5 % of 100M), nothing under the stale one (175M). Then it raises
    // the limit back to 200M.
    let script = format!(
        "{JOB_CGROUP_SH} echo 100M > $cg/$lim && sleep 1.5 && \
         '{alloc}' 90M --hold 1500ms 2>/dev/null && echo 200M > $cg/$lim && sleep 1.5",
        alloc = common::example("alloc").display()
    );
    let (output, _) = run_with_pid(
        resctl()
            .arg("run")
            .args(&placement)
            .args([
                "--memory-max",
                "200M",
                "--threads",
                "3",
                "--interval",
                "250ms",
            ])
            .args(["--", "sh", "-c"])
            .arg(&script),
    );
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(
        err.contains(
            "memory limit 200M -> 100M: levels now moderate 50M / high 75M / critical 87.5M"
        ),
        "{err}"
    );
    assert!(
        err.contains("threads 3 -> 1"),
        "critical under the real limit: {err}"
    );
    assert!(err.contains("memory limit 100M -> 200M"), "{err}");
    assert!(
        err.contains("of 200M limit"),
        "the summary names the limit in force: {err}"
    );
}

#[test]
fn finding_9_a_cgroup_removed_underneath_is_said_once_and_the_job_lives_on() {
    let Some(placement) = cgroup_placement() else {
        return;
    };
    // The job moves itself into resctl's cgroup and removes its own; resctl must say so
    // once, stop acting on the gone cgroup, and pass the job's exit code through.
    let script = format!(
        "{JOB_CGROUP_SH} parent=$(dirname $(dirname $cg))/$(basename $(dirname $cg)); \
         if [ -d /sys/fs/cgroup/memory ]; then \
         own=/sys/fs/cgroup/memory$(grep ':memory:' /proc/$PPID/cgroup | cut -d: -f3); else \
         own=/sys/fs/cgroup$(grep '^0::' /proc/$PPID/cgroup | cut -d: -f3); fi; \
         echo $$ > $own/cgroup.procs && rmdir $cg && sleep 2 && exit 7"
    );
    let (output, _) = run_with_pid(
        resctl()
            .arg("run")
            .args(&placement)
            .args(["--memory-max", "200M", "--interval", "200ms"])
            .args(["--", "sh", "-c"])
            .arg(&script),
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(7), "{err}");
    assert_eq!(
        err.matches("was removed underneath resctl").count(),
        1,
        "said exactly once: {err}"
    );
    assert!(!err.contains("sampling:"), "no error per tick: {err}");
}

#[test]
fn finding_12_the_job_never_waits_for_the_kernel_wakeups() {
    let Some(placement) = cgroup_placement() else {
        return;
    };
    let run = |job: &[&str]| {
        let output = resctl()
            .env("RESCTL_LOG", "debug")
            .arg("run")
            .args(&placement)
            .arg("--")
            .args(job)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        stderr(&output)
    };
    // A job that lives: the wakeups are armed, after it started.
    let err = run(&["sleep", "3"]);
    let started = err.find("resctl: started sleep").expect("start line");
    let armed = err
        .find("resctl: wakeups: ")
        .unwrap_or_else(|| panic!("armed: {err}"));
    assert!(started < armed, "armed before the job started: {err}");
    // On v1, whose threshold registrations cost a grace period each: a job that lives gets
    // them registered, one that ends at once never pays for them (usage is polled instead).
    if !std::path::Path::new("/sys/fs/cgroup/memory").exists() {
        return;
    }
    assert!(err.contains("memory.usage_in_bytes threshold"), "{err}");
    let err = run(&["true"]);
    assert!(!err.contains("memory.usage_in_bytes threshold"), "{err}");
}

#[test]
fn resctl_protects_itself_where_permitted_and_the_job_inherits_nothing() {
    let doctor = resctl().args(["doctor", "--json"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let can_lower = report["self_protection"]["can_lower_oom_score_adj"] == true;
    let can_lock = report["self_protection"]["can_lock_memory"] == true;
    let (output, _) = run_with_pid(resctl().args(["run", "--monitor-only", "--", "sh", "-c"]).arg(
        "echo job $(cat /proc/self/oom_score_adj) $(awk '/^VmLck/ {print $2}' /proc/self/status); \
         echo resctl $(cat /proc/$PPID/oom_score_adj) $(awk '/^VmLck/ {print $2}' /proc/$PPID/status)",
    ));
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    let fields: Vec<Vec<&str>> = out.lines().map(|l| l.split(' ').collect()).collect();
    let original = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
    assert_eq!(
        fields[0][1],
        original.trim(),
        "the job keeps the usual value: {out}"
    );
    assert_eq!(fields[0][2], "0", "the job locks nothing: {out}");
    let resctl_adj: i32 = fields[1][1].parse().unwrap();
    let resctl_locked_kib: u64 = fields[1][2].parse().unwrap();
    if can_lower {
        assert_eq!(resctl_adj, -900, "{out}");
    } else {
        assert_eq!(fields[1][1], original.trim(), "{out}");
    }
    if can_lock {
        assert!(resctl_locked_kib > 0, "{out}");
    } else {
        assert_eq!(resctl_locked_kib, 0, "{out}");
    }
}

#[test]
fn fault_resctl_stopped_for_10_s_leaves_the_job_alone_and_catches_up_without_a_burst() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("counter");
    let trace = dir.path().join("trace.jsonl");
    let child = resctl()
        .args(["run", "--monitor-only", "--interval", "500ms", "--record"])
        .arg(&trace)
        .args(["--", "sh", "-c"])
        .arg(format!(
            "i=0; while [ $i -lt 68 ]; do echo $i > '{0}.tmp'; mv '{0}.tmp' '{0}'; i=$((i+1)); sleep 0.2; done",
            counter.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let read_counter = || {
        std::fs::read_to_string(&counter)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
            .unwrap_or(0)
    };
    std::thread::sleep(Duration::from_secs(2));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let at_stop = read_counter();
    std::thread::sleep(Duration::from_secs(10));
    let before_continue = read_counter();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    let output = child.wait_with_output().unwrap();
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(
        before_continue >= at_stop + 10,
        "the job ran on while resctl was stopped: {at_stop} -> {before_continue}"
    );
    // Ticks after the pause: the first one comes at once, then the interval again — no
    // burst of catch-up samples or thread changes.
    let ticks: Vec<(f64, bool)> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|line| line["kind"] == "tick")
        .map(|line| {
            let decision = &line["decision"];
            (
                line["observation"]["at"].as_f64().unwrap(),
                decision["threads"] != decision["previous_threads"],
            )
        })
        .collect();
    let gap = ticks
        .windows(2)
        .position(|pair| pair[1].0 - pair[0].0 > 8.0)
        .unwrap_or_else(|| panic!("no 10 s gap in the ticks: {ticks:?}"));
    let resumed = ticks[gap + 1].0;
    let right_after: Vec<&(f64, bool)> = ticks[gap + 1..]
        .iter()
        .take_while(|(at, _)| *at < resumed + 1.0)
        .collect();
    assert!(
        right_after.len() <= 3,
        "a burst of samples after the pause: {right_after:?}"
    );
    assert!(
        right_after.iter().filter(|(_, changed)| *changed).count() <= 1,
        "{right_after:?}"
    );
}

/// A tmpfs of `size` mounted on a new temporary folder (mode 0700, usable as
/// `XDG_RUNTIME_DIR`), unmounted when dropped.
struct SmallTmpfs {
    dir: tempfile::TempDir,
}

impl SmallTmpfs {
    fn mount(size: &str) -> SmallTmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs");
        SmallTmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Runs a job under resctl with its run folder on `runtime`; the job first runs `prepare`
/// (with `$RT` the runtime folder), then makes resctl change the thread count.
fn run_with_runtime_folder(runtime: &Path, prepare: &str) -> std::process::Output {
    let script = format!(
        "{prepare}; '{alloc}' 24M --hold 1500ms 2>/dev/null; cat \"$RESCTL_THREADS_FILE\"",
        alloc = common::example("alloc").display()
    );
    let (output, _) = run_with_pid(
        resctl()
            .env("XDG_RUNTIME_DIR", runtime)
            .env("RT", runtime)
            .arg("run")
            .args(common::SMALL_LEVELS)
            .args(["--interval", "200ms"])
            .args(["--", "sh", "-c"])
            .arg(script),
    );
    output
}

#[test]
fn fault_a_full_or_read_only_run_folder_costs_the_thread_file_not_the_job() {
    if !running_as_root() {
        return;
    }
    for (what, prepare) in [
        (
            "full",
            "dd if=/dev/zero of=\"$RT/fill\" bs=4k 2>/dev/null; true",
        ),
        ("read-only", "mount -o remount,ro \"$RT\""),
    ] {
        let runtime = SmallTmpfs::mount("256k");
        let output = run_with_runtime_folder(runtime.path(), prepare);
        let err = stderr(&output);
        assert!(output.status.success(), "{what}: {err}");
        assert!(
            err.contains("threads 3 -> 1"),
            "{what}: the decision is made: {err}"
        );
        assert!(
            err.contains("could not publish the thread count"),
            "{what}: the failure is said: {err}"
        );
        assert_eq!(
            stdout(&output).trim(),
            "3",
            "{what}: the job still reads the last count that could be written"
        );
    }
}

#[test]
fn finding_2_a_fifo_at_the_old_temporary_name_cannot_hang_resctl() {
    // The old thread-file update opened `.threads.tmp` with a plain create, which blocks for
    // ever on a fifo; a job of resctl's own user can still plant one there (under --user it
    // cannot write into the run folder at all).
    let script = format!(
        "mkfifo \"$(dirname \"$RESCTL_THREADS_FILE\")/.threads.tmp\" && \
         '{}' 24M --hold 1500ms 2>/dev/null; cat \"$RESCTL_THREADS_FILE\"",
        common::example("alloc").display()
    );
    let args: Vec<&std::ffi::OsStr> = ["run"]
        .into_iter()
        .chain(common::SMALL_LEVELS)
        .chain(["--interval", "200ms", "--", "sh", "-c", &script])
        .map(std::ffi::OsStr::new)
        .collect();
    let output = run_bounded(&args);
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(err.contains("threads 3 -> 1"), "{err}");
    assert_eq!(
        stdout(&output).trim(),
        "1",
        "the new count was published: {err}"
    );
}

#[test]
fn bench_logs_go_to_a_private_unguessable_folder_and_never_through_a_symlink() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let output = resctl()
        .env("TMPDIR", temp.path())
        .args(["bench", "--threads", "1", "--repeat", "1", "--", "true"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let folders: Vec<PathBuf> = std::fs::read_dir(temp.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    let name = folders[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with("resctl-bench-") && name.len() >= 29,
        "{name}"
    );
    let mode = std::fs::metadata(&folders[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    // With --log-dir, a symlink planted at a log's name is replaced, not written through.
    let logs = tempfile::tempdir().unwrap();
    let victim = logs.path().join("victim");
    std::fs::write(&victim, "keep\n").unwrap();
    std::os::unix::fs::symlink(&victim, logs.path().join("threads-1-run-1.log")).unwrap();
    let output = resctl()
        .args(["bench", "--threads", "1", "--repeat", "1", "--log-dir"])
        .arg(logs.path())
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
}
