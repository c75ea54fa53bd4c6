//! A job that remembers: what a run learned about its job (one worker's memory, the memory
//! that does not grow with workers, the fastest count measured, how it ended), kept per
//! job key so that the next run of the same job starts from it instead of from the CPU
//! count. This module is pure (the record, the key, the starting count); [`store`] keeps
//! the records on disk.

pub mod store;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::job_text::command_line;

/// The record format's version: a record of another version is ignored (with a warning).
pub const RECORD_VERSION: u32 = 1;
/// Largest record read or written, bytes: a record is a few hundred bytes; anything larger
/// was not written by resctl.
pub const MAX_RECORD_BYTES: u64 = 64 * 1024;
/// Longest job key kept, characters: a command line longer than this is cut (its hash, the
/// file name, still covers all of it).
pub const MAX_KEY_CHARS: usize = 1024;
/// Most worker counts whose throughput a record keeps.
pub const MAX_COUNTS: usize = 64;

/// What one job's runs taught, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// The job key: `--job-key NAME`, else the command line and working folder.
    pub key: String,
    /// Runs recorded.
    pub runs: u32,
    /// When the last run ended, seconds since the epoch.
    pub updated: u64,
    /// Memory one more worker costs, bytes (the marginal slope, else peak ÷ workers).
    pub per_worker: u64,
    /// Memory the job holds whatever its worker count, bytes (peak less the workers' part).
    pub base: u64,
    /// The most workers the last run held, and its peak memory there.
    pub peak_threads: u32,
    /// The job's peak memory in the last run, bytes.
    pub peak_memory: u64,
    /// The fastest count measured (jobs that report progress), with its units per second.
    pub best: Option<(u32, f64)>,
    /// Units per second per worker count, from runs that reported progress (or a bench sweep).
    #[serde(default)]
    pub throughput: BTreeMap<u32, f64>,
    /// The highest memory seen at each worker count, bytes: over the whole of the last run
    /// that held that count (every phase of it), or the sweep's runs at that count.
    #[serde(default)]
    pub peaks: BTreeMap<u32, u64>,
    /// How the last run ended: its exit code, and OOM kills seen.
    pub exit_code: i32,
    /// OOM kills in the last run.
    pub oom_kills: u64,
    /// The worker count in force when the last run ended, where it finished cleanly (exit 0,
    /// no OOM kill): a count the run's policy kept to the end. Absent in older records and
    /// after a sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_threads: Option<u32>,
    /// How far the last run's memory per worker strayed from the line `base + workers ×
    /// per_worker`, bytes, when it measured the line over two counts or more. A later run
    /// plans to the limit from the line only when this is small (the job's memory per
    /// worker was predictable) and keeps three times it free. A run that saw one count
    /// only keeps the earlier record's. Absent in older records and after a sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<u64>,
}

/// What a finished run learned, before it is merged into the job's record.
#[derive(Debug, Clone, PartialEq)]
pub struct Learned {
    /// The policy's marginal memory per worker, when two counts were measured.
    pub marginal: Option<u64>,
    /// How far the memory per worker strayed from that line, bytes (with `marginal`).
    pub spread: Option<u64>,
    /// The highest settled memory at each worker count over the run, bytes.
    pub peaks: BTreeMap<u32, u64>,
    /// The job's peak memory, bytes.
    pub peak_memory: u64,
    /// The most workers the job had.
    pub peak_threads: u32,
    /// Units per second per measured count.
    pub throughput: BTreeMap<u32, f64>,
    /// The job's exit code.
    pub exit_code: i32,
    /// OOM kills in the job's cgroup.
    pub oom_kills: u64,
    /// The worker count in force when the job ended.
    pub final_threads: u32,
}

