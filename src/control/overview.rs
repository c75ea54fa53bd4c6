//! `resctl status` outside a job: the slices the daemon watches and the jobs `resctl run`
//! is watching, in one table (or JSON).
//!
//! - **Slices** come from the daemon's status file, [`DAEMON_STATUS_FILE`] in its runtime
//!   folder (`/run/resctl`), which the daemon replaces every 2 s and at once after an action
//!   ([`DaemonStatus`]). A file older than a few intervals is shown as stale: the daemon
//!   is not running, or stuck.
//! - **Jobs** are the run folders `<base>/resctl/<pid>/` of root (`/run`) and of the user
//!   (`$XDG_RUNTIME_DIR`); each job's control socket there answers a `status` request. Only
//!   folders the caller may enter are seen: root sees every root-run job, a user their own.
//!
//! Everything shown that a job or a configuration wrote (reasons, names, commands) is
//! escaped before it reaches the terminal.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::client::ControlClient;
use super::protocol::StatusSnapshot;
use crate::job_text::escape;
use crate::policy::Level;
use crate::safe_fs::read_regular;
use crate::units::{format_elapsed, format_size};

/// The daemon's status file, in its runtime folder.
pub const DAEMON_STATUS_FILE: &str = "daemon-status.json";
/// The daemon's runtime folder when systemd does not name one.
pub const DAEMON_RUNTIME_DIR: &str = "/run/resctl";
/// Largest status file read, bytes.
const MAX_STATUS_BYTES: u64 = 4 * 1024 * 1024;
/// How long a job's socket has to answer.
const JOB_REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// A status file older than this many intervals (plus [`STALE_SLACK`]) is stale.
const STALE_INTERVALS: f64 = 3.0;
/// Slack added to the stale limit, for a loaded machine.
const STALE_SLACK: Duration = Duration::from_secs(5);

/// What the daemon writes to its status file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    /// The daemon's pid.
    pub pid: u32,
    /// When this was written, seconds since the Unix epoch.
    pub written_at: f64,
    /// The daemon's sampling interval, seconds.
    pub interval_secs: f64,
    /// The configuration file in force.
    pub config: String,
    /// Every configured slice, in name order.
    pub slices: Vec<SliceStatus>,
}

/// One slice as the daemon last saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SliceStatus {
    /// The slice unit.
    pub name: String,
    /// Its cgroup folder.
    pub cgroup: String,
    /// Whether its cgroup could be read (the slice is active).
    pub active: bool,
    /// Its level.
    pub level: Level,
    /// Memory less reclaimable page cache, bytes.
    pub memory: Option<u64>,
    /// The kernel's high-water mark, bytes.
    pub peak: Option<u64>,
    /// The tightest limit on it and above it, bytes.
    pub limit: Option<u64>,
    /// Memory PSI some avg10, percent.
    pub memory_psi: Option<f64>,
    /// Memory trend, bytes per second.
    pub leak_slope: Option<f64>,
    /// Time until the limit at that trend, seconds.
    pub time_to_limit_secs: Option<f64>,
    /// The daemon's last action on it, in words.
    pub last_action: Option<String>,
    /// When it was taken, seconds since the Unix epoch.
    pub last_action_at: Option<f64>,
    /// With `last_resort: kill`, how long the slice may stay at critical with a job frozen
    /// before that job is killed, seconds; absent where the last resort is to freeze.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_after_secs: Option<f64>,
}

/// The daemon as `resctl status` saw it.
#[derive(Debug, Clone, Serialize)]
pub struct DaemonView {
    /// Its status file.
    pub file: PathBuf,
    /// What it wrote last.
    #[serde(flatten)]
    pub status: DaemonStatus,
    /// The file is older than a few intervals: the daemon is not running, or stuck.
    pub stale: bool,
}

/// One job as `resctl status` saw it.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    /// resctl's pid (the run folder's name).
    pub pid: u32,
    /// The job's command line (escaped, cut).
    pub command: String,
    /// The control socket asked.
    pub socket: PathBuf,
    /// Its status, when the socket answered.
    pub status: Option<StatusSnapshot>,
    /// Why it did not.
    pub error: Option<String>,
}

/// Everything `resctl status` shows outside a job.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// The daemon, when its status file was found.
    pub daemon: Option<DaemonView>,
    /// The jobs found, by pid.
    pub jobs: Vec<JobView>,
    /// What could not be looked at, and why.
    pub notes: Vec<String>,
}

