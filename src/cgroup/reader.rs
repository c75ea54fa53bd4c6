//! The cgroup reader: one [`CgroupDir`] per cgroup directory, sampled every tick.
//!
//! The directory is opened once (`O_DIRECTORY`) and checked with `fstatfs` to really be
//! cgroupfs; each file is then opened relative to that directory handle, kept open, and
//! re-read with `pread` at offset 0 — no path lookups and no open/close per tick. A cgroup
//! removed underneath fails cleanly (ENODEV/ENOENT → [`CgroupError::Read`]) instead of
//! silently reading some other directory that took its name.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::Mode;
use nix::sys::statfs::{fstatfs, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC};
use serde::{Deserialize, Serialize};

use super::error::CgroupError;
use super::parse;
pub use super::stats::{CgroupSample, CpuStat, MemoryEvents, MemoryStat};
use crate::kernel_text::{parse_pressure, ParseError};

/// Which cgroup interface a directory speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CgroupKind {
    /// A cgroup2 directory (`memory.current`, `cpu.stat`, PSI files, ...).
    V2,
    /// A directory of the v1 memory hierarchy (`memory.usage_in_bytes`, `memory.limit_in_bytes`, ...).
    V1Memory,
}

/// Initial capacity of the read buffer; `memory.stat` is about 1.5 KiB.
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// An open cgroup directory that can be sampled repeatedly and cheaply.
#[derive(Debug)]
pub struct CgroupDir {
    path: PathBuf,
    kind: CgroupKind,
    dir: OwnedFd,
    /// Files opened so far, re-read with pread. Absent files are not cached: they are
    /// looked up again next time (a controller may be enabled later).
    files: HashMap<&'static str, File>,
    buffer: Vec<u8>,
}

impl CgroupDir {
    /// Opens the cgroup directory `path` and checks with `fstatfs` that it is on the right
    /// filesystem: cgroup2 for [`CgroupKind::V2`], cgroup (v1) for [`CgroupKind::V1Memory`].
    pub fn open(path: &Path, kind: CgroupKind) -> Result<Self, CgroupError> {
        let dir = Self::open_unchecked(path, kind)?;
        let statfs = fstatfs(&dir.dir).map_err(|errno| CgroupError::read(path, errno.into()))?;
        let (expected_magic, expected) = match kind {
            CgroupKind::V2 => (CGROUP2_SUPER_MAGIC, "cgroup2"),
            CgroupKind::V1Memory => (CGROUP_SUPER_MAGIC, "cgroup (v1)"),
        };
        let found = statfs.filesystem_type();
        if found != expected_magic {
            return Err(CgroupError::NotCgroupfs {
                path: path.to_path_buf(),
                expected,
                #[allow(clippy::unnecessary_cast)] // fs_type_t differs between targets
                found: found.0 as u64,
            });
        }
        Ok(dir)
    }