impl JobRecord {
    /// The record after a run that `learned` this, merged over `previous` (the same key's
    /// earlier record, if any); `None` when the run measured nothing worth keeping (no
    /// memory seen).
    pub fn after_run(
        key: &str,
        previous: Option<&JobRecord>,
        learned: &Learned,
        now: u64,
    ) -> Option<JobRecord> {
        if learned.peak_memory == 0 || learned.peak_threads == 0 {
            return None;
        }
        let threads = u64::from(learned.peak_threads);
        // Peak ÷ workers overstates one worker (it counts the base too): a safe estimate
        // when nothing better was measured.
        let per_worker = learned
            .marginal
            .unwrap_or(learned.peak_memory / threads)
            .max(1);
        let base = learned
            .peak_memory
            .saturating_sub(per_worker.saturating_mul(threads));
        let mut throughput = previous.map(|p| p.throughput.clone()).unwrap_or_default();
        for (&count, &rate) in &learned.throughput {
            if rate.is_finite() && rate >= 0.0 {
                throughput.insert(count, rate);
            }
        }
        while throughput.len() > MAX_COUNTS {
            throughput.pop_last();
        }
        let peaks = merged_peaks(
            previous,
            learned.peaks.iter().map(|(&count, &peak)| (count, peak)),
        );
        // A sweep's fastest count (it measures wall time, not units) stays until runs that
        // report progress measure their own.
        let best = fastest(&throughput).or(previous.and_then(|p| p.best));
        Some(JobRecord {
            version: RECORD_VERSION,
            key: bounded_key(key),
            runs: previous.map_or(0, |p| p.runs).saturating_add(1),
            updated: now,
            per_worker,
            base,
            peak_threads: learned.peak_threads,
            peak_memory: learned.peak_memory,
            best,
            throughput,
            peaks,
            exit_code: learned.exit_code,
            oom_kills: learned.oom_kills,
            held_threads: (learned.exit_code == 0
                && learned.oom_kills == 0
                && learned.final_threads > 0)
                .then_some(learned.final_threads),
            // A run that measured no line keeps the scatter an earlier run saw: never
            // less cautious than forgetting it (an unknown spread plans as a small one).
            spread: match learned.marginal {
                Some(_) => learned.spread,
                None => previous.and_then(|p| p.spread),
            },
        })
    }

    /// The worker count a run of this job should start with, between `min` and `max`,
    /// when its memory must stay below `ceiling` bytes (the growth plan's ceiling), and
    /// why: as many workers as fit (`base + n × per_worker < ceiling`), no more than the
    /// fastest measured count. A second run is never more cautious than the first one's
    /// clean end: the count the last run held to its end (exit 0, no OOM kill) is kept when
    /// every count up to it peaked below `held_below` (the critical level), even where a
    /// peak passed the growth ceiling for a moment. A job the kernel OOM-killed last time
    /// starts one below the count it had then.
    pub fn start_count(&self, ceiling: u64, held_below: u64, min: u32, max: u32) -> (u32, String) {
        let (mut fitting, mut why) = match self.fitting_by_peaks(ceiling) {
            Some(fit) => fit,
            None => {
                let room = ceiling.saturating_sub(self.base);
                let fitting = (room / self.per_worker.max(1)).min(u64::from(u32::MAX)) as u32;
                let why = format!(
                    "{fitting} workers of {} over a base of {} fit below {}",
                    crate::units::format_size(self.per_worker),
                    crate::units::format_size(self.base),
                    crate::units::format_size(ceiling)
                );
                (fitting, why)
            }
        };
        if let Some(held) = self.held_threads.filter(|&held| held > fitting) {
            let envelope = self
                .peak_envelope()
                .take_while(|&(count, _)| count <= held)
                .last()
                .map_or(u64::MAX, |(_, heaviest)| heaviest);
            if envelope < held_below {
                fitting = held;
                why = format!(
                    "{why}; the last run finished at {held} workers, peaking at {} (below {})",
                    crate::units::format_size(envelope),
                    crate::units::format_size(held_below)
                );
            }
        }
        let mut count = fitting;
        if let Some((best, _)) = self.best {
            if best < count {
                count = best;
                why = format!("{why}; {best} was the fastest count measured");
            }
        }
        if self.oom_kills > 0 && self.peak_threads <= count {
            count = self.peak_threads.saturating_sub(1);
            why = format!(
                "{why}; the last run was OOM-killed at {}",
                self.peak_threads
            );
        }
        let clamped = count.clamp(min, max.max(min));
        (
            clamped,
            format!("remembered from {} run(s): {why}", self.runs),
        )
    }

