//! The control socket's protocol (`RESCTL_SOCKET`), shared by the server
//! ([`super::server`]) and the client ([`super::client`]).
//!
//! JSON lines over a Unix stream socket: one object per line in both directions, every
//! request line gets exactly one reply line, in order. Requests carry an `op`:
//!
//! | request | reply |
//! |---|---|
//! | `{"op":"stage_start","name":"models","workers":4}` | `{"ok":true,"threads":N,"level":"normal","reason":"..."}` |
//! | `{"op":"stage_end","name":"models"}` | `{"ok":true,"stage":{...}}` ([`StageSummary`]) |
//! | `{"op":"recommend","current":4,"context":"dbt models"}` | `{"ok":true,"threads":N,"reason":"..."}` |
//! | `{"op":"status"}` | `{"ok":true,"status":{...}}` ([`StatusSnapshot`]) |
//! | `{"op":"progress","units":10}` | `{"ok":true}` |
//! | `{"op":"subscribe"}` | `{"ok":true,"threads":N}`, then [`Event`] lines |
//! | `{"op":"ceiling","threads":2,"reason":"..."}` (root only: `resctl daemon`) | `{"ok":true}` |
//! | `{"op":"notice","action":"kill","reason":"..."}` (root only: `resctl daemon`) | `{"ok":true}` |
//!
//! Anything malformed gets `{"ok":false,"error":"..."}` and the connection stays usable.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::job_text::JobText;
use crate::policy::LeakRule;
use crate::policy::{Decision, LeakVerdict, Level, MemoryThresholds, PolicyConfig};
use crate::report::stages::{OpenStage, StageSummary};
pub use crate::report::summary::NoticeAction;
use crate::sample::job::JobSample;
use crate::units::{format_elapsed, format_size};

/// Environment variable holding the socket's path in the job's environment.
pub const ENV_SOCKET: &str = "RESCTL_SOCKET";

/// Longest request line accepted, bytes (without the newline).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// A request from the job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// A stage begins (the original's pre-stage check): how many workers should it use?
    StageStart {
        /// The stage's name; stages with different names may overlap.
        name: JobText,
        /// Workers the stage would like; the reply never grants more.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workers: Option<u32>,
    },
    /// A stage ends: its figures (the original's post-stage analysis).
    StageEnd {
        /// The name given at its start.
        name: JobText,
    },
    /// The worker count to use now (the original's `optimize_thread_count`).
    Recommend {
        /// Workers in use now, if the job wants the reply to compare.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        current: Option<u32>,
        /// Free text naming what the count is for, echoed in the reason.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<JobText>,
    },
    /// The whole state (the original's `get_resource_status`).
    Status,
    /// Cumulative work units done so far, for throughput per worker count.
    Progress {
        /// Units done since the job started.
        units: u64,
    },
    /// Push an [`Event`] line whenever the worker count changes, until disconnect.
    Subscribe,
    /// From `resctl daemon` (root only): at most this many workers, because the slice the
    /// job runs in is under pressure; `threads: null` lifts the ceiling.
    Ceiling {
        /// The ceiling, at least 1; `None` lifts it.
        threads: Option<u32>,
        /// Why, in words (logged by the job's resctl, escaped).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// From `resctl daemon` (root only): what it did or is about to do to the job's cgroup
    /// that the job cannot be asked about (`freeze`, `thaw`, `kill`), and why. The job's
    /// resctl logs it at once and, for a kill, says so in its summary.
    Notice {
        /// The action, one word.
        action: NoticeAction,
        /// Why, in words (escaped before it is logged).
        reason: String,
    },
}

/// The file in a run's folder (`/run/resctl/<pid>/`) that registers the job with
/// `resctl daemon`: where the job runs and how much it matters.
pub const REGISTRATION_FILE: &str = "job.json";

/// What a run tells the daemon about its job ([`REGISTRATION_FILE`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The job's pid.
    pub pid: u32,
    /// The job's cgroup folder (`None`: monitor-only, nothing the daemon can freeze).
    pub cgroup: Option<String>,
    /// Higher is more important: the daemon freezes (or, where configured, kills) the
    /// lowest first (`--priority`, else the configuration's `priority:`).
    pub priority: i32,
    /// The job's name (`--job-key`, else its program's file name).
    pub name: String,
}

