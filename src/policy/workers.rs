//! What the policy learns per worker count: memory (for the marginal memory per worker)
//! and throughput (for preferring the fastest count).

use std::collections::BTreeMap;
use std::time::Duration;

/// Memory samples per worker count, for the least-squares marginal memory per worker.
#[derive(Debug, Clone, Default)]
pub(crate) struct WorkerMemory {
    /// Per count: number of samples and the sum of their memory in bytes.
    per_count: BTreeMap<u32, (u64, u128)>,
}

impl WorkerMemory {
    /// Records one settled sample of the job's memory at `threads` workers.
    pub fn record(&mut self, threads: u32, memory_bytes: u64) {
        let entry = self.per_count.entry(threads).or_insert((0, 0));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = entry.1.saturating_add(u128::from(memory_bytes));
    }

    /// Slope of memory against worker count, least squares over every recorded sample
    /// (computed from per-count means weighted by sample count, which is the same fit).
    /// `None` with fewer than two distinct counts, or when the slope is not positive (more
    /// workers using less memory means the samples say nothing about the cost of a worker).
    pub fn marginal(&self) -> Option<u64> {
        if self.per_count.len() < 2 {
            return None;
        }
        let points: Vec<(f64, f64, f64)> = self
            .per_count
            .iter()
            .map(|(&threads, &(count, sum))| {
                let weight = count as f64;
                (f64::from(threads), sum as f64 / weight, weight)
            })
            .collect();
        let total: f64 = points.iter().map(|p| p.2).sum();
        let mean_x = points.iter().map(|p| p.0 * p.2).sum::<f64>() / total;
        let mean_y = points.iter().map(|p| p.1 * p.2).sum::<f64>() / total;
        let sxx: f64 = points.iter().map(|p| p.2 * (p.0 - mean_x).powi(2)).sum();
        let sxy: f64 = points
            .iter()
            .map(|p| p.2 * (p.0 - mean_x) * (p.1 - mean_y))
            .sum();
        let slope = sxy / sxx;
        // Saturating float→int cast; NaN/∞ are filtered first.
        (slope.is_finite() && slope > 0.0).then(|| slope.round() as u64)
    }
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
    fn marginal_is_the_least_squares_slope() {
        let mut memory = WorkerMemory::default();
        assert_eq!(memory.marginal(), None);
        for _ in 0..5 {
            memory.record(2, 500);
        }
        assert_eq!(memory.marginal(), None, "one count is not enough");
        for _ in 0..3 {
            memory.record(3, 700);
        }
        memory.record(5, 1100);
        assert_eq!(memory.marginal(), Some(200));
    }

    #[test]
    fn marginal_ignores_falling_memory() {
        let mut memory = WorkerMemory::default();
        memory.record(2, 900);
        memory.record(4, 500);
        assert_eq!(memory.marginal(), None);
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
