//! Without root on a systemd host: a user whose manager runs (lingering enabled) gets a
//! delegated scope from that manager (over the user bus, and through `systemd-run --user`
//! where no bus is reachable), `--memory-max` is enforced there, a managed pool
//! finishes under a budget that kills the unmanaged one, and `resctl bench` works the same
//! way; a user without a manager runs monitor-only and is told the fix. Nothing here runs
//! resctl as root: the test (root in the VM) only creates the user and switches to it.
//! `#[ignore = "needs VM"]`: the host has no systemd.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{example, resctl, stderr, stdout, vm_cgroup};

/// The user the tests run resctl as, with lingering enabled.
const USER: &str = "resctl-tester";

/// Who resctl runs as.
struct TestUser {
    uid: u32,
    gid: u32,
    home: PathBuf,
}

fn id(flag: &str, user: &str) -> Option<u32> {
    let output = Command::new("id").args([flag, user]).output().ok()?;
    stdout(&output).trim().parse().ok()
}

/// [`USER`], created on first use, with lingering on and its manager running.
fn lingering_user() -> TestUser {
    vm_cgroup();
    if id("-u", USER).is_none() {
        let added = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/sh", USER])
            .output()
            .unwrap();
        assert!(added.status.success(), "useradd: {}", stderr(&added));
    }
    let uid = id("-u", USER).unwrap();
    let gid = id("-g", USER).unwrap();
    let linger = Command::new("loginctl")
        .args(["enable-linger", USER])
        .output()
        .unwrap();
    assert!(
        linger.status.success(),
        "loginctl enable-linger: {}",
        stderr(&linger)
    );
    let socket = PathBuf::from(format!("/run/user/{uid}/systemd/private"));
    let started = common::eventually(Duration::from_secs(90), Duration::from_millis(200), || {
        socket.exists()
    });
    assert!(
        started,
        "user@{uid}.service did not start: {}",
        stdout(
            &Command::new("systemctl")
                .args(["status", "--no-pager", &format!("user@{uid}.service")])
                .output()
                .unwrap()
        )
    );
    TestUser {
        uid,
        gid,
        home: PathBuf::from(format!("/home/{USER}")),
    }
}

/// A [`resctl()`] command that runs as `user` with a login's environment: resctl finds the
/// user bus at `$XDG_RUNTIME_DIR/bus` (the image has dbus-user-session).
fn as_user(user: &TestUser) -> Command {
    let mut command = resctl();
    command
        .uid(user.uid)
        .gid(user.gid)
        .current_dir(&user.home)
        .env("HOME", &user.home)
        .env("USER", USER)
        .env("LOGNAME", USER)
        .env("XDG_RUNTIME_DIR", format!("/run/user/{}", user.uid))
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    command
}

/// The user's manager's cgroup: a job placed by it is below.
fn manager_cgroup(user: &TestUser) -> String {
    format!("user@{}.service/", user.uid)
}

fn output(command: &mut Command) -> Output {
    command.output().unwrap()
}

#[test]
#[ignore = "needs VM"]
fn doctor_names_the_users_manager_and_the_controllers_it_is_given() {
    let user = lingering_user();
    let doctor = output(as_user(&user).arg("doctor"));
    let text = stdout(&doctor);
    assert!(doctor.status.success(), "{}", stderr(&doctor));
    assert!(
        text.contains("ask your systemd user manager (systemd-run --user --scope"),
        "{text}"
    );
    let given = text
        .lines()
        .find(|line| line.starts_with("your manager gets:"))
        .unwrap_or_else(|| panic!("no delegated controllers line:\n{text}"));
    assert!(given.split_whitespace().any(|c| c == "memory"), "{given}");
}

/// Said (at debug level) when no bus reaches the manager and systemd-run makes the scope.
const THROUGH_SYSTEMD_RUN: &str = "creating the scope with systemd-run";