/// Reply to `stage_start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageStartReply {
    /// Always true.
    pub ok: bool,
    /// Workers to use now.
    pub threads: u32,
    /// The overall pressure level now.
    pub level: Level,
    /// Why that many.
    pub reason: String,
}

/// Reply to `stage_end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageEndReply {
    /// Always true.
    pub ok: bool,
    /// The stage's figures.
    pub stage: StageSummary,
}

/// Reply to `recommend`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecommendReply {
    /// Always true.
    pub ok: bool,
    /// Workers to use now.
    pub threads: u32,
    /// Why that many.
    pub reason: String,
}

/// Reply to `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReply {
    /// Always true.
    pub ok: bool,
    /// The state.
    pub status: StatusSnapshot,
}

/// Reply to `subscribe`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscribeReply {
    /// Always true.
    pub ok: bool,
    /// The worker count in force; events follow when it changes.
    pub threads: u32,
}

/// Reply to `progress`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OkReply {
    /// Always true.
    pub ok: bool,
}

/// Reply to anything that could not be done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// Always false.
    pub ok: bool,
    /// What was wrong, for people.
    pub error: String,
}

impl ErrorReply {
    /// An error reply saying `error`.
    pub fn new(error: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: error.into(),
        }
    }
}

/// A line pushed to subscribers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The worker count changed.
    Threads {
        /// Workers from now on.
        threads: u32,
        /// Workers before.
        previous: u32,
        /// Why.
        reason: String,
    },
}

/// One JSON line (without the newline) for `value`; a value that cannot be serialised
/// (never expected) becomes an error reply saying so.
pub fn to_line<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|error| {
        // ErrorReply holds only a bool and a string: serialising it cannot fail, but
        // spell it out by hand so this path has no second failure.
        format!(
            "{{\"ok\":false,\"error\":{}}}",
            serde_json::Value::String(format!("cannot encode the reply: {error}"))
        )
    })
}

/// The CPU thresholds, percent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CpuThresholds {
    /// Level "moderate".
    pub moderate: f64,
    /// Level "high".
    pub high: f64,
    /// Level "critical".
    pub critical: f64,
}

/// The state the status reply shows, built by the run loop every tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    /// Time since the job started, seconds.
    pub at_secs: f64,
    /// Overall level: the maximum of the memory, CPU and PSI levels.
    pub level: Level,
    /// Level of the job's memory.
    pub memory_level: Level,
    /// Level of the job's CPU use.
    pub cpu_level: Level,
    /// Highest level of the configured PSI signals.
    pub psi_level: Level,
    /// The job's memory, bytes (its cgroup's charge less page cache, else its processes' RSS).
    pub memory_bytes: u64,
    /// The job's hard memory limit, bytes, if any.
    pub memory_limit: Option<u64>,
    /// Memory thresholds, bytes.
    pub thresholds: MemoryThresholds,
    /// CPU use over the last interval, percent of the CPUs the job may use.
    pub cpu_percent: Option<f64>,
    /// CPU thresholds, percent.
    pub cpu_thresholds: CpuThresholds,
    /// CPU time the job used so far, seconds.
    pub cpu_secs: f64,
    /// Worker count recommended now.
    pub threads: u32,
    /// Fewest workers resctl recommends.
    pub min_threads: u32,
    /// Most workers resctl recommends.
    pub max_threads: u32,
    /// Why that worker count.
    pub reason: String,
    /// The memory trend over the leak window, once there are enough samples.
    pub leak: Option<LeakVerdict>,
    /// Stages started and not ended yet (filled in by the server).
    pub stages_open: Vec<OpenStage>,
    /// What to do about the state, for people; empty when nothing needs doing.
    pub recommendations: Vec<String>,
    /// The leak rule for per-stage trends (not sent to clients).
    #[serde(skip)]
    pub leak_rule: LeakRule,
}

