//! The cgroup writer: the only code in resctl that changes cgroupfs.
//!
//! Every function takes the cgroup directory explicitly; resctl only ever passes directories
//! it created or was delegated. Every error names the file (and the value written) and says
//! in words what the errno means (see [`FsProblem`]).
//!
//! Removal only ever calls `rmdir` (never unlinks files), so pointing it at a wrong directory
//! cannot delete data: a directory holding real files fails with ENOTEMPTY.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use super::error::{CgroupError, FsProblem};
use super::parse::{parse_pids, parse_word_list};
use super::reader::CgroupKind;

/// How long [`remove`] keeps retrying `rmdir` while the kernel reports EBUSY (processes
/// that were killed are still exiting).
pub const REMOVE_BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// Pause between two `rmdir` attempts on a busy cgroup.
const REMOVE_RETRY_PAUSE: Duration = Duration::from_millis(25);

/// Writes `value` into the existing cgroup file `path` (never creates it).
fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    let mut file = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|error| CgroupError::write(path, value, error))?;
    file.write_all(value.as_bytes())
        .map_err(|error| CgroupError::write(path, value, error))
}

/// Creates the child cgroup `parent/name` and returns its path. An existing directory of
/// that name is an error ([`FsProblem::AlreadyExists`]): resctl never adopts a cgroup it did
/// not create. `name` must be a single path component.
pub fn create_child(parent: &Path, name: &str) -> Result<PathBuf, CgroupError> {
    let invalid = |reason| CgroupError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("empty"));
    }
    if name == "." || name == ".." {
        return Err(invalid("\".\" and \"..\" are not cgroup names"));
    }
    if name.contains('/') || name.contains('\0') {
        return Err(invalid("must be one path component (no '/' or NUL)"));
    }
    let path = parent.join(name);
    std::fs::create_dir(&path).map_err(|source| CgroupError::Create {
        problem: FsProblem::from_io(&source),
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Enables `controllers` for the children of the v2 cgroup `dir` by writing e.g.
/// `+memory +pids` into its `cgroup.subtree_control`. Controllers that `dir` does not have
/// (absent from its `cgroup.controllers`) are skipped. Returns the controllers it enabled
/// (nothing is written when none is available). Only for cgroup v2.
pub fn enable_controllers(dir: &Path, controllers: &[&str]) -> Result<Vec<String>, CgroupError> {
    let available_path = dir.join("cgroup.controllers");
    let available = std::fs::read_to_string(&available_path)
        .map_err(|error| CgroupError::read(&available_path, error))?;
    let available = parse_word_list(&available);
    let enabled: Vec<String> = controllers
        .iter()
        .filter(|wanted| available.iter().any(|have| have == *wanted))
        .map(|name| (*name).to_owned())
        .collect();
    if enabled.is_empty() {
        return Ok(enabled);
    }
    let value = enabled
        .iter()
        .map(|name| format!("+{name}"))
        .collect::<Vec<_>>()
        .join(" ");
    write_file(&dir.join("cgroup.subtree_control"), &value)?;
    Ok(enabled)
}

/// Disables `controllers` for the children of the v2 cgroup `dir` by writing e.g.
/// `-memory -pids` into its `cgroup.subtree_control`; the undo of [`enable_controllers`].
/// Only controllers currently listed there are written (nothing is written when none is).
/// Returns the controllers it disabled. The kernel refuses (EBUSY) while a child cgroup
/// still has one of them enabled in its own `cgroup.subtree_control`.
pub fn disable_controllers(dir: &Path, controllers: &[&str]) -> Result<Vec<String>, CgroupError> {
    let control_path = dir.join("cgroup.subtree_control");
    let enabled = std::fs::read_to_string(&control_path)
        .map_err(|error| CgroupError::read(&control_path, error))?;
    let enabled = parse_word_list(&enabled);
    let disabled: Vec<String> = controllers
        .iter()
        .filter(|unwanted| enabled.iter().any(|have| have == *unwanted))
        .map(|name| (*name).to_owned())
        .collect();
    if disabled.is_empty() {
        return Ok(disabled);
    }
    let value = disabled
        .iter()
        .map(|name| format!("-{name}"))
        .collect::<Vec<_>>()
        .join(" ");
    write_file(&control_path, &value)?;
    Ok(disabled)
}

/// Formats a limit: a byte count, or the kind's word for "unlimited".
fn limit_value(kind: CgroupKind, bytes: Option<u64>) -> String {
    match (bytes, kind) {
        (Some(bytes), _) => bytes.to_string(),
        (None, CgroupKind::V2) => "max".to_owned(),
        (None, CgroupKind::V1Memory) => "-1".to_owned(),
    }
}

/// Sets the throttling limit: v2 `memory.high` (`None` → `max`). Above it the kernel
/// throttles the cgroup's allocations and reclaims hard, without OOM-killing.
///
/// On v1 this writes `memory.soft_limit_in_bytes` (`None` → `-1`): v1 has NO throttling
/// limit — the soft limit only makes the cgroup a preferred target when the whole host is
/// short of memory; nothing happens while the host has free memory.
pub fn set_memory_high(
    dir: &Path,
    kind: CgroupKind,
    bytes: Option<u64>,
) -> Result<(), CgroupError> {
    let file = match kind {
        CgroupKind::V2 => "memory.high",
        CgroupKind::V1Memory => "memory.soft_limit_in_bytes",
    };
    write_file(&dir.join(file), &limit_value(kind, bytes))
}

/// Sets the hard limit: v2 `memory.max` (`None` → `max`), v1 `memory.limit_in_bytes`
/// (`None` → `-1`). Above it the kernel OOM-kills. On v1 a limit below the current usage
/// makes the kernel reclaim first and answer EBUSY if it cannot.
pub fn set_memory_max(dir: &Path, kind: CgroupKind, bytes: Option<u64>) -> Result<(), CgroupError> {
    let file = match kind {
        CgroupKind::V2 => "memory.max",
        CgroupKind::V1Memory => "memory.limit_in_bytes",
    };
    write_file(&dir.join(file), &limit_value(kind, bytes))
}

/// [`CgroupError::Unsupported`] for `operation` on a v1 memory cgroup: a v2-only file.
fn v2_only(dir: &Path, kind: CgroupKind, operation: &'static str) -> Result<(), CgroupError> {
    if kind == CgroupKind::V1Memory {
        return Err(CgroupError::Unsupported {
            operation,
            path: dir.to_path_buf(),
        });
    }
    Ok(())
}

/// Freezes (`true`: every process in it is paused, not killed) or thaws the v2 cgroup
/// (`cgroup.freeze`, kernel 5.2+); v1's memory hierarchy has no freezer:
/// [`CgroupError::Unsupported`].
pub fn set_frozen(dir: &Path, kind: CgroupKind, frozen: bool) -> Result<(), CgroupError> {
    v2_only(dir, kind, "cgroup.freeze")?;
    write_file(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })
}

/// Kills every process in the v2 cgroup `dir` and in the cgroups below it (`cgroup.kill`,
/// kernel 5.14+): SIGKILL to all at once, frozen ones included, so none escapes by forking.
/// v1's memory hierarchy has no such file: [`CgroupError::Unsupported`]; a kernel without
/// it fails to open the file (the error names it).
pub fn kill_all(dir: &Path, kind: CgroupKind) -> Result<(), CgroupError> {
    v2_only(dir, kind, "cgroup.kill")?;
    write_file(&dir.join("cgroup.kill"), "1")
}

/// Asks the kernel to reclaim `bytes` from the v2 cgroup now (`memory.reclaim`, kernel 5.19+).
/// The write blocks while the kernel reclaims. EAGAIN (it could not reclaim that much) is
/// [`CgroupError::NothingReclaimable`]; v1 has no such file: [`CgroupError::Unsupported`].
pub fn reclaim(dir: &Path, kind: CgroupKind, bytes: u64) -> Result<(), CgroupError> {
    v2_only(dir, kind, "memory.reclaim")?;
    let path = dir.join("memory.reclaim");
    write_file(&path, &bytes.to_string()).map_err(|error| reclaim_error(error, bytes))
}

/// A cgroup's memory high-water mark, held open so it can be restarted after every sample
/// (ticks near a level come every 10 ms) without opening the file each time.
#[derive(Debug)]
pub struct PeakReset {
    file: File,
    path: PathBuf,
}

impl PeakReset {
    /// Opens the high-water mark of the cgroup `dir` for restarting. v1 only
    /// (`memory.max_usage_in_bytes` takes `0`); v2's `memory.peak` resets only for the
    /// descriptor that wrote (kernel 6.12+), which the reader's cached descriptors are not:
    /// [`CgroupError::Unsupported`].
    pub fn open(dir: &Path, kind: CgroupKind) -> Result<Self, CgroupError> {
        if kind != CgroupKind::V1Memory {
            return Err(CgroupError::Unsupported {
                operation: "resetting memory.peak",
                path: dir.to_path_buf(),
            });
        }
        let path = dir.join("memory.max_usage_in_bytes");
        let file = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(|error| CgroupError::write(&path, "0", error))?;
        Ok(PeakReset { file, path })
    }

    /// Restarts the high-water mark at the cgroup's current usage, so the next read says the
    /// highest memory since now.
    pub fn reset(&self) -> Result<(), CgroupError> {
        // At offset 0 each time, as a fresh open would write it.
        self.file
            .write_all_at(b"0", 0)
            .map_err(|error| CgroupError::write(&self.path, "0", error))
    }
}

/// Turns a failed `memory.reclaim` write answered with EAGAIN into NothingReclaimable.
fn reclaim_error(error: CgroupError, bytes: u64) -> CgroupError {
    match error {
        CgroupError::Write { path, source, .. }
            if source.raw_os_error() == Some(Errno::EAGAIN as i32) =>
        {
            CgroupError::NothingReclaimable { path, bytes }
        }
        other => other,
    }
}

/// Opens `dir/cgroup.procs` for writing (`O_WRONLY | O_CLOEXEC`: the descriptor does not
/// leak into the executed program). Meant for `pre_exec`: the parent opens it, the child
/// writes `"0"` (itself) into it between fork and exec — an async-signal-safe `write(2)`.
pub fn open_procs_for_move(dir: &Path) -> Result<File, CgroupError> {
    let path = dir.join("cgroup.procs");
    // std opens every file with O_CLOEXEC. The error names the "0" the child will write.
    OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|source| CgroupError::write(&path, "0", source))
}