    /// The fewest workers at which earlier runs came within reach of the OOM killer: the
    /// first count whose remembered peak, or that of any lower count (a heavy part met at
    /// few workers is no lighter at more), reached `level` (the critical level), or the
    /// count the last run held when the kernel OOM-killed inside it, whichever is fewer.
    /// `None` when no remembered count did either.
    pub fn first_count_reaching(&self, level: u64) -> Option<u32> {
        let by_peaks = self
            .peak_envelope()
            .find(|&(_, envelope)| envelope >= level)
            .map(|(count, _)| count);
        let killed = (self.oom_kills > 0 && self.peak_threads > 0).then_some(self.peak_threads);
        by_peaks.into_iter().chain(killed).min()
    }

    /// Each remembered count, fewest first, with the highest peak at it or at any lower
    /// count: what the count cost at its heaviest (a heavy part met at few workers is no
    /// lighter at more).
    fn peak_envelope(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.peaks.iter().scan(0u64, |envelope, (&count, &peak)| {
            *envelope = (*envelope).max(peak);
            Some((count, *envelope))
        })
    }

    /// The most workers whose remembered peak stayed below `ceiling`, judged by what each
    /// count cost at its heaviest (the highest peak at that count or any lower one, so a
    /// heavy phase met at a few workers also bounds more), and beyond the highest count
    /// measured by that peak plus [`per_worker`](Self::per_worker) for each worker more.
    /// `None` without remembered peaks (a record from before they were kept).
    fn fitting_by_peaks(&self, ceiling: u64) -> Option<(u32, String)> {
        let (&highest, _) = self.peaks.last_key_value()?;
        let mut envelope = 0u64;
        let mut fitting = 0u32;
        for (count, heaviest) in self.peak_envelope() {
            if heaviest >= ceiling {
                break;
            }
            (fitting, envelope) = (count, heaviest);
        }
        let mut why = format!(
            "{fitting} workers peaked below {} in earlier runs",
            crate::units::format_size(ceiling)
        );
        if fitting == highest {
            let room = ceiling.saturating_sub(envelope);
            // Strictly below the ceiling: peak + extra × per_worker < ceiling.
            let extra =
                (room.saturating_sub(1) / self.per_worker.max(1)).min(u64::from(u32::MAX)) as u32;
            if extra > 0 {
                fitting = fitting.saturating_add(extra);
                why = format!(
                    "{highest} workers peaked at {} in earlier runs; {extra} more of {} each fit \
                     below {}",
                    crate::units::format_size(envelope),
                    crate::units::format_size(self.per_worker),
                    crate::units::format_size(ceiling)
                );
            }
        }
        Some((fitting, why))
    }
}

/// One count of a static sweep (`resctl bench --save`), as the history needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepCount {
    /// Worker count.
    pub threads: u32,
    /// Whether every run at this count exited 0 with no OOM kill.
    pub ok: bool,
    /// Highest peak memory of its runs, bytes.
    pub peak_memory: u64,
    /// OOM kills in its runs.
    pub oom_kills: u64,
    /// Median wall time, seconds.
    pub median_secs: f64,
}

