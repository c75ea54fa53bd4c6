//! What the policy learns per worker count: memory (for the marginal memory per worker)
//! and throughput (for preferring the fastest count).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::defaults;
use super::fit::LineFit;

/// Largest peak the marginal fit takes, bytes (256 TiB).
const MAX_PEAK: u64 = 1 << 48;

/// Recent memory samples per worker count, for the least-squares marginal memory per
/// worker. Only the last [`defaults::WORKER_MEMORY_WINDOW`] is kept, so a job whose tasks
/// change (light models first, heavy ones later) is judged by what its workers cost now.
#[derive(Debug, Clone, Default)]
pub(crate) struct WorkerMemory {
    /// (time, worker count, memory in bytes), oldest first.
    samples: VecDeque<(Duration, u32, u64)>,
    /// The highest settled memory at each count over the whole run (every phase), for the
    /// job's history: what a count cost at its heaviest, not only in the last window.
    run_peaks: BTreeMap<u32, u64>,
}

/// Most counts [`WorkerMemory::run_peaks`] keeps (the lowest ones), so a hostile count
/// cannot grow it without bound.
const MAX_RUN_PEAK_COUNTS: usize = 256;

impl WorkerMemory {
    /// Records one settled sample of the job's memory at `threads` workers, taken at `at`.
    pub fn record(&mut self, at: Duration, threads: u32, memory_bytes: u64) {
        let peak = self.run_peaks.entry(threads).or_insert(memory_bytes);
        *peak = (*peak).max(memory_bytes);
        if self.run_peaks.len() > MAX_RUN_PEAK_COUNTS {
            self.run_peaks.pop_last();
        }
        let window = defaults::WORKER_MEMORY_WINDOW;
        while self
            .samples
            .front()
            .is_some_and(|&(then, _, _)| at.saturating_sub(then) > window)
        {
            self.samples.pop_front();
        }
        // Samples closer together than the resolution (wakeups near a level come every
        // 10 ms) share one entry holding their highest memory: peaks stay exact, and the
        // fits below stay cheap.
        if let Some(last) = self.samples.back_mut() {
            if last.1 == threads && at.saturating_sub(last.0) < defaults::WORKER_MEMORY_RESOLUTION {
                last.2 = last.2.max(memory_bytes);
                return;
            }
        }
        if self.samples.len() >= defaults::WORKER_MEMORY_MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((at, threads, memory_bytes));
    }

    /// The highest settled memory at each count over the whole run.
    pub fn run_peaks(&self) -> &BTreeMap<u32, u64> {
        &self.run_peaks
    }

    /// Highest settled memory at `threads` workers sampled in `from..until`.
    pub fn peak(&self, threads: u32, from: Duration, until: Duration) -> Option<u64> {
        self.samples
            .iter()
            .rev()
            .skip_while(|&&(at, _, _)| at >= until)
            .take_while(|&&(at, _, _)| at >= from)
            .filter(|&&(_, count, _)| count == threads)
            .map(|&(_, _, memory)| memory)
            .max()
    }

    /// Slope of the peak memory against worker count: least squares over each recent
    /// count's highest sample. Peaks, not means, because growth is judged by the peak (all
    /// workers holding their memory at once) and means understate a pool whose workers
    /// spend part of the time between tasks. `None` with fewer than two distinct counts, or
    /// when the slope is not positive (more workers using less memory says nothing about
    /// the cost of a worker).
    pub fn marginal(&self) -> Option<u64> {
        self.fit_since(Duration::ZERO).map(|fit| fit.slope)
    }

    /// How far the peak at `threads` workers moves from one `width` of time to the next
    /// over `from..until` (the highest less the lowest of the peaks of consecutive windows
    /// of `width`, counted back from `until`); `None` with fewer than two windows sampled.
    pub fn peak_spread(
        &self,
        threads: u32,
        from: Duration,
        until: Duration,
        width: Duration,
    ) -> Option<u64> {
        let peaks = self.window_peaks(threads, from, until, width)?;
        let highest = peaks.values().max()?;
        let lowest = peaks.values().min()?;
        (peaks.len() >= 2).then(|| highest - lowest)
    }

    /// The peak at `threads` workers in each `width` of time over `from..until`, keyed by
    /// how many widths before `until` it lies (so the latest window comes first); `None`
    /// for a zero width.
    fn window_peaks(
        &self,
        threads: u32,
        from: Duration,
        until: Duration,
        width: Duration,
    ) -> Option<BTreeMap<u128, u64>> {
        if width.is_zero() {
            return None;
        }
        let mut peaks: BTreeMap<u128, u64> = BTreeMap::new();
        for &(at, count, memory) in &self.samples {
            if count != threads || at < from || at >= until {
                continue;
            }
            let window = until.saturating_sub(at).as_nanos() / width.as_nanos();
            let peak = peaks.entry(window).or_insert(memory);
            *peak = (*peak).max(memory);
        }
        Some(peaks)
    }

