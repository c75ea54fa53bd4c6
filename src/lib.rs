//! resctl: a Linux resource controller that runs a pipeline in its own cgroup,
//! watches it, and steers its parallelism under memory pressure.
//!
//! Data flows one way: **sample → assess → decide → act → report**.
//!
//! - [`sample`]: kernel readers (`/proc` and cgroupfs) behind injectable roots.
//! - [`cgroup`]: cgroupfs layout detection, readers and writers.
//! - [`policy`]: pure code over samples: levels, leak trend, thread count.
//! - [`act`]: everything resctl changes: cgroup limits, thread-count channels.
//! - [`report`]: logs, the end-of-run summary, recorded traces.
//! - [`config`] and [`units`]: the YAML configuration and systemd-style units.

pub mod act;
pub mod bench;
pub mod cgroup;
pub mod cli;
pub mod commands;
pub mod config;
pub mod control;
pub mod daemon;
pub mod doctor;
pub mod exit;
pub mod history;
pub mod job_text;
pub mod kernel_text;
pub mod pidfd;
pub mod placement;
pub mod policy;
pub mod report;
pub mod run;
pub mod safe_fs;
pub mod sample;
pub mod surroundings;
pub mod systemd;
#[cfg(test)]
mod test_support;
pub mod units;
