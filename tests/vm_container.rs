//! Inside a container: resctl started in a cgroup namespace whose root is a cgroup with a
//! memory.max (what Docker, Podman and Kubernetes give a container), with the cgroup
//! filesystem mounted read-only as most runtimes do, and again with it writable (a
//! delegated subtree). `doctor` names the mode, the budget is the enclosing limit, and a
//! managed pool finishes where the unmanaged one is killed. `#[ignore = "needs VM"]`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use common::{example, resctl_bin, stderr, stdout, vm_cgroup};

/// The container's memory limit.
const LIMIT: &str = "100M";

/// A container's cgroup: a child of the VM's test cgroup with memory.max, removed when
/// dropped (once its processes are gone).
struct Container {
    dir: PathBuf,
}

impl Container {
    fn new() -> Container {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = vm_cgroup().join(format!(
            "container-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("memory.max"), LIMIT).unwrap();
        Container { dir }
    }

    /// Runs resctl with `args` as a container runtime would start a process: moved into
    /// the container's cgroup, then in new cgroup and mount namespaces with cgroup2 mounted
    /// afresh (read-only unless `writable`), without systemd's runtime folder (a container
    /// does not see the host's systemd).
    fn run(&self, writable: bool, args: &[&str]) -> Output {
        let options = if writable { "rw" } else { "ro" };
        let inner = format!(
            "umount -l /sys/fs/cgroup && mount -t cgroup2 -o {options},nosuid,nodev,noexec \
             cgroup2 /sys/fs/cgroup && mount -t tmpfs tmpfs /run/systemd && exec \"$@\""
        );
        let outer = format!(
            "echo $$ > {}/cgroup.procs && exec unshare --cgroup --mount sh -c '{inner}' sh \"$@\"",
            self.dir.display()
        );
        Command::new("sh")
            .args(["-c", &outer, "sh"])
            .arg(resctl_bin())
            .args(args)
            .env_remove("RESCTL_CONFIG")
            .env("RESCTL_NO_HISTORY", "1")
            .current_dir(Path::new("/tmp"))
            .output()
            .unwrap()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // Children resctl created in a writable container go first.
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                if entry.path().is_dir() {
                    let _ = remove_tree(&entry.path());
                }
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn remove_tree(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)?.flatten() {
        if entry.path().is_dir() {
            remove_tree(&entry.path())?;
        }
    }
    std::fs::remove_dir(dir)
}

/// The pool of tests/common (twelve 18M tasks) with its levels, below the container's 100M;
/// unmanaged: eight workers that ignore resctl.
fn pool_args(pool: &str, managed: bool) -> Vec<&str> {
    let mut args = vec!["run"];
    args.extend(common::POOL_LEVELS);
    args.extend(["--threads", "4", "--interval", "200ms", "--", pool]);
    args.extend(common::POOL_JOB);
    if !managed {
        args.extend(["--workers", "8", "--ignore-file"]);
    }
    args
}

#[test]
#[ignore = "needs VM"]
fn doctor_in_a_read_only_container_names_it_and_takes_the_enclosing_limit_as_the_budget() {
    let container = Container::new();
    let doctor = container.run(false, &["doctor"]);
    let text = stdout(&doctor);
    assert!(doctor.status.success(), "{}\n{text}", stderr(&doctor));
    assert!(
        text.contains("running in:         container, in a cgroup namespace, cgroupfs read-only"),
        "{text}"
    );
    assert!(
        text.contains("run monitor-only inside a container"),
        "{text}"
    );
    let budget = text
        .lines()
        .find(|line| line.trim_start().starts_with("budget "))
        .unwrap_or_else(|| panic!("no budget line:\n{text}"));
    assert!(budget.contains("100M"), "{budget}");
}

#[test]
#[ignore = "needs VM"]
fn in_a_read_only_container_a_managed_pool_finishes_where_the_unmanaged_one_is_killed() {
    let pool = example("worker_pool").display().to_string();
    let container = Container::new();
    let unmanaged = container.run(false, &pool_args(&pool, false));
    let err = stderr(&unmanaged);
    assert_eq!(unmanaged.status.code(), Some(137), "{err}");
    assert!(err.contains("OOM killer"), "{err}");
    assert!(err.contains("the enclosing cgroup"), "{err}");
    drop(container);

    let container = Container::new();
    let managed = container.run(false, &pool_args(&pool, true));
    let err = stderr(&managed);
    assert!(managed.status.success(), "{err}");
    assert!(
        stdout(&managed).contains("done tasks=12"),
        "{}",
        stdout(&managed)
    );
    assert!(err.contains("of a 100M budget"), "{err}");
    assert!(err.contains("threads 4 -> 1"), "{err}");
    // resctl wrote nothing: the read-only cgroup has no child.
    let children: Vec<_> = std::fs::read_dir(&container.dir)
        .unwrap()
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .collect();
    assert!(children.is_empty(), "{children:?}");
}

#[test]
#[ignore = "needs VM"]
fn in_a_writable_container_the_job_gets_its_own_cgroup_and_its_limit_holds() {
    let container = Container::new();
    let doctor = container.run(true, &["doctor"]);
    let text = stdout(&doctor);
    assert!(text.contains("stay in the cgroup it was given"), "{text}");
    let alloc = example("alloc").display().to_string();
    let run = container.run(
        true,
        &[
            "run",
            "--memory-max",
            "40M",
            "--",
            &alloc,
            "120M",
            "--hold",
            "1s",
        ],
    );
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(137), "{err}");
    assert!(err.contains("OOM killer"), "{err}");
    assert!(err.contains("in cgroup v2 /sys/fs/cgroup/resctl-"), "{err}");
}