    /// How far the peak at `threads` workers in a typical `width` of time over
    /// `from..until` lies below its highest: the highest window peak less the median one
    /// (the upper middle); 0 with fewer than two windows. The median, so that a few low
    /// windows — a pool starting its first tasks or draining its last — are not taken for
    /// scatter, while tasks of varying size, which move most windows, are.
    fn peak_shortfall(
        &self,
        threads: u32,
        from: Duration,
        until: Duration,
        width: Duration,
    ) -> u64 {
        let Some(peaks) = self.window_peaks(threads, from, until, width) else {
            return 0;
        };
        let mut sorted: Vec<u64> = peaks.into_values().collect();
        sorted.sort_unstable();
        match (sorted.get(sorted.len() / 2), sorted.last()) {
            (Some(median), Some(highest)) if sorted.len() >= 2 => highest - median,
            _ => 0,
        }
    }

    /// How far the job's memory per worker strays, bytes: the largest of the fit's residual
    /// over the window's counts and of how far each count's typical peak per `width` of
    /// time lies below its highest ([`peak_shortfall`](Self::peak_shortfall)) up to
    /// `until`; `None` until two counts give a line.
    pub fn window_spread(&self, until: Duration, width: Duration) -> Option<u64> {
        let fit = self.fit_since(Duration::ZERO)?;
        let counts: std::collections::BTreeSet<u32> = self
            .samples
            .iter()
            .map(|&(_, threads, _)| threads)
            .collect();
        let short = counts
            .into_iter()
            .map(|threads| self.peak_shortfall(threads, Duration::ZERO, until, width))
            .max()
            .unwrap_or(0);
        Some(fit.residual.max(short))
    }

    /// How many distinct worker counts were sampled at `from` or later.
    pub fn counts_since(&self, from: Duration) -> usize {
        let mut counts: Vec<u32> = self
            .samples
            .iter()
            .filter(|&&(at, _, _)| at >= from)
            .map(|&(_, threads, _)| threads)
            .collect();
        counts.sort_unstable();
        counts.dedup();
        counts.len()
    }

    /// The line through each count's peak over the samples taken at `from` or later: its
    /// slope (the marginal memory per worker) and how far the peaks lie from it.
    pub fn fit_since(&self, from: Duration) -> Option<MarginalFit> {
        let mut peaks: BTreeMap<u32, u64> = BTreeMap::new();
        for &(_, threads, memory) in self.samples.iter().filter(|&&(at, _, _)| at >= from) {
            let peak = peaks.entry(threads).or_insert(memory);
            *peak = (*peak).max(memory);
        }
        let mut fit = LineFit::default();
        for (&threads, &peak) in &peaks {
            // Capped at 256 TiB, and one point per count in the window: the sums of
            // squares stay well inside i128.
            fit.add(i128::from(threads), i128::from(peak.min(MAX_PEAK)));
        }
        let (slope, _) = fit.line()?;
        if !(slope.is_finite() && slope > 0.0) {
            return None;
        }
        let count = peaks.len() as f64;
        let mean_threads = peaks.keys().map(|&t| f64::from(t)).sum::<f64>() / count;
        let mean_peak = peaks.values().map(|&p| p.min(MAX_PEAK) as f64).sum::<f64>() / count;
        let residual = peaks
            .iter()
            .map(|(&threads, &peak)| {
                let line = mean_peak + slope * (f64::from(threads) - mean_threads);
                (peak.min(MAX_PEAK) as f64 - line).abs()
            })
            .fold(0.0, f64::max);
        // Saturating float→int casts; NaN/∞ were filtered above.
        Some(MarginalFit {
            slope: slope.round() as u64,
            residual: residual.round() as u64,
            counts: peaks.len(),
        })
    }
}

/// The marginal memory per worker and how well the counts' peaks follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MarginalFit {
    /// Bytes one more worker adds to the peak (least squares over the counts' peaks).
    pub slope: u64,
    /// The largest distance of a count's peak from the line, bytes (0 with two counts).
    pub residual: u64,
    /// Distinct counts the line was fitted over.
    pub counts: usize,
}

impl MarginalFit {
    /// Whether `spread` bytes of scatter around the line still make the job's memory per
    /// worker predictable ([`defaults::PREDICTABLE_SPREAD`] of one worker's memory).
    pub fn predictable_with(&self, spread: u64) -> bool {
        predictable(self.slope, spread)
    }
}

