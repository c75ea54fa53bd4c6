//! Leak trend: least-squares slope of memory over a time window, with its r².
//!
//! Samples live in a ring bounded by *time* (the window), not by count. The regression sums
//! are kept exactly in `i128` (time in milliseconds, memory in KiB, both capped), so adding
//! and removing samples costs O(1) per tick and never drifts the way running float sums do.

use std::collections::VecDeque;
use std::time::Duration;

use super::defaults::{LEAK_MAX_SAMPLES, LEAK_MIN_SAMPLES, MIB};
use super::format::{bytes, duration};
use super::observation::LeakVerdict;

/// Largest time kept, in milliseconds (about 35 years): keeps the sums inside `i128`.
const MAX_MILLIS: i128 = 1 << 40;
/// Largest memory kept, in KiB (1 PiB): keeps the sums inside `i128`.
const MAX_KIB: i128 = 1 << 40;

/// Leak-detection settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeakSettings {
    /// Time window of the fit.
    pub window: Duration,
    /// Growth over the window (bytes) that makes a leak suspect.
    pub growth: u64,
    /// Least r².
    pub min_fit: f64,
    /// Memory level the time-to-limit runs to.
    pub limit: u64,
}

/// Exact running sums of a least-squares fit of y (KiB) on t (ms).
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    count: i128,
    t: i128,
    y: i128,
    tt: i128,
    ty: i128,
    yy: i128,
}

impl Sums {
    fn add(&mut self, t: i128, y: i128, sign: i128) {
        self.count += sign;
        self.t += sign * t;
        self.y += sign * y;
        self.tt += sign * t * t;
        self.ty += sign * t * y;
        self.yy += sign * y * y;
    }
}

/// The time-bounded ring of memory samples and its regression sums.
#[derive(Debug, Clone)]
pub(crate) struct LeakDetector {
    settings: LeakSettings,
    samples: VecDeque<(i128, i128)>,
    sums: Sums,
}

impl LeakDetector {
    /// An empty detector.
    pub fn new(settings: LeakSettings) -> Self {
        Self {
            settings,
            samples: VecDeque::new(),
            sums: Sums::default(),
        }
    }

    /// Sets the memory level the time-to-limit runs to (the job's limit changed).
    pub fn set_limit(&mut self, limit: u64) {
        self.settings.limit = limit;
    }

    /// Adds the memory seen at `at` and drops samples older than the window.
    pub fn push(&mut self, at: Duration, memory_bytes: u64) {
        let t = i128::try_from(at.as_millis()).map_or(MAX_MILLIS, |t| t.min(MAX_MILLIS));
        let y = (i128::from(memory_bytes) / 1024).min(MAX_KIB);
        self.samples.push_back((t, y));
        self.sums.add(t, y, 1);
        let window = i128::try_from(self.settings.window.as_millis()).unwrap_or(MAX_MILLIS);
        while let Some(&(oldest_t, oldest_y)) = self.samples.front() {
            let too_old = t - oldest_t > window;
            if !(too_old || self.samples.len() > LEAK_MAX_SAMPLES) {
                break;
            }
            self.samples.pop_front();
            self.sums.add(oldest_t, oldest_y, -1);
        }
    }