/// Where `resctl status` looks: the daemon's status file and the run-folder bases.
#[derive(Debug, Clone)]
pub struct Places {
    /// The daemon's status file.
    pub daemon_file: PathBuf,
    /// Folders holding `<pid>/control.sock` run folders.
    pub run_bases: Vec<PathBuf>,
    /// Where `/proc` is (the jobs' command lines).
    pub proc_root: PathBuf,
}

impl Places {
    /// The places on this host: `/run/resctl/daemon-status.json`, `/run/resctl`, and
    /// `$XDG_RUNTIME_DIR/resctl` when set.
    pub fn of_this_host() -> Places {
        let mut run_bases = vec![PathBuf::from(DAEMON_RUNTIME_DIR)];
        if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").filter(|dir| !dir.is_empty()) {
            let base = Path::new(&xdg).join("resctl");
            if !run_bases.contains(&base) {
                run_bases.push(base);
            }
        }
        Places {
            daemon_file: Path::new(DAEMON_RUNTIME_DIR).join(DAEMON_STATUS_FILE),
            run_bases,
            proc_root: PathBuf::from(crate::sample::procfs::DEFAULT_PROC_ROOT),
        }
    }
}

/// Looks at every place at `now`.
pub fn gather(places: &Places, now: SystemTime) -> Overview {
    let mut notes = Vec::new();
    let daemon = read_daemon(&places.daemon_file, now, &mut notes);
    let mut jobs = Vec::new();
    for base in &places.run_bases {
        jobs.extend(read_jobs(base, &places.proc_root, &mut notes));
    }
    jobs.sort_by_key(|job| job.pid);
    jobs.dedup_by_key(|job| job.pid);
    Overview {
        daemon,
        jobs,
        notes,
    }
}

fn read_daemon(file: &Path, now: SystemTime, notes: &mut Vec<String>) -> Option<DaemonView> {
    let bytes = match read_regular(file, MAX_STATUS_BYTES) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            notes.push(format!(
                "no daemon status at {} (resctl daemon is not running here)",
                file.display()
            ));
            return None;
        }
        Err(err) => {
            notes.push(format!("daemon status {}: {err}", file.display()));
            return None;
        }
    };
    let status: DaemonStatus = match serde_json::from_slice(&bytes) {
        Ok(status) => status,
        Err(err) => {
            notes.push(format!(
                "daemon status {}: not readable: {err}",
                file.display()
            ));
            return None;
        }
    };
    let age = unix_seconds(now) - status.written_at;
    let stale = age > status.interval_secs * STALE_INTERVALS + STALE_SLACK.as_secs_f64();
    if stale {
        notes.push(format!(
            "the daemon's status is {} old: the daemon (pid {}) is not running or is stuck",
            format_elapsed(Duration::try_from_secs_f64(age.max(0.0)).unwrap_or_default()),
            status.pid
        ));
    }
    Some(DaemonView {
        file: file.to_path_buf(),
        status,
        stale,
    })
}

fn read_jobs(base: &Path, proc_root: &Path, notes: &mut Vec<String>) -> Vec<JobView> {
    let entries = match std::fs::read_dir(base) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(err) => {
            notes.push(format!("jobs in {}: {err}", base.display()));
            return Vec::new();
        }
    };
    let mut jobs = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let socket = entry.path().join("control.sock");
        let (status, error) = match ask_status(&socket) {
            Ok(status) => (Some(status), None),
            Err(err) => (None, Some(err)),
        };
        jobs.push(JobView {
            pid,
            command: job_command(proc_root, pid),
            socket,
            status,
            error,
        });
    }
    jobs
}

fn ask_status(socket: &Path) -> Result<StatusSnapshot, String> {
    ControlClient::connect_within(socket, JOB_REPLY_TIMEOUT)
        .and_then(|mut client| client.status())
        .map_err(|err| err.to_string())
}

/// The job's command line: what follows `--` in resctl's own (escaped, cut).
fn job_command(proc_root: &Path, pid: u32) -> String {
    let Ok(bytes) = std::fs::read(proc_root.join(pid.to_string()).join("cmdline")) else {
        return "?".to_owned();
    };
    let args: Vec<String> = bytes
        .split(|&byte| byte == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();
    let job = match args.iter().position(|arg| arg == "--") {
        Some(at) => &args[at + 1..],
        None => &args[..],
    };
    escape(&job.join(" "))
}

fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs_f64())
        .unwrap_or(0.0)
}