/// Whether memory per worker of `per_worker` bytes that strays by `spread` bytes is
/// predictable: the spread within [`defaults::PREDICTABLE_SPREAD`] of one worker's memory.
pub(crate) fn predictable(per_worker: u64, spread: u64) -> bool {
    spread as f64 <= per_worker as f64 * defaults::PREDICTABLE_SPREAD
}

/// The margin a plan to the limit keeps free for memory per worker of `per_worker` bytes
/// that strays by `spread` bytes: one worker's memory, or [`defaults::MARGIN_SPREADS`]
/// times the spread if more ([`super::PolicyConfig::limit_plan`] adds the hysteresis share).
pub(crate) fn learned_margin(per_worker: u64, spread: u64) -> u64 {
    per_worker.max(spread.saturating_mul(defaults::MARGIN_SPREADS))
}

/// Work done per worker count, from the job's cumulative progress units.
#[derive(Debug, Clone, Default)]
pub(crate) struct Throughput {
    /// Per count: units done and the time they took.
    per_count: BTreeMap<u32, (u128, Duration)>,
}

/// A measured worker count and its throughput.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    /// Worker count.
    pub threads: u32,
    /// Units per second.
    pub units_per_sec: f64,
}

impl Throughput {
    /// Records `units` done in `elapsed` at `threads` workers.
    pub fn record(&mut self, threads: u32, units: u64, elapsed: Duration) {
        let entry = self.per_count.entry(threads).or_insert((0, Duration::ZERO));
        entry.0 = entry.0.saturating_add(u128::from(units));
        entry.1 = entry.1.saturating_add(elapsed);
    }

    /// Throughput of `threads`, if it was measured for at least `min_span`.
    pub fn rate(&self, threads: u32, min_span: Duration) -> Option<Rate> {
        let &(units, time) = self.per_count.get(&threads)?;
        (time >= min_span && !time.is_zero()).then(|| Rate {
            threads,
            units_per_sec: units as f64 / time.as_secs_f64(),
        })
    }

    /// Units per second of every count measured for at least `min_span`.
    pub fn rates(&self, min_span: Duration) -> BTreeMap<u32, f64> {
        self.per_count
            .keys()
            .filter_map(|&threads| self.rate(threads, min_span))
            .map(|rate| (rate.threads, rate.units_per_sec))
            .collect()
    }

    /// The fastest measured count (the fewest workers among equals).
    pub fn best(&self, min_span: Duration) -> Option<Rate> {
        self.per_count
            .keys()
            .filter_map(|&threads| self.rate(threads, min_span))
            .fold(None, |best: Option<Rate>, rate| match best {
                Some(best) if best.units_per_sec >= rate.units_per_sec => Some(best),
                _ => Some(rate),
            })
    }

