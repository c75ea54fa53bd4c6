//! From raw samples to the policy's observations: rates need the previous
//! sample (CPU use over the interval, new throttling), so this keeps that
//! little state. Pure code, no IO.

use std::time::Duration;

use crate::policy::Observation;
use crate::sample::job::JobSample;

/// Turns consecutive [`JobSample`]s into [`Observation`]s.
#[derive(Debug)]
pub struct Observer {
    cpus: f64,
    ticks_per_second: f64,
    previous: Option<CpuReading>,
}

#[derive(Debug, Clone, Copy)]
struct CpuReading {
    at: Duration,
    cpu_seconds: f64,
    throttled: Option<u64>,
}

impl Observer {
    /// `cpus`: how many CPUs the job may use; `ticks_per_second`: USER_HZ.
    pub fn new(cpus: usize, ticks_per_second: u64) -> Self {
        Observer {
            cpus: cpus.max(1) as f64,
            ticks_per_second: ticks_per_second.max(1) as f64,
            previous: None,
        }
    }

    /// The observation for this sample.
    pub fn observe(&mut self, sample: &JobSample) -> Observation {
        let cpu_stat = sample.cgroup.as_ref().and_then(|c| c.cpu.as_ref());
        let cpu_seconds = match cpu_stat {
            Some(cpu) => cpu.usage_usec as f64 / 1e6,
            None => sample.process_cpu_ticks() as f64 / self.ticks_per_second,
        };
        let reading = CpuReading {
            at: sample.at,
            cpu_seconds,
            throttled: cpu_stat.and_then(|c| c.nr_throttled),
        };
        let (cpu_percent, cpu_throttled) = match self.previous {
            Some(prev) if sample.at > prev.at => {
                let elapsed = (sample.at - prev.at).as_secs_f64();
                // Processes that exited take their CPU time with them when it is
                // summed from /proc: never report a negative rate.
                let used = (reading.cpu_seconds - prev.cpu_seconds).max(0.0);
                let percent = 100.0 * used / (elapsed * self.cpus);
                let throttled =
                    matches!((prev.throttled, reading.throttled), (Some(a), Some(b)) if b > a);
                (Some(percent.min(100.0)), throttled)
            }
            _ => (None, false),
        };
        self.previous = Some(reading);

        let cgroup = sample.cgroup.as_ref();
        let host = sample.host.as_ref();
        // The job's own PSI when cgroup v2 gives it; on v1 the host's is the
        // closest measure there is.
        let memory_pressure = cgroup
            .and_then(|c| c.memory_pressure.as_ref())
            .or_else(|| host.and_then(|h| h.memory_pressure.as_ref()));
        let cpu_pressure = cgroup
            .and_then(|c| c.cpu_pressure.as_ref())
            .or_else(|| host.and_then(|h| h.cpu_pressure.as_ref()));
        Observation {
            at: sample.at,
            memory_bytes: sample.memory_bytes(),
            cpu_percent,
            memory_psi_some_avg10: memory_pressure.map(|p| p.some.avg10),
            memory_psi_full_avg10: memory_pressure
                .and_then(|p| p.full.as_ref())
                .map(|l| l.avg10),
            cpu_psi_some_avg10: cpu_pressure.map(|p| p.some.avg10),
            cpu_throttled,
            runnable_per_core: host.map(|h| h.runnable as f64 / h.per_cpu.len().max(1) as f64),
            progress_units: None,
        }
    }
}