/// The current time as [`DaemonStatus::written_at`] has it.
pub fn now_unix_seconds() -> f64 {
    unix_seconds(SystemTime::now())
}

/// The overview as tables for people, at `now`.
pub fn render(overview: &Overview, now: SystemTime) -> String {
    let mut out = String::new();
    let size = |bytes: Option<u64>| bytes.map_or_else(|| "-".to_owned(), format_size);
    let trend = |slope: Option<f64>| {
        slope.map_or_else(
            || "-".to_owned(),
            |slope| {
                let per_minute = slope * 60.0;
                let sign = if per_minute < 0.0 { "-" } else { "+" };
                format!("{sign}{}/min", format_size(per_minute.abs() as u64))
            },
        )
    };
    if let Some(daemon) = &overview.daemon {
        let mut rows = vec![[
            "SLICE",
            "LEVEL",
            "MEMORY",
            "PEAK",
            "LIMIT",
            "PSI",
            "TREND",
            "LAST RESORT",
            "LAST ACTION",
        ]
        .map(str::to_owned)
        .to_vec()];
        for slice in &daemon.status.slices {
            let last = match (&slice.last_action, slice.last_action_at) {
                (Some(action), Some(at)) => format!(
                    "{} ({} ago)",
                    escape(action),
                    format_elapsed(
                        Duration::try_from_secs_f64((unix_seconds(now) - at).max(0.0))
                            .unwrap_or_default()
                    )
                ),
                _ => "-".to_owned(),
            };
            rows.push(vec![
                escape(&slice.name),
                if slice.active {
                    slice.level.to_string()
                } else {
                    "inactive".to_owned()
                },
                size(slice.memory),
                size(slice.peak),
                size(slice.limit),
                slice
                    .memory_psi
                    .map_or_else(|| "-".to_owned(), |psi| format!("{psi:.1}%")),
                trend(slice.leak_slope),
                slice.kill_after_secs.map_or_else(
                    || "freeze".to_owned(),
                    |secs| {
                        format!(
                            "kill after {}",
                            format_elapsed(Duration::try_from_secs_f64(secs).unwrap_or_default())
                        )
                    },
                ),
                last,
            ]);
        }
        out.push_str(&format!(
            "daemon (pid {}, {}){}\n",
            daemon.status.pid,
            escape(&daemon.status.config),
            if daemon.stale { ", STALE" } else { "" }
        ));
        if daemon.status.slices.is_empty() {
            out.push_str("no slices configured\n");
        } else {
            out.push_str(&table(&rows));
        }
    }
    if !overview.jobs.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        let mut rows = vec![[
            "PID", "JOB", "LEVEL", "MEMORY", "LIMIT", "THREADS", "TREND", "REASON",
        ]
        .map(str::to_owned)
        .to_vec()];
        for job in &overview.jobs {
            let mut row = vec![job.pid.to_string(), cut(&job.command, 40)];
            match &job.status {
                Some(status) => row.extend([
                    status.level.to_string(),
                    format_size(status.memory_bytes),
                    size(
                        status
                            .memory_limit
                            .filter(|&l| l != crate::policy::NO_LIMIT),
                    ),
                    status.threads.to_string(),
                    trend(status.leak.as_ref().map(|leak| leak.slope_bytes_per_sec)),
                    cut(&escape(&status.reason), 80),
                ]),
                None => row.extend([
                    "?".to_owned(),
                    "-".to_owned(),
                    "-".to_owned(),
                    "-".to_owned(),
                    "-".to_owned(),
                    escape(job.error.as_deref().unwrap_or("no answer")),
                ]),
            }
            rows.push(row);
        }
        out.push_str(&table(&rows));
    }
    if overview.daemon.is_none() && overview.jobs.is_empty() {
        out.push_str("nothing watched: no resctl daemon and no resctl run found\n");
    }
    for note in &overview.notes {
        out.push_str(&format!("note: {}\n", escape(note)));
    }
    out.trim_end().to_owned()
}

