//! `resctl::cgroup::wakeup` against real kernels: the v1 memory controller of this hybrid
//! host (usage thresholds and OOM notifications through `cgroup.event_control`), pidfds,
//! a PSI trigger on a real cgroup2 `memory.pressure`, and — in the VM (`#[ignore = "needs
//! VM"]`, `RESCTL_VM_CGROUP`) — cgroup v2's PSI trigger, `memory.events` and usage polling.
//!
//! The allocating job is this test binary itself, re-executed with [`ROLE`] set (see
//! [`helper_process`]): it allocates the size written to its stdin, touching every page,
//! prints [`DONE_MARKER`], and exits when its stdin closes.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use resctl::cgroup::wakeup::{
    arm_psi_trigger, PsiTrigger, Stall, Wake, Waker, REPEAT_GAP, SOURCE_CHILD, SOURCE_V1_OOM,
    SOURCE_V1_THRESHOLD, SOURCE_V1_USAGE_POLL, SOURCE_V2_EVENTS, SOURCE_V2_PSI,
    SOURCE_V2_USAGE_POLL,
};
use resctl::cgroup::{writer, CgroupKind};

const MIB: u64 = 1024 * 1024;
/// Environment variable that turns this binary into the allocating helper.
const ROLE: &str = "RESCTL_WAKEUP_TEST_ROLE";
/// How late a wake may come after the allocation finished (generous for a test on a busy
/// 2-core machine; `benches/reaction.sh` measures precisely).
const WAKE_SLACK: Duration = Duration::from_millis(50);
/// What the helper prints when an allocation is complete.
const DONE_MARKER: &str = "wakeup-helper: allocated";

/// Not a test of its own: the body of the helper process the tests start (this binary
/// re-executed with `--exact helper_process` and [`ROLE`] set). Run normally, it returns.
#[test]
fn helper_process() {
    if std::env::var_os(ROLE).is_none() {
        return;
    }
    let stdin = std::io::stdin();
    let mut held: Vec<Vec<u8>> = Vec::new();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let Ok(bytes) = line.trim().parse::<usize>() else {
            break;
        };
        let mut block = vec![0u8; bytes];
        for page in block.chunks_mut(4096) {
            page[0] = 1;
        }
        held.push(std::hint::black_box(block));
        println!("{DONE_MARKER}");
        let _ = std::io::stdout().flush();
    }
    drop(held);
    std::process::exit(0);
}

/// The helper process: started, then moved into a cgroup by the test.
struct Allocator {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Receives the instant each [`DONE_MARKER`] line arrived.
    done: std::sync::mpsc::Receiver<Instant>,
    _reader: JoinHandle<()>,
}

impl Allocator {
    fn start() -> Allocator {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args([
                "--exact",
                "helper_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, "allocate")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (sender, done) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest may have printed "test helper_process ... " on the same line.
                if line.ends_with(DONE_MARKER) && sender.send(Instant::now()).is_err() {
                    break;
                }
            }
        });
        Allocator {
            child,
            stdin,
            done,
            _reader: reader,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Asks for `bytes` more, touched.
    fn allocate(&mut self, bytes: u64) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{bytes}").unwrap();
        stdin.flush().unwrap();
    }

    /// When the last allocation finished.
    fn finished(&self) -> Instant {
        self.done.recv_timeout(Duration::from_secs(10)).unwrap()
    }

    /// Closes stdin: the helper frees everything and exits.
    fn finish(&mut self) {
        self.stdin = None;
    }
}

