//! Reader of per-process, per-thread and host-wide data from procfs.
//!
//! [`ProcReader`] is built for being called every second on the same processes:
//!
//! - it keeps one open [`File`] per `ROOT/PID/stat`, `ROOT/PID/status` and
//!   `ROOT/PID/task/TID/stat` and re-reads it with `pread` at offset 0 into one reused
//!   buffer, instead of opening, reading and closing each file on every tick;
//! - it lists `ROOT/PID/task` again only when the process's thread count (stat field 20)
//!   changed since the last tick or a cached thread vanished;
//! - per-thread data comes only from the task's `stat` (a per-thread `status` is several
//!   times slower to generate in the kernel).
//!
//! Processes and threads that vanish (ENOENT/ESRCH) are skipped silently: that is normal for
//! a running job. A held file descriptor also protects against PID reuse: the kernel answers
//! ESRCH for the old process, and the reader then opens the new one afresh.
//!
//! The root is injectable (`/proc` by default) so tests run on fixture trees.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use super::proc_parse::CpuTimes;
use super::proc_parse::{
    parse_cpu_stat, parse_loadavg, parse_meminfo, parse_stat, parse_status_memory, StatLine,
};
use crate::kernel_text::{parse_pressure, ParseError, Pressure};

/// The usual procfs mount point.
pub const DEFAULT_PROC_ROOT: &str = "/proc";

/// Clock ticks per second assumed when `sysconf(_SC_CLK_TCK)` fails (the Linux value on
/// every mainstream architecture).
pub const FALLBACK_CLOCK_TICKS_PER_SECOND: u64 = 100;

/// Initial size of the reused read buffer: a task stat is ~300 bytes and a status ~1.5 KiB;
/// `/proc/stat` on a large machine grows it (doubling) on first use.
const INITIAL_BUFFER_BYTES: usize = 4096;

/// The unit of `utime`/`stime` and of [`CpuTimes`]: `sysconf(_SC_CLK_TCK)`, or
/// [`FALLBACK_CLOCK_TICKS_PER_SECOND`] if that fails.
pub fn clock_ticks_per_second() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(ticks)) if ticks > 0 => {
            u64::try_from(ticks).unwrap_or(FALLBACK_CLOCK_TICKS_PER_SECOND)
        }
        _ => FALLBACK_CLOCK_TICKS_PER_SECOND,
    }
}

/// A procfs file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// Opening or reading the file failed.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Listing a directory (such as `/proc/PID/task`) failed.
    #[error("cannot list {}: {source}", path.display())]
    List {
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The text did not have the expected format; the error names the file and line.
    #[error(transparent)]
    Parse(#[from] ParseError),
}

/// One process of the job, sampled at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessSample {
    /// Process id.
    pub pid: i32,
    /// Command name (stat field 2, without parentheses).
    pub comm: String,
    /// One-letter state (stat field 3).
    pub state: char,
    /// Number of threads (stat field 20).
    pub num_threads: u32,
    /// User-mode CPU time of the whole process, in clock ticks.
    pub utime_ticks: u64,
    /// Kernel-mode CPU time of the whole process, in clock ticks.
    pub stime_ticks: u64,
    /// Resident anonymous memory, bytes (`RssAnon` in status).
    pub rss_anon: u64,
    /// Resident file-backed memory, bytes (`RssFile` in status).
    pub rss_file: u64,
    /// Resident shared memory, bytes (`RssShmem` in status).
    pub rss_shmem: u64,
    /// The process's threads (including the main thread), sorted by thread id.
    pub threads: Vec<ThreadSample>,
}

/// One thread, sampled from `/proc/PID/task/TID/stat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadSample {
    /// Thread id.
    pub tid: i32,
    /// Thread name.
    pub comm: String,
    /// One-letter state.
    pub state: char,
    /// User-mode CPU time of this thread, in clock ticks.
    pub utime_ticks: u64,
    /// Kernel-mode CPU time of this thread, in clock ticks.
    pub stime_ticks: u64,
    /// CPU the thread last ran on.
    pub processor: i32,
}

/// Host-wide figures from `/proc/meminfo`, `/proc/loadavg`, `/proc/stat` and `/proc/pressure`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostSample {
    /// `MemTotal`, bytes.
    pub mem_total: u64,
    /// `MemAvailable`, bytes.
    pub mem_available: u64,
    /// `SwapTotal`, bytes.
    pub swap_total: u64,
    /// `SwapFree`, bytes.
    pub swap_free: u64,
    /// 1-minute load average.
    pub load1: f64,
    /// 5-minute load average.
    pub load5: f64,
    /// 15-minute load average.
    pub load15: f64,
    /// Currently runnable threads (the number before `/` in `/proc/loadavg`).
    pub runnable: u32,
    /// The aggregate `cpu` line of `/proc/stat`, in clock ticks.
    pub cpu_total: CpuTimes,
    /// One entry per online CPU (`cpuN` lines), in clock ticks.
    pub per_cpu: Vec<CpuTimes>,
    /// `/proc/pressure/memory`, when the kernel has PSI.
    pub memory_pressure: Option<Pressure>,
    /// `/proc/pressure/cpu`, when the kernel has PSI.
    pub cpu_pressure: Option<Pressure>,
    /// `/proc/pressure/io`, when the kernel has PSI.
    pub io_pressure: Option<Pressure>,
}

