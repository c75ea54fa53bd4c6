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
    /// The cgroup's high-water mark at the previous sample.
    previous_peak: Option<u64>,
    /// The high-water mark was restarted after the previous sample.
    peak_reset: bool,
    /// The cgroup's reclaimable page cache at the previous sample.
    previous_page_cache: u64,
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
            previous_peak: None,
            peak_reset: false,
            previous_page_cache: 0,
        }
    }

    /// Tells the observer that the cgroup's high-water mark was restarted after the last
    /// sample (see [`crate::cgroup::writer::PeakReset`]): the next one is the peak since.
    pub fn note_peak_reset(&mut self) {
        self.peak_reset = true;
    }

    /// The highest memory since the previous sample, when the high-water mark `peak` says
    /// it: always after a reset; else the first reading (the job's cgroup is new) or one
    /// that rose (the new mark was set in between).
    fn peak_since_last(&mut self, peak: Option<u64>) -> Option<u64> {
        let reset = std::mem::take(&mut self.peak_reset);
        let previous = self.previous_peak;
        self.previous_peak = peak.or(previous);
        let now = peak?;
        (reset || previous.is_none_or(|then| now > then)).then_some(now)
    }

    /// The job's CPU time so far, seconds: the cgroup's `cpu.stat` usage (v2), else the
    /// sum over its live processes in /proc.
    pub fn cpu_seconds(&self, sample: &JobSample) -> f64 {
        match sample.cgroup.as_ref().and_then(|c| c.cpu.as_ref()) {
            Some(cpu) => cpu.usage_usec as f64 / 1e6,
            None => sample.process_cpu_ticks() as f64 / self.ticks_per_second,
        }
    }

    /// The observation for this sample.
    pub fn observe(&mut self, sample: &JobSample) -> Observation {
        let cpu_stat = sample.cgroup.as_ref().and_then(|c| c.cpu.as_ref());
        let cpu_seconds = self.cpu_seconds(sample);
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
        // The high-water mark is a charge, page cache included, and the cache at its moment is
        // unknown: take off the larger of the cache at either end of the interval, so that a
        // cache dropped or deleted between samples does not read as the job's own peak.
        let page_cache = sample.page_cache();
        let cache_in_interval = page_cache.max(self.previous_page_cache);
        self.previous_page_cache = page_cache;
        // The job's own PSI when cgroup v2 gives it; on v1 the host's is the
        // closest measure there is.
        let memory_pressure = cgroup
            .and_then(|c| c.memory_pressure.as_ref())
            .or_else(|| host.and_then(|h| h.memory_pressure.as_ref()));
        let cpu_pressure = cgroup
            .and_then(|c| c.cpu_pressure.as_ref())
            .or_else(|| host.and_then(|h| h.cpu_pressure.as_ref()));
        Observation {
            memory_limit: sample.memory_limit,
            at: sample.at,
            memory_bytes: sample.memory_bytes(),
            memory_peak_since_last: self
                .peak_since_last(cgroup.and_then(|c| c.memory_peak))
                .map(|peak| peak.saturating_sub(cache_in_interval)),
            cpu_percent,
            memory_psi_some_avg10: memory_pressure.map(|p| p.some.avg10),
            memory_psi_full_avg10: memory_pressure
                .and_then(|p| p.full.as_ref())
                .map(|l| l.avg10),
            cpu_psi_some_avg10: cpu_pressure.map(|p| p.some.avg10),
            cpu_throttled,
            runnable_per_core: host.map(|h| others_runnable_per_core(h.runnable, h.per_cpu.len())),
            progress_units: None,
            ceiling: None,
        }
    }
}

