//! Report: logs (journald when resctl runs under it, stderr otherwise), the
//! end-of-run summary, and recorded traces for replay.

pub mod logging;
pub mod record;
pub mod stages;
pub mod summary;