/// Reads processes, threads and host figures from a procfs root, keeping files open
/// between calls (see the module documentation).
#[derive(Debug)]
pub struct ProcReader {
    root: PathBuf,
    ticks_per_second: u64,
    processes: HashMap<i32, ProcessFiles>,
    host: HostFiles,
    buffer: Vec<u8>,
    last_errors: Vec<ProcError>,
}

/// An open procfs file and the path it was opened from (for error messages).
#[derive(Debug)]
struct CachedFile {
    path: PathBuf,
    file: File,
}

/// The open files of one process.
#[derive(Debug)]
struct ProcessFiles {
    stat: CachedFile,
    status: CachedFile,
    /// Sorted by thread id.
    threads: Vec<ThreadFile>,
    /// `num_threads` when `ROOT/PID/task` was last listed; `None` before the first listing.
    num_threads_at_listing: Option<u32>,
}

#[derive(Debug)]
struct ThreadFile {
    tid: i32,
    stat: CachedFile,
}

/// A host file opened once, or known to be absent (PSI disabled or not built in).
#[derive(Debug, Default)]
enum OptionalFile {
    #[default]
    NotOpenedYet,
    Absent,
    Open(CachedFile),
}

#[derive(Debug, Default)]
struct HostFiles {
    meminfo: Option<CachedFile>,
    loadavg: Option<CachedFile>,
    stat: Option<CachedFile>,
    memory_pressure: OptionalFile,
    cpu_pressure: OptionalFile,
    io_pressure: OptionalFile,
}

/// What happened when reading one process.
enum Outcome<T> {
    Sampled(T),
    Vanished,
}