/// Moves the process `pid` (with all its threads) into the cgroup `dir`; pid 0 means the
/// calling process itself.
pub fn move_pid(dir: &Path, pid: i32) -> Result<(), CgroupError> {
    write_file(&dir.join("cgroup.procs"), &pid.to_string())
}

/// Removes the cgroup `dir` and every cgroup below it, deepest first, retrying while the
/// kernel answers EBUSY for up to [`REMOVE_BUSY_TIMEOUT`] (killed processes still exiting).
/// A directory that is already gone counts as removed.
pub fn remove(dir: &Path) -> Result<(), CgroupError> {
    remove_tree(dir, Instant::now() + REMOVE_BUSY_TIMEOUT)
}

fn remove_tree(dir: &Path, busy_deadline: Instant) -> Result<(), CgroupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(CgroupError::read(dir, error)),
    };
    for entry in entries {
        let entry = entry.map_err(|error| CgroupError::read(dir, error))?;
        let is_dir = entry
            .file_type()
            .map_err(|error| CgroupError::read(entry.path(), error))?
            .is_dir();
        if is_dir {
            remove_tree(&entry.path(), busy_deadline)?;
        }
    }
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error)
                if error.raw_os_error() == Some(Errno::EBUSY as i32)
                    && Instant::now() < busy_deadline =>
            {
                std::thread::sleep(REMOVE_RETRY_PAUSE);
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    problem: FsProblem::from_io(&source),
                    source,
                })
            }
        }
    }
}