impl Drop for Allocator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A cgroup `resctl-test-wakeup-<pid>-<n>` under `parent`, removed on drop (after its
/// processes are gone: drop the [`Allocator`]s first).
struct TestCgroup {
    path: PathBuf,
}

impl TestCgroup {
    fn create(parent: &Path) -> TestCgroup {
        let name = format!(
            "resctl-test-wakeup-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        TestCgroup {
            path: writer::create_child(parent, &name).unwrap(),
        }
    }

    fn usage_v1(&self) -> u64 {
        std::fs::read_to_string(self.path.join("memory.usage_in_bytes"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        if let Err(err) = writer::remove(&self.path) {
            eprintln!("could not remove {}: {err}", self.path.display());
        }
    }
}

/// Waits until `wake` comes or `limit` passes; returns every wake seen in order.
fn wakes_until(waker: &mut Waker, wanted: Wake, limit: Duration) -> Vec<Wake> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let wake = waker.wait(deadline.saturating_duration_since(Instant::now()));
        seen.push(wake);
        if wake == wanted {
            break;
        }
    }
    seen
}

// ---- cgroup v1 (this hybrid host) ----

/// A v1 level crossing: reported by the threshold's eventfd or by the near-level poll.
fn is_v1_crossing(wake: Wake) -> bool {
    matches!(
        wake,
        Wake::Kernel(SOURCE_V1_THRESHOLD) | Wake::Kernel(SOURCE_V1_USAGE_POLL)
    )
}

#[test]
fn v1_threshold_crossing_wakes_within_50ms_of_the_allocation() {
    let parent = require_v1!();
    let cgroup = TestCgroup::create(&parent);
    let mut job = Allocator::start();
    writer::move_pid(&cgroup.path, job.pid()).unwrap();
    // Charges made before the move stay where they were: the cgroup starts near empty.
    assert!(cgroup.usage_v1() < 16 * MIB, "{}", cgroup.usage_v1());

    let mut waker = Waker::new(Some((&cgroup.path, CgroupKind::V1Memory)), &[32 * MIB]).unwrap();
    waker.watch_child(job.pid()).unwrap();
    assert!(waker.problems().is_empty(), "{:?}", waker.problems());
    assert_eq!(
        waker.sources(),
        [
            SOURCE_V1_OOM,
            SOURCE_V1_THRESHOLD,
            SOURCE_V1_USAGE_POLL,
            SOURCE_CHILD
        ]
    );
    assert_eq!(waker.wait(Duration::from_millis(100)), Wake::Tick);

    job.allocate(64 * MIB);
    let wake = waker.wait(Duration::from_secs(10));
    let woke = Instant::now();
    let finished = job.finished();
    // The eventfd, or the near-level poll that a guard threshold switched on.
    assert!(is_v1_crossing(wake), "{wake:?}");
    let late = woke.saturating_duration_since(finished);
    let early = finished.saturating_duration_since(woke);
    eprintln!("woke {early:?} before / {late:?} after the allocation finished");
    assert!(late <= WAKE_SLACK, "woke {late:?} after the allocation");
    assert!(cgroup.usage_v1() >= 64 * MIB, "{}", cgroup.usage_v1());

    // Freeing crosses the threshold downwards (thresholds fire both ways), then the exit.
    // (Past the source's mute: a source that just fired is not polled for REPEAT_GAP.)
    std::thread::sleep(REPEAT_GAP + Duration::from_millis(20));
    job.finish();
    // While usage falls, the eventfd and the read at the next wait may both see it.
    let seen = wakes_until(&mut waker, Wake::ChildExited, Duration::from_secs(10));
    let (last, crossings) = seen.split_last().unwrap();
    assert_eq!(*last, Wake::ChildExited, "{seen:?}");
    assert!(
        (1..=2).contains(&crossings.len()) && crossings.iter().all(|&w| is_v1_crossing(w)),
        "{seen:?}"
    );
    drop(job);
}

#[test]
fn v1_stopping_just_past_a_level_is_seen_by_the_near_level_poll() {
    // The kernel checks thresholds every 128 page events per CPU: a job that stops a page
    // past a level may never trigger the level's eventfd. A guard threshold 10 % below the
    // level switches on the near-level polling on the way up.
    let parent = require_v1!();
    let cgroup = TestCgroup::create(&parent);
    let mut job = Allocator::start();
    writer::move_pid(&cgroup.path, job.pid()).unwrap();
    let level = 48 * MIB;
    let mut waker = Waker::new(Some((&cgroup.path, CgroupKind::V1Memory)), &[level]).unwrap();
    // Far from the level: nothing is polled, the waker blocks on the eventfds.
    assert_eq!(waker.wait(Duration::from_millis(30)), Wake::Tick);
    job.allocate(level - cgroup.usage_v1() + 4096);
    let wake = waker.wait(Duration::from_secs(5));
    let woke = Instant::now();
    let finished = job.finished();
    let usage = cgroup.usage_v1();
    assert!(usage >= level && usage < level + 2 * MIB, "{usage}");
    assert!(is_v1_crossing(wake), "{wake:?}");
    let late = woke.saturating_duration_since(finished);
    eprintln!("{wake:?} {late:?} after the allocation finished");
    assert!(late <= WAKE_SLACK, "woke {late:?} after the allocation");
    drop(job);
}

#[test]
fn v1_no_crossing_is_a_tick_after_the_timeout() {
    let parent = require_v1!();
    let cgroup = TestCgroup::create(&parent);
    let mut job = Allocator::start();
    writer::move_pid(&cgroup.path, job.pid()).unwrap();
    let mut waker = Waker::new(
        Some((&cgroup.path, CgroupKind::V1Memory)),
        &[96 * MIB, 128 * MIB],
    )
    .unwrap();
    job.allocate(8 * MIB);
    job.finished();
    let started = Instant::now();
    assert_eq!(waker.wait(Duration::from_millis(300)), Wake::Tick);
    let waited = started.elapsed();
    assert!(
        // Not before the timeout; the upper bound only catches a wait that
        // hangs (a shared machine may be slow to schedule us).
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    drop(job);
}

#[test]
fn v1_thresholds_rearmed_when_changed() {
    let parent = require_v1!();
    let cgroup = TestCgroup::create(&parent);
    let mut job = Allocator::start();
    writer::move_pid(&cgroup.path, job.pid()).unwrap();
    let mut waker = Waker::new(Some((&cgroup.path, CgroupKind::V1Memory)), &[]).unwrap();
    assert_eq!(waker.sources(), [SOURCE_V1_OOM]);
    // Known later (the policy's levels): registered now, the old ones dropped.
    waker.set_thresholds(&[512 * MIB]).unwrap();
    waker.set_thresholds(&[16 * MIB, 24 * MIB]).unwrap();
    assert_eq!(waker.thresholds(), [16 * MIB, 24 * MIB]);
    job.allocate(32 * MIB);
    let wake = waker.wait(Duration::from_secs(10));
    assert!(is_v1_crossing(wake), "{wake:?}");
    drop(job);
}

#[test]
fn v1_oom_is_reported_before_the_exit() {
    let parent = require_v1!();
    let cgroup = TestCgroup::create(&parent);
    writer::set_memory_max(&cgroup.path, CgroupKind::V1Memory, Some(32 * MIB)).unwrap();
    let mut job = Allocator::start();
    writer::move_pid(&cgroup.path, job.pid()).unwrap();
    let mut waker = Waker::new(Some((&cgroup.path, CgroupKind::V1Memory)), &[]).unwrap();
    waker.watch_child(job.pid()).unwrap();
    job.allocate(128 * MIB);
    let seen = wakes_until(&mut waker, Wake::ChildExited, Duration::from_secs(10));
    assert_eq!(seen.first(), Some(&Wake::Kernel(SOURCE_V1_OOM)), "{seen:?}");
    assert_eq!(seen.last(), Some(&Wake::ChildExited), "{seen:?}");
    let status = job.child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "{status:?}");
}

// ---- the job's exit (no cgroup needed) ----

#[test]
fn child_exit_wakes_even_when_another_thread_reaps_it() {
    let mut child = Command::new("sleep").arg("0.2").spawn().unwrap();
    let pid = child.id() as i32;
    let mut waker = Waker::new(None, &[]).unwrap();
    waker.watch_child(pid).unwrap();
    assert_eq!(waker.sources(), [SOURCE_CHILD]);
    // Like resctl's waiter thread.
    let reaper = std::thread::spawn(move || {
        let status = child.wait().unwrap();
        (status, Instant::now())
    });
    let started = Instant::now();
    assert_eq!(waker.wait(Duration::from_secs(10)), Wake::ChildExited);
    let woke = Instant::now();
    let (status, reaped) = reaper.join().unwrap();
    assert!(status.success());
    assert!(started.elapsed() >= Duration::from_millis(150));
    let late = woke.saturating_duration_since(reaped);
    assert!(late <= WAKE_SLACK, "{late:?}");
    // It stays so.
    assert_eq!(waker.wait(Duration::from_secs(10)), Wake::ChildExited);
}

#[test]
fn a_child_already_reaped_counts_as_exited() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    child.wait().unwrap();
    let mut waker = Waker::new(None, &[]).unwrap();
    waker.watch_child(pid).unwrap();
    assert_eq!(waker.wait(Duration::from_secs(10)), Wake::ChildExited);
}

