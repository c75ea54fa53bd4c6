//! One sample of a whole job: its cgroup's accounting, every process and
//! thread in it, and the host. Composes the two kernel readers; no policy.

use std::time::Duration;

use crate::cgroup::reader::{CgroupDir, CgroupSample, LimitChain};
use crate::sample::procfs::{HostSample, ProcReader, ProcessSample};
use crate::units::NO_LIMIT;

/// Everything read at one tick.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobSample {
    /// Time since the job started.
    pub at: Duration,
    /// The job cgroup's accounting (None when monitor-only, or when the read failed).
    pub cgroup: Option<CgroupSample>,
    /// Every process of the job with its threads.
    pub processes: Vec<ProcessSample>,
    /// Host memory, load, CPU and PSI (None if unreadable).
    pub host: Option<HostSample>,
    /// The job's memory limit now, bytes: the tightest limit on its cgroup and the cgroups
    /// above it ([`LimitChain`]); [`NO_LIMIT`] when none applies or the cgroup is gone;
    /// `None` when not read (no cgroup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<u64>,
    /// The job's cgroup was found removed underneath resctl at this sample: from now on the
    /// job is watched through /proc and no cgroup limit applies.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cgroup_gone: bool,
}

impl JobSample {
    /// Resident memory of all the job's processes (anon + file + shmem), bytes.
    pub fn processes_rss(&self) -> u64 {
        self.processes
            .iter()
            .map(|p| p.rss_anon + p.rss_file + p.rss_shmem)
            .sum()
    }

    /// The job's memory: the cgroup's charge less its page cache
    /// ([`crate::cgroup::stats::MemoryStat::reclaimable_page_cache`]) when the cgroup is
    /// known, else the processes' RSS. The kernel writes back and drops page cache, active or
    /// not, before it OOM-kills anything, so a job that writes or reads a file larger than its
    /// limit is not at its limit. (Less the inactive list alone, as the kubelet does, is not
    /// enough: reclaim moves dirty pages to the active list while they are written back, and a
    /// job that only writes a file then reads as full.)
    pub fn memory_bytes(&self) -> u64 {
        self.cgroup
            .as_ref()
            .and_then(|c| c.memory_current)
            .map_or_else(
                || self.processes_rss(),
                |charge| charge.saturating_sub(self.page_cache()),
            )
    }

    /// The cgroup's reclaimable page cache, bytes (0 without a cgroup or its memory.stat).
    pub fn page_cache(&self) -> u64 {
        self.cgroup
            .as_ref()
            .map_or(0, |c| c.stat.reclaimable_page_cache())
    }

    /// CPU time of the job's live threads in clock ticks (user + system).
    pub fn process_cpu_ticks(&self) -> u64 {
        self.processes
            .iter()
            .map(|p| p.utime_ticks + p.stime_ticks)
            .sum()
    }

    /// Number of threads across the job's processes.
    pub fn thread_count(&self) -> u64 {
        self.processes
            .iter()
            .map(|p| u64::from(p.num_threads))
            .sum()
    }
}

/// Where the job's processes are found.
pub enum JobScope {
    /// Processes listed by the job's cgroup, and the limits on it and above it.
    Cgroup {
        /// The job's cgroup.
        dir: CgroupDir,
        /// The limits on it and its parents.
        limits: LimitChain,
        /// The job's main process, watched through /proc if the cgroup goes away.
        job_pid: i32,
        /// Hybrid hosts: the job's cgroup2 leaf, read for its pressure figures only (the
        /// v1 memory cgroup has none); `None` where the host's PSI stands in.
        pressure: Option<Box<CgroupDir>>,
    },
    /// No cgroup: the job's main process and its descendants in /proc.
    Descendants(i32),
}

impl JobScope {
    /// The job's cgroup when there is one and it can be opened (checked to be cgroupfs),
    /// else its processes under `/proc` from `job_pid` down. `pressure` is a hybrid host's
    /// cgroup2 leaf holding the job, read for its PSI.
    pub fn for_job(
        cgroup: Option<(std::path::PathBuf, crate::cgroup::reader::CgroupKind)>,
        limits: Option<LimitChain>,
        pressure: Option<&std::path::Path>,
        job_pid: i32,
    ) -> JobScope {
        let (Some((dir, kind)), Some(limits)) = (cgroup, limits) else {
            return JobScope::Descendants(job_pid);
        };
        match CgroupDir::open(&dir, kind) {
            Ok(dir) => JobScope::Cgroup {
                dir,
                limits,
                job_pid,
                pressure: pressure.and_then(|leaf| {
                    CgroupDir::open(leaf, crate::cgroup::reader::CgroupKind::V2)
                        .map(Box::new)
                        .map_err(|err| {
                            tracing::warn!(
                                "cannot read the job's pressure leaf ({err}); the host's PSI \
                                 stands in"
                            );
                        })
                        .ok()
                }),
            },
            Err(err) => {
                tracing::warn!("cannot read the job's cgroup ({err}); watching through /proc");
                JobScope::Descendants(job_pid)
            }
        }
    }
}

