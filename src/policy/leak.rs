//! Leak trend: least-squares slope of memory over a time window, with its r², and the one
//! rule ([`LeakRule`]) that says when a trend is a suspected leak — for the whole job here,
//! and for each stage in [`crate::report::stages`].
//!
//! Samples live in a ring bounded by *time* (the window), not by count. The fit is
//! [`MemoryTrend`]: exact sums in `i128` (time in milliseconds, memory in KiB, both capped),
//! so adding and removing samples costs O(1) per tick and never drifts.

use std::collections::VecDeque;
use std::time::Duration;

use super::config::PolicyConfig;
use super::defaults::{
    LEAK_GROWTH, LEAK_MAX_SAMPLES, LEAK_MIN_FIT, LEAK_MIN_SAMPLES, LEAK_WINDOW, MIB,
};
use super::fit::LineFit;
use super::format::{bytes, duration};
use super::observation::LeakVerdict;

/// Largest time kept, in milliseconds (about 35 years): keeps the sums inside `i128`.
const MAX_MILLIS: i128 = 1 << 40;
/// Largest memory kept, in KiB (1 PiB): keeps the sums inside `i128`.
const MAX_KIB: i128 = 1 << 40;

/// When a memory trend counts as a suspected leak: it is fitted from at least
/// [`LEAK_MIN_SAMPLES`] samples covering at least half the `window`, extrapolated over the
/// `window` it grows by `growth` or more, and the fit's r² is at least `min_fit`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LeakRule {
    /// Growth over `window` (bytes) that makes a leak suspect.
    pub growth: u64,
    /// The window the trend is extrapolated over; at least half of it must be covered.
    #[serde(with = "crate::units::serde_secs")]
    pub window: Duration,
    /// Least r² of the fit.
    pub min_fit: f64,
}

impl Default for LeakRule {
    /// The original's rule: 800 MiB over 15 minutes, r² ≥ 0.8.
    fn default() -> Self {
        Self {
            growth: LEAK_GROWTH,
            window: LEAK_WINDOW,
            min_fit: LEAK_MIN_FIT,
        }
    }
}

/// Which parts of the [`LeakRule`] a trend meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeakCheck {
    /// Extrapolated over the window, it grows by the rule's growth or more.
    pub grows_enough: bool,
    /// Its r² is at least the rule's.
    pub fits: bool,
    /// Its samples cover at least half the window, and there are enough of them.
    pub covered: bool,
}

impl LeakCheck {
    /// All of it: a suspected leak.
    pub fn suspected(&self) -> bool {
        self.grows_enough && self.fits && self.covered
    }
}

impl LeakRule {
    /// The rule the policy uses for the whole job.
    pub fn from_config(config: &PolicyConfig) -> Self {
        Self {
            growth: config.leak_growth,
            window: config.leak_window,
            min_fit: config.leak_min_fit,
        }
    }

    /// Checks a trend of `slope` bytes per second with fit `r_squared`, fitted from
    /// `samples` samples spread over `span`.
    pub fn check(&self, slope: f64, r_squared: f64, span: Duration, samples: usize) -> LeakCheck {
        LeakCheck {
            grows_enough: slope * self.window.as_secs_f64() >= self.growth as f64,
            fits: r_squared >= self.min_fit,
            covered: samples >= LEAK_MIN_SAMPLES
                && span.as_secs_f64() * 2.0 >= self.window.as_secs_f64(),
        }
    }
}

/// Leak-detection settings: the rule, and the level the time-to-limit runs to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeakSettings {
    /// When a trend is a suspected leak.
    pub rule: LeakRule,
    /// Memory level the time-to-limit runs to.
    pub limit: u64,
}

/// Memory over time, fitted by least squares: time in milliseconds and memory in KiB (both
/// capped) into exact least-squares sums.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryTrend {
    fit: LineFit,
}

impl MemoryTrend {
    /// Adds the memory seen at `at`.
    pub fn add(&mut self, at: Duration, memory_bytes: u64) {
        let (t, y) = trend_point(at, memory_bytes);
        self.fit.add(t, y);
    }

