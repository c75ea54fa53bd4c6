//! Act: everything resctl changes for a job — its cgroup limits and reclaim (through
//! [`crate::cgroup`]'s writer), the thread-count channels it listens on, the memory-aware
//! make jobserver, systemd's pressure protocol, and the run folder that holds them.

pub mod actuator;
pub mod channels;
pub mod jobserver;
pub mod jobserver_form;
pub mod pressure_protocol;
pub mod runtime_dir;