impl ProcReader {
    /// Creates a reader of the procfs mounted at `root` (usually [`DEFAULT_PROC_ROOT`]).
    /// Nothing is opened until the first sample.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            ticks_per_second: clock_ticks_per_second(),
            processes: HashMap::new(),
            host: HostFiles::default(),
            buffer: vec![0; INITIAL_BUFFER_BYTES],
            last_errors: Vec::new(),
        }
    }

    /// The procfs root this reader reads from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Clock ticks per second: the unit of all `*_ticks` fields and of [`CpuTimes`].
    pub fn ticks_per_second(&self) -> u64 {
        self.ticks_per_second
    }

    /// Errors (other than vanished processes) met by the last [`sample_processes`] call:
    /// the processes concerned were left out of its result. Also logged as warnings.
    ///
    /// [`sample_processes`]: Self::sample_processes
    pub fn last_errors(&self) -> &[ProcError] {
        &self.last_errors
    }

    /// Number of procfs files this reader holds open for processes and threads
    /// (host files not counted).
    pub fn open_process_files(&self) -> usize {
        self.processes
            .values()
            .map(|files| 2 + files.threads.len())
            .sum()
    }

    /// Samples these processes (the pids of the job's cgroup), in the given order.
    ///
    /// Processes and threads that vanished (ENOENT/ESRCH on open or read) are skipped
    /// silently and their cached files closed; files of processes no longer in `pids` are
    /// closed too. Other failures (permission, parse errors) leave the process out and are
    /// reported by [`last_errors`](Self::last_errors).
    pub fn sample_processes(&mut self, pids: &[i32]) -> Vec<ProcessSample> {
        self.sample_processes_with(pids, true)
    }

    /// Like [`sample_processes`](Self::sample_processes), but reads the per-thread files
    /// only when `with_threads` is set: a process's own stat already sums its threads'
    /// CPU time, and per-thread reads are most of the cost for a job with many threads.
    /// Without them each sample's `threads` is empty.
    pub fn sample_processes_with(
        &mut self,
        pids: &[i32],
        with_threads: bool,
    ) -> Vec<ProcessSample> {
        self.last_errors.clear();
        let mut samples = Vec::with_capacity(pids.len());
        for &pid in pids {
            match self.sample_process(pid, with_threads) {
                Ok(Outcome::Sampled(sample)) => samples.push(sample),
                Ok(Outcome::Vanished) => {
                    self.processes.remove(&pid);
                }
                Err(error) => {
                    tracing::warn!(pid, %error, "cannot sample process");
                    self.processes.remove(&pid);
                    self.last_errors.push(error);
                }
            }
        }
        if self.processes.len() > samples.len() {
            let wanted: HashSet<i32> = pids.iter().copied().collect();
            self.processes.retain(|pid, _| wanted.contains(pid));
        }
        samples
    }

    fn sample_process(
        &mut self,
        pid: i32,
        with_threads: bool,
    ) -> Result<Outcome<ProcessSample>, ProcError> {
        let was_cached = self.processes.contains_key(&pid);
        match self.sample_process_once(pid, with_threads)? {
            Outcome::Vanished if was_cached => {
                // The cached files may belong to an earlier process with the same pid
                // (PID reuse answers ESRCH on the old files): try the current one once.
                self.processes.remove(&pid);
                self.sample_process_once(pid, with_threads)
            }
            outcome => Ok(outcome),
        }
    }

    fn sample_process_once(
        &mut self,
        pid: i32,
        with_threads: bool,
    ) -> Result<Outcome<ProcessSample>, ProcError> {
        let files = match self.processes.entry(pid) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let process_dir = self.root.join(pid.to_string());
                let Outcome::Sampled(stat) = open_cached(process_dir.join("stat"))? else {
                    return Ok(Outcome::Vanished);
                };
                let Outcome::Sampled(status) = open_cached(process_dir.join("status"))? else {
                    return Ok(Outcome::Vanished);
                };
                entry.insert(ProcessFiles {
                    stat,
                    status,
                    threads: Vec::new(),
                    num_threads_at_listing: None,
                })
            }
        };
        let buffer = &mut self.buffer;

        let Outcome::Sampled(stat) = read_stat(&files.stat, buffer)? else {
            return Ok(Outcome::Vanished);
        };
        let Outcome::Sampled(memory) = read_cached(&files.status, buffer)? else {
            return Ok(Outcome::Vanished);
        };
        let memory =
            parse_status_memory(memory).map_err(|error| error.in_file(&files.status.path))?;

        let threads = if with_threads {
            sample_threads(&self.root, pid, files, stat.num_threads, buffer)?
        } else {
            Vec::new()
        };
        Ok(Outcome::Sampled(ProcessSample {
            pid,
            comm: stat.comm,
            state: stat.state,
            num_threads: stat.num_threads,
            utime_ticks: stat.utime_ticks,
            stime_ticks: stat.stime_ticks,
            rss_anon: memory.rss_anon,
            rss_file: memory.rss_file,
            rss_shmem: memory.rss_shmem,
            threads,
        }))
    }

    /// Samples host-wide figures: `/proc/meminfo`, `/proc/loadavg`, `/proc/stat` (required)
    /// and `/proc/pressure/{memory,cpu,io}` (each `None` when the kernel lacks PSI).
    pub fn sample_host(&mut self) -> Result<HostSample, ProcError> {
        let root = &self.root;
        let buffer = &mut self.buffer;

        let meminfo = read_required(root, "meminfo", &mut self.host.meminfo, buffer)?;
        let memory = parse_meminfo(meminfo.text).map_err(|error| error.in_file(meminfo.path))?;

        let loadavg = read_required(root, "loadavg", &mut self.host.loadavg, buffer)?;
        let load = parse_loadavg(loadavg.text).map_err(|error| error.in_file(loadavg.path))?;

        let stat = read_required(root, "stat", &mut self.host.stat, buffer)?;
        let cpu = parse_cpu_stat(stat.text).map_err(|error| error.in_file(stat.path))?;

        let memory_pressure = read_pressure(
            root,
            "pressure/memory",
            &mut self.host.memory_pressure,
            buffer,
        )?;
        let cpu_pressure =
            read_pressure(root, "pressure/cpu", &mut self.host.cpu_pressure, buffer)?;
        let io_pressure = read_pressure(root, "pressure/io", &mut self.host.io_pressure, buffer)?;

        Ok(HostSample {
            mem_total: memory.mem_total,
            mem_available: memory.mem_available,
            swap_total: memory.swap_total,
            swap_free: memory.swap_free,
            load1: load.load1,
            load5: load.load5,
            load15: load.load15,
            runnable: load.runnable,
            cpu_total: cpu.total,
            per_cpu: cpu.per_cpu,
            memory_pressure,
            cpu_pressure,
            io_pressure,
        })
    }

    /// All descendants of `pid` (children, grandchildren, ...) found by scanning the `ppid`
    /// field of every `ROOT/*/stat`, plus `pid` itself if it exists; sorted ascending.
    /// Used when no cgroup is available (monitor-only mode). Processes that vanish or
    /// cannot be read during the scan are left out.
    pub fn descendants(&mut self, pid: i32) -> Vec<i32> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!(root = %self.root.display(), %error, "cannot list procfs root");
                return Vec::new();
            }
        };
        let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
        let mut pid_exists = false;
        for entry in entries.flatten() {
            let Some(candidate) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<i32>().ok())
            else {
                continue;
            };
            let path = entry.path().join("stat");
            let Ok(Outcome::Sampled(file)) = open_cached(path) else {
                continue;
            };
            let Ok(Outcome::Sampled(bytes)) = read_cached(&file, &mut self.buffer) else {
                continue;
            };
            let Ok(stat) = parse_stat(bytes) else {
                continue;
            };
            if candidate == pid {
                pid_exists = true;
            }
            children.entry(stat.ppid).or_default().push(candidate);
        }
        let mut found = Vec::new();
        if pid_exists {
            found.push(pid);
        }
        let mut queue = vec![pid];
        while let Some(parent) = queue.pop() {
            if let Some(kids) = children.remove(&parent) {
                found.extend_from_slice(&kids);
                queue.extend(kids);
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }
}

impl Default for ProcReader {
    /// A reader of [`DEFAULT_PROC_ROOT`].
    fn default() -> Self {
        Self::new(DEFAULT_PROC_ROOT)
    }
}

