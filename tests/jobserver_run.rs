//! `resctl run --jobserver`: real GNU make under a memory budget. make -j8
//! alone is OOM-killed; under resctl's jobserver the build finishes, and the
//! number of jobs running at once drops while memory pressure lasts.

mod common;

use common::{example, resctl, run_with_pid, stderr};

/// The arguments after `make -f` for the memory demo: the Makefile, the alloc example,
/// `jobs` targets of 40M each held for `hold`, each logging to `log`.
fn memory_make_args(jobs: u32, hold: &str, log: &std::path::Path) -> Vec<String> {
    vec![
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/make/memory.mk").to_string(),
        format!("ALLOC={}", example("alloc").display()),
        format!("N={jobs}"),
        "SIZE=40M".to_string(),
        format!("HOLD={hold}"),
        format!("LOG={}", log.display()),
    ]
}

/// (name, start ns, end ns) of each job in a memory.mk LOG.
fn jobs_in(log: &std::path::Path) -> Vec<(String, u128, u128)> {
    let text = std::fs::read_to_string(log).unwrap();
    let mut jobs: Vec<(String, u128, u128)> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (name, what, at) = (fields[0], fields[1], fields[2].parse::<u128>().unwrap());
        match what {
            "start" => jobs.push((name.to_string(), at, u128::MAX)),
            _ => jobs.iter_mut().find(|j| j.0 == name).unwrap().2 = at,
        }
    }
    jobs.sort_by_key(|j| j.1);
    jobs
}

fn most_at_once(jobs: &[(String, u128, u128)]) -> usize {
    jobs.iter()
        .map(|(_, start, _)| {
            jobs.iter()
                .filter(|(_, s, e)| s <= start && start < e)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn make_j8_alone_is_oom_killed_under_the_budget() {
    let _own = require_v1!();
    let dir = tempfile::tempdir().unwrap();
    let (output, _) = run_with_pid(
        resctl()
            .args([
                "run",
                "--memory-max",
                "200M",
                "--",
                "make",
                "-s",
                "-j8",
                "-f",
            ])
            .args(memory_make_args(8, "1s", &dir.path().join("log"))),
    );
    let err = stderr(&output);
    // make fails with 2 when a recipe is killed, or is killed itself (137).
    assert!(
        matches!(output.status.code(), Some(2) | Some(137)),
        "{:?}:\n{err}",
        output.status
    );
    assert!(err.contains("OOM killer killed"), "{err}");
}

#[test]
fn under_the_jobserver_make_finishes_and_runs_fewer_jobs_under_pressure() {
    let _own = require_v1!();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let (output, _) = run_with_pid(
        resctl()
            .args([
                "run",
                "--memory-max",
                "200M",
                "--moderate",
                "50M",
                "--high",
                "70M",
            ])
            .args(["--critical", "170M", "--jobserver=8", "--threads", "2"])
            .args(["--interval", "200ms", "--", "make", "-s", "-f"])
            .args(memory_make_args(5, "3s", &log)),
    );
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(err.contains("threads 2 -> 1"), "{err}");
    let jobs = jobs_in(&log);
    assert_eq!(jobs.len(), 5, "{jobs:?}");
    assert_eq!(
        most_at_once(&jobs[..2]),
        2,
        "make used the two tokens at first: {jobs:?}"
    );
    assert_eq!(
        most_at_once(&jobs[2..]),
        1,
        "one job at a time under pressure: {jobs:?}"
    );
}

/// What `resctl run --jobserver=3 [ARGS] -- PROGRAM` hands its job in `MAKEFLAGS`, and
/// whether the fifo it names exists while the job runs. PROGRAM is a script that prints
/// both; it is named `name` so the automatic choice can see a ninja.
fn announced_makeflags(name: &str, args: &[&str]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join(name);
    std::fs::write(
        &script,
        "#!/bin/sh\nfifo=${MAKEFLAGS##*fifo:}\n\
         if [ -p \"$fifo\" ]; then echo \"fifo\"; else echo \"no fifo\"; fi\n\
         echo \"$MAKEFLAGS\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (output, _) = run_with_pid(
        resctl()
            .args(["run", "--monitor-only", "--jobserver=3"])
            .args(args)
            .arg("--")
            .arg(&script),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut lines = out.lines();
    let fifo = lines.next().unwrap_or_default().to_owned();
    (fifo, lines.next().unwrap_or_default().to_owned())
}

#[test]
fn jobserver_style_chooses_the_announced_form() {
    let (_, pipe) = announced_makeflags("build.sh", &[]);
    assert!(
        pipe.starts_with(" -j3 --jobserver-auth=") && !pipe.contains("fifo:"),
        "auto for a script is the pipe form: {pipe:?}"
    );
    let (exists, ninja) = announced_makeflags("ninja", &[]);
    assert!(
        ninja.starts_with(" -j3 --jobserver-auth=fifo:/") && ninja.ends_with("/jobserver.fifo"),
        "auto for ninja is the fifo form: {ninja:?}"
    );
    assert_eq!(exists, "fifo", "the fifo exists while the job runs");
    let (_, asked) = announced_makeflags("build.sh", &["--jobserver-style=fifo"]);
    assert!(asked.contains("--jobserver-auth=fifo:/"), "{asked:?}");
    let (_, forced) = announced_makeflags("ninja", &["--jobserver-style", "pipe"]);
    assert!(!forced.contains("fifo:"), "{forced:?}");
}

#[test]
fn jobserver_style_needs_the_jobserver() {
    let output = resctl()
        .args(["run", "--jobserver-style=fifo", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(125));
    assert!(
        stderr(&output).contains("--jobserver"),
        "{}",
        stderr(&output)
    );
}
