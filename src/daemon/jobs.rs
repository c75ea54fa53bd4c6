//! What the daemon does to the jobs of a slice under pressure — pure code over what the
//! jobs' sockets said, so it is tested without a kernel.
//!
//! - **Shrink**: while the slice is at high or above, one job at a time gets a ceiling one
//!   worker lower (at critical: half its count) — the fastest-growing job when one grows
//!   faster than [`GROWING`], else the largest. A job already at its minimum is skipped.
//! - **Freeze**: at critical, when no job can shrink further, the lowest-priority job is
//!   frozen (`cgroup.freeze`: paused, not killed) — never the last one running, whose
//!   memory could then never come back.
//! - **Thaw**: below high, the highest-priority frozen job is thawed; so is it, whatever the
//!   level, once no job of the slice is left running.
//! - **Grow back**: after [`CALM_BEFORE_GROWING`] at normal, a capped job's ceiling rises by
//!   one, and is lifted once it reaches the job's maximum.
//!
//! One action per slice every [`STEP`], so each can show its effect before the next.

use std::time::Duration;

use crate::policy::Level;
use crate::units::format_size;

/// Time between two actions on the jobs of one slice.
pub const STEP: Duration = Duration::from_secs(3);
/// Growth faster than this (bytes per second) makes a job "fastest-growing".
pub const GROWING: f64 = 1024.0 * 1024.0;
/// Time at normal before ceilings are raised again.
pub const CALM_BEFORE_GROWING: Duration = Duration::from_secs(10);

/// One job of the slice, as its socket last answered.
#[derive(Debug, Clone, PartialEq)]
pub struct JobState {
    /// resctl's pid (the job's run folder).
    pub pid: u32,
    /// The job's name, for the log.
    pub name: String,
    /// Memory less page cache, bytes.
    pub memory: u64,
    /// Memory trend, bytes per second.
    pub slope: Option<f64>,
    /// Workers now.
    pub threads: u32,
    /// The job's fewest and most workers.
    pub min_threads: u32,
    /// See `min_threads`.
    pub max_threads: u32,
    /// Higher is more important (`resctl run --priority`).
    pub priority: i32,
    /// The daemon froze it.
    pub frozen: bool,
    /// The ceiling the daemon set, if any.
    pub ceiling: Option<u32>,
}

/// What to do to one job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobAction {
    /// Set (`Some`) or lift (`None`) the job's ceiling.
    Ceiling {
        /// The job's resctl pid.
        pid: u32,
        /// The new ceiling.
        threads: Option<u32>,
        /// Why.
        reason: String,
    },
    /// Freeze the job's cgroup.
    Freeze {
        /// The job's resctl pid.
        pid: u32,
        /// Why.
        reason: String,
    },
    /// Thaw it.
    Thaw {
        /// The job's resctl pid.
        pid: u32,
        /// Why.
        reason: String,
    },
}

impl JobAction {
    /// The `RESCTL_ACTION` of the action.
    pub fn name(&self) -> &'static str {
        match self {
            JobAction::Ceiling { threads: None, .. } => "ceiling-lifted",
            JobAction::Ceiling { .. } => "ceiling",
            JobAction::Freeze { .. } => "freeze",
            JobAction::Thaw { .. } => "thaw",
        }
    }

    /// The job acted on.
    pub fn pid(&self) -> u32 {
        match self {
            JobAction::Ceiling { pid, .. }
            | JobAction::Freeze { pid, .. }
            | JobAction::Thaw { pid, .. } => *pid,
        }
    }

    /// Why, in words.
    pub fn reason(&self) -> &str {
        match self {
            JobAction::Ceiling { reason, .. }
            | JobAction::Freeze { reason, .. }
            | JobAction::Thaw { reason, .. } => reason,
        }
    }
}

/// The steering of one slice's jobs across ticks.
#[derive(Debug, Clone, Default)]
pub struct JobSteering {
    last_action: Option<Duration>,
    calm_since: Option<Duration>,
}