/// Reads the threads of one process, re-listing `ROOT/PID/task` when the thread count
/// changed since the last listing or a cached thread vanished.
fn sample_threads(
    root: &Path,
    pid: i32,
    files: &mut ProcessFiles,
    num_threads: u32,
    buffer: &mut Vec<u8>,
) -> Result<Vec<ThreadSample>, ProcError> {
    let mut listed_now = false;
    if files.num_threads_at_listing != Some(num_threads) {
        list_threads(root, pid, files, num_threads)?;
        listed_now = true;
    }
    let mut samples = Vec::with_capacity(files.threads.len());
    let mut any_vanished = false;
    let mut first_error = None;
    files
        .threads
        .retain(|thread| match read_thread(thread, buffer) {
            Ok(Outcome::Sampled(sample)) => {
                samples.push(sample);
                true
            }
            Ok(Outcome::Vanished) => {
                any_vanished = true;
                false
            }
            Err(error) => {
                first_error.get_or_insert(error);
                false
            }
        });
    if let Some(error) = first_error {
        return Err(error);
    }
    if any_vanished && !listed_now {
        // A thread exited: another may have started in its place without changing the
        // count. List again and read the threads not seen yet.
        list_threads(root, pid, files, num_threads)?;
        for thread in &files.threads {
            if samples
                .binary_search_by_key(&thread.tid, |sample| sample.tid)
                .is_ok()
            {
                continue;
            }
            if let Outcome::Sampled(sample) = read_thread(thread, buffer)? {
                samples.push(sample);
            }
        }
        samples.sort_unstable_by_key(|sample| sample.tid);
    }
    Ok(samples)
}

/// Lists `ROOT/PID/task`, keeping the open files of known threads and opening new ones.
fn list_threads(
    root: &Path,
    pid: i32,
    files: &mut ProcessFiles,
    num_threads: u32,
) -> Result<(), ProcError> {
    let task_dir = root.join(pid.to_string()).join("task");
    let entries = match std::fs::read_dir(&task_dir) {
        Ok(entries) => entries,
        Err(error) if is_vanished(&error) => {
            files.threads.clear();
            files.num_threads_at_listing = Some(num_threads);
            return Ok(());
        }
        Err(source) => {
            return Err(ProcError::List {
                path: task_dir,
                source,
            })
        }
    };
    let mut tids: Vec<i32> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();

    let mut previous = std::mem::take(&mut files.threads).into_iter().peekable();
    let mut threads = Vec::with_capacity(tids.len());
    for tid in tids {
        while previous.next_if(|thread| thread.tid < tid).is_some() {}
        if let Some(known) = previous.next_if(|thread| thread.tid == tid) {
            threads.push(known);
            continue;
        }
        let path = task_dir.join(tid.to_string()).join("stat");
        if let Outcome::Sampled(stat) = open_cached(path)? {
            threads.push(ThreadFile { tid, stat });
        }
    }
    files.threads = threads;
    files.num_threads_at_listing = Some(num_threads);
    Ok(())
}

fn read_thread(
    thread: &ThreadFile,
    buffer: &mut Vec<u8>,
) -> Result<Outcome<ThreadSample>, ProcError> {
    Ok(match read_stat(&thread.stat, buffer)? {
        Outcome::Sampled(stat) => Outcome::Sampled(ThreadSample {
            tid: thread.tid,
            comm: stat.comm,
            state: stat.state,
            utime_ticks: stat.utime_ticks,
            stime_ticks: stat.stime_ticks,
            processor: stat.processor,
        }),
        Outcome::Vanished => Outcome::Vanished,
    })
}

fn read_stat(file: &CachedFile, buffer: &mut Vec<u8>) -> Result<Outcome<StatLine>, ProcError> {
    Ok(match read_cached(file, buffer)? {
        Outcome::Sampled(bytes) => {
            Outcome::Sampled(parse_stat(bytes).map_err(|error| error.in_file(&file.path))?)
        }
        Outcome::Vanished => Outcome::Vanished,
    })
}

/// Whether an error means the process or thread no longer exists.
fn is_vanished(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(code) if code == nix::libc::ENOENT || code == nix::libc::ESRCH
    )
}

fn open_cached(path: PathBuf) -> Result<Outcome<CachedFile>, ProcError> {
    match File::open(&path) {
        Ok(file) => Ok(Outcome::Sampled(CachedFile { path, file })),
        Err(error) if is_vanished(&error) => Ok(Outcome::Vanished),
        Err(source) => Err(ProcError::Read { path, source }),
    }
}

/// Re-reads a whole cached file from offset 0 into `buffer` (grown when too small) and
/// returns the bytes read.
fn read_cached<'buffer>(
    file: &CachedFile,
    buffer: &'buffer mut Vec<u8>,
) -> Result<Outcome<&'buffer [u8]>, ProcError> {
    match pread_whole(&file.file, buffer) {
        Ok(length) => Ok(Outcome::Sampled(&buffer[..length])),
        Err(error) if is_vanished(&error) => Ok(Outcome::Vanished),
        Err(source) => Err(ProcError::Read {
            path: file.path.clone(),
            source,
        }),
    }
}

/// Reads a file from offset 0 with `pread`. A read shorter than the space offered ends the
/// loop: procfs (seq_file) hands out the whole generated text in one read when the buffer is
/// large enough, so this costs a single system call per file; a full buffer is doubled and
/// the read continues.
fn pread_whole(file: &File, buffer: &mut Vec<u8>) -> io::Result<usize> {
    if buffer.len() < INITIAL_BUFFER_BYTES {
        buffer.resize(INITIAL_BUFFER_BYTES, 0);
    }
    let mut filled = 0;
    loop {
        let offset = filled as u64;
        match file.read_at(&mut buffer[filled..], offset) {
            Ok(count) => filled += count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
        if filled < buffer.len() {
            return Ok(filled);
        }
        buffer.resize(buffer.len() * 2, 0);
    }
}

/// A host file's text, borrowed from the reader's buffer, and its path.
struct HostText<'a> {
    text: &'a str,
    path: &'a Path,
}