    /// A measured count in `(best, up_to]` that is slower than the best, if any: growing to
    /// `up_to` would go past it. Returns that count's rate and the best one.
    pub fn slower_on_the_way(&self, up_to: u32, min_span: Duration) -> Option<(Rate, Rate)> {
        let best = self.best(min_span)?;
        if best.threads >= up_to {
            return None;
        }
        self.per_count
            .range(best.threads.saturating_add(1)..=up_to)
            .filter_map(|(&threads, _)| self.rate(threads, min_span))
            .find(|rate| rate.units_per_sec < best.units_per_sec)
            .map(|rate| (rate, best))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marginal_is_the_least_squares_slope_of_the_peaks() {
        let mut memory = WorkerMemory::default();
        assert_eq!(memory.marginal(), None);
        let second = Duration::from_secs;
        // Two workers: between tasks 300, both busy 500.
        for (at, bytes) in [(0, 300), (1, 500), (2, 400), (3, 500), (4, 300)] {
            memory.record(second(at), 2, bytes);
        }
        assert_eq!(memory.marginal(), None, "one count is not enough");
        for (at, bytes) in [(5, 700), (6, 450), (7, 600)] {
            memory.record(second(at), 3, bytes);
        }
        memory.record(second(8), 5, 1100);
        // Peaks 500, 700, 1100 at 2, 3, 5 workers: 200 per worker (the means would say 170).
        assert_eq!(memory.marginal(), Some(200));
        let end = second(9);
        assert_eq!(memory.peak(2, Duration::ZERO, end), Some(500));
        assert_eq!(memory.peak(2, second(2), end), Some(500));
        assert_eq!(memory.peak(2, second(4), end), Some(300));
        assert_eq!(memory.peak(2, second(5), end), None);
        assert_eq!(memory.peak(3, second(6), end), Some(600));
        assert_eq!(memory.peak(3, second(5), second(7)), Some(700));
        assert_eq!(memory.peak(2, Duration::ZERO, second(1)), Some(300));
    }

    #[test]
    fn close_samples_share_one_entry_with_their_peak() {
        let mut memory = WorkerMemory::default();
        for millis in (0..1000).step_by(10) {
            memory.record(Duration::from_millis(millis), 2, 100 + millis);
        }
        let resolution = defaults::WORKER_MEMORY_RESOLUTION.as_millis() as usize;
        assert_eq!(memory.samples.len(), 1000 / resolution);
        assert_eq!(
            memory.peak(2, Duration::ZERO, Duration::from_secs(1)),
            Some(1090)
        );
        // A change of count starts a new entry at once.
        memory.record(Duration::from_millis(995), 3, 50);
        assert_eq!(
            memory.peak(3, Duration::ZERO, Duration::from_secs(1)),
            Some(50)
        );
    }

    #[test]
    fn run_peaks_keep_each_counts_heaviest_sample_beyond_the_window() {
        let mut memory = WorkerMemory::default();
        memory.record(Duration::from_secs(1), 3, 30);
        memory.record(Duration::from_secs(2), 3, 90);
        memory.record(Duration::from_secs(3), 2, 40);
        let late = defaults::WORKER_MEMORY_WINDOW * 3;
        memory.record(late, 3, 50);
        assert_eq!(memory.peak(3, Duration::ZERO, Duration::MAX), Some(50));
        assert_eq!(
            memory
                .run_peaks()
                .iter()
                .map(|(&k, &v)| (k, v))
                .collect::<Vec<_>>(),
            vec![(2, 40), (3, 90)]
        );
    }

    #[test]
    fn marginal_forgets_samples_older_than_the_window() {
        // Light workers (100 per worker) long ago, heavy ones (400 per worker) now.
        let mut memory = WorkerMemory::default();
        let window = defaults::WORKER_MEMORY_WINDOW;
        memory.record(Duration::ZERO, 4, 450);
        memory.record(Duration::from_secs(1), 8, 850);
        assert_eq!(memory.marginal(), Some(100));
        let later = window + Duration::from_secs(10);
        memory.record(later, 1, 450);
        memory.record(later + Duration::from_secs(1), 2, 850);
        assert_eq!(
            memory.marginal(),
            Some(400),
            "the light samples are forgotten"
        );
    }

    #[test]
    fn marginal_ignores_falling_memory() {
        let mut memory = WorkerMemory::default();
        memory.record(Duration::ZERO, 2, 900);
        memory.record(Duration::from_secs(1), 4, 500);
        assert_eq!(memory.marginal(), None);
    }

    #[test]
    fn the_window_spread_takes_scatter_not_a_pool_starting_or_draining() {
        let secs = Duration::from_secs;
        let spread_of = |at_four: &[u64]| {
            let mut memory = WorkerMemory::default();
            for second in 0..6 {
                memory.record(secs(second), 2, 200);
            }
            for (i, &peak) in at_four.iter().enumerate() {
                memory.record(secs(6 + i as u64), 4, peak);
            }
            let until = secs(6 + at_four.len() as u64);
            memory.window_spread(until, secs(3))
        };
        // Windows of 3 s are counted back from the end. Starting (50), steady at 400, then
        // the last tasks end (300, 200, 100): windows [50] [400 400 400] [400 400 300]
        // [200 100] peak at 50, 400, 400, 200: no scatter.
        assert_eq!(
            spread_of(&[50, 400, 400, 400, 400, 400, 300, 200, 100]),
            Some(0)
        );
        // Tasks of varying size: windows [300] [420 380 390] [250 240 200] [280 260]
        // peak at 300, 420, 250, 280; the median (upper middle) 300 is 120 below 420.
        assert_eq!(
            spread_of(&[300, 420, 380, 390, 250, 240, 200, 280, 260]),
            Some(120)
        );
        // One count only: no line, no spread.
        let mut alone = WorkerMemory::default();
        alone.record(secs(0), 2, 200);
        alone.record(secs(5), 2, 900);
        assert_eq!(alone.window_spread(secs(6), secs(3)), None);
    }

    #[test]
    fn best_and_slower_counts() {
        let span = Duration::from_secs(10);
        let mut throughput = Throughput::default();
        throughput.record(2, 200, Duration::from_secs(10));
        throughput.record(3, 270, Duration::from_secs(10));
        throughput.record(4, 250, Duration::from_secs(10));
        throughput.record(5, 1000, Duration::from_secs(1)); // too short to count
        let best = throughput.best(span).unwrap();
        assert_eq!(best.threads, 3);
        assert!((best.units_per_sec - 27.0).abs() < 1e-9);
        assert_eq!(throughput.slower_on_the_way(3, span), None);
        let (slower, best) = throughput.slower_on_the_way(5, span).unwrap();
        assert_eq!((slower.threads, best.threads), (4, 3));
        assert_eq!(throughput.rate(5, span), None);
    }
}