    /// Takes back a sample added before (a sliding window).
    pub fn remove(&mut self, at: Duration, memory_bytes: u64) {
        let (t, y) = trend_point(at, memory_bytes);
        self.fit.remove(t, y);
    }

    /// How many samples are in.
    pub fn samples(&self) -> usize {
        self.fit.count()
    }

    /// The slope in bytes per second and the fit's r², once two samples are spread over time.
    pub fn line(&self) -> Option<(f64, f64)> {
        // KiB per ms → bytes per second.
        self.fit
            .line()
            .map(|(slope, r_squared)| (slope * 1024.0 * 1000.0, r_squared))
    }
}

/// A sample as a point of the fit: milliseconds and KiB, capped to keep the sums in `i128`.
fn trend_point(at: Duration, memory_bytes: u64) -> (i128, i128) {
    let t = i128::try_from(at.as_millis()).map_or(MAX_MILLIS, |t| t.min(MAX_MILLIS));
    let y = (i128::from(memory_bytes) / 1024).min(MAX_KIB);
    (t, y)
}

/// The time-bounded ring of memory samples and its regression sums.
#[derive(Debug, Clone)]
pub(crate) struct LeakDetector {
    settings: LeakSettings,
    samples: VecDeque<(Duration, u64)>,
    trend: MemoryTrend,
}

impl LeakDetector {
    /// An empty detector.
    pub fn new(settings: LeakSettings) -> Self {
        Self {
            settings,
            samples: VecDeque::new(),
            trend: MemoryTrend::default(),
        }
    }

    /// Sets the memory level the time-to-limit runs to (the job's limit changed).
    pub fn set_limit(&mut self, limit: u64) {
        self.settings.limit = limit;
    }

    /// Adds the memory seen at `at` and drops samples older than the window.
    pub fn push(&mut self, at: Duration, memory_bytes: u64) {
        self.samples.push_back((at, memory_bytes));
        self.trend.add(at, memory_bytes);
        let (newest, _) = trend_point(at, 0);
        let window = i128::try_from(self.settings.rule.window.as_millis()).unwrap_or(MAX_MILLIS);
        while let Some(&(oldest_at, oldest_bytes)) = self.samples.front() {
            let (oldest, _) = trend_point(oldest_at, 0);
            let too_old = newest - oldest > window;
            if !(too_old || self.samples.len() > LEAK_MAX_SAMPLES) {
                break;
            }
            self.samples.pop_front();
            self.trend.remove(oldest_at, oldest_bytes);
        }
    }

    /// The fit over the current window, once there are enough samples spread over time.
    pub fn verdict(&self, current_memory: u64) -> Option<LeakVerdict> {
        let samples = self.samples.len();
        if samples < LEAK_MIN_SAMPLES {
            return None;
        }
        let (slope, r_squared) = self.trend.line()?;
        let (first_t, last_t) = match (self.samples.front(), self.samples.back()) {
            (Some(first), Some(last)) => (trend_point(first.0, 0).0, trend_point(last.0, 0).0),
            _ => return None,
        };
        let span = Duration::from_millis(u64::try_from(last_t - first_t).unwrap_or(0));
        let rule = self.settings.rule;
        let window = rule.window;
        let growth_per_window = slope * window.as_secs_f64();
        let check = rule.check(slope, r_squared, span, samples);
        let suspected = check.suspected();
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
            if !check.grows_enough {
                failed.push(format!(
                    "growth {} per {} < {}",
                    bytes(growth_per_window.max(0.0) as u64),
                    duration(window),
                    bytes(rule.growth)
                ));
            }
            if !check.fits {
                failed.push(format!("fit r² {r_squared:.2} < {:.2}", rule.min_fit));
            }
            if !check.covered {
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
            rule: LeakRule {
                window: Duration::from_secs(window_secs),
                growth: 100 * MIB,
                min_fit: 0.8,
            },
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
