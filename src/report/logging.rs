//! Log output. Under journald (a service, or stderr connected to the journal)
//! events go to journald with structured fields — RESCTL_CGROUP, RESCTL_LEVEL,
//! RESCTL_ACTION, RESCTL_THREADS — else to stderr as plain lines.
//!
//! Events carry those fields as lower-case tracing fields (`resctl_level = ..`);
//! the journald layer upper-cases them.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// Where logs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    /// journald's native protocol.
    Journald,
    /// Plain lines on stderr.
    Stderr,
}

/// journald's native socket (fixed path, see systemd-journald.service(8)).
pub const JOURNALD_SOCKET: &str = "/run/systemd/journal/socket";

/// True when stderr is a stream connected to journald (`JOURNAL_STREAM` names
/// the device and inode of stderr, per systemd.exec(5)).
pub fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let value = value.to_string_lossy();
    let Some((dev, ino)) = value.split_once(':') else {
        return false;
    };
    let stderr = std::io::stderr();
    let Ok(owned) = stderr.as_fd().try_clone_to_owned() else {
        return false;
    };
    let file = std::fs::File::from(owned);
    match file.metadata() {
        Ok(meta) => dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino()),
        Err(_) => false,
    }
}

/// Sets up logging once. `verbose` raises the level to debug; `RESCTL_LOG`
/// (an env-filter) overrides it. Returns where logs go.
pub fn init(verbose: bool) -> LogTarget {
    let default = if verbose {
        "resctl=debug"
    } else {
        "resctl=info"
    };
    let filter = EnvFilter::try_from_env("RESCTL_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    if stderr_is_journal() {
        if let Ok(layer) = tracing_journald::layer() {
            let layer = layer
                .with_field_prefix(None)
                .with_syslog_identifier("resctl".to_string());
            if tracing_subscriber::registry()
                .with(filter)
                .with(layer)
                .try_init()
                .is_ok()
            {
                return LogTarget::Journald;
            }
            return LogTarget::Stderr;
        }
    }
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_level(false)
        .fmt_fields(tracing_subscriber::fmt::format::PrettyFields::new())
        .event_format(StderrFormat);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init();
    LogTarget::Stderr
}

/// `resctl: <message>` for info, `resctl: warning: <message>` for warnings;
/// structured fields are left to journald.
struct StderrFormat;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for StderrFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut message = MessageOnly(String::new());
        event.record(&mut message);
        let level = *event.metadata().level();
        let tag = if level == tracing::Level::ERROR {
            "error: "
        } else if level == tracing::Level::WARN {
            "warning: "
        } else {
            ""
        };
        writeln!(writer, "resctl: {tag}{}", message.0)
    }
}

struct MessageOnly(String);

impl tracing::field::Visit for MessageOnly {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}
