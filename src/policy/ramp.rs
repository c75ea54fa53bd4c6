//! The fast ramp: how many workers one growth step adds. Instead of one worker per measured
//! step, growth goes in one step to the count the headroom allows — the memory below the
//! growth ceiling over the memory per worker, and the CPUs the run queue leaves — with
//! brakes: until two counts have been measured (one count seen, per worker = peak ÷
//! workers) it adds one worker, and a job that reports progress still climbs one count at
//! a time, as each count's throughput is measured before the next.
//!
//! And for the first cooldown of a phase the step is one worker: a phase seen for a few
//! seconds says nothing of the next one. Measured: a light-then-heavy pool started at one
//! worker (a second run whose history said so) jumped 2 → 8 on light tasks' 8.4M slope and
//! was OOM-killed 3 times of 3 when the heavy tasks came; one at a time it was not.
//!
//! One worker without a slope, not doubling: doubling 2 → 4 on the first measurement got a
//! light-then-heavy pool (`benches/goodput.sh`, `TASK_MEMORY=8M,36M`) OOM-killed 3 times of
//! 3 — the added workers start their tasks together, and 4 heavy tasks do not fit where 3
//! do — while one at a time it finished every time.

use std::time::Duration;

use super::defaults;

/// What one growth step is decided from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RampInputs {
    /// Workers now.
    pub threads: u32,
    /// The most workers allowed (more than `threads`).
    pub max_threads: u32,
    /// Bytes between the peak at this count and the growth ceiling (more than `per_worker`).
    pub room: u64,
    /// Memory one more worker costs, bytes.
    pub per_worker: u64,
    /// Worker counts whose memory was measured (in this phase): with two or more,
    /// `per_worker` is their slope, or peak ÷ workers when memory does not follow workers.
    pub measured_counts: usize,
    /// Whether the job reports progress (each count is measured for throughput).
    pub measures_each_count: bool,
    /// How long the job's current phase has lasted (since its start or its last lighter
    /// phase).
    pub phase_age: Duration,
    /// How long a phase must have lasted before a step adds more than one worker.
    pub settled_phase: Duration,
    /// Runnable threads per CPU now, if known.
    pub runnable_per_core: Option<f64>,
}

/// Workers to add, and what held the step below the memory's room (empty when nothing did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RampStep {
    /// Workers to add, at least one.
    pub step: u32,
    /// `"; …"`: the brake that limited the step, for the decision's reason.
    pub limited_by: String,
}

/// The workers one growth step adds (see the module's doc).
pub fn ramp_step(inputs: RampInputs) -> RampStep {
    let RampInputs {
        threads,
        max_threads,
        room,
        per_worker,
        ..
    } = inputs;
    let fitting = (room.saturating_sub(1) / per_worker.max(1)).min(u64::from(u32::MAX)) as u32;
    let mut step = fitting.min(max_threads.saturating_sub(threads)).max(1);
    let mut limited_by = String::new();
    if inputs.measures_each_count && step > 1 {
        step = 1;
        limited_by =
            "; one count at a time: the job reports progress, each count's throughput is measured"
                .to_owned();
    } else if inputs.measured_counts < 2 && step > 1 {
        step = 1;
        limited_by =
            "; one at a time until two counts have measured the memory per worker".to_owned();
    } else if inputs.phase_age < inputs.settled_phase && step > 1 {
        step = 1;
        limited_by = format!(
            "; one at a time for the first {} of the job's phase",
            super::format::duration(inputs.settled_phase)
        );
    }
    if let Some(runnable) = inputs
        .runnable_per_core
        .filter(|runnable| runnable.is_finite() && *runnable > 0.0)
    {
        // Runnable threads per CPU grow with the workers; the step stops where they would
        // reach the contended mark (always at least one worker: the mark is not passed yet).
        let per_worker_load = runnable / f64::from(threads.max(1));
        let cpu_fit = (defaults::RUNNABLE_PER_CORE_CONTENDED / per_worker_load).floor();
        let cpu_step = (cpu_fit - f64::from(threads)).clamp(1.0, f64::from(u32::MAX)) as u32;
        if cpu_step < step {
            step = cpu_step;
            limited_by = format!(
                "; run queue {runnable:.2} per core at {threads} would pass {:.2} beyond {}",
                defaults::RUNNABLE_PER_CORE_CONTENDED,
                threads + step
            );
        }
    }
    RampStep { step, limited_by }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn inputs() -> RampInputs {
        RampInputs {
            threads: 1,
            max_threads: 8,
            room: 650 * MIB,
            per_worker: 200 * MIB,
            measured_counts: 2,
            phase_age: Duration::from_secs(60),
            settled_phase: Duration::from_secs(30),
            measures_each_count: false,
            runnable_per_core: None,
        }
    }

    #[test]
    fn a_known_slope_goes_to_the_count_that_fits_in_one_step() {
        // 650M of room over 200M per worker: 3 more (600M), not 4 (800M).
        let ramp = ramp_step(inputs());
        assert_eq!(
            ramp,
            RampStep {
                step: 3,
                limited_by: String::new()
            }
        );
        // Exactly 3 workers of room: the ceiling itself is not reached (strictly below).
        let exact = ramp_step(RampInputs {
            room: 600 * MIB,
            ..inputs()
        });
        assert_eq!(exact.step, 2);
        // The maximum caps the step.
        let capped = ramp_step(RampInputs {
            threads: 6,
            room: 10_000 * MIB,
            ..inputs()
        });
        assert_eq!(capped.step, 2);
    }

    #[test]
    fn without_a_slope_one_worker_is_added() {
        let ramp = ramp_step(RampInputs {
            threads: 2,
            room: 10_000 * MIB,
            measured_counts: 1,
            ..inputs()
        });
        assert_eq!(ramp.step, 1);
        assert!(
            ramp.limited_by.contains("one at a time until two counts"),
            "{}",
            ramp.limited_by
        );
    }

    #[test]
    fn a_job_that_reports_progress_climbs_one_count_at_a_time() {
        let ramp = ramp_step(RampInputs {
            measures_each_count: true,
            ..inputs()
        });
        assert_eq!(ramp.step, 1);
        assert!(ramp.limited_by.contains("reports progress"));
    }

    #[test]
    fn the_run_queue_caps_the_step_at_the_cpus_left() {
        // 2 busy workers fill half of 4 CPUs (0.5 runnable per core): 2 more fit.
        let ramp = ramp_step(RampInputs {
            threads: 2,
            room: 10_000 * MIB,
            runnable_per_core: Some(0.5),
            ..inputs()
        });
        assert_eq!(ramp.step, 2);
        assert!(
            ramp.limited_by.contains("run queue 0.50"),
            "{}",
            ramp.limited_by
        );
        // Sleeping workers leave the CPUs idle: memory decides.
        let idle = ramp_step(RampInputs {
            runnable_per_core: Some(0.01),
            ..inputs()
        });
        assert_eq!(idle.step, 3);
        // Nonsense from the kernel or a trace is ignored, and the step is never zero.
        for odd in [f64::NAN, f64::INFINITY, -1.0, 0.0, 5.0] {
            let step = ramp_step(RampInputs {
                runnable_per_core: Some(odd),
                ..inputs()
            })
            .step;
            assert!(step >= 1, "{odd}: {step}");
        }
    }
}