// ---- PSI triggers on real kernel files (this host has PSI, and cgroup2 at /sys/fs/cgroup/unified) ----

#[test]
fn psi_trigger_accepted_by_the_kernel_and_einval_explained() {
    let system = Path::new("/proc/pressure/memory");
    if !system.exists() {
        eprintln!("skipped: no PSI on this kernel");
        return;
    }
    let _armed = arm_psi_trigger(system, &PsiTrigger::DEFAULT).unwrap();
    let inverted = PsiTrigger {
        stall: Stall::Some,
        threshold: Duration::from_secs(3),
        window: Duration::from_secs(2),
    };
    let err = arm_psi_trigger(system, &inverted).unwrap_err().to_string();
    assert!(err.contains("/proc/pressure/memory"), "{err}");
    assert!(err.contains("some 3000000 2000000"), "{err}");
    assert!(err.contains("at most the window"), "{err}");
}

#[test]
fn psi_trigger_on_a_real_cgroup2_memory_pressure() {
    let host = resctl::cgroup::detect(Path::new("/proc"), Path::new("/")).unwrap();
    let Some(own) = host
        .v2_own
        .filter(|dir| dir.join("memory.pressure").is_file())
    else {
        eprintln!("skipped: no cgroup2 memory.pressure for this process");
        return;
    };
    // Hybrid hosts: PSI files exist without the memory controller; memory.events does not.
    let waker = Waker::new(Some((&own, CgroupKind::V2)), &[]).unwrap();
    assert!(
        waker.sources().contains(&SOURCE_V2_PSI),
        "{:?}",
        waker.problems()
    );
}