impl JobRecord {
    /// The record after a static sweep, merged over `previous`; `None` when no count
    /// succeeded. One worker costs the steepest rise of the peak between successive counts
    /// that succeeded (the safe side), else peak ÷ workers; the base is what is left at the
    /// smallest count. The fastest count is `recommended` (its runs per second); the
    /// smallest count the kernel OOM-killed is kept as the last run's OOM kill, so a run
    /// starts below it.
    pub fn from_sweep(
        key: &str,
        previous: Option<&JobRecord>,
        counts: &[SweepCount],
        recommended: Option<u32>,
        now: u64,
    ) -> Option<JobRecord> {
        let mut succeeded: Vec<&SweepCount> = counts
            .iter()
            .filter(|count| count.ok && count.threads > 0 && count.peak_memory > 0)
            .collect();
        succeeded.sort_by_key(|count| count.threads);
        let (first, last) = (*succeeded.first()?, *succeeded.last()?);
        let steepest = succeeded
            .windows(2)
            .map(|pair| {
                let rise = pair[1].peak_memory.saturating_sub(pair[0].peak_memory);
                rise / u64::from(pair[1].threads - pair[0].threads).max(1)
            })
            .max();
        let per_worker = steepest
            .unwrap_or(first.peak_memory / u64::from(first.threads))
            .max(1);
        let base = first
            .peak_memory
            .saturating_sub(per_worker.saturating_mul(u64::from(first.threads)));
        let best = recommended.and_then(|threads| {
            counts
                .iter()
                .find(|count| count.threads == threads && count.median_secs > 0.0)
                .map(|count| (threads, 1.0 / count.median_secs))
        });
        let killed = counts
            .iter()
            .filter(|count| count.oom_kills > 0)
            .min_by_key(|count| count.threads);
        let (peak_threads, peak_memory, oom_kills) = match killed {
            Some(count) => (count.threads, count.peak_memory, count.oom_kills),
            None => (last.threads, last.peak_memory, 0),
        };
        Some(JobRecord {
            version: RECORD_VERSION,
            key: bounded_key(key),
            runs: previous.map_or(0, |p| p.runs).saturating_add(1),
            updated: now,
            per_worker,
            base,
            peak_threads,
            peak_memory,
            best: best.or(previous.and_then(|p| p.best)),
            throughput: previous.map(|p| p.throughput.clone()).unwrap_or_default(),
            peaks: merged_peaks(
                previous,
                succeeded
                    .iter()
                    .map(|count| (count.threads, count.peak_memory)),
            ),
            exit_code: 0,
            oom_kills,
            held_threads: None,
            spread: None,
        })
    }
}

/// The previous record's per-count peaks with those measured now in their place (a count
/// measured again says what it costs now), the lowest [`MAX_COUNTS`] counts kept.
fn merged_peaks(
    previous: Option<&JobRecord>,
    measured: impl Iterator<Item = (u32, u64)>,
) -> BTreeMap<u32, u64> {
    let mut peaks = previous.map(|p| p.peaks.clone()).unwrap_or_default();
    for (count, peak) in measured.filter(|&(count, peak)| count > 0 && peak > 0) {
        peaks.insert(count, peak);
    }
    while peaks.len() > MAX_COUNTS {
        peaks.pop_last();
    }
    peaks
}

/// The fastest count (the fewest workers among equals).
fn fastest(throughput: &BTreeMap<u32, f64>) -> Option<(u32, f64)> {
    throughput.iter().fold(
        None,
        |best: Option<(u32, f64)>, (&count, &rate)| match best {
            Some((_, fastest)) if fastest >= rate => best,
            _ => Some((count, rate)),
        },
    )
}

/// The key of a job: `explicit` (`--job-key`) if given, else its command line and working
/// folder (`make -j8 @ /src/app`), cut to [`MAX_KEY_CHARS`].
pub fn job_key(explicit: Option<&str>, command: &[OsString], cwd: &Path) -> String {
    match explicit {
        Some(name) => bounded_key(name),
        None => bounded_key(&format!("{} @ {}", command_line(command), cwd.display())),
    }
}

fn bounded_key(key: &str) -> String {
    key.chars().take(MAX_KEY_CHARS).collect()
}