fn read_required<'a>(
    root: &Path,
    name: &str,
    slot: &'a mut Option<CachedFile>,
    buffer: &'a mut Vec<u8>,
) -> Result<HostText<'a>, ProcError> {
    let file = match slot {
        Some(file) => file,
        None => {
            let path = root.join(name);
            let file = File::open(&path).map_err(|source| ProcError::Read {
                path: path.clone(),
                source,
            })?;
            slot.insert(CachedFile { path, file })
        }
    };
    let length = pread_whole(&file.file, buffer).map_err(|source| ProcError::Read {
        path: file.path.clone(),
        source,
    })?;
    let text = as_text(&buffer[..length], &file.path)?;
    Ok(HostText {
        text,
        path: &file.path,
    })
}

fn read_pressure(
    root: &Path,
    name: &str,
    slot: &mut OptionalFile,
    buffer: &mut Vec<u8>,
) -> Result<Option<Pressure>, ProcError> {
    if let OptionalFile::NotOpenedYet = slot {
        let path = root.join(name);
        *slot = match File::open(&path) {
            Ok(file) => OptionalFile::Open(CachedFile { path, file }),
            Err(error) if is_absent_feature(&error) => OptionalFile::Absent,
            Err(source) => return Err(ProcError::Read { path, source }),
        };
    }
    let OptionalFile::Open(file) = slot else {
        return Ok(None);
    };
    let length = match pread_whole(&file.file, buffer) {
        Ok(length) => length,
        Err(error) if is_absent_feature(&error) => {
            *slot = OptionalFile::Absent;
            return Ok(None);
        }
        Err(source) => {
            return Err(ProcError::Read {
                path: file.path.clone(),
                source,
            })
        }
    };
    let text = as_text(&buffer[..length], &file.path)?;
    let pressure = parse_pressure(text).map_err(|error| error.in_file(&file.path))?;
    Ok(Some(pressure))
}

/// ENOENT: kernel built without PSI; EOPNOTSUPP: PSI disabled at boot (`psi=0`).
fn is_absent_feature(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(code) if code == nix::libc::ENOENT || code == nix::libc::EOPNOTSUPP
    )
}