/// How often per-thread figures are read, in ticks: per-thread CPU times are
/// cumulative, so reading them every tenth tick loses no total, while reading
/// a 1,000-thread job's task files every tick would cost ~0.5 % of a core.
pub const THREAD_DETAIL_EVERY: u64 = 10;

/// How often the job's process list (`cgroup.procs`) is re-read, in ticks.
/// The kernel builds that list by walking every thread of the cgroup and
/// sorting (v1 keeps no cache across opens): for a 1,000-thread job it was the
/// largest cost of a tick. The job's memory and (v2) CPU come from the
/// cgroup's own counters every tick; only per-process figures of processes
/// started since the last listing wait for the next one.
pub const PROCESS_LIST_EVERY: u64 = 5;

/// Reads a job's sample each tick, keeping files open between ticks.
pub struct JobSampler {
    scope: JobScope,
    proc: ProcReader,
    last_error: Option<String>,
    ticks: u64,
    pids: Vec<i32>,
}

impl JobSampler {
    /// A sampler over `scope`, reading /proc under `proc_root`.
    pub fn new(scope: JobScope, proc_root: &std::path::Path) -> Self {
        JobSampler {
            scope,
            proc: ProcReader::new(proc_root),
            last_error: None,
            ticks: 0,
            pids: Vec::new(),
        }
    }

    /// Takes one sample. Read errors degrade the sample (a `None` part) and are
    /// kept in [`JobSampler::take_error`]; they never stop the job.
    pub fn sample(&mut self, at: Duration) -> JobSample {
        let mut cgroup = None;
        let mut memory_limit = None;
        let mut gone_pid = None;
        if let JobScope::Cgroup {
            dir,
            limits,
            job_pid,
            pressure,
        } = &mut self.scope
        {
            match dir.sample() {
                Ok(sample) => cgroup = Some(sample),
                Err(err) if err.is_gone() => gone_pid = Some(*job_pid),
                Err(err) => self.last_error = Some(err.to_string()),
            }
            if let (Some(leaf), Some(sample)) = (pressure.as_mut(), cgroup.as_mut()) {
                if let Err(err) = leaf.read_pressure_into(sample) {
                    // Removed underneath, or unreadable: the host's PSI stands in from now on.
                    self.last_error = Some(format!("{err}; the host's PSI stands in"));
                    *pressure = None;
                }
            }
            if gone_pid.is_none() {
                match limits.read() {
                    Ok(limit) => memory_limit = Some(limit.unwrap_or(NO_LIMIT)),
                    Err(err) if err.is_gone() => gone_pid = Some(*job_pid),
                    Err(err) => self.last_error = Some(err.to_string()),
                }
            }
            let list_due = self.ticks.is_multiple_of(PROCESS_LIST_EVERY) || self.pids.is_empty();
            if gone_pid.is_none() && list_due {
                match dir.pids() {
                    Ok(pids) => self.pids = pids,
                    Err(err) => self.last_error = Some(err.to_string()),
                }
            }
        }
        if let Some(job_pid) = gone_pid {
            // Removed underneath: its figures and limits went with it. From now on the job
            // is watched through /proc, as a monitor-only run would watch it.
            self.scope = JobScope::Descendants(job_pid);
            cgroup = None;
            memory_limit = Some(NO_LIMIT);
        }
        let pids = match &self.scope {
            JobScope::Cgroup { .. } => std::mem::take(&mut self.pids),
            JobScope::Descendants(root) => self.proc.descendants(*root),
        };
        let with_threads = self.ticks.is_multiple_of(THREAD_DETAIL_EVERY);
        self.ticks += 1;
        let processes = self.proc.sample_processes_with(&pids, with_threads);
        // Processes that ended drop out of the list until the next listing.
        self.pids = processes.iter().map(|p| p.pid).collect();
        let host = match self.proc.sample_host() {
            Ok(host) => Some(host),
            Err(err) => {
                self.last_error = Some(err.to_string());
                None
            }
        };
        JobSample {
            at,
            cgroup,
            processes,
            host,
            memory_limit,
            cgroup_gone: gone_pid.is_some(),
        }
    }

    /// The last read error, once (so it is logged once per occurrence).
    pub fn take_error(&mut self) -> Option<String> {
        self.last_error.take()
    }
}