// ---- cgroup v2 in the VM (tests/vm/run.sh) ----

/// A v2 cgroup under `RESCTL_VM_CGROUP` with `memory.high` set.
fn vm_job_cgroup(memory_high: u64) -> TestCgroup {
    let cgroup = TestCgroup::create(&common::vm_cgroup());
    writer::set_memory_high(&cgroup.path, CgroupKind::V2, Some(memory_high)).unwrap();
    cgroup
}

#[test]
#[ignore = "needs VM"]
fn vm_v2_memory_events_and_psi_trigger_fire_under_memory_high() {
    let cgroup = vm_job_cgroup(32 * MIB);
    let mut job = Allocator::start();
    writer::move_pid(&cgroup.path, job.pid()).unwrap();
    let mut waker = Waker::new(Some((&cgroup.path, CgroupKind::V2)), &[]).unwrap();
    waker.watch_child(job.pid()).unwrap();
    assert!(waker.problems().is_empty(), "{:?}", waker.problems());
    assert_eq!(
        waker.sources(),
        [SOURCE_V2_PSI, SOURCE_V2_EVENTS, SOURCE_CHILD]
    );
    assert_eq!(waker.wait(Duration::from_millis(100)), Wake::Tick);
    // Past memory.high without swap: reclaim fails, the allocator is throttled (stalls).
    job.allocate(96 * MIB);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline
        && !(seen.contains(&Wake::Kernel(SOURCE_V2_EVENTS))
            && seen.contains(&Wake::Kernel(SOURCE_V2_PSI)))
    {
        seen.push(waker.wait(Duration::from_secs(1)));
    }
    assert!(seen.contains(&Wake::Kernel(SOURCE_V2_EVENTS)), "{seen:?}");
    assert!(seen.contains(&Wake::Kernel(SOURCE_V2_PSI)), "{seen:?}");
    drop(job);
}

#[test]
#[ignore = "needs VM"]
fn vm_v2_usage_poll_wakes_on_a_level_crossing() {
    let cgroup = vm_job_cgroup(512 * MIB);
    let mut job = Allocator::start();
    writer::move_pid(&cgroup.path, job.pid()).unwrap();
    let mut waker = Waker::new(Some((&cgroup.path, CgroupKind::V2)), &[24 * MIB]).unwrap();
    assert!(
        waker.sources().contains(&SOURCE_V2_USAGE_POLL),
        "{:?}",
        waker.sources()
    );
    assert_eq!(waker.wait(Duration::from_millis(100)), Wake::Tick);
    job.allocate(48 * MIB);
    let seen = wakes_until(
        &mut waker,
        Wake::Kernel(SOURCE_V2_USAGE_POLL),
        Duration::from_secs(30),
    );
    let woke = Instant::now();
    let finished = job.finished();
    assert_eq!(
        seen.last(),
        Some(&Wake::Kernel(SOURCE_V2_USAGE_POLL)),
        "{seen:?}"
    );
    // Page faults are ~15x slower under TCG: the crossing is long before the end.
    let late = woke.saturating_duration_since(finished);
    assert!(late <= WAKE_SLACK, "{late:?}");
    drop(job);
}