fn as_text<'a>(bytes: &'a [u8], path: &Path) -> Result<&'a str, ParseError> {
    std::str::from_utf8(bytes).map_err(|error| {
        let line_number = bytes[..error.valid_up_to()]
            .iter()
            .filter(|&&byte| byte == b'\n')
            .count()
            + 1;
        let line = String::from_utf8_lossy(bytes)
            .lines()
            .nth(line_number - 1)
            .unwrap_or("")
            .to_owned();
        ParseError::new(
            path.display().to_string(),
            line_number,
            line,
            "not valid UTF-8",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc");

    fn fixture(path: &str) -> String {
        fs::read_to_string(format!("{FIXTURES}/{path}")).unwrap()
    }

    /// The 6.1 fixture's stat line with pid, ppid and num_threads replaced.
    fn stat_line(pid: i32, ppid: i32, num_threads: u32) -> String {
        let original = fixture("kernel-6.1/pid/stat");
        let close = original.rfind(')').unwrap();
        let mut fields: Vec<String> = original[close + 2..]
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        fields[1] = ppid.to_string(); // field 4
        fields[17] = num_threads.to_string(); // field 20
        format!(
            "{pid} {} {}\n",
            &original[original.find('(').unwrap()..=close],
            fields.join(" ")
        )
    }

    /// ROOT/191 is the 6.1 fixture process (6 threads); host files of `kernel`.
    fn fixture_tree(kernel: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let process = root.path().join("191");
        for tid in [191, 265, 267, 268, 270, 271] {
            let task = process.join(format!("task/{tid}"));
            fs::create_dir_all(&task).unwrap();
            fs::write(
                task.join("stat"),
                fixture(&format!("kernel-6.1/pid/task/{tid}/stat")),
            )
            .unwrap();
        }
        fs::write(process.join("stat"), fixture("kernel-6.1/pid/stat")).unwrap();
        fs::write(process.join("status"), fixture("kernel-6.1/pid/status")).unwrap();
        for name in ["meminfo", "loadavg", "stat"] {
            fs::write(root.path().join(name), fixture(&format!("{kernel}/{name}"))).unwrap();
        }
        fs::create_dir(root.path().join("pressure")).unwrap();
        for name in ["memory", "cpu", "io"] {
            let text = fixture(&format!("{kernel}/pressure/{name}"));
            fs::write(root.path().join("pressure").join(name), text).unwrap();
        }
        root
    }

    /// A single-threaded process `pid` with parent `ppid` (files from the fixture).
    fn add_process(root: &Path, pid: i32, ppid: i32) {
        let task = root.join(format!("{pid}/task/{pid}"));
        fs::create_dir_all(&task).unwrap();
        fs::write(root.join(format!("{pid}/stat")), stat_line(pid, ppid, 1)).unwrap();
        fs::write(task.join("stat"), stat_line(pid, ppid, 1)).unwrap();
        fs::write(
            root.join(format!("{pid}/status")),
            fixture("kernel-6.1/pid/status"),
        )
        .unwrap();
    }

    fn tids(sample: &ProcessSample) -> Vec<i32> {
        sample.threads.iter().map(|thread| thread.tid).collect()
    }

    #[test]
    fn samples_the_fixture_process_and_its_threads() {
        let root = fixture_tree("kernel-6.1");
        let mut reader = ProcReader::new(root.path());
        let samples = reader.sample_processes(&[191]);
        assert!(
            reader.last_errors().is_empty(),
            "{:?}",
            reader.last_errors()
        );
        assert_eq!(samples.len(), 1);
        let process = &samples[0];
        assert_eq!(
            (process.pid, process.comm.as_str(), process.state),
            (191, "a) b (c", 'S')
        );
        assert_eq!(
            (
                process.utime_ticks,
                process.stime_ticks,
                process.num_threads
            ),
            (58, 43, 6)
        );
        assert_eq!(process.rss_anon, 44_380 * 1024);
        assert_eq!(process.rss_file, 5_532 * 1024);
        assert_eq!(process.rss_shmem, 0);
        assert_eq!(tids(process), [191, 265, 267, 268, 270, 271]);
        assert_eq!(
            process.threads[0],
            ThreadSample {
                tid: 191,
                comm: "a) b (c".into(),
                state: 'S',
                utime_ticks: 57,
                stime_ticks: 43,
                processor: 1,
            }
        );
        assert_eq!(reader.open_process_files(), 2 + 6);

        // Second tick on cached files: same values, no new files.
        assert_eq!(reader.sample_processes(&[191]), samples);
        assert_eq!(reader.open_process_files(), 8);
    }

    #[test]
    fn rereads_changed_content_through_the_open_files() {
        let root = fixture_tree("kernel-6.1");
        let mut reader = ProcReader::new(root.path());
        reader.sample_processes(&[191]);
        let status = root.path().join("191/status");
        let text = fs::read_to_string(&status)
            .unwrap()
            .replace("44380 kB", "99999 kB");
        fs::write(&status, text).unwrap();
        let stat = root.path().join("191/task/270/stat");
        let text = fs::read_to_string(&stat)
            .unwrap()
            .replacen(" 0 0 0 0 20 ", " 7 3 0 0 20 ", 1);
        fs::write(&stat, text).unwrap();

        let samples = reader.sample_processes(&[191]);
        assert_eq!(samples[0].rss_anon, 99_999 * 1024);
        let thread = &samples[0].threads[4];
        assert_eq!(
            (thread.tid, thread.utime_ticks, thread.stime_ticks),
            (270, 7, 3)
        );
    }

    #[test]
    fn relists_threads_only_when_the_count_changes() {
        let root = fixture_tree("kernel-6.1");
        let process = root.path().join("191");
        let mut reader = ProcReader::new(root.path());
        assert_eq!(reader.sample_processes(&[191])[0].threads.len(), 6);

        // A new task directory alone is not seen: the directory is not listed every tick.
        let new_task = process.join("task/272");
        fs::create_dir(&new_task).unwrap();
        fs::write(new_task.join("stat"), stat_line(272, 181, 7)).unwrap();
        assert_eq!(reader.sample_processes(&[191])[0].threads.len(), 6);

        // num_threads 6 -> 7: listed again, the new thread appears.
        fs::write(process.join("stat"), stat_line(191, 181, 7)).unwrap();
        let samples = reader.sample_processes(&[191]);
        assert_eq!(samples[0].num_threads, 7);
        assert_eq!(tids(&samples[0]), [191, 265, 267, 268, 270, 271, 272]);
        assert_eq!(reader.open_process_files(), 2 + 7);

        // Two threads exit (7 -> 5): their cached files are closed.
        fs::remove_dir_all(process.join("task/265")).unwrap();
        fs::remove_dir_all(process.join("task/268")).unwrap();
        fs::write(process.join("stat"), stat_line(191, 181, 5)).unwrap();
        let samples = reader.sample_processes(&[191]);
        assert_eq!(tids(&samples[0]), [191, 267, 270, 271, 272]);
        assert_eq!(reader.open_process_files(), 2 + 5);
    }

    #[test]
    fn vanished_and_departed_processes_are_skipped_and_closed() {
        let root = fixture_tree("kernel-6.1");
        add_process(root.path(), 400, 191);
        add_process(root.path(), 500, 191);
        let mut reader = ProcReader::new(root.path());
        let samples = reader.sample_processes(&[191, 400]);
        assert_eq!(
            samples.iter().map(|s| s.pid).collect::<Vec<_>>(),
            [191, 400]
        );
        assert_eq!(samples[1].threads.len(), 1);
        assert_eq!(reader.open_process_files(), 8 + 3);

        // 500 vanishes before it is first opened, 999 never existed: both skipped silently.
        fs::remove_dir_all(root.path().join("500")).unwrap();
        let samples = reader.sample_processes(&[191, 500, 999]);
        assert_eq!(samples.iter().map(|s| s.pid).collect::<Vec<_>>(), [191]);
        assert!(
            reader.last_errors().is_empty(),
            "{:?}",
            reader.last_errors()
        );
        // 400 left the pid list: its three files are closed.
        assert_eq!(reader.open_process_files(), 8);

        // 400 vanishes too, and no longer opens.
        fs::remove_dir_all(root.path().join("400")).unwrap();
        let samples = reader.sample_processes(&[400, 191]);
        assert_eq!(samples.iter().map(|s| s.pid).collect::<Vec<_>>(), [191]);
        assert!(reader.last_errors().is_empty());
    }

    #[test]
    fn malformed_files_leave_the_process_out_with_an_error_naming_the_file() {
        let root = fixture_tree("kernel-6.1");
        add_process(root.path(), 400, 191);
        let stat = root.path().join("400/stat");
        let original = fs::read_to_string(&stat).unwrap();
        fs::write(&stat, &original[..original.len() / 2]).unwrap();
        fs::write(
            root.path().join("191/status"),
            "Name:\tx\nVmRSS:\t1 kB\nThreads:\t6\n",
        )
        .unwrap();

        let mut reader = ProcReader::new(root.path());
        assert!(reader.sample_processes(&[191, 400]).is_empty());
        let messages: Vec<String> = reader
            .last_errors()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        let status_path = root.path().join("191/status").display().to_string();
        assert!(
            messages[0].starts_with(&format!("{status_path}: missing RssAnon")),
            "{messages:?}"
        );
        let stat_path = stat.display().to_string();
        assert!(
            messages[1].starts_with(&format!("{stat_path}: line ends before field")),
            "{messages:?}"
        );
        assert_eq!(reader.open_process_files(), 0);
    }

    #[test]
    fn host_sample_from_fixture_6_1() {
        let root = fixture_tree("kernel-6.1");
        let mut reader = ProcReader::new(root.path());
        let host = reader.sample_host().unwrap();
        assert_eq!(host.mem_total, 2_012_120 * 1024);
        assert_eq!(host.mem_available, 1_793_000 * 1024);
        assert_eq!((host.swap_total, host.swap_free), (0, 0));
        assert_eq!(
            (host.load1, host.load5, host.load15, host.runnable),
            (0.78, 0.20, 0.07, 1)
        );
        assert_eq!(host.cpu_total.user, 1180);
        assert_eq!(host.per_cpu.len(), 2);
        assert_eq!(host.per_cpu[0].system, 753);
        let memory = host.memory_pressure.as_ref().unwrap();
        assert_eq!(memory.some.avg10, 34.30);
        assert_eq!(memory.full.as_ref().unwrap().total_usec, 12_282_202);
        assert_eq!(
            host.cpu_pressure.as_ref().unwrap().some.total_usec,
            7_595_224
        );
        assert_eq!(
            host.io_pressure
                .as_ref()
                .unwrap()
                .full
                .as_ref()
                .unwrap()
                .avg60,
            0.01
        );

        // Re-read through the same files.
        fs::write(root.path().join("loadavg"), "2.50 1.00 0.50 3/80 999\n").unwrap();
        let host = reader.sample_host().unwrap();
        assert_eq!((host.load1, host.runnable), (2.50, 3));

        // Sample records serialise and come back identical (JSON traces).
        let json = serde_json::to_string(&host).unwrap();
        assert_eq!(serde_json::from_str::<HostSample>(&json).unwrap(), host);
    }

    #[test]
    fn host_sample_6_18_without_psi() {
        let root = fixture_tree("kernel-6.18-hybrid");
        fs::remove_dir_all(root.path().join("pressure")).unwrap();
        let mut reader = ProcReader::new(root.path());
        let host = reader.sample_host().unwrap();
        assert_eq!(host.mem_total, 24_684_084 * 1024);
        assert_eq!(host.cpu_total.steal, 350);
        assert_eq!(host.load15, 0.69);
        assert_eq!(host.memory_pressure, None);
        assert_eq!(host.cpu_pressure, None);
        assert_eq!(host.io_pressure, None);
    }

    #[test]
    fn host_sample_errors_name_the_file() {
        let root = fixture_tree("kernel-6.1");
        fs::write(root.path().join("meminfo"), "MemTotal: 5 kB\n").unwrap();
        let mut reader = ProcReader::new(root.path());
        let message = reader.sample_host().unwrap_err().to_string();
        let path = root.path().join("meminfo").display().to_string();
        assert!(
            message.starts_with(&format!("{path}: missing MemAvailable")),
            "{message}"
        );

        fs::remove_file(root.path().join("meminfo")).unwrap();
        let mut reader = ProcReader::new(root.path());
        let error = reader.sample_host().unwrap_err();
        assert!(
            matches!(&error, ProcError::Read { path: p, .. } if p.ends_with("meminfo")),
            "{error}"
        );
    }

    #[test]
    fn descendants_from_ppid_fields() {
        let root = tempfile::tempdir().unwrap();
        for (pid, ppid) in [
            (1, 0),
            (10, 1),
            (11, 10),
            (12, 11),
            (13, 10),
            (20, 1),
            (21, 20),
        ] {
            add_process(root.path(), pid, ppid);
        }
        fs::write(root.path().join("meminfo"), "not a process").unwrap();
        fs::create_dir(root.path().join("sys")).unwrap();
        let mut reader = ProcReader::new(root.path());
        assert_eq!(reader.descendants(10), [10, 11, 12, 13]);
        assert_eq!(reader.descendants(20), [20, 21]);
        assert_eq!(reader.descendants(1), [1, 10, 11, 12, 13, 20, 21]);
        assert_eq!(reader.descendants(12), [12]);
        assert!(reader.descendants(77).is_empty());
    }

    #[test]
    fn process_sample_round_trips_through_json() {
        let root = fixture_tree("kernel-6.1");
        let samples = ProcReader::new(root.path()).sample_processes(&[191]);
        let json = serde_json::to_string(&samples).unwrap();
        assert_eq!(
            serde_json::from_str::<Vec<ProcessSample>>(&json).unwrap(),
            samples
        );
    }

    #[test]
    fn clock_ticks_is_the_linux_value() {
        assert_eq!(clock_ticks_per_second(), 100);
    }

    // ------------------------------------------------------------------ live /proc tests

    #[test]
    fn live_samples_this_process_and_its_threads() {
        let (stop_sender, stop_receiver) = std::sync::mpsc::channel::<()>();
        let stop_receiver = std::sync::Arc::new(std::sync::Mutex::new(stop_receiver));
        let (ready_sender, ready_receiver) = std::sync::mpsc::channel();
        let sleepers: Vec<_> = (0..5)
            .map(|_| {
                let stop = stop_receiver.clone();
                let ready = ready_sender.clone();
                std::thread::spawn(move || {
                    ready.send(nix::unistd::gettid().as_raw()).unwrap();
                    let _ = stop
                        .lock()
                        .unwrap()
                        .recv_timeout(std::time::Duration::from_secs(30));
                })
            })
            .collect();
        let sleeper_tids: Vec<i32> = (0..5).map(|_| ready_receiver.recv().unwrap()).collect();
        let pid = std::process::id() as i32;
        let mut reader = ProcReader::default();
        let samples = reader.sample_processes(&[pid]);
        drop(stop_sender);
        for sleeper in sleepers {
            sleeper.join().unwrap();
        }
        assert!(
            reader.last_errors().is_empty(),
            "{:?}",
            reader.last_errors()
        );
        assert_eq!(samples.len(), 1);
        let process = &samples[0];
        assert!(
            process.threads.len() >= 6,
            "{} threads",
            process.threads.len()
        );
        assert!(process.rss_anon > 0);
        assert!(process.num_threads >= 6);
        let found = tids(process);
        assert!(found.contains(&pid));
        for tid in sleeper_tids {
            assert!(found.contains(&tid), "sleeper {tid} not in {found:?}");
        }
    }

    #[test]
    fn live_thread_replaced_by_another_is_seen() {
        let pid = std::process::id() as i32;
        let mut reader = ProcReader::default();
        let spawn_parked = || {
            let (tid_sender, tid_receiver) = std::sync::mpsc::channel();
            let (stop_sender, stop_receiver) = std::sync::mpsc::channel::<()>();
            let handle = std::thread::spawn(move || {
                tid_sender.send(nix::unistd::gettid().as_raw()).unwrap();
                let _ = stop_receiver.recv();
            });
            (tid_receiver.recv().unwrap(), stop_sender, handle)
        };
        let (first_tid, first_stop, first_handle) = spawn_parked();
        assert!(tids(&reader.sample_processes(&[pid])[0]).contains(&first_tid));
        drop(first_stop);
        first_handle.join().unwrap();
        let (second_tid, second_stop, second_handle) = spawn_parked();
        let found = tids(&reader.sample_processes(&[pid])[0]);
        drop(second_stop);
        second_handle.join().unwrap();
        assert!(found.contains(&second_tid), "{second_tid} not in {found:?}");
        assert!(
            !found.contains(&first_tid),
            "{first_tid} still in {found:?}"
        );
    }

    #[test]
    fn live_child_that_exits_is_skipped_and_closed() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let child_pid = child.id() as i32;
        let mut reader = ProcReader::default();
        let samples = reader.sample_processes(&[child_pid]);
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].comm, "sleep");
        assert_eq!(tids(&samples[0]), [child_pid]);
        child.kill().unwrap();
        child.wait().unwrap();
        // Cached files of a reaped process answer ESRCH; the pid no longer opens.
        assert!(reader.sample_processes(&[child_pid]).is_empty());
        assert!(
            reader.last_errors().is_empty(),
            "{:?}",
            reader.last_errors()
        );
        assert_eq!(reader.open_process_files(), 0);
    }

    #[test]
    fn live_descendants_and_host() {
        let child = std::process::Command::new("sleep").arg("30").spawn();
        let mut child = child.unwrap();
        let mut reader = ProcReader::default();
        let pid = std::process::id() as i32;
        let found = reader.descendants(pid);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            found.contains(&pid) && found.contains(&(child.id() as i32)),
            "{found:?}"
        );

        let host = reader.sample_host().unwrap();
        assert!(host.mem_total > host.mem_available && host.mem_available > 0);
        let online = nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN);
        assert_eq!(host.per_cpu.len() as i64, online.unwrap().unwrap() as i64);
        assert!(host.cpu_total.total() >= host.per_cpu[0].total());
    }
}
