//! What the daemon does to the jobs of a slice under pressure — pure code over what the
//! jobs' sockets said, so it is tested without a kernel.
//!
//! - **Shrink**: while the slice is at high or above, one job at a time gets a ceiling one
//!   worker lower (at critical: half its count) — the fastest-growing job when one grows
//!   faster than [`GROWING`], else the largest. A job already at its minimum is skipped.
//! - **Freeze**: at critical, when no job can shrink further, the lowest-priority job is
//!   frozen (`cgroup.freeze`: paused, not killed) — never the last one running, whose
//!   memory could then never come back.
//! - **Kill**, only where the slice's configuration says `last_resort: kill`
//!   ([`JobSteering::new`] with a `kill_after`; without one the steering never kills): at
//!   critical, when no job can shrink further, the lowest-priority *frozen* job is killed
//!   (`cgroup.kill`) once the slice has stayed at critical for `kill_after` with it frozen.
//!   Freezing comes first because it can be undone: the pressure often passes (another job
//!   ends) and the job resumes with nothing lost; but a frozen job keeps its memory, so when
//!   critical lasts, killing it is what gives that memory back. The clock starts at the
//!   latest of the job's freeze, the slice's entry into critical (leaving critical, even for
//!   high, starts it again) and the slice's previous kill — so one kill can show its effect
//!   before the next. Never the last job: another job of the slice must be running. A due
//!   kill comes before freezing another job; shrinking comes before both.
//! - **Thaw**: below high, the highest-priority frozen job is thawed; so is it, whatever the
//!   level, once no job of the slice is left running.
//! - **Grow back**: after [`CALM_BEFORE_GROWING`] at normal, a capped job's ceiling rises by
//!   one, and is lifted once it reaches the job's maximum.
//!
//! One action per slice every [`STEP`], so each can show its effect before the next.

use std::time::Duration;

use crate::policy::Level;
use crate::units::{format_elapsed, format_size};

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
    /// Higher is more important (`resctl run --priority`, else the configuration's).
    pub priority: i32,
    /// When the daemon froze it (the steering's clock); `None`: not frozen.
    pub frozen_at: Option<Duration>,
    /// The ceiling the daemon set, if any.
    pub ceiling: Option<u32>,
}

impl JobState {
    /// Whether the daemon froze it.
    pub fn frozen(&self) -> bool {
        self.frozen_at.is_some()
    }
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
    /// Kill every process of the job's cgroup (only with `last_resort: kill`).
    Kill {
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
            JobAction::Kill { .. } => "kill",
        }
    }

    /// The job acted on.
    pub fn pid(&self) -> u32 {
        match self {
            JobAction::Ceiling { pid, .. }
            | JobAction::Freeze { pid, .. }
            | JobAction::Thaw { pid, .. }
            | JobAction::Kill { pid, .. } => *pid,
        }
    }

    /// Why, in words.
    pub fn reason(&self) -> &str {
        match self {
            JobAction::Ceiling { reason, .. }
            | JobAction::Freeze { reason, .. }
            | JobAction::Thaw { reason, .. }
            | JobAction::Kill { reason, .. } => reason,
        }
    }
}

/// The steering of one slice's jobs across ticks. The default never kills.
#[derive(Debug, Clone, Default)]
pub struct JobSteering {
    /// `Some`: `last_resort: kill`, after this long at critical with the job frozen.
    kill_after: Option<Duration>,
    last_action: Option<Duration>,
    calm_since: Option<Duration>,
    critical_since: Option<Duration>,
    last_kill: Option<Duration>,
}

impl JobSteering {
    /// The steering of a slice whose last resort is to freeze (`kill_after: None`: it never
    /// kills) or to kill a job frozen for `kill_after` at critical.
    pub fn new(kill_after: Option<Duration>) -> JobSteering {
        JobSteering {
            kill_after,
            ..JobSteering::default()
        }
    }

    /// The slice's last resort changed (a reload); what was learned is kept.
    pub fn set_kill_after(&mut self, kill_after: Option<Duration>) {
        self.kill_after = kill_after;
    }

