//! The control socket (`RESCTL_SOCKET`): JSON lines between a job and the resctl that runs
//! it — the [`protocol`] both sides speak, the [`server`] resctl runs for each job, and the
//! [`client`] the `resctl stage|recommend|status|progress` commands use.

pub mod client;
pub mod overview;
pub mod protocol;
pub mod server;