    /// Opens `path` WITHOUT checking the filesystem: for fixture trees in tests only (plain
    /// files in a temporary directory). Production code uses [`CgroupDir::open`].
    pub fn open_unchecked(path: &Path, kind: CgroupKind) -> Result<Self, CgroupError> {
        let dir = open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| CgroupError::read(path, errno.into()))?;
        Ok(Self {
            path: path.to_path_buf(),
            kind,
            dir,
            files: HashMap::new(),
            buffer: Vec::with_capacity(READ_BUFFER_BYTES),
        })
    }

    /// The directory this reader was opened on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is a v2 or a v1 memory cgroup.
    pub fn kind(&self) -> CgroupKind {
        self.kind
    }

    /// Reads one sample of the cgroup. Files that the kernel does not provide here (a
    /// controller not enabled, an older kernel, PSI disabled, the root cgroup) give `None`
    /// fields; the one file every cgroup of the kind has (`cpu.stat` on v2,
    /// `memory.usage_in_bytes` on v1) is required, so a removed cgroup is an error.
    pub fn sample(&mut self) -> Result<CgroupSample, CgroupError> {
        match self.kind {
            CgroupKind::V2 => self.sample_v2(),
            CgroupKind::V1Memory => self.sample_v1(),
        }
    }

    /// Reads only the cgroup's memory charge, page cache included (v2 `memory.current`, v1
    /// `memory.usage_in_bytes`): one file where [`CgroupDir::sample`] reads a dozen, for a
    /// watcher that only needs to know whether memory may have come near a level. `None`
    /// where the kernel keeps no such file here (the memory controller is not enabled).
    pub fn memory_charge(&mut self) -> Result<Option<u64>, CgroupError> {
        match self.kind {
            CgroupKind::V2 => self.read_optional("memory.current", parse::parse_u64),
            CgroupKind::V1Memory => self.read_optional("memory.usage_in_bytes", parse::parse_u64),
        }
    }

    fn sample_v2(&mut self) -> Result<CgroupSample, CgroupError> {
        let cpu = self.read_required("cpu.stat", parse::parse_cpu_stat)?;
        let mut sample = CgroupSample {
            memory_current: self.read_optional("memory.current", parse::parse_u64)?,
            memory_peak: self.read_optional("memory.peak", parse::parse_u64)?,
            memory_high: self
                .read_optional("memory.high", parse::parse_max_or_u64)?
                .flatten(),
            memory_max: self
                .read_optional("memory.max", parse::parse_max_or_u64)?
                .flatten(),
            swap_current: self.read_optional("memory.swap.current", parse::parse_u64)?,
            events: self
                .read_optional("memory.events", parse::parse_memory_events)?
                .unwrap_or_default(),
            stat: self
                .read_optional("memory.stat", parse::parse_memory_stat)?
                .unwrap_or_default(),
            cpu: Some(cpu),
            pids_current: self.read_optional("pids.current", parse::parse_u64)?,
            ..CgroupSample::default()
        };
        self.read_pressure_into(&mut sample)?;
        Ok(sample)
    }

    /// Reads the cgroup2 pressure-stall files (`memory.pressure`, `cpu.pressure`,
    /// `io.pressure`) into `sample`, each `None` where the kernel keeps none (PSI disabled,
    /// the root cgroup of an older kernel). Also serves a hybrid host's cgroup2 leaf, which
    /// holds the job for these files alone.
    pub fn read_pressure_into(&mut self, sample: &mut CgroupSample) -> Result<(), CgroupError> {
        sample.memory_pressure = self.read_optional("memory.pressure", pressure)?;
        sample.cpu_pressure = self.read_optional("cpu.pressure", pressure)?;
        sample.io_pressure = self.read_optional("io.pressure", pressure)?;
        Ok(())
    }

    fn sample_v1(&mut self) -> Result<CgroupSample, CgroupError> {
        let memory_current = self.read_required("memory.usage_in_bytes", parse::parse_u64)?;
        let v1_stat = self
            .read_optional("memory.stat", parse::parse_memory_stat_v1)?
            .unwrap_or_default();
        let oom = self
            .read_optional("memory.oom_control", parse::parse_oom_control)?
            .unwrap_or_default();
        let mut sample = CgroupSample {
            memory_current: Some(memory_current),
            memory_peak: self.read_optional("memory.max_usage_in_bytes", parse::parse_u64)?,
            memory_high: self
                .read_optional("memory.soft_limit_in_bytes", parse::parse_v1_limit)?
                .flatten(),
            memory_max: self
                .read_optional("memory.limit_in_bytes", parse::parse_v1_limit)?
                .flatten(),
            swap_current: v1_stat.swap,
            stat: MemoryStat {
                kernel: self.read_optional("memory.kmem.usage_in_bytes", parse::parse_u64)?,
                sock: self.read_optional("memory.kmem.tcp.usage_in_bytes", parse::parse_u64)?,
                ..v1_stat.stat
            },
            ..CgroupSample::default()
        };
        sample.events.max = self.read_optional("memory.failcnt", parse::parse_u64)?;
        sample.events.oom_kill = oom.oom_kill;
        sample.events.under_oom = oom.under_oom;
        Ok(sample)
    }

    /// The processes in this cgroup (`cgroup.procs`; not those of child cgroups).
    pub fn pids(&mut self) -> Result<Vec<i32>, CgroupError> {
        if self.kind == CgroupKind::V1Memory {
            // v1 builds the pid list once per open file and keeps it for about a second:
            // re-reading a cached descriptor would return a stale list. Open it afresh.
            self.files.remove("cgroup.procs");
        }
        self.read_required("cgroup.procs", parse::parse_pids)
    }

    /// Whether a live process is in this cgroup: v2 `populated` of `cgroup.events` (counts
    /// descendants too); v1: `cgroup.procs` is not empty (this cgroup only).
    pub fn is_populated(&mut self) -> Result<bool, CgroupError> {
        match self.kind {
            CgroupKind::V2 => self.read_required("cgroup.events", parse::parse_populated),
            CgroupKind::V1Memory => Ok(!self.pids()?.is_empty()),
        }
    }

    fn read_required<T>(
        &mut self,
        name: &'static str,
        parser: impl FnOnce(&Path, &str) -> Result<T, ParseError>,
    ) -> Result<T, CgroupError> {
        match self.read_file(name, parser)? {
            Some(value) => Ok(value),
            None => Err(CgroupError::read(
                self.path.join(name),
                io::Error::from_raw_os_error(Errno::ENOENT as i32),
            )),
        }
    }

    fn read_optional<T>(
        &mut self,
        name: &'static str,
        parser: impl FnOnce(&Path, &str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, CgroupError> {
        self.read_file(name, parser)
    }

    /// Reads `name` (opening it relative to the directory handle on first use) and parses it.
    /// `Ok(None)` when the file does not exist or the kernel does not support it.
    fn read_file<T>(
        &mut self,
        name: &'static str,
        parser: impl FnOnce(&Path, &str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, CgroupError> {
        let file = match self.files.entry(name) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                match openat(
                    &self.dir,
                    name,
                    OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => entry.insert(File::from(fd)),
                    Err(Errno::ENOENT) => return Ok(None),
                    Err(errno) => {
                        return Err(CgroupError::read(self.path.join(name), errno.into()))
                    }
                }
            }
        };
        match read_whole(file, &mut self.buffer) {
            Ok(()) => {}
            // PSI files exist but refuse reads when PSI is disabled for the cgroup.
            Err(error) if error.raw_os_error() == Some(Errno::EOPNOTSUPP as i32) => {
                self.files.remove(name);
                return Ok(None);
            }
            Err(error) => {
                self.files.remove(name);
                return Err(CgroupError::read(self.path.join(name), error));
            }
        }
        let path = self.path.join(name);
        let text = std::str::from_utf8(&self.buffer).map_err(|_| {
            ParseError::new(path.display().to_string(), 0, "", "file is not valid UTF-8")
        })?;
        Ok(Some(parser(&path, text)?))
    }
}

/// The memory limits on a job's cgroup and on every cgroup above it up to the mount: the
/// tightest one is what the job really gets, and anyone may change any of them while it
/// runs (a slice's `MemoryMax=` or `MemoryHigh=`, a container resized, a limit written by
/// hand). The files stay open and are re-read with `pread` every tick: the job's own
/// `memory.max` (v1 `memory.limit_in_bytes`), and above it each cgroup's `memory.max` and,
/// on v2, `memory.high` (where the kernel starts throttling: a budget ends there).
#[derive(Debug)]
pub struct LimitChain {
    kind: CgroupKind,
    /// Nearest first: the job's own cgroup's file, then its parents'.
    files: Vec<(PathBuf, File)>,
    /// Whether `files[0]` is the job's own limit, which must stay readable.
    has_own: bool,
    buffer: Vec<u8>,
}

impl LimitChain {
    /// Opens the limit file of the job's cgroup `dir` and the limit files of each ancestor
    /// inside `mount`. Ancestors without them (the root cgroup) are left out.
    ///
    /// # Errors
    ///
    /// The limit file of `dir` itself cannot be opened.
    pub fn open(dir: &Path, kind: CgroupKind, mount: &Path) -> Result<Self, CgroupError> {
        let own = match kind {
            CgroupKind::V2 => "memory.max",
            CgroupKind::V1Memory => "memory.limit_in_bytes",
        };
        let path = dir.join(own);
        let file = File::open(&path).map_err(|error| CgroupError::read(&path, error))?;
        let mut chain = LimitChain {
            kind,
            files: vec![(path, file)],
            has_own: true,
            buffer: Vec::with_capacity(64),
        };
        if let Some(parent) = dir.parent() {
            chain.add_enclosing(parent, mount);
        }
        Ok(chain)
    }

    /// The limits a job would get in a new cgroup below `parent` (inside `mount`): those
    /// of `parent` and of every cgroup above it, none of them required. For a budget seen
    /// before any job's cgroup exists (`resctl doctor`, `resctl config show --resolved`).
    pub fn open_enclosing(parent: &Path, kind: CgroupKind, mount: &Path) -> Self {
        let mut chain = LimitChain {
            kind,
            files: Vec::new(),
            has_own: false,
            buffer: Vec::with_capacity(64),
        };
        chain.add_enclosing(parent, mount);
        chain
    }

    fn add_enclosing(&mut self, from: &Path, mount: &Path) {
        let names: &[&str] = match self.kind {
            CgroupKind::V2 => &["memory.max", "memory.high"],
            CgroupKind::V1Memory => &["memory.limit_in_bytes"],
        };
        for level in from
            .ancestors()
            .take_while(|level| level.starts_with(mount))
        {
            for name in names {
                let path = level.join(name);
                if let Ok(file) = File::open(&path) {
                    self.files.push((path, file));
                }
            }
        }
    }

    /// The tightest limit now, bytes; `None` when none is set anywhere. A parent whose file
    /// cannot be read any more is skipped.
    ///
    /// # Errors
    ///
    /// The job's own cgroup is gone ([`CgroupError::is_gone`]) or its file is unreadable.
    pub fn read(&mut self) -> Result<Option<u64>, CgroupError> {
        let mut tightest = None;
        for (index, (path, file)) in self.files.iter().enumerate() {
            let limit = read_whole(file, &mut self.buffer)
                .map_err(|error| CgroupError::read(path.as_path(), error))
                .and_then(|()| {
                    let text = String::from_utf8_lossy(&self.buffer);
                    Ok(match self.kind {
                        CgroupKind::V2 => parse::parse_max_or_u64(path, &text)?,
                        CgroupKind::V1Memory => parse::parse_v1_limit(path, &text)?,
                    })
                });
            match limit {
                Ok(Some(bytes)) => tightest = Some(tightest.map_or(bytes, |t: u64| t.min(bytes))),
                Ok(None) => {}
                Err(error) if index == 0 && self.has_own => return Err(error),
                Err(_) => {}
            }
        }
        Ok(tightest)
    }
}

fn pressure(path: &Path, text: &str) -> Result<crate::kernel_text::Pressure, ParseError> {
    parse_pressure(text).map_err(|error| error.in_file(path))
}

/// Reads the whole file from offset 0 with pread into `buffer` (replacing its content).
fn read_whole(file: &File, buffer: &mut Vec<u8>) -> io::Result<()> {
    buffer.clear();
    loop {
        if buffer.len() == buffer.capacity() {
            buffer.reserve(READ_BUFFER_BYTES);
        }
        let filled = buffer.len();
        buffer.resize(buffer.capacity(), 0);
        let result = file.read_at(&mut buffer[filled..], filled as u64);
        match result {
            Ok(0) => {
                buffer.truncate(filled);
                return Ok(());
            }
            Ok(read) => buffer.truncate(filled + read),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => buffer.truncate(filled),
            Err(error) => {
                buffer.truncate(filled);
                return Err(error);
            }
        }
    }
}

/// Whether the v2 cgroup `dir` is frozen (`cgroup.freeze` reads 1); `false` when it cannot
/// be read (no such cgroup, v1).
pub fn is_frozen(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.freeze"))
        .ok()
        .and_then(|text| parse::parse_u64(&dir.join("cgroup.freeze"), &text).ok())
        == Some(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(relative: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/cgroup")
            .join(relative)
    }

    const V2_JOB: &str = "v2/sys/fs/cgroup/system.slice/vmtest.service/fixture-job";
    const V1_JOB: &str = "hybrid/sys/fs/cgroup/memory/host.slice/session-1.scope/fixture-job";

    /// Copies a fixture cgroup directory into a temporary directory the test may change.
    fn copy_fixture(relative: &str) -> tempfile::TempDir {
        let target = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(fixture(relative)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), target.path().join(entry.file_name())).unwrap();
        }
        target
    }

    #[test]
    fn v2_job_sample() {
        let mut dir = CgroupDir::open_unchecked(&fixture(V2_JOB), CgroupKind::V2).unwrap();
        let sample = dir.sample().unwrap();
        assert_eq!(sample.memory_current, Some(46_030_848));
        assert_eq!(sample.memory_peak, Some(174_886_912));
        assert_eq!(sample.memory_high, Some(157_286_400));
        assert_eq!(sample.memory_max, Some(209_715_200));
        assert_eq!(sample.swap_current, Some(0));
        assert_eq!(sample.events.high, Some(226));
        assert_eq!(sample.events.oom_group_kill, Some(0));
        assert_eq!(sample.events.under_oom, None);
        assert_eq!(sample.stat.anon, Some(45_522_944));
        assert_eq!(sample.stat.kernel, Some(376_832));
        assert_eq!(
            sample.cpu,
            Some(CpuStat {
                usage_usec: 2_767_615,
                user_usec: 1_353_536,
                system_usec: 1_414_078,
                nr_periods: Some(82),
                nr_throttled: Some(46),
                throttled_usec: Some(2_082_510),
            })
        );
        let memory = sample.memory_pressure.unwrap();
        assert_eq!(memory.some.avg10, 46.91);
        assert_eq!(memory.full.unwrap().total_usec, 13_044_055);
        assert_eq!(sample.cpu_pressure.unwrap().some.total_usec, 1_682_351);
        assert_eq!(sample.io_pressure.unwrap().some.total_usec, 3881);
        assert_eq!(sample.pids_current, Some(6));
        assert_eq!(dir.pids().unwrap(), vec![191]);
        assert!(dir.is_populated().unwrap());
        assert_eq!(dir.kind(), CgroupKind::V2);
        assert!(dir.path().ends_with("fixture-job"));
    }

    #[test]
    fn v2_root_has_no_memory_limits() {
        let mut dir =
            CgroupDir::open_unchecked(&fixture("v2/sys/fs/cgroup"), CgroupKind::V2).unwrap();
        let sample = dir.sample().unwrap();
        assert_eq!(sample.memory_current, None);
        assert_eq!(sample.memory_peak, None);
        assert_eq!(sample.memory_max, None);
        assert_eq!(sample.swap_current, None);
        assert_eq!(sample.pids_current, None);
        assert_eq!(sample.events, MemoryEvents::default());
        assert_eq!(sample.stat.anon, Some(53_927_936));
        assert_eq!(sample.cpu.as_ref().unwrap().usage_usec, 24_764_000);
        assert_eq!(sample.memory_pressure.unwrap().some.total_usec, 12_345_617);
        assert_eq!(sample.io_pressure.unwrap().full.unwrap().total_usec, 54_450);
    }

    #[test]
    fn v1_job_sample() {
        let mut dir = CgroupDir::open_unchecked(&fixture(V1_JOB), CgroupKind::V1Memory).unwrap();
        let sample = dir.sample().unwrap();
        assert_eq!(sample.memory_current, Some(335_872));
        assert_eq!(sample.memory_peak, Some(104_857_600));
        assert_eq!(sample.memory_max, Some(104_857_600));
        assert_eq!(sample.memory_high, None, "soft limit unset = unlimited");
        assert_eq!(sample.swap_current, Some(0));
        assert_eq!(
            sample.events,
            MemoryEvents {
                max: Some(787),
                oom_kill: Some(1),
                under_oom: Some(false),
                ..MemoryEvents::default()
            }
        );
        assert_eq!(
            sample.stat,
            MemoryStat {
                anon: Some(114_688),
                file: Some(32_768),
                inactive_file: Some(16_384),
                active_file: Some(16_384),
                shmem: Some(0),
                kernel: Some(73_728),
                sock: Some(0),
                pgmajfault: Some(10),
                workingset_refault_anon: Some(0),
                workingset_refault_file: Some(647),
            }
        );
        assert_eq!(sample.cpu, None);
        assert_eq!(sample.memory_pressure, None);
        assert_eq!(sample.pids_current, None);
        assert_eq!(dir.pids().unwrap(), vec![8064]);
        assert!(dir.is_populated().unwrap());
    }

    #[test]
    fn cached_files_are_reread_and_absent_files_appear_later() {
        let temp = copy_fixture(V2_JOB);
        std::fs::remove_file(temp.path().join("memory.peak")).unwrap();
        let mut dir = CgroupDir::open_unchecked(temp.path(), CgroupKind::V2).unwrap();
        let first = dir.sample().unwrap();
        assert_eq!(first.memory_peak, None);
        // Rewrite in place (same inode, as the kernel does) and create the missing file.
        std::fs::write(
            temp.path().join("memory.events"),
            std::fs::read(fixture(V2_JOB).join("memory.events.after-oom")).unwrap(),
        )
        .unwrap();
        std::fs::write(temp.path().join("memory.current"), "7\n").unwrap();
        std::fs::write(temp.path().join("memory.peak"), "202604544\n").unwrap();
        std::fs::write(temp.path().join("cgroup.events"), "populated 0\nfrozen 0\n").unwrap();
        let second = dir.sample().unwrap();
        assert_eq!(second.events.high, Some(985));
        assert_eq!(second.memory_current, Some(7));
        assert_eq!(second.memory_peak, Some(202_604_544));
        assert!(!dir.is_populated().unwrap());
    }

    #[test]
    fn the_charge_alone_is_memory_current_or_the_v1_usage() {
        let v2 = copy_fixture(V2_JOB);
        let mut dir = CgroupDir::open_unchecked(v2.path(), CgroupKind::V2).unwrap();
        let expected = dir.sample().unwrap().memory_current;
        assert!(expected.is_some());
        assert_eq!(dir.memory_charge().unwrap(), expected);
        std::fs::write(v2.path().join("memory.current"), "4096\n").unwrap();
        assert_eq!(dir.memory_charge().unwrap(), Some(4096));
        std::fs::remove_file(v2.path().join("memory.current")).unwrap();
        let mut fresh = CgroupDir::open_unchecked(v2.path(), CgroupKind::V2).unwrap();
        assert_eq!(fresh.memory_charge().unwrap(), None);

        let v1 = copy_fixture(V1_JOB);
        let mut dir = CgroupDir::open_unchecked(v1.path(), CgroupKind::V1Memory).unwrap();
        let usage = std::fs::read_to_string(v1.path().join("memory.usage_in_bytes")).unwrap();
        assert_eq!(dir.memory_charge().unwrap(), usage.trim().parse().ok());
    }

    #[test]
    fn malformed_file_error_names_the_file_and_line() {
        let temp = copy_fixture(V2_JOB);
        let stat = std::fs::read_to_string(temp.path().join("memory.stat")).unwrap();
        std::fs::write(
            temp.path().join("memory.stat"),
            stat.replace("sock 0", "sock"),
        )
        .unwrap();
        let mut dir = CgroupDir::open_unchecked(temp.path(), CgroupKind::V2).unwrap();
        let text = dir.sample().unwrap_err().to_string();
        assert!(text.contains("memory.stat"), "{text}");
        assert!(text.contains("line 8"), "{text}");
        assert!(text.contains("\"sock\""), "{text}");

        std::fs::write(temp.path().join("memory.stat"), stat).unwrap();
        std::fs::write(temp.path().join("memory.pressure"), "some avg10=x\n").unwrap();
        let text = dir.sample().unwrap_err().to_string();
        assert!(text.contains("memory.pressure"), "{text}");

        std::fs::copy(
            fixture(V2_JOB).join("memory.pressure"),
            temp.path().join("memory.pressure"),
        )
        .unwrap();
        std::fs::write(temp.path().join("memory.max"), "lots\n").unwrap();
        let text = dir.sample().unwrap_err().to_string();
        assert!(
            text.contains("memory.max") && text.contains("lots"),
            "{text}"
        );
    }

    #[test]
    fn the_limit_chain_takes_the_tightest_and_sees_changes() {
        let mount = tempfile::tempdir().unwrap();
        let slice = mount.path().join("pipelines.slice");
        let job = slice.join("resctl-1/job");
        std::fs::create_dir_all(&job).unwrap();
        std::fs::write(
            mount.path().join("pipelines.slice/memory.max"),
            "500000000\n",
        )
        .unwrap();
        // resctl-1 has no limit file: skipped. The mount root has none either.
        std::fs::write(job.join("memory.max"), "max\n").unwrap();
        let mut chain = LimitChain::open(&job, CgroupKind::V2, mount.path()).unwrap();
        assert_eq!(chain.read().unwrap(), Some(500_000_000));
        std::fs::write(job.join("memory.max"), "60000000\n").unwrap();
        assert_eq!(
            chain.read().unwrap(),
            Some(60_000_000),
            "re-read, not cached"
        );
        std::fs::write(job.join("memory.max"), "max\n").unwrap();
        std::fs::write(slice.join("memory.max"), "max\n").unwrap();
        assert_eq!(chain.read().unwrap(), None, "no limit anywhere");
        // A parent that cannot be read is skipped; the job's own must be readable.
        std::fs::write(slice.join("memory.max"), "lots\n").unwrap();
        assert_eq!(chain.read().unwrap(), None);
        std::fs::write(job.join("memory.max"), "lots\n").unwrap();
        assert!(chain.read().is_err());
        let err =
            LimitChain::open(&mount.path().join("gone"), CgroupKind::V2, mount.path()).unwrap_err();
        assert!(err.is_gone(), "{err}");

        // Above the job, memory.high ends the budget too (the kernel throttles there); the
        // job's own memory.high (resctl's --memory-high) is not a limit on its budget.
        std::fs::write(slice.join("memory.max"), "max\n").unwrap();
        std::fs::write(job.join("memory.max"), "max\n").unwrap();
        std::fs::write(slice.join("memory.high"), "400000000\n").unwrap();
        std::fs::write(job.join("memory.high"), "100000000\n").unwrap();
        let mut chain = LimitChain::open(&job, CgroupKind::V2, mount.path()).unwrap();
        assert_eq!(chain.read().unwrap(), Some(400_000_000));
        // Nested limits: the tightest anywhere up the tree decides.
        let outer = mount.path().join("memory.max");
        std::fs::write(&outer, "300000000\n").unwrap();
        let mut chain = LimitChain::open(&job, CgroupKind::V2, mount.path()).unwrap();
        assert_eq!(chain.read().unwrap(), Some(300_000_000));
        std::fs::remove_file(&outer).unwrap();

        let v1 = tempfile::tempdir().unwrap();
        std::fs::write(
            v1.path().join("memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .unwrap();
        let mut chain = LimitChain::open(v1.path(), CgroupKind::V1Memory, v1.path()).unwrap();
        assert_eq!(chain.read().unwrap(), None, "v1's 'unlimited'");
    }

    #[test]
    fn the_enclosing_chain_needs_no_file_of_its_own() {
        let mount = tempfile::tempdir().unwrap();
        let slice = mount.path().join("pipelines.slice");
        std::fs::create_dir_all(slice.join("inner.slice")).unwrap();
        // No limit file anywhere (a v2 root, or a fresh folder): no limit, no error.
        let mut chain = LimitChain::open_enclosing(&slice, CgroupKind::V2, mount.path());
        assert_eq!(chain.read().unwrap(), None);
        std::fs::write(slice.join("memory.high"), "max\n").unwrap();
        std::fs::write(slice.join("memory.max"), "800000000\n").unwrap();
        let mut chain =
            LimitChain::open_enclosing(&slice.join("inner.slice"), CgroupKind::V2, mount.path());
        assert_eq!(chain.read().unwrap(), Some(800_000_000));
        // An unreadable value above is skipped, not an error.
        std::fs::write(slice.join("memory.max"), "lots\n").unwrap();
        assert_eq!(chain.read().unwrap(), None);
    }

    #[test]
    fn v1_limits_up_the_tree_take_the_tightest() {
        // A v1 hierarchy as on this project's hybrid host: the parent's limit binds a child
        // whose own says "unlimited" (hierarchical accounting).
        let mount = tempfile::tempdir().unwrap();
        let parent = mount.path().join("batch");
        let job = parent.join("resctl-1/job");
        std::fs::create_dir_all(&job).unwrap();
        let unlimited = "9223372036854771712\n";
        std::fs::write(mount.path().join("memory.limit_in_bytes"), unlimited).unwrap();
        std::fs::write(parent.join("memory.limit_in_bytes"), "2147483648\n").unwrap();
        std::fs::write(parent.join("resctl-1/memory.limit_in_bytes"), unlimited).unwrap();
        std::fs::write(job.join("memory.limit_in_bytes"), unlimited).unwrap();
        let mut chain = LimitChain::open(&job, CgroupKind::V1Memory, mount.path()).unwrap();
        assert_eq!(chain.read().unwrap(), Some(2_147_483_648));
        // v1 has no memory.high: a file of that name is not read.
        std::fs::write(parent.join("memory.high"), "1000\n").unwrap();
        let mut chain = LimitChain::open(&job, CgroupKind::V1Memory, mount.path()).unwrap();
        assert_eq!(chain.read().unwrap(), Some(2_147_483_648));
    }

    #[test]
    fn missing_required_file_is_an_error() {
        let temp = copy_fixture(V2_JOB);
        std::fs::remove_file(temp.path().join("cpu.stat")).unwrap();
        let mut dir = CgroupDir::open_unchecked(temp.path(), CgroupKind::V2).unwrap();
        let text = dir.sample().unwrap_err().to_string();
        assert!(text.contains("cpu.stat"), "{text}");
        assert!(text.contains("ENOENT"), "{text}");
        let err = CgroupDir::open_unchecked(&temp.path().join("gone"), CgroupKind::V2).unwrap_err();
        assert!(err.to_string().contains("gone"), "{err}");
    }

    #[test]
    fn open_checks_the_filesystem_magic() {
        let err = CgroupDir::open(&fixture(V2_JOB), CgroupKind::V2).unwrap_err();
        assert!(
            matches!(
                err,
                CgroupError::NotCgroupfs {
                    expected: "cgroup2",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("fixture-job"), "{err}");
    }

    #[test]
    fn live_v1_memory_cgroup_of_this_process() {
        let Ok(host) = crate::cgroup::detect(Path::new("/proc"), Path::new("/")) else {
            return;
        };
        let Some(own) = host.memory_v1_own else {
            eprintln!("no v1 memory cgroup on this host; skipped");
            return;
        };
        let mut dir = CgroupDir::open(&own, CgroupKind::V1Memory).unwrap();
        let sample = dir.sample().unwrap();
        assert!(sample.memory_current.unwrap() > 0);
        assert!(sample.stat.anon.is_some());
        assert!(dir.pids().unwrap().contains(&(std::process::id() as i32)));
        assert!(dir.is_populated().unwrap());
        let err = CgroupDir::open(&own, CgroupKind::V2).unwrap_err();
        assert!(matches!(err, CgroupError::NotCgroupfs { .. }), "{err}");
    }
}

#[cfg(test)]
mod freeze_tests {
    use super::is_frozen;

    #[test]
    fn a_cgroup_is_frozen_only_when_cgroup_freeze_reads_one() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_frozen(dir.path()), "no file");
        std::fs::write(dir.path().join("cgroup.freeze"), "1\n").unwrap();
        assert!(is_frozen(dir.path()));
        std::fs::write(dir.path().join("cgroup.freeze"), "0\n").unwrap();
        assert!(!is_frozen(dir.path()));
        std::fs::write(dir.path().join("cgroup.freeze"), "x\n").unwrap();
        assert!(!is_frozen(dir.path()));
    }
}