/// Registers a v1 memory-cgroup notification: writes `"<event_fd> <target_fd>[ <argument>]"`
/// into `dir/cgroup.event_control`, as the kernel's cgroup-v1 documentation describes. The
/// kernel keeps its own references; `target` may be closed afterwards. Each registration of
/// a usage threshold costs the kernel a grace period (8–16 ms measured here).
///
/// # Errors
///
/// `cgroup.event_control` cannot be opened or the kernel refused the line; the error names
/// the file and the line.
pub fn register_v1_event(
    dir: &Path,
    event_fd: BorrowedFd<'_>,
    target: &File,
    argument: Option<u64>,
) -> io::Result<()> {
    let line = event_control_line(event_fd.as_raw_fd(), target.as_raw_fd(), argument);
    let control_path = dir.join("cgroup.event_control");
    let mut control = OpenOptions::new()
        .write(true)
        .open(&control_path)
        .map_err(|error| {
            io::Error::new(error.kind(), format!("{}: {error}", control_path.display()))
        })?;
    control.write_all(line.as_bytes()).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("{}: writing \"{line}\": {error}", control_path.display()),
        )
    })
}

/// The line written into v1's `cgroup.event_control`: `"<eventfd> <target fd> [<argument>]"`.
pub fn event_control_line(event_fd: i32, target_fd: i32, argument: Option<u64>) -> String {
    match argument {
        Some(argument) => format!("{event_fd} {target_fd} {argument}"),
        None => format!("{event_fd} {target_fd}"),
    }
}