impl JobSteering {
    /// At `at`, with the slice `slice` at `level`: at most one action on `jobs`.
    pub fn plan(
        &mut self,
        at: Duration,
        slice: &str,
        level: Level,
        jobs: &[JobState],
    ) -> Option<JobAction> {
        if level == Level::Normal {
            self.calm_since.get_or_insert(at);
        } else {
            self.calm_since = None;
        }
        if self
            .last_action
            .is_some_and(|last| at.saturating_sub(last) < STEP)
        {
            return None;
        }
        let all_frozen = !jobs.is_empty() && jobs.iter().all(|job| job.frozen);
        let action = if all_frozen {
            // The jobs that were to free memory have ended: pausing on would pause for ever.
            thaw(slice, jobs, "has no other job running")
        } else if level >= Level::High {
            shrink(slice, level, jobs).or_else(|| {
                (level == Level::Critical)
                    .then(|| freeze(slice, jobs))
                    .flatten()
            })
        } else {
            thaw(slice, jobs, "below high again").or_else(|| {
                let calm = self
                    .calm_since
                    .is_some_and(|since| at.saturating_sub(since) >= CALM_BEFORE_GROWING);
                calm.then(|| grow(slice, jobs)).flatten()
            })
        };
        if action.is_some() {
            self.last_action = Some(at);
        }
        action
    }
}

