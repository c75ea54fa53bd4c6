//! The typed values read from a cgroup: one [`CgroupSample`] per tick.
//!
//! Every field the kernel may not provide is an `Option`: `None` means "not available here"
//! (file or key absent, or the limit is unlimited), never a silent 0.

use serde::{Deserialize, Serialize};

use crate::kernel_text::Pressure;

/// Everything resctl samples from one cgroup in one tick.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CgroupSample {
    /// Memory charged to the cgroup now, bytes (v2 `memory.current`, v1 `memory.usage_in_bytes`).
    pub memory_current: Option<u64>,
    /// Highest memory usage seen, bytes (v2 `memory.peak`, kernel 5.19+; v1 `memory.max_usage_in_bytes`).
    pub memory_peak: Option<u64>,
    /// Throttling limit, bytes (v2 `memory.high`; v1 `memory.soft_limit_in_bytes`). `None` = unlimited.
    pub memory_high: Option<u64>,
    /// Hard limit, bytes (v2 `memory.max`; v1 `memory.limit_in_bytes`). `None` = unlimited.
    pub memory_max: Option<u64>,
    /// Swap used, bytes (v2 `memory.swap.current`; v1 `total_swap` of `memory.stat`).
    pub swap_current: Option<u64>,
    /// Event counters (v2 `memory.events`; v1 `memory.failcnt` and `memory.oom_control`).
    pub events: MemoryEvents,
    /// Breakdown of the memory (v2 `memory.stat`; v1 `memory.stat` `total_*` keys).
    pub stat: MemoryStat,
    /// CPU time (v2 `cpu.stat`). Always `None` for v1: cpuacct lives in another hierarchy.
    pub cpu: Option<CpuStat>,
    /// Memory PSI of the cgroup (v2 `memory.pressure`).
    pub memory_pressure: Option<Pressure>,
    /// CPU PSI of the cgroup (v2 `cpu.pressure`).
    pub cpu_pressure: Option<Pressure>,
    /// I/O PSI of the cgroup (v2 `io.pressure`).
    pub io_pressure: Option<Pressure>,
    /// Number of tasks (threads) in the cgroup (v2 `pids.current`, when the pids controller is on).
    pub pids_current: Option<u64>,
}

/// Memory event counters since the cgroup was created (v2 `memory.events`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryEvents {
    /// Times reclaim hit the cgroup although it was below `memory.low`.
    pub low: Option<u64>,
    /// Times usage went over `memory.high` and the cgroup was throttled and reclaimed.
    pub high: Option<u64>,
    /// Times usage was about to go over `memory.max` (v1: `memory.failcnt`, the number of
    /// times usage hit `limit_in_bytes`).
    pub max: Option<u64>,
    /// Times the cgroup ran out of memory (an allocation was about to fail).
    pub oom: Option<u64>,
    /// Processes killed by the OOM killer in this cgroup (v1: `oom_kill` of `memory.oom_control`).
    pub oom_kill: Option<u64>,
    /// Times the whole cgroup was OOM-killed as a group (`memory.oom.group`).
    pub oom_group_kill: Option<u64>,
    /// v1 only: `under_oom` of `memory.oom_control`, true while the cgroup is out of memory
    /// (stays true only when the OOM killer is disabled for it). `None` on v2.
    pub under_oom: Option<bool>,
}

/// The parts of `memory.stat` resctl uses, in bytes (counters for the page-fault fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryStat {
    /// Anonymous memory (v1: `total_rss`).
    pub anon: Option<u64>,
    /// Page cache (v1: `total_cache`).
    pub file: Option<u64>,
    /// Page cache on the inactive file list (v1: `total_inactive_file`).
    pub inactive_file: Option<u64>,
    /// Page cache on the active file list (v1: `total_active_file`). Absent in traces
    /// recorded before it was read.
    pub active_file: Option<u64>,
    /// Shared memory / tmpfs (v1: `total_shmem`).
    pub shmem: Option<u64>,
    /// Kernel memory (v1: `memory.kmem.usage_in_bytes`).
    pub kernel: Option<u64>,
    /// Network socket buffers (v1: `memory.kmem.tcp.usage_in_bytes`).
    pub sock: Option<u64>,
    /// Major page faults (a counter; v1: `total_pgmajfault`).
    pub pgmajfault: Option<u64>,
    /// Refaults of anonymous pages evicted earlier: thrashing of anon memory (a counter).
    pub workingset_refault_anon: Option<u64>,
    /// Refaults of file pages evicted earlier: thrashing of the page cache (a counter).
    pub workingset_refault_file: Option<u64>,
}

impl MemoryStat {
    /// Page cache on the file lists, active and inactive: memory the kernel writes back if
    /// dirty and drops before it OOM-kills anything, so not the job's own need. Shared
    /// memory (tmpfs) is not in it: it sits on the anonymous lists and cannot be dropped
    /// without swap. 0 when memory.stat gives neither figure.
    pub fn reclaimable_page_cache(&self) -> u64 {
        self.inactive_file
            .unwrap_or(0)
            .saturating_add(self.active_file.unwrap_or(0))
    }
}

/// CPU time of the cgroup (v2 `cpu.stat`), microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuStat {
    /// Total CPU time.
    pub usage_usec: u64,
    /// CPU time in user mode.
    pub user_usec: u64,
    /// CPU time in kernel mode.
    pub system_usec: u64,
    /// Enforcement periods elapsed (only when the cpu controller is enabled).
    pub nr_periods: Option<u64>,
    /// Periods in which the cgroup was throttled by `cpu.max`.
    pub nr_throttled: Option<u64>,
    /// Total time throttled by `cpu.max`.
    pub throttled_usec: Option<u64>,
}