    /// The fit over the current window, once there are enough samples spread over time.
    pub fn verdict(&self, current_memory: u64) -> Option<LeakVerdict> {
        let samples = self.samples.len();
        if samples < LEAK_MIN_SAMPLES {
            return None;
        }
        let Sums {
            count,
            t,
            y,
            tt,
            ty,
            yy,
        } = self.sums;
        // n² × variances/covariance, exact.
        let stt = count * tt - t * t;
        let sty = count * ty - t * y;
        let syy = count * yy - y * y;
        if stt <= 0 {
            return None;
        }
        // KiB per ms → bytes per second.
        let slope = sty as f64 / stt as f64 * 1024.0 * 1000.0;
        let r_squared = if syy <= 0 {
            0.0
        } else {
            let r = sty as f64 / ((stt as f64).sqrt() * (syy as f64).sqrt());
            (r * r).min(1.0)
        };
        let (first_t, last_t) = match (self.samples.front(), self.samples.back()) {
            (Some(first), Some(last)) => (first.0, last.0),
            _ => return None,
        };
        let span = Duration::from_millis(u64::try_from(last_t - first_t).unwrap_or(0));
        let window = self.settings.window;
        let growth_per_window = slope * window.as_secs_f64();
        let grows_enough = growth_per_window >= self.settings.growth as f64;
        let fits = r_squared >= self.settings.min_fit;
        let covered = span.as_secs_f64() * 2.0 >= window.as_secs_f64();
        let suspected = grows_enough && fits && covered;
        let mb_per_min = slope * 60.0 / MIB as f64;
        let time_to_limit = (slope > 0.0)
            .then(|| {
                let left = self.settings.limit.saturating_sub(current_memory) as f64;
                Duration::try_from_secs_f64(left / slope).ok()
            })
            .flatten();
        let fit = format!(
            "{mb_per_min:+.1} MiB/min (r² {r_squared:.2} over {}, {samples} samples)",
            duration(span)
        );
        let mut message = if suspected {
            format!("leak suspected: memory grows {fit}")
        } else {
            let mut failed = Vec::new();
            if !grows_enough {
                failed.push(format!(
                    "growth {} per {} < {}",
                    bytes(growth_per_window.max(0.0) as u64),
                    duration(window),
                    bytes(self.settings.growth)
                ));
            }
            if !fits {
                failed.push(format!(
                    "fit r² {r_squared:.2} < {:.2}",
                    self.settings.min_fit
                ));
            }
            if !covered {
                failed.push(format!(
                    "{} of the {} window covered, need half",
                    duration(span),
                    duration(window)
                ));
            }
            format!("no leak: {fit}; {}", failed.join(", "))
        };
        if let Some(left) = time_to_limit {
            message = format!(
                "{message}; {} reached in {} at this rate",
                bytes(self.settings.limit),
                duration(left)
            );
        }
        Some(LeakVerdict {
            slope_bytes_per_sec: slope,
            mb_per_min,
            r_squared,
            window: span,
            samples,
            time_to_limit,
            suspected,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detector(window_secs: u64) -> LeakDetector {
        LeakDetector::new(LeakSettings {
            window: Duration::from_secs(window_secs),
            growth: 100 * MIB,
            min_fit: 0.8,
            limit: 4096 * MIB,
        })
    }

    #[test]
    fn exact_line_gives_exact_slope_and_fit() {
        let mut leak = detector(600);
        // 1 MiB per second = 60 MiB/min.
        for s in 0..=600u64 {
            leak.push(Duration::from_secs(s), 1024 * MIB + s * MIB);
        }
        let verdict = leak.verdict(1624 * MIB).unwrap();
        assert!((verdict.mb_per_min - 60.0).abs() < 1e-9, "{verdict:?}");
        assert!((verdict.r_squared - 1.0).abs() < 1e-12);
        assert_eq!(verdict.samples, 601);
        assert_eq!(verdict.window, Duration::from_secs(600));
        assert!(verdict.suspected);
        // (4096 − 1624) MiB at 1 MiB/s.
        assert_eq!(verdict.time_to_limit, Some(Duration::from_secs(2472)));
        assert!(verdict
            .message
            .starts_with("leak suspected: memory grows +60.0 MiB/min"));
    }

    #[test]
    fn window_is_kept_by_time_not_count() {
        let mut leak = detector(60);
        for s in 0..1000u64 {
            leak.push(Duration::from_secs(s), MIB);
        }
        assert_eq!(leak.samples.len(), 61);
        let verdict = leak.verdict(MIB).unwrap();
        assert_eq!(verdict.slope_bytes_per_sec, 0.0);
        assert_eq!(verdict.r_squared, 0.0);
        assert_eq!(verdict.time_to_limit, None);
        assert!(!verdict.suspected);
    }

    #[test]
    fn too_little_coverage_is_no_leak() {
        let mut leak = detector(600);
        for s in 0..200u64 {
            leak.push(Duration::from_secs(s), s * 10 * MIB);
        }
        let verdict = leak.verdict(2000 * MIB).unwrap();
        assert!(!verdict.suspected);
        assert!(
            verdict.message.contains("window covered, need half"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn few_samples_give_no_verdict() {
        let mut leak = detector(600);
        for s in 0..5u64 {
            leak.push(Duration::from_secs(s), s * MIB);
        }
        assert!(leak.verdict(0).is_none());
    }

    #[test]
    fn huge_values_do_not_overflow() {
        let mut leak = detector(600);
        for s in 0..100u64 {
            leak.push(Duration::from_secs(u64::MAX / 2 + s), u64::MAX - s);
        }
        let _ = leak.verdict(u64::MAX);
    }
}
