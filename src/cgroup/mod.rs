//! The cgroupfs layer: layout detection, readers and writers (no cgroups-rs; see the README).
//!
//! - [`detect`](detect()): which layout the host has (unified v2, hybrid, legacy v1, none) and
//!   where this process's own cgroups are, from `/proc/self/{mountinfo,cgroup}`.
//! - [`CgroupDir`]: a handle on one cgroup directory, checked with `fstatfs`, whose files are
//!   opened once relative to it and re-read with `pread` every tick into a [`CgroupSample`].
//! - [`writer`]: the only code that changes cgroupfs (create, limits, reclaim, move, remove).
//! - [`parse`]: the pure text parsers behind the reader, one generic `key value` routine.
//! - [`wakeup`]: the kernel's notifications on a cgroup (v1 thresholds, PSI triggers,
//!   `memory.events`) that wake the run loop between ticks; armed through the writer.
//!
//! Values the kernel does not provide are `None`, never a silent 0; every error names the
//! path and, for parse errors, the offending line.

pub mod detect;
pub mod error;
pub mod parse;
pub mod reader;
pub mod stats;
pub mod wakeup;
pub mod writer;

pub use detect::{detect, HostCgroups, Layout};
pub use error::{CgroupError, FsProblem};
pub use parse::V1_UNLIMITED_THRESHOLD as UNLIMITED_THRESHOLD;
pub use reader::{CgroupDir, CgroupKind};
pub use stats::{CgroupSample, CpuStat, MemoryEvents, MemoryStat};
pub use writer::{
    create_child, disable_controllers, enable_controllers, move_pid, open_procs_for_move, reclaim,
    remove, remove_stale, set_memory_high, set_memory_max,
};