/// Arms a PSI trigger: opens the `*.pressure` file `path` read-write and non-blocking and
/// writes `trigger` into it, NUL-terminated as the kernel's documentation does. The returned
/// file holds the trigger until it is closed; `poll` it for `POLLPRI`.
///
/// # Errors
///
/// Opening or writing failed (EINVAL: the kernel refused the trigger's numbers).
pub fn arm_psi_trigger(path: &Path, trigger: &str) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)?;
    let mut bytes = trigger.as_bytes().to_vec();
    bytes.push(0);
    file.write_all(&bytes)?;
    Ok(file)
}

/// Whether a process with this pid exists (EPERM means it exists but is not ours).
fn process_exists(pid: i32) -> bool {
    !matches!(kill(Pid::from_raw(pid), None), Err(Errno::ESRCH))
}

/// Removes leftovers of earlier runs that died without cleaning up: directories in `parent`
/// named `<prefix><pid>` (e.g. `resctl-1234`) whose process no longer exists and that hold
/// no process. Returns the directories removed; failures are logged and skipped.
pub fn remove_stale(parent: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(parent) else {
        return removed;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(prefix))
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<i32>().ok())
        else {
            continue;
        };
        let path = entry.path();
        if !entry.file_type().is_ok_and(|kind| kind.is_dir()) || pid <= 0 || process_exists(pid) {
            continue;
        }
        if holds_processes(&path) {
            tracing::warn!(cgroup = %path.display(), "stale cgroup still holds processes; left alone");
            continue;
        }
        match remove_tree(&path, Instant::now()) {
            Ok(()) => removed.push(path),
            Err(error) => tracing::warn!("could not remove a stale cgroup: {error}"),
        }
    }
    removed
}