impl StatusSnapshot {
    /// The snapshot of one tick: the policy's `decision` on `sample`, under `config`, with
    /// the job's CPU use over the last interval and its CPU time so far (both as the
    /// Observer computed them).
    pub fn new(
        decision: &Decision,
        sample: &JobSample,
        config: &PolicyConfig,
        cpu_percent: Option<f64>,
        cpu_secs: f64,
    ) -> Self {
        let cgroup = sample.cgroup.as_ref();
        let mut snapshot = Self {
            at_secs: decision.at.as_secs_f64(),
            level: decision.level,
            memory_level: decision.memory_level,
            cpu_level: decision.cpu_level,
            psi_level: decision.psi_level,
            memory_bytes: sample.memory_bytes(),
            memory_limit: config
                .memory_limit
                .or_else(|| cgroup.and_then(|cgroup| cgroup.memory_max)),
            thresholds: config.memory_thresholds(),
            cpu_percent,
            cpu_thresholds: CpuThresholds {
                moderate: config.cpu_moderate,
                high: config.cpu_high,
                critical: config.cpu_critical,
            },
            cpu_secs,
            threads: decision.threads,
            min_threads: config.min_threads,
            max_threads: config.max_threads,
            reason: decision.reason.clone(),
            leak: decision.leak.clone(),
            stages_open: Vec::new(),
            recommendations: Vec::new(),
            leak_rule: LeakRule::from_config(config),
        };
        snapshot.recommendations = snapshot.recommend();
        snapshot
    }

    /// The job's cumulative CPU time.
    pub fn cpu_time(&self) -> Duration {
        Duration::try_from_secs_f64(self.cpu_secs).unwrap_or_default()
    }

