//! The command line: every flag defined once, with its help, next to its parsing.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// resctl: run a memory-hungry parallel job in its own cgroup and steer its
/// parallelism under memory pressure instead of letting it be OOM-killed.
#[derive(Debug, Parser)]
#[command(name = "resctl", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Log more (debug level). `RESCTL_LOG` takes an env-filter too.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run COMMAND in its own cgroup, watch it and steer its thread count.
    ///
    /// The job gets RESCTL_THREADS (initial worker count) and RESCTL_THREADS_FILE
    /// (a file holding the current recommendation, replaced atomically). Exit
    /// status is the job's (128+N if killed by signal N; 126/127 if it cannot be
    /// executed / is not found; 125 if resctl fails before the job starts).
    Run(Box<RunArgs>),
    /// Check or show the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Explain what this host offers (cgroup layout, controllers, PSI, systemd,
    /// journald) and what `resctl run` will therefore do.
    Doctor(DoctorArgs),
    /// Re-run the policy over a trace written by `resctl run --record` and print
    /// its decisions.
    Replay(ReplayArgs),
    /// From inside a job: mark the start or end of a pipeline stage (its own
    /// figures go to the journal and the end summary).
    #[command(subcommand)]
    Stage(StageCommand),
    /// Print the recommended worker count: from resctl inside a job, else from
    /// the host's free memory and CPUs (`--threads $(resctl recommend)`).
    Recommend(RecommendArgs),
    /// Inside a job: its levels, memory, trend, thread count and advice. Outside: the
    /// slices `resctl daemon` watches and the jobs `resctl run` is watching (root sees
    /// root's runs, a user their own).
    Status(StatusArgs),
    /// From inside a job: report cumulative work units done (for throughput).
    Progress(ProgressArgs),
    /// Run COMMAND at several thread counts, each run in its own cgroup under the
    /// same budget, and recommend the fewest threads within a few % of the fastest.
    ///
    /// Each run is `resctl run --threads N --min-threads N --max-threads N`: the job
    /// gets RESCTL_THREADS=N, and `{threads}` in COMMAND's arguments becomes N
    /// (`resctl bench -- make -j{threads}`). Exit status: 0 with a recommendation,
    /// 1 when no count succeeded in every run, 125 when the command cannot run.
    Bench(Box<BenchArgs>),
    /// Watch the configuration's slices as a systemd service (systemd/resctl.service):
    /// their levels in the journal, their limits held through systemd, SIGHUP reloads;
    /// the `resctl run` jobs in a slice under pressure are shrunk one at a time, and at
    /// critical the lowest `--priority` is frozen until memory returns; killed only in a
    /// slice whose configuration says `last_resort: kill`, after `kill_after` at critical.
    Daemon(DaemonArgs),
    /// Print a shell completion script for SHELL (bash, zsh, fish, elvish, powershell)
    /// to standard output, generated from this command line's own definition:
    /// `resctl completions bash > /usr/share/bash-completion/completions/resctl`.
    Completions(CompletionsArgs),
    /// Print the man page (roff) to standard output, generated from this command line's
    /// own definition: `resctl man | man -l -`.
    Man,
    /// What earlier runs learned per job (one worker's memory, the fastest count), which
    /// the next run of the same job starts from.
    #[command(subcommand)]
    History(HistoryCommand),
}

/// `resctl history ...`.
#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// One line per remembered job.
    List,
    /// One job's record, as JSON.
    Show {
        /// The job key (`resctl history list` prints them) or its record's file name.
        key: String,
    },
    /// Forget a job: its next run starts from the defaults again.
    Forget {
        /// The job key or its record's file name.
        key: String,
    },
}

/// `resctl bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Thread counts to try, comma-separated.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "1,2,4,6,8"
    )]
    pub threads: Vec<u32>,
    /// Runs per count (the median is compared).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub repeat: u32,
    /// Memory budget of every run (memory.max; v1: memory.limit_in_bytes).
    #[arg(long, value_name = "SIZE")]
    pub memory_max: Option<String>,
    /// A count whose median is within this of the fastest counts as as fast.
    #[arg(long, value_name = "PERCENT", default_value = "5%")]
    pub tolerance: String,
    /// Keep each run's log and summary here (default: a new folder under the
    /// temporary folder, printed at the end).
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as JSON to FILE (checked before the first run).
    #[arg(long, value_name = "FILE")]
    pub export_json: Option<PathBuf>,
    /// Also write the table as Markdown to FILE (checked before the first run).
    #[arg(long, value_name = "FILE")]
    pub export_markdown: Option<PathBuf>,
    /// Also draw speedup and peak memory per thread count as an SVG chart to FILE, the
    /// recommended count marked, failed counts as red crosses (checked before the first run).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Keep what the sweep measured (memory per worker, the recommended count, the first
    /// count OOM-killed) in the job's history, so `resctl run --job-key NAME` starts from it.
    #[arg(long)]
    pub save: bool,
    /// The job's name in its history, with --save (default: the command line as given,
    /// `{threads}` included, and the working folder).
    #[arg(long, value_name = "NAME", requires = "save")]
    pub job_key: Option<String>,
    /// The job: COMMAND [ARGS...] (after `--`).
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// `resctl stage start|end`.
#[derive(Debug, Subcommand)]
pub enum StageCommand {
    /// A stage begins; prints the worker count to use for it.
    Start {
        /// The stage's name.
        name: String,
        /// Workers the stage intends to use.
        #[arg(long, value_name = "N")]
        workers: Option<u32>,
    },
    /// A stage ended; prints its figures.
    End {
        /// The stage's name.
        name: String,
    },
}

