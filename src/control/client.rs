//! The client side of the control socket: [`ControlClient`], and what the `resctl stage`,
//! `recommend` and `status` commands ask and show ([`stage`], [`recommend_text`],
//! [`render_status`]). `resctl recommend` always has a number: outside a job, or when the
//! socket cannot be reached, it recommends from the host's state ([`recommend_from_host`]).
//! The commands themselves (printing, exit codes) are in [`crate::commands`].

use std::io::{self, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::protocol::{
    to_line, Event, RecommendReply, Request, StageEndReply, StageStartReply, StatusReply,
    StatusSnapshot, SubscribeReply, ENV_SOCKET,
};
use crate::job_text::JobText;
use crate::safe_fs::{read_line_limited, LineRead};
use crate::sample::proc_parse::{parse_cpu_stat, parse_meminfo};
use crate::sample::procfs::DEFAULT_PROC_ROOT;
use crate::units::{format_elapsed, format_size};

/// The per-worker memory estimate when none is given: the original's 1 GiB per thread.
pub const DEFAULT_PER_WORKER: u64 = 1024 * 1024 * 1024;

/// How long a request waits for its reply (the server may wait up to 3 s for its first
/// sample of the job).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest reply line read (a status with many open stages is a few KiB).
const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

/// What went wrong talking to resctl.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `RESCTL_SOCKET` is not set.
    #[error(
        "{ENV_SOCKET} is not set: not inside `resctl run` (run the job with `resctl run -- CMD`)"
    )]
    NotInsideRun,
    /// Connecting failed.
    #[error("cannot connect to the control socket {}: {source}", path.display())]
    Connect {
        /// The socket.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Sending or receiving failed.
    #[error("talking to the control socket {}: {source}", path.display())]
    Io {
        /// The socket.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// resctl closed the connection before replying (it refuses other users' jobs).
    #[error("the control socket {} closed the connection without a reply", path.display())]
    Closed {
        /// The socket.
        path: PathBuf,
    },
    /// The reply was not what the protocol says.
    #[error("bad reply from the control socket {}: {reason} (line {line:?})", path.display())]
    BadReply {
        /// The socket.
        path: PathBuf,
        /// The reply line as received (cut to 200 characters).
        line: String,
        /// What was wrong with it.
        reason: String,
    },
    /// resctl answered `{"ok":false,"error":...}`.
    #[error("resctl refused the request: {0}")]
    Refused(String),
}

/// A connection to the control socket.
#[derive(Debug)]
pub struct ControlClient {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

/// The socket named by `RESCTL_SOCKET`.
///
/// # Errors
///
/// [`ClientError::NotInsideRun`] when the variable is unset or empty, else connection errors.
pub fn connect_from_env() -> Result<ControlClient, ClientError> {
    match std::env::var_os(ENV_SOCKET) {
        Some(path) if !path.is_empty() => ControlClient::connect(Path::new(&path)),
        _ => Err(ClientError::NotInsideRun),
    }
}

impl ControlClient {
    /// Connects to the socket at `path`.
    ///
    /// # Errors
    ///
    /// The connection failed (no such socket, permission denied, refused).
    pub fn connect(path: &Path) -> Result<ControlClient, ClientError> {
        let connect_error = |source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        };
        let stream = UnixStream::connect(path).map_err(connect_error)?;
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .map_err(connect_error)?;
        let writer = stream.try_clone().map_err(connect_error)?;
        Ok(ControlClient {
            path: path.to_path_buf(),
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Connects to the socket at `path`, each reply waited for at most `timeout`.
    ///
    /// # Errors
    ///
    /// The connection failed, or the socket refused the timeout.
    pub fn connect_within(path: &Path, timeout: Duration) -> Result<ControlClient, ClientError> {
        let client = ControlClient::connect(path)?;
        client.set_reply_timeout(timeout)?;
        Ok(client)
    }

    /// The job's whole state (the `status` request).
    ///
    /// # Errors
    ///
    /// As [`ControlClient::request_as`].
    pub fn status(&mut self) -> Result<StatusSnapshot, ClientError> {
        self.request_as::<StatusReply>(&Request::Status)
            .map(|reply| reply.status)
    }

    /// Waits at most `timeout` for each reply (instead of the default 30 s).
    ///
    /// # Errors
    ///
    /// The socket refused the setting.
    pub fn set_reply_timeout(&self, timeout: Duration) -> Result<(), ClientError> {
        self.reader
            .get_ref()
            .set_read_timeout(Some(timeout))
            .map_err(|source| ClientError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one request and returns its reply, which has `"ok":true`.
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`] with resctl's message for an `"ok":false` reply; I/O errors;
    /// a reply that is not a JSON object with a boolean `ok`.
    pub fn request(&mut self, request: &Request) -> Result<serde_json::Value, ClientError> {
        self.send(request)?;
        let line = self.read_line()?.ok_or_else(|| ClientError::Closed {
            path: self.path.clone(),
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|error| self.bad_reply(&line, error))?;
        match value.get("ok").and_then(serde_json::Value::as_bool) {
            Some(true) => Ok(value),
            Some(false) => Err(ClientError::Refused(
                value
                    .get("error")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("(no message)")
                    .to_owned(),
            )),
            None => Err(self.bad_reply(&line, "no boolean \"ok\" field")),
        }
    }

    /// Sends a request and decodes its reply as `T`.
    ///
    /// # Errors
    ///
    /// As [`request`](Self::request), or a reply that does not decode as `T`.
    pub fn request_as<T: serde::de::DeserializeOwned>(
        &mut self,
        request: &Request,
    ) -> Result<T, ClientError> {
        let value = self.request(request)?;
        let line = value.to_string();
        serde_json::from_value(value).map_err(|error| self.bad_reply(&line, error))
    }

    /// Subscribes to thread-count changes: the returned [`Subscription`] holds the count
    /// in force and yields an [`Event`] for every change until resctl goes away.
    ///
    /// # Errors
    ///
    /// As [`request`](Self::request).
    pub fn subscribe(mut self) -> Result<Subscription, ClientError> {
        let reply: SubscribeReply = self.request_as(&Request::Subscribe)?;
        self.reader
            .get_ref()
            .set_read_timeout(None)
            .map_err(|source| ClientError::Io {
                path: self.path.clone(),
                source,
            })?;
        Ok(Subscription {
            client: self,
            threads: reply.threads,
            done: false,
        })
    }

    fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        let mut line = to_line(request);
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .map_err(|source| ClientError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// The next line, or `None` at end of stream.
    fn read_line(&mut self) -> Result<Option<String>, ClientError> {
        let mut line = Vec::new();
        let read = read_line_limited(&mut self.reader, &mut line, MAX_REPLY_BYTES);
        match read {
            Ok(LineRead::Line) => String::from_utf8(line)
                .map(Some)
                .map_err(|error| self.bad_reply("", error)),
            Ok(LineRead::TooLong) => {
                Err(self.bad_reply("", format!("reply longer than {MAX_REPLY_BYTES} bytes")))
            }
            Ok(LineRead::Eof) => Ok(None),
            // A peer refused by SO_PEERCRED is closed with a reset on some paths.
            Err(error) if error.kind() == io::ErrorKind::ConnectionReset => Ok(None),
            Err(source) => Err(ClientError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn bad_reply(&self, line: &str, reason: impl ToString) -> ClientError {
        ClientError::BadReply {
            path: self.path.clone(),
            line: line.chars().take(200).collect(),
            reason: reason.to_string(),
        }
    }
}

/// Thread-count events after a `subscribe`.
#[derive(Debug)]
pub struct Subscription {
    client: ControlClient,
    threads: u32,
    done: bool,
}

impl Subscription {
    /// The worker count in force when the subscription started.
    pub fn threads(&self) -> u32 {
        self.threads
    }
}

impl Iterator for Subscription {
    type Item = Result<Event, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let line = match self.client.read_line() {
            Ok(Some(line)) => line,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(error) => {
                self.done = true;
                return Some(Err(error));
            }
        };
        Some(
            serde_json::from_str::<Event>(&line)
                .map_err(|error| self.client.bad_reply(&line, error)),
        )
    }
}

/// Outside a job: a worker count from the host's current state:
/// min(`max_threads`, CPUs, MemAvailable ÷ `per_worker`), at least 1, with the reason.
///
/// CPUs are the `cpuN` lines of `PROC_ROOT/stat` (online CPUs); MemAvailable is from
/// `PROC_ROOT/meminfo`. A file that cannot be read is left out and the reason says so.
pub fn recommend_from_host(proc_root: &Path, max_threads: u32, per_worker: u64) -> (u32, String) {
    recommend_within(proc_root, None, max_threads, per_worker)
}

/// [`recommend_from_host`] for this host: its `/proc`, and no more CPUs than this process
/// may run on (affinity, cgroup quota).
pub fn recommend_from_this_host(max_threads: u32, per_worker: u64) -> (u32, String) {
    let allowed = std::thread::available_parallelism().map_or(1, usize::from);
    recommend_within(
        Path::new(DEFAULT_PROC_ROOT),
        Some(allowed),
        max_threads,
        per_worker,
    )
}

/// The host recommendation from `proc_root`, with at most `allowed` CPUs when known.
fn recommend_within(
    proc_root: &Path,
    allowed: Option<usize>,
    max_threads: u32,
    per_worker: u64,
) -> (u32, String) {
    let per_worker = per_worker.max(1);
    let mut notes = Vec::new();
    let stat_path = proc_root.join("stat");
    let online = std::fs::read_to_string(&stat_path)
        .map_err(|error| format!("cannot read {}: {error}", stat_path.display()))
        .and_then(|text| {
            parse_cpu_stat(&text)
                .map_err(|error| error.in_file(&stat_path).to_string())
                .map(|stat| stat.per_cpu.len())
        });
    let cpus = match (online, allowed) {
        (Ok(online), Some(allowed)) => online.clamp(1, allowed.max(1)),
        (Ok(online), None) => online.max(1),
        (Err(error), allowed) => {
            notes.push(error);
            allowed.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        }
    };
    let cpus = u32::try_from(cpus).unwrap_or(u32::MAX);
    let meminfo_path = proc_root.join("meminfo");
    let available = std::fs::read_to_string(&meminfo_path)
        .map_err(|error| format!("cannot read {}: {error}", meminfo_path.display()))
        .and_then(|text| {
            parse_meminfo(&text)
                .map_err(|error| error.in_file(&meminfo_path).to_string())
                .map(|meminfo| meminfo.mem_available)
        });
    let by_memory = match available {
        Ok(available) => Some((
            available,
            u32::try_from(available / per_worker).unwrap_or(u32::MAX),
        )),
        Err(error) => {
            notes.push(error);
            None
        }
    };
    let mut threads = max_threads.min(cpus);
    let mut limit = if cpus < max_threads {
        "CPUs"
    } else {
        "--max-threads"
    };
    let mut parts = vec![format!("max {max_threads}"), format!("{cpus} CPUs")];
    if let Some((available, count)) = by_memory {
        if count < threads {
            threads = count;
            limit = "memory";
        }
        parts.push(format!(
            "MemAvailable {} ÷ {} per worker = {count}",
            format_size(available),
            format_size(per_worker)
        ));
    }
    let mut reason = format!("{threads} (limited by {limit}: {})", parts.join(", "));
    if threads == 0 {
        threads = 1;
        reason = format!("1 (at least one; {})", parts.join(", "));
    }
    let mut reason = format!("host: {reason}");
    for note in notes {
        reason.push_str("; ");
        reason.push_str(&note);
    }
    (threads, reason)
}

/// What `resctl stage` prints.
///
/// # Errors
///
/// The request failed or was refused (for example, ending a stage that is not open).
pub fn stage(
    client: &mut ControlClient,
    start: bool,
    name: &str,
    workers: Option<u32>,
) -> Result<String, ClientError> {
    if start {
        let reply: StageStartReply = client.request_as(&Request::StageStart {
            name: JobText::from(name),
            workers,
        })?;
        tracing::debug!("stage {name}: {} ({})", reply.reason, reply.level);
        Ok(reply.threads.to_string())
    } else {
        let reply: StageEndReply = client.request_as(&Request::StageEnd {
            name: JobText::from(name),
        })?;
        Ok(reply.stage.describe())
    }
}

/// The count and reason `resctl recommend` gives.
pub fn recommend_text(
    current: Option<u32>,
    context: Option<&str>,
    max_threads: u32,
    per_worker: u64,
) -> (u32, String) {
    let max_threads = max_threads.max(1);
    let from_socket = connect_from_env().and_then(|mut client| {
        client.request_as::<RecommendReply>(&Request::Recommend {
            current,
            context: context.map(JobText::from),
        })
    });
    match from_socket {
        Ok(reply) if reply.threads > max_threads => (
            max_threads,
            format!(
                "{max_threads} (--max-threads); resctl said {}",
                reply.reason
            ),
        ),
        Ok(reply) => (reply.threads.max(1), reply.reason),
        Err(error) => {
            if !matches!(error, ClientError::NotInsideRun) {
                tracing::warn!("{error}; recommending from the host's state instead");
            }
            let (threads, reason) = recommend_from_this_host(max_threads, per_worker);
            let context = context
                .filter(|context| !context.is_empty())
                .map(|context| format!("for {context}: "))
                .unwrap_or_default();
            (threads, format!("{context}{reason}"))
        }
    }
}

/// The status as aligned `key  value` lines.
pub fn render_status(status: &StatusSnapshot) -> String {
    let mut rows: Vec<(&str, String)> = Vec::new();
    rows.push((
        "level",
        format!(
            "{} (memory {}, cpu {}, psi {})",
            status.level, status.memory_level, status.cpu_level, status.psi_level
        ),
    ));
    let limit = status.memory_limit.map_or_else(
        || "no limit".to_owned(),
        |limit| format!("limit {}", format_size(limit)),
    );
    rows.push((
        "memory",
        format!(
            "{} ({limit}; moderate {}, high {}, critical {})",
            format_size(status.memory_bytes),
            format_size(status.thresholds.moderate),
            format_size(status.thresholds.high),
            format_size(status.thresholds.critical)
        ),
    ));
    let cpu_now = status
        .cpu_percent
        .map_or_else(|| "-".to_owned(), |percent| format!("{percent:.1}%"));
    rows.push(("cpu", format!("{cpu_now} ({:.1}s used)", status.cpu_secs)));
    rows.push((
        "threads",
        format!(
            "{} (min {}, max {})",
            status.threads, status.min_threads, status.max_threads
        ),
    ));
    rows.push(("reason", status.reason.clone()));
    rows.push((
        "leak",
        status.leak.as_ref().map_or_else(
            || "not enough samples yet".to_owned(),
            |leak| leak.message.clone(),
        ),
    ));
    let stages = if status.stages_open.is_empty() {
        vec!["none".to_owned()]
    } else {
        status
            .stages_open
            .iter()
            .map(|stage| {
                let elapsed = Duration::try_from_secs_f64(stage.elapsed_secs).unwrap_or_default();
                format!(
                    "{} ({} workers, {})",
                    stage.name,
                    stage.workers,
                    format_elapsed(elapsed)
                )
            })
            .collect()
    };
    for (index, stage) in stages.into_iter().enumerate() {
        rows.push((if index == 0 { "open stages" } else { "" }, stage));
    }
    let advice = if status.recommendations.is_empty() {
        vec!["none".to_owned()]
    } else {
        status.recommendations.clone()
    };
    for (index, line) in advice.into_iter().enumerate() {
        rows.push((if index == 0 { "recommendations" } else { "" }, line));
    }
    let width = rows.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(key, value)| format!("{key:<width$}  {value}").trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::policy::{Level, PolicyConfig};
    use crate::report::stages::OpenStage;

    const MIB: u64 = 1024 * 1024;

    fn fixture(kernel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/socket")
            .join(kernel)
    }

    #[test]
    fn host_recommendation_limited_by_memory() {
        // kernel-6.1: MemAvailable 1793000 kB, 2 CPUs.
        let (threads, reason) = recommend_from_host(&fixture("kernel-6.1"), 8, DEFAULT_PER_WORKER);
        assert_eq!(threads, 1);
        assert_eq!(
            reason,
            "host: 1 (limited by memory: max 8, 2 CPUs, MemAvailable 1.7G ÷ 1G per worker = 1)"
        );
        // 512M per worker: 1793000 kB / 524288 kB = 3, still above the 2 CPUs.
        let (threads, reason) = recommend_from_host(&fixture("kernel-6.1"), 8, 512 * MIB);
        assert_eq!(threads, 2, "{reason}");
        assert!(reason.contains("limited by CPUs"), "{reason}");
    }

    #[test]
    fn host_recommendation_limited_by_cpus_or_max() {
        // kernel-6.18-hybrid: MemAvailable 24170832 kB (23 GiB), 2 CPUs.
        let root = fixture("kernel-6.18-hybrid");
        assert_eq!(recommend_from_host(&root, 8, DEFAULT_PER_WORKER).0, 2);
        let (threads, reason) = recommend_from_host(&root, 1, DEFAULT_PER_WORKER);
        assert_eq!(threads, 1);
        assert!(reason.contains("limited by --max-threads"), "{reason}");
        // Per-worker 0 is treated as 1 byte, not a division by zero.
        assert_eq!(recommend_from_host(&root, 8, 0).0, 2);
    }

    #[test]
    fn host_recommendation_never_below_one_and_names_missing_files() {
        let (threads, reason) = recommend_from_host(&fixture("kernel-6.1"), 8, 64 * 1024 * MIB);
        assert_eq!(threads, 1);
        assert!(reason.starts_with("host: 1 (at least one;"), "{reason}");
        let missing = Path::new("/nonexistent/proc");
        let (threads, reason) = recommend_from_host(missing, 3, DEFAULT_PER_WORKER);
        assert!((1..=3).contains(&threads));
        assert!(
            reason.contains("cannot read /nonexistent/proc/meminfo"),
            "{reason}"
        );
        assert!(
            reason.contains("cannot read /nonexistent/proc/stat"),
            "{reason}"
        );
    }

    #[test]
    fn status_renders_as_aligned_rows() {
        let status = StatusSnapshot {
            at_secs: 10.0,
            level: Level::High,
            memory_level: Level::High,
            cpu_level: Level::Normal,
            psi_level: Level::Normal,
            memory_bytes: 3100 * MIB,
            memory_limit: Some(4096 * MIB),
            thresholds: crate::policy::MemoryThresholds {
                moderate: 2000 * MIB,
                high: 3000 * MIB,
                critical: 3500 * MIB,
            },
            cpu_percent: Some(42.0),
            cpu_thresholds: crate::control::protocol::CpuThresholds {
                moderate: 70.0,
                high: 85.0,
                critical: 95.0,
            },
            cpu_secs: 12.5,
            threads: 4,
            min_threads: 1,
            max_threads: 8,
            reason: "memory high: 6 → 4 threads".into(),
            leak: None,
            stages_open: vec![OpenStage {
                name: "models".into(),
                workers: 4,
                elapsed_secs: 65.0,
            }],
            recommendations: vec!["memory at high (3G ≥ 2.9G): run at most 4 workers".into()],
            leak_rule: crate::policy::LeakRule::from_config(&PolicyConfig::default()),
        };
        assert_eq!(
            render_status(&status),
            "level            high (memory high, cpu normal, psi normal)\n\
             memory           3G (limit 4G; moderate 2G, high 2.9G, critical 3.4G)\n\
             cpu              42.0% (12.5s used)\n\
             threads          4 (min 1, max 8)\n\
             reason           memory high: 6 → 4 threads\n\
             leak             not enough samples yet\n\
             open stages      models (4 workers, 1m5s)\n\
             recommendations  memory at high (3G ≥ 2.9G): run at most 4 workers"
        );
    }
}
