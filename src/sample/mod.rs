//! Kernel readers: `/proc` (per-process, per-thread and host-wide) and cgroupfs.
pub mod job;
pub mod proc_parse;
pub mod procfs;
pub mod wakeup;