/// `resctl recommend`.
#[derive(Debug, Args)]
pub struct RecommendArgs {
    /// The worker count in use now.
    #[arg(long, value_name = "N")]
    pub current: Option<u32>,
    /// What the count is for (shown in resctl's log).
    #[arg(long, value_name = "TEXT")]
    pub context: Option<String>,
    /// Outside a job: the most workers to recommend.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub max_threads: u32,
    /// Outside a job: memory one worker needs (the original's estimate: 1G).
    #[arg(long, value_name = "SIZE", default_value = "1G")]
    pub per_worker: String,
}

/// `resctl status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Redraw every --every until interrupted (on a terminal the screen is cleared first;
    /// with --json one object per line).
    #[arg(long)]
    pub watch: bool,
    /// How often --watch redraws, like `2s` or `500ms`.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "2s",
        requires = "watch"
    )]
    pub every: String,
}

/// `resctl progress`.
#[derive(Debug, Args)]
pub struct ProgressArgs {
    /// Work units done so far (cumulative).
    pub units: u64,
}

/// Where the configuration comes from.
#[derive(Debug, Clone, Args)]
pub struct ConfigSource {
    /// YAML configuration file [default: /etc/resctl/resctl.yaml when it exists].
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        env = "RESCTL_CONFIG"
    )]
    pub file: Option<PathBuf>,
}

/// `--jobserver-style`: how the job's build tools find the token pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JobserverStyle {
    /// The fifo form for ninja, the pipe form for everything else.
    Auto,
    /// `--jobserver-auth=R,W` (inherited descriptors).
    Pipe,
    /// `--jobserver-auth=fifo:PATH`.
    Fifo,
}