fn shrink(slice: &str, level: Level, jobs: &[JobState]) -> Option<JobAction> {
    let candidates: Vec<&JobState> = jobs
        .iter()
        .filter(|job| !job.frozen && job.threads > job.min_threads)
        .collect();
    let growing = candidates
        .iter()
        .filter(|job| job.slope.is_some_and(|slope| slope > GROWING))
        .max_by(|a, b| {
            a.slope
                .partial_cmp(&b.slope)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    let (job, why) = match growing {
        Some(job) => (
            *job,
            format!(
                "the fastest-growing job (+{}/min)",
                format_size((job.slope.unwrap_or(0.0) * 60.0) as u64)
            ),
        ),
        None => {
            let job = candidates.iter().max_by_key(|job| (job.memory, job.pid))?;
            (
                *job,
                format!("the largest job ({})", format_size(job.memory)),
            )
        }
    };
    let threads = if level == Level::Critical {
        (job.threads / 2).max(job.min_threads)
    } else {
        job.threads - 1
    };
    Some(JobAction::Ceiling {
        pid: job.pid,
        threads: Some(threads),
        reason: format!(
            "slice {slice} at {level}: {} is {why}, {} -> {threads} threads",
            job.name, job.threads
        ),
    })
}

fn freeze(slice: &str, jobs: &[JobState]) -> Option<JobAction> {
    let running: Vec<&JobState> = jobs.iter().filter(|job| !job.frozen).collect();
    if running.len() < 2 {
        return None;
    }
    let job = running
        .iter()
        .min_by_key(|job| (job.priority, std::cmp::Reverse(job.memory)))?;
    Some(JobAction::Freeze {
        pid: job.pid,
        reason: format!(
            "slice {slice} at critical and no job can shrink further: {} (priority {}, {}) \
             is paused until memory returns",
            job.name,
            job.priority,
            format_size(job.memory)
        ),
    })
}

fn thaw(slice: &str, jobs: &[JobState], why: &str) -> Option<JobAction> {
    let job = jobs
        .iter()
        .filter(|job| job.frozen)
        .max_by_key(|job| (job.priority, std::cmp::Reverse(job.memory)))?;
    Some(JobAction::Thaw {
        pid: job.pid,
        reason: format!(
            "slice {slice} {why}: {} (priority {}) resumes",
            job.name, job.priority
        ),
    })
}

fn grow(slice: &str, jobs: &[JobState]) -> Option<JobAction> {
    let job = jobs
        .iter()
        .filter(|job| !job.frozen && job.ceiling.is_some())
        .max_by_key(|job| (job.priority, std::cmp::Reverse(job.memory)))?;
    let ceiling = job.ceiling.unwrap_or(job.max_threads) + 1;
    let threads = (ceiling < job.max_threads).then_some(ceiling);
    Some(JobAction::Ceiling {
        pid: job.pid,
        threads,
        reason: match threads {
            Some(threads) => format!(
                "slice {slice} normal for {}s: {} may use up to {threads} threads again",
                CALM_BEFORE_GROWING.as_secs(),
                job.name
            ),
            None => format!(
                "slice {slice} normal for {}s: {} has no ceiling any more",
                CALM_BEFORE_GROWING.as_secs(),
                job.name
            ),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn job(pid: u32, memory_mib: u64, threads: u32, priority: i32) -> JobState {
        JobState {
            pid,
            name: format!("job{pid}"),
            memory: memory_mib * MIB,
            slope: None,
            threads,
            min_threads: 1,
            max_threads: 8,
            priority,
            frozen: false,
            ceiling: None,
        }
    }

    fn secs(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    #[test]
    fn at_high_the_largest_job_loses_one_worker_and_at_critical_half() {
        let mut steering = JobSteering::default();
        let jobs = [job(1, 300, 4, 0), job(2, 500, 4, 0)];
        let action = steering.plan(secs(0), "etl.slice", Level::High, &jobs);
        assert_eq!(
            action,
            Some(JobAction::Ceiling {
                pid: 2,
                threads: Some(3),
                reason: "slice etl.slice at high: job2 is the largest job (500M), 4 -> 3 threads"
                    .to_owned()
            })
        );
        // One action per step.
        assert_eq!(
            steering.plan(secs(1), "etl.slice", Level::High, &jobs),
            None
        );
        let action = steering.plan(secs(3), "etl.slice", Level::Critical, &jobs);
        assert!(matches!(
            action,
            Some(JobAction::Ceiling {
                pid: 2,
                threads: Some(2),
                ..
            })
        ));
    }

    #[test]
    fn a_fast_growing_job_is_shrunk_before_a_larger_steady_one() {
        let mut growing = job(1, 100, 4, 0);
        growing.slope = Some(5.0 * MIB as f64);
        let jobs = [growing, job(2, 900, 4, 0)];
        let action = JobSteering::default().plan(secs(0), "s", Level::High, &jobs);
        let action = action.unwrap();
        assert_eq!(action.pid(), 1);
        assert!(
            action.reason().contains("fastest-growing job (+300M/min)"),
            "{}",
            action.reason()
        );
    }

    #[test]
    fn at_critical_with_nothing_left_to_shrink_the_lowest_priority_job_is_frozen_never_the_last() {
        let jobs = [job(1, 300, 1, 5), job(2, 200, 1, 0), job(3, 400, 1, 0)];
        let action = JobSteering::default()
            .plan(secs(0), "s", Level::Critical, &jobs)
            .unwrap();
        // Priority 0 twice: the larger of the two.
        assert_eq!((action.name(), action.pid()), ("freeze", 3));
        // High (not critical) never freezes.
        assert_eq!(
            JobSteering::default().plan(secs(0), "s", Level::High, &jobs),
            None
        );
        // The last job running is not frozen.
        let mut alone = jobs.clone();
        alone[0].frozen = true;
        alone[1].frozen = true;
        assert_eq!(
            JobSteering::default().plan(secs(0), "s", Level::Critical, &alone),
            None
        );
        // Once the running one has ended, a frozen job thaws even at critical.
        let action = JobSteering::default()
            .plan(secs(0), "s", Level::Critical, &alone[..2])
            .unwrap();
        assert_eq!((action.name(), action.pid()), ("thaw", 1));
        assert!(
            action.reason().contains("has no other job running"),
            "{}",
            action.reason()
        );
    }

    #[test]
    fn below_high_the_most_important_frozen_job_thaws_first_then_ceilings_rise_after_calm() {
        let mut steering = JobSteering::default();
        let mut jobs = [job(1, 300, 2, 5), job(2, 200, 2, 9), job(3, 100, 2, 0)];
        jobs[0].frozen = true;
        jobs[1].frozen = true;
        jobs[2].ceiling = Some(2);
        let action = steering.plan(secs(0), "s", Level::Moderate, &jobs).unwrap();
        assert_eq!((action.name(), action.pid()), ("thaw", 2));
        jobs[0].frozen = false;
        jobs[1].frozen = false;
        // Normal, but not for long enough yet.
        assert_eq!(steering.plan(secs(5), "s", Level::Normal, &jobs), None);
        let action = steering.plan(secs(16), "s", Level::Normal, &jobs).unwrap();
        assert_eq!(
            action,
            JobAction::Ceiling {
                pid: 3,
                threads: Some(3),
                reason: "slice s normal for 10s: job3 may use up to 3 threads again".to_owned()
            }
        );
        jobs[2].ceiling = Some(7);
        let action = steering.plan(secs(20), "s", Level::Normal, &jobs).unwrap();
        assert_eq!(action.name(), "ceiling-lifted");
        // Pressure again resets the calm.
        jobs[2].ceiling = Some(3);
        assert!(steering
            .plan(secs(23), "s", Level::Moderate, &jobs)
            .is_none());
        assert!(steering.plan(secs(26), "s", Level::Normal, &jobs).is_none());
    }
}