    /// The original's "actionable recommendations" for this state.
    pub fn recommend(&self) -> Vec<String> {
        let mut advice = Vec::new();
        let threads = self.threads;
        let workers = |count: u32| format!("{count} worker{}", if count == 1 { "" } else { "s" });
        if self.memory_level > Level::Normal {
            let threshold = match self.memory_level {
                Level::Critical => self.thresholds.critical,
                Level::High => self.thresholds.high,
                _ => self.thresholds.moderate,
            };
            let action = if self.memory_level == Level::Critical {
                format!("run sequentially ({})", workers(threads))
            } else {
                format!("run at most {}", workers(threads))
            };
            advice.push(format!(
                "memory at {} ({} ≥ {}): {action}",
                self.memory_level,
                format_size(self.memory_bytes),
                format_size(threshold)
            ));
        }
        if self.psi_level > Level::Normal {
            advice.push(format!(
                "stalls (PSI) at {}: run at most {}",
                self.psi_level,
                workers(threads)
            ));
        }
        if let Some(leak) = self.leak.as_ref().filter(|leak| leak.suspected) {
            let mut line = format!("leak suspected: {:+.1} MiB/min", leak.mb_per_min);
            if let Some(left) = leak.time_to_limit {
                let limit = self.memory_limit.unwrap_or(self.thresholds.critical);
                line.push_str(&format!(
                    ", {} reached in {}",
                    format_size(limit),
                    format_elapsed(left)
                ));
            }
            line.push_str("; end or restart the leaking stage");
            advice.push(line);
        }
        if self.cpu_level >= Level::High {
            let percent = self.cpu_percent.unwrap_or(self.cpu_thresholds.high);
            advice.push(format!(
                "CPU saturated ({percent:.0}% ≥ {:.0}%): more workers will not help",
                self.cpu_thresholds.high
            ));
        }
        advice
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::policy::defaults::MIB;

    #[test]
    fn requests_parse_from_the_documented_lines() {
        let cases = [
            (
                r#"{"op":"stage_start","name":"models","workers":4}"#,
                Request::StageStart {
                    name: "models".into(),
                    workers: Some(4),
                },
            ),
            (
                r#"{"op":"stage_start","name":"models"}"#,
                Request::StageStart {
                    name: "models".into(),
                    workers: None,
                },
            ),
            (
                r#"{"op":"stage_end","name":"models"}"#,
                Request::StageEnd {
                    name: "models".into(),
                },
            ),
            (
                r#"{"op":"recommend","current":4,"context":"dbt models"}"#,
                Request::Recommend {
                    current: Some(4),
                    context: Some("dbt models".into()),
                },
            ),
            (r#"{"op":"status"}"#, Request::Status),
            (
                r#"{"op":"progress","units":10}"#,
                Request::Progress { units: 10 },
            ),
            (r#"{"op":"subscribe"}"#, Request::Subscribe),
        ];
        for (line, expected) in cases {
            let parsed: Request = serde_json::from_str(line).unwrap();
            assert_eq!(parsed, expected, "{line}");
            let back: Request = serde_json::from_str(&to_line(&parsed)).unwrap();
            assert_eq!(back, expected);
        }
    }

    #[test]
    fn malformed_requests_say_what_is_wrong() {
        let error = |line: &str| {
            serde_json::from_str::<Request>(line)
                .unwrap_err()
                .to_string()
        };
        assert!(error(r#"{"op":"explode"}"#).contains("unknown variant `explode`"));
        assert!(error(r#"{"op":"stage_end"}"#).contains("missing field `name`"));
        assert!(error(r#"{"name":"x"}"#).contains("missing field `op`"));
        assert!(error(r#"{"op":"progress","units":-1}"#).contains("invalid value"));
    }

    #[test]
    fn events_and_errors_have_the_documented_shape() {
        let event = Event::Threads {
            threads: 2,
            previous: 4,
            reason: "memory high".into(),
        };
        assert_eq!(
            to_line(&event),
            r#"{"event":"threads","threads":2,"previous":4,"reason":"memory high"}"#
        );
        assert_eq!(
            to_line(&ErrorReply::new("bad")),
            r#"{"ok":false,"error":"bad"}"#
        );
    }

    fn decision(level: Level) -> Decision {
        Decision {
            at: Duration::from_secs(90),
            level,
            memory_level: level,
            cpu_level: Level::Normal,
            psi_level: Level::Normal,
            threads: 4,
            previous_threads: 6,
            reason: "memory 3.1G ≥ high 3.0G for 2s: 6 → 4 threads".into(),
            reclaim: None,
            leak: None,
        }
    }

    #[test]
    fn snapshot_takes_figures_from_decision_sample_and_config() {
        let sample: JobSample = serde_json::from_value(serde_json::json!({
            "at": {"secs": 90, "nanos": 0},
            "cgroup": null,
            "processes": [],
            "host": null
        }))
        .unwrap();
        let config = PolicyConfig {
            memory_limit: Some(4096 * MIB),
            ..PolicyConfig::default()
        };
        let snapshot =
            StatusSnapshot::new(&decision(Level::High), &sample, &config, Some(40.0), 0.0);
        assert_eq!(snapshot.at_secs, 90.0);
        assert_eq!(snapshot.level, Level::High);
        assert_eq!(snapshot.threads, 4);
        assert_eq!(snapshot.memory_limit, Some(4096 * MIB));
        assert_eq!(snapshot.thresholds.high, 3000 * MIB);
        assert_eq!(snapshot.cpu_percent, Some(40.0));
        assert_eq!(snapshot.max_threads, 8);
        assert_eq!(
            snapshot.recommendations,
            vec!["memory at high (0B ≥ 2.9G): run at most 4 workers".to_string()]
        );
        let json = serde_json::to_value(&snapshot).unwrap();
        assert!(json.get("leak_rule").is_none());
        assert_eq!(json["leak"], serde_json::Value::Null);
        assert_eq!(json["thresholds"]["critical"], 3500 * MIB);
    }

    #[test]
    fn recommendations_cover_memory_leak_and_cpu() {
        let sample: JobSample = serde_json::from_value(serde_json::json!({
            "at": {"secs": 1, "nanos": 0}, "cgroup": null, "processes": [], "host": null
        }))
        .unwrap();
        let mut snapshot = StatusSnapshot::new(
            &decision(Level::Critical),
            &sample,
            &PolicyConfig::default(),
            Some(97.0),
            0.0,
        );
        snapshot.threads = 1;
        snapshot.memory_bytes = 3600 * MIB;
        snapshot.cpu_level = Level::Critical;
        snapshot.leak = Some(LeakVerdict {
            slope_bytes_per_sec: 1.0,
            mb_per_min: 60.0,
            r_squared: 0.99,
            window: Duration::from_secs(600),
            samples: 600,
            time_to_limit: Some(Duration::from_secs(330)),
            suspected: true,
            message: String::new(),
        });
        assert_eq!(
            snapshot.recommend(),
            vec![
                "memory at critical (3.5G ≥ 3.4G): run sequentially (1 worker)".to_string(),
                "leak suspected: +60.0 MiB/min, 3.4G reached in 5m30s; end or restart the \
                 leaking stage"
                    .to_string(),
                "CPU saturated (97% ≥ 85%): more workers will not help".to_string(),
            ]
        );
    }
}