/// `resctl run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Configuration file.
    #[command(flatten)]
    pub source: ConfigSource,
    /// Throttle the job above this much memory (cgroup memory.high): size like
    /// `3.5G`, or `80%` of --memory-max.
    #[arg(long, value_name = "SIZE")]
    pub memory_high: Option<String>,
    /// Hard memory limit of the job (cgroup memory.max): the kernel OOM-kills
    /// past it. Thresholds default to 50/75/87.5 % of it.
    #[arg(long, value_name = "SIZE")]
    pub memory_max: Option<String>,
    /// Moderate memory level (size or % of the limit): reported; growth continues above it
    /// up to the high level, and PSI at moderate takes one worker away.
    #[arg(long, value_name = "SIZE")]
    pub moderate: Option<String>,
    /// High memory level (size or % of the limit): two workers fewer per cooldown, and the
    /// ceiling growth stays below (less 5 %).
    #[arg(long, value_name = "SIZE")]
    pub high: Option<String>,
    /// Critical memory level (size or % of the limit): down to the minimum at once.
    #[arg(long, value_name = "SIZE")]
    pub critical: Option<String>,
    /// Sampling interval, like `1s` or `500ms`.
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
    /// Workers at start (RESCTL_THREADS) [default: the number of CPUs, at most --max-threads].
    #[arg(long, value_name = "N")]
    pub threads: Option<u32>,
    /// Fewest workers to recommend.
    #[arg(long, value_name = "N")]
    pub min_threads: Option<u32>,
    /// Most workers to recommend.
    #[arg(long, value_name = "N")]
    pub max_threads: Option<u32>,
    /// systemd slice for the job's scope (systemd hosts), e.g. `batch.slice`.
    #[arg(long, value_name = "SLICE")]
    pub slice: Option<String>,
    /// Also send this signal to the job when the count changes (e.g. USR1).
    /// Only for jobs that handle it: the default action of SIGUSR1 kills.
    #[arg(long, value_name = "SIGNAL")]
    pub notify_signal: Option<String>,
    /// Serve a memory-aware GNU make jobserver with at most N jobs (default:
    /// --max-threads): exports MAKEFLAGS/CARGO_MAKEFLAGS so make, cargo, ninja
    /// and gcc's LTO take their parallelism from resctl, which withholds tokens
    /// under memory pressure.
    #[arg(long, value_name = "N", num_args = 0..=1, require_equals = true, default_missing_value = "0")]
    pub jobserver: Option<u32>,
    /// How --jobserver is announced: `pipe` (`--jobserver-auth=R,W`: GNU make
    /// ≥ 4.2, cargo), `fifo` (`--jobserver-auth=fifo:PATH`: make ≥ 4.4, cargo,
    /// ninja ≥ 1.13; make 4.3 stops on it), or `auto`: fifo when COMMAND is
    /// ninja, else pipe.
    #[arg(long, value_name = "STYLE", value_enum, default_value_t = JobserverStyle::Auto, requires = "jobserver")]
    pub jobserver_style: JobserverStyle,
    /// Run the job as this user (a name or a numeric uid; resctl must be root):
    /// groups, group and user are switched after the job is in its cgroup, and
    /// the job's USER, LOGNAME and HOME are the user's. Its thread file, jobserver
    /// fifo and control socket are given to the user.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Write the end summary (exit, wall and CPU time, peak memory, levels,
    /// thread changes, OOM kills, stages) as one JSON object to FILE.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    /// Write every sample and decision as JSON lines to FILE (for `resctl replay`).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Metrics outputs.
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// How much the job matters to `resctl daemon` when its slice runs short: at critical,
    /// when no job can shrink further, the lowest priority is frozen (paused) first, and
    /// killed only where the configuration says `last_resort: kill` [default: the
    /// configuration's priority: for the slice, else its top-level one, else 0].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub priority: Option<i32>,
    /// Create the job's cgroup under this cgroup directory (a delegated subtree).
    #[arg(long, value_name = "DIR")]
    pub cgroup_parent: Option<PathBuf>,
    /// Name the job for its history (default: its command line and working folder): a run
    /// starts with the worker count earlier runs of the job learned fits (`resctl history`).
    #[arg(long, value_name = "NAME")]
    pub job_key: Option<String>,
    /// Neither start from nor keep the job's history (also RESCTL_NO_HISTORY=1; 0, no,
    /// false and off leave it on).
    #[arg(
        long,
        env = "RESCTL_NO_HISTORY",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub no_history: bool,
    /// Create no cgroup: watch the job through /proc only.
    #[arg(long)]
    pub monitor_only: bool,
    /// The job: COMMAND [ARGS...] (after `--`).
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// `resctl config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file; errors name FILE:LINE:COLUMN.
    Check {
        /// The file to check.
        file: PathBuf,
    },
    /// Print the effective configuration with every default filled in.
    Show {
        /// Configuration file.
        #[command(flatten)]
        source: ConfigSource,
        /// Show it as it applies to this slice (per-slice overrides merged).
        #[arg(long, value_name = "SLICE")]
        slice: Option<String>,
        /// Print what a job started here now would get instead: its memory budget, the
        /// levels and thread bounds in figures, and where each came from.
        #[arg(long)]
        resolved: bool,
        /// With --resolved: the job's --memory-max (a size, or a percentage of host memory).
        #[arg(long, value_name = "SIZE", requires = "resolved")]
        memory_max: Option<String>,
        /// With --resolved: the job's --cgroup-parent.
        #[arg(long, value_name = "DIR", requires = "resolved")]
        cgroup_parent: Option<PathBuf>,
    },
}

/// `resctl completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `resctl daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// YAML configuration file whose `slices:` section says what to watch.
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        env = "RESCTL_CONFIG",
        default_value = crate::daemon::DEFAULT_DAEMON_CONFIG
    )]
    pub config: PathBuf,
    /// Metrics outputs.
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// Where metrics go (OpenMetrics text; both off by default).
#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// Serve `GET /metrics` on ADDR (HOST:PORT, e.g. 127.0.0.1:9101; port 0 picks one).
    /// Whoever can reach ADDR reads job names and figures: keep it on loopback.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Write the metrics to FILE after every sample, replaced atomically (for
    /// node_exporter's textfile collector: a `*.prom` file in its folder).
    #[arg(long, value_name = "FILE")]
    pub metrics_textfile: Option<PathBuf>,
}

/// `resctl doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `resctl replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Trace file written by `resctl run --record`.
    pub trace: PathBuf,
    /// Print every tick, not only changes.
    #[arg(long)]
    pub all: bool,
}
