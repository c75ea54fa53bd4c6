//! Act: everything resctl changes — the job's cgroup limits and reclaim
//! (through [`crate::cgroup`]'s writer), the thread-count channels the job
//! listens on, and the memory-aware make jobserver.

pub mod channels;
pub mod client;
pub mod jobserver;
pub mod jobserver_form;
pub mod pressure_protocol;
pub mod protocol;
pub mod runtime_dir;
pub mod socket;
