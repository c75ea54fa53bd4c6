//! The `/proc` reader (per-process, per-thread and host-wide figures) and the job sampler that
//! composes it with the cgroup reader into one [`job::JobSample`] per tick.
pub mod job;
pub mod proc_parse;
pub mod procfs;