#[test]
#[ignore = "needs VM"]
fn memory_max_is_enforced_in_the_users_own_scope_and_the_kill_reported_137() {
    let user = lingering_user();
    // Over the user bus, and where there is none through `systemd-run --user`.
    for bus in [None, Some("unix:path=/nonexistent/bus")] {
        let mut command = as_user(&user);
        command.env("RESCTL_LOG", "debug");
        if let Some(address) = bus {
            command.env("DBUS_SESSION_BUS_ADDRESS", address);
        }
        let run = output(
            command
                .args(["run", "--memory-max", "40M", "--"])
                .arg(example("alloc"))
                .args(["120M", "--hold", "1s"]),
        );
        let err = stderr(&run);
        assert_eq!(run.status.code(), Some(137), "{err}");
        assert!(err.contains("OOM killer"), "{err}");
        assert!(
            err.contains(&manager_cgroup(&user)) && err.contains("resctl.slice/resctl-"),
            "the job did not run in a scope of the user's manager:\n{err}"
        );
        assert_eq!(
            err.contains(THROUGH_SYSTEMD_RUN),
            bus.is_some(),
            "bus {bus:?}:\n{err}"
        );
    }
    // Within the limit the same job runs and exits 0.
    let fits = output(
        as_user(&user)
            .args(["run", "--memory-max", "80M", "--"])
            .arg(example("alloc"))
            .args(["20M", "--hold", "200ms"]),
    );
    assert!(fits.status.success(), "{}", stderr(&fits));
}

#[test]
#[ignore = "needs VM"]
fn a_managed_pool_finishes_without_root_where_the_unmanaged_one_is_killed() {
    let user = lingering_user();
    let (unmanaged, _) = common::pool_unmanaged(as_user(&user), &[]);
    assert!(
        stderr(&unmanaged).contains(&manager_cgroup(&user)),
        "{}",
        stderr(&unmanaged)
    );
    let (managed, _) = common::pool_reaching_critical(as_user(&user), &[]);
    assert!(
        stderr(&managed).contains(&manager_cgroup(&user)),
        "{}",
        stderr(&managed)
    );
}

#[test]
#[ignore = "needs VM"]
fn bench_without_root_runs_each_count_in_the_users_scope() {
    let user = lingering_user();
    let logs = user.home.join("bench-logs");
    let _ = std::fs::remove_dir_all(&logs);
    let (_, report) =
        common::bench_of_the_pool(as_user(&user), &["--log-dir".as_ref(), logs.as_os_str()]);
    // The 4-worker run was killed by the kernel inside the user's limit: its log says where.
    let logged: String = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .collect();
    assert!(
        logged.contains(&manager_cgroup(&user)),
        "no run placed in the user's scope:\n{report}\n{logged}"
    );
}

#[test]
#[ignore = "needs VM"]
fn a_user_without_a_manager_runs_monitor_only_and_is_told_the_fix() {
    vm_cgroup();
    let nobody = |command: &mut Command| {
        command
            .uid(id("-u", "nobody").unwrap())
            .gid(id("-g", "nobody").unwrap())
            .current_dir(Path::new("/"))
            .env("HOME", "/nonexistent")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
    };
    let mut watched = resctl();
    nobody(watched.args(["run", "--", "true"]));
    let watched = output(&mut watched);
    let err = stderr(&watched);
    assert!(watched.status.success(), "{err}");
    assert!(
        err.contains("monitor-only") && err.contains("loginctl enable-linger"),
        "{err}"
    );
    // A limit cannot be honoured: resctl refuses before the job runs (125), saying why.
    let mut limited = resctl();
    nobody(limited.args(["run", "--memory-max", "40M", "--", "true"]));
    let limited = output(&mut limited);
    let err = stderr(&limited);
    assert_eq!(limited.status.code(), Some(125), "{err}");
    assert!(
        err.contains("memory limits need a cgroup") && err.contains("loginctl enable-linger"),
        "{err}"
    );
}
