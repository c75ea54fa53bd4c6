//! Talking to systemd over D-Bus: the one place resctl asks the service manager for
//! something (a transient scope now; runtime unit properties for the daemon). Like the
//! procfs and cgroupfs readers, this is IO only: callers decide, this module asks.

pub mod manager;