    /// `Some`: jobs frozen this long at critical are killed; `None`: never.
    pub fn kill_after(&self) -> Option<Duration> {
        self.kill_after
    }

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
        if level == Level::Critical {
            self.critical_since.get_or_insert(at);
        } else {
            self.critical_since = None;
        }
        if self
            .last_action
            .is_some_and(|last| at.saturating_sub(last) < STEP)
        {
            return None;
        }
        let all_frozen = !jobs.is_empty() && jobs.iter().all(JobState::frozen);
        let action = if all_frozen {
            // The jobs that were to free memory have ended: pausing on would pause for ever.
            thaw(slice, jobs, "has no other job running")
        } else if level >= Level::High {
            shrink(slice, level, jobs).or_else(|| {
                (level == Level::Critical)
                    .then(|| self.kill(at, slice, jobs).or_else(|| freeze(slice, jobs)))
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
        if let Some(action) = &action {
            self.last_action = Some(at);
            if matches!(action, JobAction::Kill { .. }) {
                // Also when the kill then fails: it is tried again after kill_after.
                self.last_kill = Some(at);
            }
        }
        action
    }

    /// With `last_resort: kill`, at critical: the lowest-priority frozen job, once the slice
    /// has been at critical for `kill_after` with it frozen and since the last kill.
    fn kill(&self, at: Duration, slice: &str, jobs: &[JobState]) -> Option<JobAction> {
        let after = self.kill_after?;
        let critical_since = self.critical_since?;
        // Another job is running: `plan` thaws when all are frozen.
        let job = jobs
            .iter()
            .filter(|job| job.frozen())
            .min_by_key(|job| (job.priority, std::cmp::Reverse(job.memory)))?;
        let since = job
            .frozen_at
            .unwrap_or_default()
            .max(critical_since)
            .max(self.last_kill.unwrap_or_default());
        if at.saturating_sub(since) < after {
            return None;
        }
        Some(JobAction::Kill {
            pid: job.pid,
            reason: format!(
                "slice {slice} stayed at critical for {} with {} (priority {}, {}) frozen and no \
                 job can shrink further: killed (last_resort: kill)",
                format_elapsed(at.saturating_sub(since)),
                job.name,
                job.priority,
                format_size(job.memory)
            ),
        })
    }
}

fn shrink(slice: &str, level: Level, jobs: &[JobState]) -> Option<JobAction> {
    let candidates: Vec<&JobState> = jobs
        .iter()
        .filter(|job| !job.frozen() && job.threads > job.min_threads)
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
    let running: Vec<&JobState> = jobs.iter().filter(|job| !job.frozen()).collect();
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
        .filter(|job| job.frozen())
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
        .filter(|job| !job.frozen() && job.ceiling.is_some())
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
            frozen_at: None,
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
        alone[0].frozen_at = Some(secs(0));
        alone[1].frozen_at = Some(secs(0));
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
        jobs[0].frozen_at = Some(secs(0));
        jobs[1].frozen_at = Some(secs(0));
        jobs[2].ceiling = Some(2);
        let action = steering.plan(secs(0), "s", Level::Moderate, &jobs).unwrap();
        assert_eq!((action.name(), action.pid()), ("thaw", 2));
        jobs[0].frozen_at = None;
        jobs[1].frozen_at = None;
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

    /// Ticks `steering` once a second over `seconds` at `level(t)`, applying each action to
    /// `jobs` as the daemon does (a freeze sets `frozen_at`, a thaw clears it, a kill
    /// removes the job, a ceiling sets it): the actions as (second, name, pid).
    fn drive(
        steering: &mut JobSteering,
        jobs: &mut Vec<JobState>,
        seconds: std::ops::Range<u64>,
        level: impl Fn(u64) -> Level,
    ) -> Vec<(u64, &'static str, u32)> {
        let mut done = Vec::new();
        for second in seconds {
            let at = secs(second);
            let Some(action) = steering.plan(at, "s", level(second), jobs) else {
                continue;
            };
            done.push((second, action.name(), action.pid()));
            let index = jobs.iter().position(|job| job.pid == action.pid()).unwrap();
            match action {
                JobAction::Freeze { .. } => jobs[index].frozen_at = Some(at),
                JobAction::Thaw { .. } => jobs[index].frozen_at = None,
                JobAction::Kill { .. } => {
                    jobs.remove(index);
                }
                JobAction::Ceiling { threads, .. } => {
                    jobs[index].ceiling = threads;
                    jobs[index].threads = threads.unwrap_or(jobs[index].max_threads);
                }
            }
        }
        done
    }

    /// Jobs that cannot shrink (one worker each): pids 1..; priorities as given.
    fn unshrinkable(priorities: &[i32]) -> Vec<JobState> {
        (1..)
            .zip(priorities)
            .map(|(pid, &priority)| job(pid, 100 * u64::from(pid), 1, priority))
            .collect()
    }

    #[test]
    fn the_default_last_resort_never_kills_however_long_critical_lasts() {
        for mut steering in [JobSteering::default(), JobSteering::new(None)] {
            assert_eq!(steering.kill_after(), None);
            let mut jobs = unshrinkable(&[0, 1, 9]);
            let done = drive(&mut steering, &mut jobs, 0..3600, |_| Level::Critical);
            // Frozen, lowest priority first, until one job runs; nothing more for an hour.
            assert_eq!(done, [(0, "freeze", 1), (3, "freeze", 2)]);
            assert_eq!(jobs.len(), 3);
        }
    }

    #[test]
    fn with_kill_the_frozen_job_is_killed_once_critical_lasted_kill_after() {
        let mut steering = JobSteering::new(Some(secs(30)));
        let mut jobs = unshrinkable(&[5, 0]);
        let mut reasons = Vec::new();
        for second in 0..120 {
            if let Some(action) = steering.plan(secs(second), "s", Level::Critical, &jobs) {
                reasons.push((second, action.name(), action.reason().to_owned()));
                if let Some(job) = jobs.iter_mut().find(|job| job.pid == action.pid()) {
                    job.frozen_at = Some(secs(second));
                }
                if action.name() == "kill" {
                    jobs.retain(|job| job.pid != action.pid());
                }
            }
        }
        // Frozen first, killed 30 s later, never the last job left running.
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert_eq!((reasons[0].0, reasons[0].1), (0, "freeze"));
        assert_eq!(
            reasons[1],
            (
                30,
                "kill",
                "slice s stayed at critical for 30s with job2 (priority 0, 200M) frozen and no \
                 job can shrink further: killed (last_resort: kill)"
                    .to_owned()
            )
        );
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].pid, 1);
    }