/// The host's run queue per core without resctl's own sampling thread, which is running (and
/// so counted in `/proc/loadavg`'s runnable figure) while it reads the file: two busy workers
/// on two cores read as 3 runnable, which is not contention.
fn others_runnable_per_core(runnable: u32, cores: usize) -> f64 {
    f64::from(runnable.saturating_sub(1)) / cores.max(1) as f64
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{others_runnable_per_core, Observer};
    use crate::cgroup::stats::{CgroupSample, MemoryStat};
    use crate::sample::job::JobSample;

    const MIB: u64 = 1 << 20;

    /// A sample of a cgroup charged `charge` MiB, `cache` MiB of it page cache (split over
    /// both lists), with a high-water mark of `peak` MiB.
    fn sample(at_secs: u64, charge: u64, cache: u64, peak: u64) -> JobSample {
        JobSample {
            at: Duration::from_secs(at_secs),
            cgroup: Some(CgroupSample {
                memory_current: Some(charge * MIB),
                memory_peak: Some(peak * MIB),
                stat: MemoryStat {
                    inactive_file: Some(cache * MIB / 2),
                    active_file: Some(cache * MIB - cache * MIB / 2),
                    ..MemoryStat::default()
                },
                ..CgroupSample::default()
            }),
            processes: Vec::new(),
            host: None,
            memory_limit: None,
            cgroup_gone: false,
        }
    }

    #[test]
    fn page_cache_on_either_list_is_not_the_jobs_memory() {
        let mut observer = Observer::new(2, 100);
        // A job writing a file at its 32M limit: 30M of the charge is cache.
        let observation = observer.observe(&sample(1, 32, 30, 32));
        assert_eq!(observation.memory_bytes, 2 * MIB);
        assert_eq!(observation.memory_peak_since_last, Some(2 * MIB));
    }

    #[test]
    fn a_peak_between_samples_loses_the_larger_cache_of_its_interval() {
        let mut observer = Observer::new(2, 100);
        observer.observe(&sample(1, 32, 30, 32));
        // The file was deleted: its 30M cache is gone. The mark (32M, reset after the last
        // sample) may have been set while the cache was still there, so it is not the job's.
        observer.note_peak_reset();
        let observation = observer.observe(&sample(2, 3, 0, 32));
        assert_eq!(observation.memory_bytes, 3 * MIB);
        assert_eq!(observation.memory_peak_since_last, Some(2 * MIB));
        // With the cache gone at both ends, a peak is the job's own.
        observer.note_peak_reset();
        let observation = observer.observe(&sample(3, 3, 0, 20));
        assert_eq!(observation.memory_peak_since_last, Some(20 * MIB));
    }

    #[test]
    fn peak_since_last_comes_from_resets_or_a_rising_high_water_mark() {
        let mut observer = Observer::new(2, 100);
        // First reading: the cgroup's mark since it began, which is the job's.
        assert_eq!(observer.peak_since_last(Some(500)), Some(500));
        // Unchanged mark without a reset: the peak in between is unknown (≤ 500).
        assert_eq!(observer.peak_since_last(Some(500)), None);
        // A higher mark was set in between.
        assert_eq!(observer.peak_since_last(Some(700)), Some(700));
        // After a reset the mark is the peak since, even when lower.
        observer.note_peak_reset();
        assert_eq!(observer.peak_since_last(Some(300)), Some(300));
        // A reset is good for one reading only; 300 < 700 but the mark restarted at 300.
        assert_eq!(observer.peak_since_last(Some(300)), None);
        // No high-water mark (monitor-only): nothing, and the last one is kept.
        assert_eq!(observer.peak_since_last(None), None);
        assert_eq!(observer.peak_since_last(Some(400)), Some(400));
    }

    #[test]
    fn the_sampler_itself_is_not_counted_as_contention() {
        // loadavg "3/…" read by resctl on two cores: resctl plus two busy workers.
        assert_eq!(others_runnable_per_core(3, 2), 1.0);
        assert_eq!(others_runnable_per_core(5, 2), 2.0);
        // Nothing but the reader running, or a zero the kernel never reports.
        assert_eq!(others_runnable_per_core(1, 4), 0.0);
        assert_eq!(others_runnable_per_core(0, 4), 0.0);
        // No per-core lines: one core assumed rather than dividing by zero.
        assert_eq!(others_runnable_per_core(3, 0), 2.0);
    }
}