/// `text` cut to `chars` characters, with `…` when cut.
fn cut(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Rows as left-aligned columns, two spaces apart; the last column is not padded.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            if column + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                let pad = widths[column] - cell.chars().count() + 2;
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(name: &str, level: Level) -> SliceStatus {
        SliceStatus {
            name: name.to_owned(),
            cgroup: format!("/sys/fs/cgroup/{name}"),
            active: true,
            level,
            memory: Some(300 << 20),
            peak: Some(400 << 20),
            limit: Some(1 << 30),
            memory_psi: Some(0.25),
            leak_slope: Some(2.0 * 1024.0 * 1024.0 / 60.0),
            time_to_limit_secs: None,
            last_action: Some("level normal -> moderate".to_owned()),
            last_action_at: Some(1_000.0),
            kill_after_secs: None,
        }
    }

    fn write_status(dir: &Path, written_at: f64, slices: Vec<SliceStatus>) -> PathBuf {
        let file = dir.join(DAEMON_STATUS_FILE);
        let status = DaemonStatus {
            pid: 77,
            written_at,
            interval_secs: 1.0,
            config: "/etc/resctl/resctl.yaml".to_owned(),
            slices,
        };
        std::fs::write(&file, serde_json::to_vec(&status).unwrap()).unwrap();
        file
    }

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn the_daemons_slices_are_a_table_with_their_last_action_and_its_age() {
        let dir = tempfile::tempdir().unwrap();
        let places = Places {
            daemon_file: write_status(
                dir.path(),
                1_030.0,
                vec![
                    slice("etl.slice", Level::Moderate),
                    SliceStatus {
                        kill_after_secs: Some(45.0),
                        ..slice("batch.slice", Level::Normal)
                    },
                ],
            ),
            run_bases: vec![dir.path().join("runs")],
            proc_root: dir.path().to_path_buf(),
        };
        let overview = gather(&places, at(1_031));
        let daemon = overview.daemon.as_ref().unwrap();
        assert!(!daemon.stale);
        let text = render(&overview, at(1_031));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "daemon (pid 77, /etc/resctl/resctl.yaml)");
        assert!(
            lines[1].starts_with("SLICE        LEVEL     MEMORY"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("etl.slice    moderate  300M    400M  1G     0.2%  +2M/min"),
            "{text}"
        );
        assert!(
            lines[2].ends_with("freeze          level normal -> moderate (31s ago)"),
            "{text}"
        );
        assert!(
            lines[3].starts_with("batch.slice  normal")
                && lines[3].contains("+2M/min  kill after 45s  level normal"),
            "{text}"
        );
    }

    #[test]
    fn an_old_status_file_is_stale_and_a_missing_or_bad_one_is_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_status(dir.path(), 1_000.0, vec![]);
        let places = Places {
            daemon_file: file.clone(),
            run_bases: vec![],
            proc_root: dir.path().to_path_buf(),
        };
        let overview = gather(&places, at(1_009));
        assert!(overview.daemon.as_ref().unwrap().stale);
        let text = render(&overview, at(1_009));
        assert!(
            text.starts_with("daemon (pid 77, /etc/resctl/resctl.yaml), STALE"),
            "{text}"
        );
        assert!(text.contains("not running or is stuck"), "{text}");
        assert!(!gather(&places, at(1_007)).daemon.unwrap().stale);

        std::fs::write(&file, "{").unwrap();
        let overview = gather(&places, at(1_001));
        assert!(overview.daemon.is_none());
        assert!(
            overview.notes[0].contains("not readable"),
            "{:?}",
            overview.notes
        );
        std::fs::remove_file(&file).unwrap();
        let text = render(&gather(&places, at(1_001)), at(1_001));
        assert!(text.starts_with("nothing watched"), "{text}");
    }

    #[test]
    fn a_run_folder_without_an_answering_socket_is_listed_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs");
        std::fs::create_dir_all(runs.join("4242")).unwrap();
        std::fs::create_dir_all(runs.join("not-a-pid")).unwrap();
        let proc_root = dir.path().join("proc");
        std::fs::create_dir_all(proc_root.join("4242")).unwrap();
        std::fs::write(
            proc_root.join("4242/cmdline"),
            b"resctl\0run\0--\0make\0-j8\0\x1b]0;owned\x07\0",
        )
        .unwrap();
        let places = Places {
            daemon_file: dir.path().join("none.json"),
            run_bases: vec![runs],
            proc_root,
        };
        let overview = gather(&places, at(1));
        assert_eq!(overview.jobs.len(), 1);
        let job = &overview.jobs[0];
        assert_eq!(job.pid, 4242);
        assert_eq!(job.command, "make -j8 \\u{1b}]0;owned\\u{7}");
        assert!(
            job.error.as_deref().unwrap().contains("control.sock"),
            "{job:?}"
        );
        let text = render(&overview, at(1));
        assert!(!text.contains('\x1b'), "{text}");
        assert!(
            text.lines().nth(1).unwrap().starts_with("4242  make -j8"),
            "{text}"
        );
    }
}
