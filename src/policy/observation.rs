//! What the policy is given each tick ([`Observation`]) and what it answers ([`Decision`],
//! [`LeakVerdict`]). All three serialise as one JSON object each, with durations as
//! seconds (a float), so a trace is one observation per line.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::level::Level;

/// One tick's view of the job, built by the run loop from cgroup and /proc samples.
///
/// Optional fields are left out of the JSON when `None` and may be absent in traces.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Time since the job started (seconds in JSON). Time never runs backwards for the
    /// policy: an earlier value than the previous observation's counts as simultaneous.
    #[serde(with = "crate::units::serde_secs")]
    pub at: Duration,
    /// The job's memory in bytes: the cgroup's charge less its page cache
    /// ([`crate::sample::job::JobSample::memory_bytes`]), or the sum of its processes' RSS.
    pub memory_bytes: u64,
    /// The job's highest memory since the previous observation, in bytes, when the cgroup's
    /// high-water mark tells it (v1: reset every tick; v2: when memory.peak rose), less the
    /// larger page cache of the interval's two ends: peaks between two samples, which
    /// `memory_bytes` misses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_peak_since_last: Option<u64>,
    /// Job CPU use over the last interval, percent of the CPUs available to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    /// Memory PSI "some" avg10 of the job's cgroup, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_psi_some_avg10: Option<f64>,
    /// Memory PSI "full" avg10 of the job's cgroup, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_psi_full_avg10: Option<f64>,
    /// CPU PSI "some" avg10 of the job's cgroup, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_psi_some_avg10: Option<f64>,
    /// cpu.stat `nr_throttled` grew during this tick (the job hit its CPU quota).
    #[serde(default)]
    pub cpu_throttled: bool,
    /// Host run queue (runnable tasks other than resctl's sampler) divided by the number of
    /// cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runnable_per_core: Option<f64>,
    /// Cumulative work units the job reported so far, if it reports any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_units: Option<u64>,
    /// The job's memory limit read this tick, bytes: the tightest `memory.max` on its
    /// cgroup and the cgroups above it, [`NO_LIMIT`] when none applies (or the cgroup is
    /// gone); `None` when it was not read (monitor-only, older traces). A new value moves
    /// the levels that are shares of the limit ([`super::PolicyConfig::follow_limit`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<u64>,
    /// A ceiling on the worker count set from outside the job — `resctl daemon` shrinking
    /// the jobs of a slice under pressure — in force this tick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<Ceiling>,
}

/// A ceiling on a job's worker count from outside it, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ceiling {
    /// Most workers (the job's minimum still holds).
    pub threads: u32,
    /// Who set it and why, in words.
    pub reason: String,
}

pub use crate::units::NO_LIMIT;

impl Observation {
    /// The job's highest memory this observation knows of: the sample, or the peak since
    /// the previous observation when it is higher.
    pub fn highest_memory(&self) -> u64 {
        self.memory_bytes
            .max(self.memory_peak_since_last.unwrap_or(0))
    }
}

/// The policy's answer to one observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The observation's time (seconds in JSON).
    #[serde(with = "crate::units::serde_secs")]
    pub at: Duration,
    /// Overall level: the maximum of the memory, CPU and PSI levels.
    pub level: Level,
    /// Level of the job's memory in bytes.
    pub memory_level: Level,
    /// Level of the job's CPU use.
    pub cpu_level: Level,
    /// Highest level of the configured PSI signals.
    pub psi_level: Level,
    /// Worker count from now on.
    pub threads: u32,
    /// Worker count before this decision; the count changed iff it differs from `threads`.
    pub previous_threads: u32,
    /// Why, for people: "memory 3.1G ≥ high 3.0G for 2s: 6 → 4 threads". Never empty.
    pub reason: String,
    /// Bytes to reclaim now (memory crossed the cleanup level going up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaim: Option<u64>,
    /// The memory trend over the leak window, once there are enough samples to fit one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leak: Option<LeakVerdict>,
}

impl Decision {
    /// Whether this decision changed the worker count.
    pub fn changed(&self) -> bool {
        self.threads != self.previous_threads
    }
}

/// The memory trend: a least-squares line through the memory samples of the leak window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeakVerdict {
    /// Slope of the fitted line, bytes per second (negative when memory falls).
    pub slope_bytes_per_sec: f64,
    /// The same slope in MiB (2²⁰ bytes, the original's "MB") per minute.
    pub mb_per_min: f64,
    /// Goodness of fit, 0..=1: near 1 for steady growth, at most 0.75 for one step change.
    pub r_squared: f64,
    /// Time span the samples cover (seconds in JSON); at most the configured window.
    #[serde(with = "crate::units::serde_secs")]
    pub window: Duration,
    /// Number of samples in the fit.
    pub samples: usize,
    /// Time until memory reaches the job's limit (else the critical level) at this slope;
    /// `None` when memory is not growing.
    #[serde(
        default,
        with = "crate::units::serde_secs::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub time_to_limit: Option<Duration>,
    /// Growth over the window ≥ the leak growth, fit ≥ the minimum, and at least half the
    /// window covered.
    pub suspected: bool,
    /// One line for people, saying what was found and, if no leak, which test failed.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observation_round_trips_as_one_json_line() {
        let observation = Observation {
            at: Duration::from_millis(12_300),
            memory_bytes: 3_221_225_472,
            cpu_percent: Some(87.5),
            cpu_throttled: true,
            progress_units: Some(42),
            ..Observation::default()
        };
        let line = serde_json::to_string(&observation).unwrap();
        assert_eq!(
            line,
            r#"{"at":12.3,"memory_bytes":3221225472,"cpu_percent":87.5,"cpu_throttled":true,"progress_units":42}"#
        );
        let back: Observation = serde_json::from_str(&line).unwrap();
        assert_eq!(back, observation);
    }

    #[test]
    fn sub_second_times_survive_the_float() {
        for millis in (0..100_000).step_by(100) {
            let at = Duration::from_millis(millis);
            let line = serde_json::to_string(&Observation {
                at,
                ..Observation::default()
            })
            .unwrap();
            let back: Observation = serde_json::from_str(&line).unwrap();
            assert_eq!(back.at, at, "{line}");
        }
    }

    #[test]
    fn minimal_observation_needs_only_time_and_memory() {
        let parsed: Observation = serde_json::from_str(r#"{"at":1,"memory_bytes":5}"#).unwrap();
        assert_eq!(parsed.at, Duration::from_secs(1));
        assert_eq!(parsed.memory_bytes, 5);
        assert_eq!(parsed.cpu_percent, None);
        assert!(!parsed.cpu_throttled);
    }

    #[test]
    fn negative_time_is_an_error_naming_the_value() {
        let error = serde_json::from_str::<Observation>(r#"{"at":-1,"memory_bytes":5}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("invalid duration -1 s"), "{error}");
    }
}
