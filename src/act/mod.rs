//! Act: everything resctl changes — the job's cgroup limits and reclaim
//! (through [`crate::cgroup`]'s writer) and the thread-count channels the job
//! listens on.

pub mod channels;
pub mod runtime_dir;