/// Whether `dir` or a cgroup below it lists a process in `cgroup.procs`.
fn holds_processes(dir: &Path) -> bool {
    let procs = dir.join("cgroup.procs");
    if let Ok(text) = std::fs::read_to_string(&procs) {
        if parse_pids(&procs, &text).map_or(true, |pids| !pids.is_empty()) {
            return true;
        }
    }
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
            .any(|entry| holds_processes(&entry.path()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_control_lines() {
        assert_eq!(event_control_line(7, 8, Some(1 << 20)), "7 8 1048576");
        assert_eq!(event_control_line(7, 9, None), "7 9");
    }
    use crate::cgroup::reader::CgroupDir;
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command};
    use std::sync::atomic::{AtomicUsize, Ordering};

    const V2_JOB: &str =
        "tests/fixtures/cgroup/v2/sys/fs/cgroup/system.slice/vmtest.service/fixture-job";

    /// A copy of the v2 fixture job directory (plain files) that tests may write into.
    fn v2_fixture_copy() -> tempfile::TempDir {
        let target = tempfile::tempdir().unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(V2_JOB);
        for entry in std::fs::read_dir(source).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), target.path().join(entry.file_name())).unwrap();
        }
        target
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn v2_limits_written_as_numbers_or_max() {
        let dir = v2_fixture_copy();
        set_memory_high(dir.path(), CgroupKind::V2, Some(100 << 20)).unwrap();
        assert_eq!(read(&dir.path().join("memory.high")), "104857600");
        set_memory_high(dir.path(), CgroupKind::V2, None).unwrap();
        assert_eq!(read(&dir.path().join("memory.high")), "max");
        set_memory_max(dir.path(), CgroupKind::V2, Some(1)).unwrap();
        assert_eq!(read(&dir.path().join("memory.max")), "1");
        set_memory_max(dir.path(), CgroupKind::V2, None).unwrap();
        assert_eq!(read(&dir.path().join("memory.max")), "max");
        // Read back through the reader: "max" is None.
        let mut reader = CgroupDir::open_unchecked(dir.path(), CgroupKind::V2).unwrap();
        assert_eq!(reader.sample().unwrap().memory_max, None);
    }

    #[test]
    fn v1_limits_use_minus_one_for_unlimited() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["memory.soft_limit_in_bytes", "memory.limit_in_bytes"] {
            std::fs::write(dir.path().join(file), "9223372036854771712\n").unwrap();
        }
        set_memory_high(dir.path(), CgroupKind::V1Memory, None).unwrap();
        assert_eq!(read(&dir.path().join("memory.soft_limit_in_bytes")), "-1");
        set_memory_max(dir.path(), CgroupKind::V1Memory, Some(4096)).unwrap();
        assert_eq!(read(&dir.path().join("memory.limit_in_bytes")), "4096");
    }

    #[test]
    fn write_errors_name_file_value_and_problem() {
        let dir = tempfile::tempdir().unwrap();
        let err = set_memory_max(dir.path(), CgroupKind::V2, Some(5)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("memory.max"), "{text}");
        assert!(text.contains("\"5\""), "{text}");
        assert!(text.contains("removed underneath"), "{text}");
        assert_eq!(err.problem(), Some(&FsProblem::Removed));
        let einval = io::Error::from_raw_os_error(Errno::EINVAL as i32);
        assert_eq!(FsProblem::from_io(&einval), FsProblem::Refused);
        let eperm = io::Error::from_raw_os_error(Errno::EPERM as i32);
        assert!(FsProblem::from_io(&eperm)
            .to_string()
            .contains("no permission"));
        let ebusy = io::Error::from_raw_os_error(Errno::EBUSY as i32);
        assert_eq!(FsProblem::from_io(&ebusy), FsProblem::Busy);
    }

    #[test]
    fn kill_all_writes_cgroup_kill_on_v2_only_and_never_creates_it() {
        let dir = tempfile::tempdir().unwrap();
        // A kernel without cgroup.kill (before 5.14): the file is named, nothing created.
        let err = kill_all(dir.path(), CgroupKind::V2).unwrap_err();
        assert!(err.to_string().contains("cgroup.kill"), "{err}");
        assert!(!dir.path().join("cgroup.kill").exists());
        std::fs::write(dir.path().join("cgroup.kill"), "").unwrap();
        kill_all(dir.path(), CgroupKind::V2).unwrap();
        assert_eq!(read(&dir.path().join("cgroup.kill")), "1");
        std::fs::write(dir.path().join("cgroup.kill"), "").unwrap();
        let err = kill_all(dir.path(), CgroupKind::V1Memory).unwrap_err();
        assert!(
            matches!(
                err,
                CgroupError::Unsupported {
                    operation: "cgroup.kill",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(read(&dir.path().join("cgroup.kill")), "");
    }

    #[test]
    fn reclaim_v2_v1_and_eagain() {
        let dir = v2_fixture_copy();
        reclaim(dir.path(), CgroupKind::V2, 64 << 20).unwrap();
        assert_eq!(read(&dir.path().join("memory.reclaim")), "67108864");
        let err = reclaim(dir.path(), CgroupKind::V1Memory, 1).unwrap_err();
        assert!(matches!(err, CgroupError::Unsupported { .. }), "{err}");
        let eagain = CgroupError::write(
            dir.path().join("memory.reclaim"),
            "8",
            io::Error::from_raw_os_error(Errno::EAGAIN as i32),
        );
        let err = reclaim_error(eagain, 8);
        assert!(
            matches!(err, CgroupError::NothingReclaimable { bytes: 8, .. }),
            "{err}"
        );
        let einval =
            CgroupError::write("x", "8", io::Error::from_raw_os_error(Errno::EINVAL as i32));
        assert!(matches!(
            reclaim_error(einval, 8),
            CgroupError::Write { .. }
        ));
    }

    #[test]
    fn reset_peak_writes_zero_on_v1_only() {
        let dir = v2_fixture_copy();
        let err = PeakReset::open(dir.path(), CgroupKind::V2).unwrap_err();
        assert!(matches!(err, CgroupError::Unsupported { .. }), "{err}");
        std::fs::write(dir.path().join("memory.max_usage_in_bytes"), "104857600").unwrap();
        PeakReset::open(dir.path(), CgroupKind::V1Memory)
            .unwrap()
            .reset()
            .unwrap();
        assert_eq!(read(&dir.path().join("memory.max_usage_in_bytes")), "0");
    }

    #[test]
    fn enable_only_available_controllers() {
        let dir = v2_fixture_copy(); // cgroup.controllers: "cpu memory pids"
        let enabled = enable_controllers(dir.path(), &["memory", "io", "pids"]).unwrap();
        assert_eq!(enabled, ["memory", "pids"]);
        assert_eq!(
            read(&dir.path().join("cgroup.subtree_control")),
            "+memory +pids"
        );
        std::fs::write(dir.path().join("cgroup.subtree_control"), "").unwrap();
        assert!(enable_controllers(dir.path(), &["io"]).unwrap().is_empty());
        assert_eq!(read(&dir.path().join("cgroup.subtree_control")), "");
        let err = enable_controllers(&dir.path().join("nope"), &["memory"]).unwrap_err();
        assert!(err.to_string().contains("nope/cgroup.controllers"), "{err}");
    }

    #[test]
    fn disable_only_enabled_controllers() {
        let dir = v2_fixture_copy();
        std::fs::write(dir.path().join("cgroup.subtree_control"), "cpu memory\n").unwrap();
        let disabled = disable_controllers(dir.path(), &["memory", "pids"]).unwrap();
        assert_eq!(disabled, ["memory"]);
        assert_eq!(read(&dir.path().join("cgroup.subtree_control")), "-memory");
        std::fs::write(dir.path().join("cgroup.subtree_control"), "\n").unwrap();
        assert!(disable_controllers(dir.path(), &["memory"])
            .unwrap()
            .is_empty());
        assert_eq!(read(&dir.path().join("cgroup.subtree_control")), "\n");
    }

    #[test]
    fn create_child_names_and_eexist() {
        let parent = tempfile::tempdir().unwrap();
        let child = create_child(parent.path(), "job").unwrap();
        assert!(child.is_dir());
        let err = create_child(parent.path(), "job").unwrap_err();
        assert_eq!(err.problem(), Some(&FsProblem::AlreadyExists));
        assert!(err.to_string().contains("job"), "{err}");
        for bad in ["", ".", "..", "a/b"] {
            assert!(matches!(
                create_child(parent.path(), bad),
                Err(CgroupError::InvalidName { .. })
            ));
        }
    }

    #[test]
    fn procs_fd_and_move_pid_write_the_pid() {
        let dir = v2_fixture_copy();
        let mut procs = open_procs_for_move(dir.path()).unwrap();
        procs.write_all(b"0").unwrap();
        drop(procs);
        assert!(read(&dir.path().join("cgroup.procs")).starts_with('0'));
        move_pid(dir.path(), 4242).unwrap();
        assert_eq!(read(&dir.path().join("cgroup.procs")), "4242");
        assert!(open_procs_for_move(&dir.path().join("gone")).is_err());
    }

    #[test]
    fn remove_depth_first_and_idempotent() {
        let parent = tempfile::tempdir().unwrap();
        let top = parent.path().join("resctl-x");
        std::fs::create_dir_all(top.join("job/inner")).unwrap();
        std::fs::create_dir_all(top.join("supervisor")).unwrap();
        remove(&top).unwrap();
        assert!(!top.exists());
        remove(&top).unwrap();
        // A directory holding a real file is never emptied: rmdir only.
        std::fs::create_dir(&top).unwrap();
        std::fs::write(top.join("data"), "keep").unwrap();
        let err = remove(&top).unwrap_err();
        assert_eq!(err.problem(), Some(&FsProblem::NotEmpty));
        assert_eq!(read(&top.join("data")), "keep");
    }

    #[test]
    fn remove_stale_only_dead_pids_with_prefix() {
        let parent = tempfile::tempdir().unwrap();
        let dead_pid = i32::MAX - 1; // beyond any pid_max
        let own_pid = std::process::id();
        for name in [
            format!("resctl-{dead_pid}"),
            format!("resctl-{own_pid}"),
            "resctl-abc".to_owned(),
            format!("other-{dead_pid}"),
            format!("resctl-{}", dead_pid - 1),
        ] {
            std::fs::create_dir(parent.path().join(name)).unwrap();
        }
        std::fs::create_dir(parent.path().join(format!("resctl-{dead_pid}/job"))).unwrap();
        // A stale directory still listing a process is left alone.
        std::fs::write(
            parent
                .path()
                .join(format!("resctl-{}/cgroup.procs", dead_pid - 1)),
            "77\n",
        )
        .unwrap();
        let removed = remove_stale(parent.path(), "resctl-");
        assert_eq!(removed, [parent.path().join(format!("resctl-{dead_pid}"))]);
        let mut left: Vec<String> = std::fs::read_dir(parent.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut expected = vec![
            format!("other-{dead_pid}"),
            format!("resctl-{}", dead_pid - 1),
            format!("resctl-{own_pid}"),
            "resctl-abc".to_owned(),
        ];
        expected.sort();
        assert_eq!(left, expected);
    }

    // ---- real cgroup v1 memory hierarchy of this machine (skipped where there is none) ----

    static TEST_CGROUP_COUNTER: AtomicUsize = AtomicUsize::new(0);

    /// A test cgroup `resctl-test-<pid>-<n>` that is removed (processes killed first) on drop,
    /// also when the test fails.
    struct TestCgroup {
        path: PathBuf,
        children: Vec<Child>,
    }

    impl TestCgroup {
        fn create() -> Option<Self> {
            let host = crate::cgroup::detect(Path::new("/proc"), Path::new("/")).ok()?;
            let parent = host.memory_v1_own?;
            if !crate::cgroup::HostCgroups::is_writable(&parent) {
                return None;
            }
            let name = format!(
                "resctl-test-{}-{}",
                std::process::id(),
                TEST_CGROUP_COUNTER.fetch_add(1, Ordering::SeqCst)
            );
            let path = create_child(&parent, &name).unwrap();
            Some(Self {
                path,
                children: Vec::new(),
            })
        }
    }

    impl Drop for TestCgroup {
        fn drop(&mut self) {
            for child in &mut self.children {
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = remove(&self.path);
        }
    }

    #[test]
    fn live_v1_create_limit_move_remove() {
        let Some(mut cgroup) = TestCgroup::create() else {
            eprintln!("no writable v1 memory cgroup on this host; skipped");
            return;
        };
        let path = cgroup.path.clone();
        set_memory_max(&path, CgroupKind::V1Memory, Some(64 << 20)).unwrap();
        set_memory_high(&path, CgroupKind::V1Memory, Some(48 << 20)).unwrap();
        let mut reader = CgroupDir::open(&path, CgroupKind::V1Memory).unwrap();
        let sample = reader.sample().unwrap();
        assert_eq!(sample.memory_max, Some(64 << 20));
        assert_eq!(sample.memory_high, Some(48 << 20));
        assert!(!reader.is_populated().unwrap());

        cgroup
            .children
            .push(Command::new("sleep").arg("30").spawn().unwrap());
        let pid = cgroup.children[0].id() as i32;
        move_pid(&path, pid).unwrap();
        assert_eq!(reader.pids().unwrap(), vec![pid]);
        assert!(reader.is_populated().unwrap());
        assert!(reader.sample().unwrap().memory_current.is_some());

        // Back to unlimited.
        set_memory_max(&path, CgroupKind::V1Memory, None).unwrap();
        assert_eq!(reader.sample().unwrap().memory_max, None);
        let err = reclaim(&path, CgroupKind::V1Memory, 4096).unwrap_err();
        assert!(matches!(err, CgroupError::Unsupported { .. }));
        let err = move_pid(&path, i32::MAX - 1).unwrap_err();
        assert_eq!(err.problem(), Some(&FsProblem::NoSuchProcess), "{err}");

        // Removing while the process lives: busy for the whole retry window.
        let started = Instant::now();
        let err = remove(&path).unwrap_err();
        assert_eq!(err.problem(), Some(&FsProblem::Busy), "{err}");
        eprintln!("busy remove: {err}");
        assert!(started.elapsed() >= REMOVE_BUSY_TIMEOUT);

        let mut child = cgroup.children.remove(0);
        child.kill().unwrap();
        child.wait().unwrap();
        remove(&path).unwrap();
        assert!(!path.exists());
        // The open reader now fails cleanly instead of reading something else.
        let err = reader.sample().unwrap_err();
        eprintln!("sample after removal: {err}");
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
    }

    #[test]
    fn live_v1_reset_peak_restarts_the_high_water_mark() {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;
        let Some(mut cgroup) = TestCgroup::create() else {
            eprintln!("no writable v1 memory cgroup on this host; skipped");
            return;
        };
        // Allocates and frees 32 MiB for each line it reads, once it is in the cgroup.
        let script = "import sys\nfor _ in sys.stdin:\n    x = bytearray(32 << 20)\n    \
                      del x\n    print('freed', flush=True)\n";
        let Ok(child) = Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
        else {
            eprintln!("python3 not found; skipped");
            return;
        };
        cgroup.children.push(child);
        let child = &mut cgroup.children[0];
        move_pid(&cgroup.path, child.id() as i32).unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut reader = CgroupDir::open(&cgroup.path, CgroupKind::V1Memory).unwrap();
        let peak_reset = PeakReset::open(&cgroup.path, CgroupKind::V1Memory).unwrap();
        // Twice, through the same held-open descriptor.
        for _ in 0..2 {
            stdin.write_all(b"go\n").unwrap();
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            assert_eq!(line.trim(), "freed");
            let before = reader.sample().unwrap();
            assert!(before.memory_peak.unwrap() >= 32 << 20, "{before:?}");
            peak_reset.reset().unwrap();
            let after = reader.sample().unwrap();
            // The freed 32 MiB is gone from the restarted mark. (Not "< 16 MiB": when
            // python's files were not cached, their pages are charged here too.)
            assert!(
                after.memory_peak.unwrap() + (16 << 20) < before.memory_peak.unwrap(),
                "before {before:?}, after {after:?}"
            );
            assert!(after.memory_peak >= after.memory_current, "{after:?}");
        }
    }

    #[test]
    fn live_v1_pre_exec_join_and_nested_remove() {
        let Some(mut cgroup) = TestCgroup::create() else {
            eprintln!("no writable v1 memory cgroup on this host; skipped");
            return;
        };
        let job = create_child(&cgroup.path, "job").unwrap();
        let procs = open_procs_for_move(&job).unwrap();
        let mut command = Command::new("sleep");
        command.arg("30");
        // SAFETY: the closure only calls write(2), which is async-signal-safe, on a
        // descriptor opened before fork; it allocates nothing and takes no locks.
        unsafe {
            command.pre_exec(move || {
                nix::unistd::write(&procs, b"0").map_err(io::Error::from)?;
                Ok(())
            });
        }
        cgroup.children.push(command.spawn().unwrap());
        let pid = cgroup.children[0].id() as i32;
        let mut reader = CgroupDir::open(&job, CgroupKind::V1Memory).unwrap();
        assert_eq!(reader.pids().unwrap(), vec![pid]);
        let mut child = cgroup.children.remove(0);
        child.kill().unwrap();
        child.wait().unwrap();
        let top = cgroup.path.clone();
        remove(&top).unwrap();
        assert!(!job.exists());
        assert!(!top.exists());
    }

    #[test]
    fn live_v1_remove_stale() {
        let Some(cgroup) = TestCgroup::create() else {
            eprintln!("no writable v1 memory cgroup on this host; skipped");
            return;
        };
        let dead = create_child(&cgroup.path, &format!("resctl-{}", i32::MAX - 1)).unwrap();
        create_child(&dead, "job").unwrap();
        let alive = create_child(&cgroup.path, &format!("resctl-{}", std::process::id())).unwrap();
        assert_eq!(
            remove_stale(&cgroup.path, "resctl-"),
            std::slice::from_ref(&dead)
        );
        assert!(!dead.exists());
        assert!(alive.exists());
    }
}
