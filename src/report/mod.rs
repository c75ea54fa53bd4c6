//! Report: what a run says — per-tick events ([`tick`]), logs (journald when resctl runs
//! under it, stderr otherwise), per-stage figures, the end-of-run summary, and recorded
//! traces for replay.

pub mod logging;
pub mod metrics;
pub mod metrics_export;
pub mod notify;
pub mod record;
pub mod stages;
pub mod summary;
pub mod tick;