/// The file name of a key's record: 16 hex digits of its 64-bit FNV-1a hash (any key, any
/// length, any bytes, gives a short, safe name; the record holds the key itself, so a
/// collision is noticed and treated as no record).
pub fn file_name(key: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn learned(marginal: Option<u64>, peak: u64, threads: u32) -> Learned {
        Learned {
            marginal,
            spread: None,
            peaks: BTreeMap::new(),
            peak_memory: peak,
            peak_threads: threads,
            throughput: BTreeMap::new(),
            exit_code: 0,
            oom_kills: 0,
            final_threads: threads,
        }
    }

    fn swept(threads: u32, ok: bool, peak_mib: u64, oom_kills: u64, secs: f64) -> SweepCount {
        SweepCount {
            threads,
            ok,
            peak_memory: peak_mib * MIB,
            oom_kills,
            median_secs: secs,
        }
    }

    #[test]
    fn a_sweep_teaches_the_steepest_rise_the_fastest_count_and_the_first_oom() {
        let counts = [
            swept(1, true, 150, 0, 40.0),
            swept(2, true, 200, 0, 21.0),
            swept(4, true, 330, 0, 12.0),
            swept(6, false, 390, 2, 30.0),
        ];
        let record = JobRecord::from_sweep("job", None, &counts, Some(4), 5).unwrap();
        // Rises: 50M from 1 to 2, 65M a worker from 2 to 4: the steeper one.
        assert_eq!((record.per_worker, record.base), (65 * MIB, 85 * MIB));
        assert_eq!(record.best, Some((4, 1.0 / 12.0)));
        assert_eq!((record.peak_threads, record.oom_kills), (6, 2));
        // 6 was OOM-killed: a run starts below it, at the fastest count here.
        assert_eq!(record.start_count(10_000 * MIB, 0, 1, 8).0, 4);
        // A later run without progress keeps the sweep's fastest count.
        let after = JobRecord::after_run("job", Some(&record), &learned(None, 330 * MIB, 4), 9);
        assert_eq!(after.unwrap().best, Some((4, 1.0 / 12.0)));
        // Nothing succeeded: nothing to keep.
        let failed = [swept(8, false, 500, 1, 3.0)];
        assert_eq!(JobRecord::from_sweep("job", None, &failed, None, 5), None);
        // One count: peak ÷ workers.
        let one = JobRecord::from_sweep("job", None, &[swept(2, true, 200, 0, 9.0)], Some(2), 5);
        assert_eq!(one.unwrap().per_worker, 100 * MIB);
    }

    #[test]
    fn a_run_teaches_one_workers_memory_and_the_base() {
        let record =
            JobRecord::after_run("job", None, &learned(Some(60 * MIB), 280 * MIB, 4), 10).unwrap();
        assert_eq!((record.per_worker, record.base), (60 * MIB, 40 * MIB));
        assert_eq!(record.runs, 1);
        // Without a marginal estimate, peak ÷ workers (the safe side: no base).
        let record =
            JobRecord::after_run("job", Some(&record), &learned(None, 280 * MIB, 4), 20).unwrap();
        assert_eq!(
            (record.per_worker, record.base, record.runs),
            (70 * MIB, 0, 2)
        );
        // A run that saw no memory teaches nothing.
        assert!(JobRecord::after_run("job", None, &learned(None, 0, 2), 0).is_none());
    }

    #[test]
    fn the_start_count_is_what_fits_below_the_ceiling() {
        let record =
            JobRecord::after_run("pool", None, &learned(Some(60 * MIB), 280 * MIB, 4), 0).unwrap();
        // (255M − 40M) ÷ 60M = 3 workers fit below a 255M ceiling.
        let (count, why) = record.start_count(255 * MIB, 0, 1, 8);
        assert_eq!(count, 3, "{why}");
        assert!(
            why.contains("3 workers of 60M over a base of 40M fit below 255M"),
            "{why}"
        );
        // Bounds still win.
        assert_eq!(record.start_count(10_000 * MIB, 0, 1, 8).0, 8);
        assert_eq!(record.start_count(MIB, 0, 2, 8).0, 2);
    }

    #[test]
    fn remembered_peaks_per_count_judge_the_start_by_each_counts_heaviest_phase() {
        // Light tasks at 1 and 2 workers, then a heavy phase at 3: the line through the
        // counts (92M a worker) says one worker; the count's own peaks say three fit.
        let mut run = learned(Some(92 * MIB), 120 * MIB, 3);
        run.peaks = BTreeMap::from([(1, 30 * MIB), (2, 40 * MIB), (3, 120 * MIB)]);
        let record = JobRecord::after_run("phased", None, &run, 0).unwrap();
        let (count, why) = record.start_count(125 * MIB, 0, 1, 8);
        assert_eq!(count, 3, "{why}");
        assert!(why.contains("3 workers peaked below 125M"), "{why}");
        // A ceiling the heavy phase at 3 reached: 2, whose peak stayed below.
        let (count, why) = record.start_count(110 * MIB, 0, 1, 8);
        assert_eq!(count, 2, "{why}");
        // A heavy phase met at 2 bounds 3 as well (the envelope), even if 3 only ran light.
        let mut run = learned(Some(40 * MIB), 100 * MIB, 3);
        run.peaks = BTreeMap::from([(1, 30 * MIB), (2, 100 * MIB), (3, 60 * MIB)]);
        let record = JobRecord::after_run("heavy-at-2", None, &run, 0).unwrap();
        assert_eq!(record.start_count(95 * MIB, 0, 1, 8).0, 1);
        // Room above the highest count measured: more workers at one worker's memory each,
        // strictly below the ceiling.
        assert_eq!(record.start_count(181 * MIB, 0, 1, 8).0, 5);
        assert_eq!(record.start_count(180 * MIB, 0, 1, 8).0, 4);
        // A later run that measured a count again replaces what that count cost.
        let mut later = learned(Some(40 * MIB), 50 * MIB, 2);
        later.peaks = BTreeMap::from([(2, 50 * MIB)]);
        let merged = JobRecord::after_run("heavy-at-2", Some(&record), &later, 1).unwrap();
        assert_eq!(
            merged.peaks,
            BTreeMap::from([(1, 30 * MIB), (2, 50 * MIB), (3, 60 * MIB)])
        );
    }

    #[test]
    fn the_fastest_measured_count_caps_the_start_and_an_oom_kill_lowers_it() {
        let mut run = learned(Some(10 * MIB), 100 * MIB, 6);
        run.throughput = BTreeMap::from([(2, 10.0), (4, 18.0), (6, 17.5)]);
        let record = JobRecord::after_run("build", None, &run, 0).unwrap();
        assert_eq!(record.best, Some((4, 18.0)));
        let (count, why) = record.start_count(1000 * MIB, 0, 1, 16);
        assert_eq!(count, 4, "{why}");
        let mut killed = learned(Some(100 * MIB), 400 * MIB, 4);
        killed.oom_kills = 1;
        let record = JobRecord::after_run("k", None, &killed, 0).unwrap();
        let (count, why) = record.start_count(1000 * MIB, 0, 1, 16);
        assert_eq!(count, 3, "{why}");
        // Rates that are not numbers are not kept.
        let mut odd = learned(None, MIB, 1);
        odd.throughput = BTreeMap::from([(1, f64::NAN), (2, -1.0)]);
        assert!(JobRecord::after_run("o", None, &odd, 0)
            .unwrap()
            .throughput
            .is_empty());
    }

    #[test]
    fn the_first_count_that_reached_critical_or_was_oom_killed_is_remembered() {
        // The cargo build measured on the host: one worker peaked at 420M, two reached
        // 528M, past the 525M critical level of a 600M budget.
        let run = |peaks: &[(u32, u64)], oom_kills: u64, threads: u32| {
            JobRecord::after_run(
                "k",
                None,
                &Learned {
                    peaks: peaks
                        .iter()
                        .map(|&(count, mib)| (count, mib * MIB))
                        .collect(),
                    oom_kills,
                    ..learned(None, 528 * MIB, threads)
                },
                0,
            )
            .unwrap()
        };
        let critical = 525 * MIB;
        assert_eq!(
            run(&[(1, 420), (2, 528)], 0, 2).first_count_reaching(critical),
            Some(2)
        );
        assert_eq!(
            run(&[(1, 420), (2, 524)], 0, 2).first_count_reaching(critical),
            None
        );
        // A heavy part met at one worker bounds every count above it, though a later, lighter
        // spell at more workers stayed below.
        assert_eq!(
            run(&[(1, 530), (3, 300)], 0, 3).first_count_reaching(critical),
            Some(1)
        );
        // An OOM kill counts at the most workers that run held, whatever its peaks say.
        assert_eq!(
            run(&[(1, 200), (2, 300)], 1, 3).first_count_reaching(critical),
            Some(3)
        );
        assert_eq!(
            run(&[(1, 200), (2, 530)], 1, 3).first_count_reaching(critical),
            Some(2)
        );
        assert_eq!(run(&[], 0, 2).first_count_reaching(critical), None);
    }

    #[test]
    fn a_count_the_last_run_held_to_a_clean_end_is_kept_below_the_critical_level() {
        // The first run held 2 workers to its end; one of its peaks there (90M) passed the
        // growth ceiling (80M) for a moment but not the critical level (98M).
        let held = |exit_code: i32, oom_kills: u64| {
            JobRecord::after_run(
                "k",
                None,
                &Learned {
                    peaks: BTreeMap::from([(2, 90 * MIB)]),
                    exit_code,
                    oom_kills,
                    final_threads: 2,
                    ..learned(None, 90 * MIB, 2)
                },
                0,
            )
            .unwrap()
        };
        let record = held(0, 0);
        assert_eq!(record.held_threads, Some(2));
        let (count, why) = record.start_count(80 * MIB, 98 * MIB, 1, 8);
        assert_eq!(count, 2, "{why}");
        assert!(
            why.contains("0 workers peaked below 80M")
                && why.contains("the last run finished at 2 workers, peaking at 90M (below 98M)"),
            "{why}"
        );
        // Not where it came near the critical level, nor after a failed or OOM-killed run.
        assert_eq!(record.start_count(80 * MIB, 90 * MIB, 1, 8).0, 1);
        assert_eq!(held(1, 0).held_threads, None);
        assert_eq!(held(0, 1).start_count(80 * MIB, 98 * MIB, 1, 8).0, 1);
        // A count whose memory nothing remembers is not taken on trust.
        let unmeasured = JobRecord {
            peaks: BTreeMap::new(),
            ..record.clone()
        };
        assert_eq!(unmeasured.start_count(80 * MIB, 98 * MIB, 1, 8).0, 1);
        // Records written before the field existed read as before.
        let json = serde_json::to_string(&record)
            .unwrap()
            .replace(",\"held_threads\":2", "");
        let old: JobRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(old.held_threads, None);
    }

    #[test]
    fn the_spread_is_kept_with_the_line_it_was_measured_around() {
        let with = |marginal: Option<u64>| {
            JobRecord::after_run(
                "k",
                None,
                &Learned {
                    spread: Some(MIB),
                    ..learned(marginal, 100 * MIB, 4)
                },
                0,
            )
            .unwrap()
        };
        let record = with(Some(24 * MIB));
        assert_eq!(record.spread, Some(MIB));
        // peak ÷ workers is no line: a spread around it would mean nothing, and the spread
        // an earlier run measured is kept.
        assert_eq!(with(None).spread, None);
        let later = JobRecord::after_run("k", Some(&record), &learned(None, 100 * MIB, 4), 1);
        assert_eq!(later.and_then(|r| r.spread), Some(MIB));
        // Round trip, and records written before the field existed read as unmeasured.
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(serde_json::from_str::<JobRecord>(&json).unwrap(), record);
        let old: JobRecord =
            serde_json::from_str(&json.replace(&format!(",\"spread\":{MIB}"), "")).unwrap();
        assert_eq!(old.spread, None);
    }

    #[test]
    fn keys_name_the_command_and_folder_and_are_bounded() {
        let command = [OsString::from("make"), OsString::from("-j8")];
        assert_eq!(
            job_key(None, &command, Path::new("/src/app")),
            "make -j8 @ /src/app"
        );
        assert_eq!(
            job_key(Some("nightly"), &command, Path::new("/")),
            "nightly"
        );
        let long = "x".repeat(MAX_KEY_CHARS * 2);
        assert_eq!(
            job_key(Some(&long), &command, Path::new("/")).len(),
            MAX_KEY_CHARS
        );
        let name = file_name("make -j8 @ /src/app");
        assert_eq!(name.len(), 21);
        assert!(name.ends_with(".json") && name[..16].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(name, file_name("make -j8 @ /src/other"));
        assert_eq!(file_name("../../etc/passwd").len(), 21, "no path in a name");
    }
}