    #[test]
    fn leaving_critical_even_for_high_starts_the_kill_clock_again() {
        let mut steering = JobSteering::new(Some(secs(30)));
        let mut jobs = unshrinkable(&[5, 0]);
        let level = |second| match second {
            20..=24 => Level::High,
            _ => Level::Critical,
        };
        let done = drive(&mut steering, &mut jobs, 0..120, level);
        // At high the frozen job stays frozen (it thaws below high), and is killed 30 s
        // after critical came back, not 30 s after the freeze.
        assert_eq!(done, [(0, "freeze", 2), (55, "kill", 2)]);
        // Never killed at high, however long.
        let mut steering = JobSteering::new(Some(secs(30)));
        let mut jobs = unshrinkable(&[5, 0]);
        let level = |second| {
            if second < 5 {
                Level::Critical
            } else {
                Level::High
            }
        };
        let done = drive(&mut steering, &mut jobs, 0..3600, level);
        assert_eq!(done, [(0, "freeze", 2)]);
    }

    #[test]
    fn kills_come_one_at_a_time_lowest_priority_first_each_after_kill_after() {
        let mut steering = JobSteering::new(Some(secs(10)));
        let mut jobs = unshrinkable(&[1, 0, 9]);
        let done = drive(&mut steering, &mut jobs, 0..120, |_| Level::Critical);
        // Job 1 was frozen at 3 and due at 13, but the previous kill (at 10) restarts the
        // clock: the slice gets kill_after to show the kill's effect.
        assert_eq!(
            done,
            [
                (0, "freeze", 2),
                (3, "freeze", 1),
                (10, "kill", 2),
                (20, "kill", 1)
            ]
        );
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].pid, 3);
    }

    #[test]
    fn the_lowest_priority_frozen_job_is_the_one_killed_even_when_another_is_due_first() {
        let mut steering = JobSteering::new(Some(secs(10)));
        let mut jobs = unshrinkable(&[5, 0, 9]);
        jobs[0].frozen_at = Some(secs(0));
        jobs[1].frozen_at = Some(secs(8));
        // Job 1 is due at 10, but job 2 has the lower priority: job 1 waits for job 2's
        // turn, then kill_after more.
        let done = drive(&mut steering, &mut jobs, 0..30, |_| Level::Critical);
        assert_eq!(done, [(18, "kill", 2), (28, "kill", 1)]);
    }

    #[test]
    fn shrinking_comes_before_a_due_kill() {
        let mut steering = JobSteering::new(Some(secs(10)));
        let mut jobs = unshrinkable(&[0, 5]);
        jobs[0].frozen_at = Some(secs(0));
        jobs[1].threads = 4;
        let done = drive(&mut steering, &mut jobs, 0..30, |_| Level::Critical);
        // 4 -> 2 -> 1 worker at critical (every 3 s), then the kill that was due at 10.
        assert_eq!(
            done,
            [(0, "ceiling", 2), (3, "ceiling", 2), (10, "kill", 1)]
        );
    }

    #[test]
    fn with_kill_configured_a_job_left_alone_frozen_is_thawed_not_killed() {
        let mut steering = JobSteering::new(Some(secs(3)));
        let mut jobs = unshrinkable(&[0]);
        jobs[0].frozen_at = Some(secs(0));
        let done = drive(&mut steering, &mut jobs, 0..60, |_| Level::Critical);
        assert_eq!(done, [(0, "thaw", 1)]);
        assert_eq!(jobs.len(), 1);
    }

    #[test]
    fn a_reload_changes_the_last_resort_of_a_running_steering() {
        let mut steering = JobSteering::new(Some(secs(10)));
        let mut jobs = unshrinkable(&[5, 0]);
        let done = drive(&mut steering, &mut jobs, 0..5, |_| Level::Critical);
        assert_eq!(done, [(0, "freeze", 2)]);
        // Back to freeze: never killed.
        steering.set_kill_after(None);
        assert!(drive(&mut steering, &mut jobs, 5..600, |_| Level::Critical).is_empty());
        // Kill again: the clock counted on since the freeze.
        steering.set_kill_after(Some(secs(10)));
        assert_eq!(
            drive(&mut steering, &mut jobs, 600..610, |_| Level::Critical),
            [(600, "kill", 2)]
        );
    }
}
