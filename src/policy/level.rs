//! Pressure levels and the per-signal state machine that enters them after a grace period
//! and leaves them with hysteresis after a transition period.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::format::{bytes, duration};

/// How bad things are on one signal, or overall (the maximum of the signals).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Below every threshold (or not yet long enough above one).
    #[default]
    Normal,
    /// Above the moderate threshold: one worker fewer per cooldown for PSI; for memory only
    /// reported (growth aims at the high level).
    Moderate,
    /// Above the high threshold: two workers fewer per cooldown.
    High,
    /// Above the critical threshold: sequential fallback at once.
    Critical,
}

impl Level {
    /// The three levels that have a threshold, lowest first (index 0..3 of threshold arrays).
    pub const RAISED: [Level; 3] = [Level::Moderate, Level::High, Level::Critical];

    /// Lowercase name, as shown in logs and serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Normal => "normal",
            Level::Moderate => "moderate",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// How a signal's values are shown in reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Bytes, shown as "3.1G".
    Bytes,
    /// Percent, shown as "96%".
    Percent,
}

impl Unit {
    fn show(self, value: f64) -> String {
        match self {
            // Saturating float→int cast: values come from u64 in the first place.
            Unit::Bytes => bytes(value as u64),
            Unit::Percent => format!("{value:.1}%"),
        }
    }
}

/// The timing rules shared by every tracker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// How long a value must stay at or above a threshold before the level is entered.
    pub grace: Duration,
    /// Fraction below a threshold that counts as "below" for leaving.
    pub hysteresis: f64,
    /// How long the value must stay below threshold × (1 − hysteresis) to leave.
    pub transition: Duration,
}

/// State of one threshold of one signal.
#[derive(Debug, Clone, Copy, Default)]
struct Stage {
    /// The level of this threshold is in force.
    active: bool,
    /// Since when the value has been at or above the threshold, without a break.
    above_since: Option<Duration>,
    /// Since when the value has been below threshold × (1 − hysteresis), without a break.
    below_since: Option<Duration>,
}

/// Level state machine of one signal (memory bytes, CPU %, one PSI avg10).
///
/// Each of the three thresholds has its own on/off state: it turns on once the value has
/// been at or above it for the grace period (critical at once when `immediate_critical`),
/// turning on every lower one with it, and off once the value has been below
/// threshold × (1 − hysteresis) for the transition period. The level is the highest that
/// is on. A missing value (`None`) changes nothing: the timers keep their start times.
#[derive(Debug, Clone)]
pub(crate) struct LevelTracker {
    name: &'static str,
    unit: Unit,
    thresholds: [Option<f64>; 3],
    immediate_critical: bool,
    stages: [Stage; 3],
    value: Option<f64>,
}

impl LevelTracker {
    /// A tracker named `name` (used in reasons) with thresholds for moderate/high/critical;
    /// `None` thresholds are off.
    pub fn new(
        name: &'static str,
        unit: Unit,
        thresholds: [Option<f64>; 3],
        immediate_critical: bool,
    ) -> Self {
        Self {
            name,
            unit,
            thresholds,
            immediate_critical,
            stages: [Stage::default(); 3],
            value: None,
        }
    }

    /// The thresholds for moderate, high and critical (`None`: off).
    pub fn thresholds(&self) -> [Option<f64>; 3] {
        self.thresholds
    }

    /// Replaces the thresholds (the job's limit changed); the levels' timers are kept, so a
    /// level that still holds under the new thresholds stays entered.
    pub fn set_thresholds(&mut self, thresholds: [Option<f64>; 3]) {
        self.thresholds = thresholds;
    }

    /// Feeds the value observed at `at`; non-finite values count as missing.
    pub fn update(&mut self, at: Duration, value: Option<f64>, timing: Timing) {
        let Some(value) = value.filter(|value| value.is_finite()) else {
            return;
        };
        self.value = Some(value);
        for index in 0..self.stages.len() {
            let Some(threshold) = self.thresholds[index] else {
                continue;
            };
            if value >= threshold {
                let stage = &mut self.stages[index];
                let since = *stage.above_since.get_or_insert(at);
                stage.below_since = None;
                let immediate = index == 2 && self.immediate_critical;
                if !stage.active && (immediate || at.saturating_sub(since) >= timing.grace) {
                    for lower in &mut self.stages[..=index] {
                        lower.active = true;
                        lower.below_since = None;
                    }
                }
            } else {
                let stage = &mut self.stages[index];
                stage.above_since = None;
                if value < threshold * (1.0 - timing.hysteresis) {
                    let since = *stage.below_since.get_or_insert(at);
                    if stage.active && at.saturating_sub(since) >= timing.transition {
                        stage.active = false;
                    }
                } else {
                    stage.below_since = None;
                }
            }
        }
    }

    /// Whether nothing is in force nor on its way: no threshold's level is on and the last
    /// value was under every threshold.
    pub fn is_quiet(&self) -> bool {
        self.stages
            .iter()
            .all(|stage| !stage.active && stage.above_since.is_none())
    }

    /// The level in force.
    pub fn level(&self) -> Level {
        self.stages
            .iter()
            .zip(Level::RAISED)
            .rev()
            .find(|(stage, _)| stage.active)
            .map_or(Level::Normal, |(_, level)| level)
    }

    /// Why the tracker is at its level, e.g. "memory 3.1G ≥ high 3.0G for 2s" or
    /// "memory 2.9G, still high until below 2.8G for 10s".
    pub fn describe(&self, at: Duration, timing: Timing) -> String {
        let value = self
            .value
            .map_or_else(|| "n/a".to_owned(), |v| self.unit.show(v));
        let level = self.level();
        let Some(index) = level_index(level) else {
            return format!("{} {value}", self.name);
        };
        let stage = self.stages[index];
        let threshold = self.thresholds[index].unwrap_or(f64::NAN);
        let shown_threshold = self.unit.show(threshold);
        if let Some(since) = stage.above_since {
            let held = at.saturating_sub(since);
            if held.is_zero() {
                return format!("{} {value} ≥ {level} {shown_threshold}", self.name);
            }
            return format!(
                "{} {value} ≥ {level} {shown_threshold} for {}",
                self.name,
                duration(held)
            );
        }
        let release = self.unit.show(threshold * (1.0 - timing.hysteresis));
        match stage.below_since {
            Some(since) => format!(
                "{} {value}, still {level}: below {release} for {} of {}",
                self.name,
                duration(at.saturating_sub(since)),
                duration(timing.transition)
            ),
            None => format!(
                "{} {value}, still {level} until below {release} for {}",
                self.name,
                duration(timing.transition)
            ),
        }
    }

    /// A higher level the value is above but whose grace has not run out, described
    /// ("memory 3.1G ≥ high 3.0G for 1s of 2s grace"), if any.
    pub fn describe_pending(&self, at: Duration, timing: Timing) -> Option<String> {
        let current = self.level();
        let (index, stage) = self
            .stages
            .iter()
            .enumerate()
            .rev()
            .find(|(index, stage)| {
                !stage.active && stage.above_since.is_some() && Level::RAISED[*index] > current
            })?;
        let since = stage.above_since?;
        let value = self.value.map_or(f64::NAN, |v| v);
        Some(format!(
            "{} {} ≥ {} {} for {} of {} grace",
            self.name,
            self.unit.show(value),
            Level::RAISED[index],
            self.unit.show(self.thresholds[index].unwrap_or(f64::NAN)),
            duration(at.saturating_sub(since)),
            duration(timing.grace)
        ))
    }
}

/// Index of a raised level in threshold arrays; `None` for normal.
fn level_index(level: Level) -> Option<usize> {
    Level::RAISED.iter().position(|raised| *raised == level)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: Timing = Timing {
        grace: Duration::from_secs(2),
        hysteresis: 0.05,
        transition: Duration::from_secs(10),
    };

    fn tracker(immediate: bool) -> LevelTracker {
        LevelTracker::new(
            "memory",
            Unit::Bytes,
            [Some(100.0), Some(200.0), Some(300.0)],
            immediate,
        )
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn level_orders_and_prints_lowercase() {
        assert!(Level::Normal < Level::Moderate);
        assert!(Level::High < Level::Critical);
        assert_eq!(Level::Critical.to_string(), "critical");
        assert_eq!(
            serde_json::to_string(&Level::Moderate).unwrap(),
            "\"moderate\""
        );
        let parsed: Level = serde_json::from_str("\"high\"").unwrap();
        assert_eq!(parsed, Level::High);
    }

    #[test]
    fn entering_needs_grace() {
        let mut t = tracker(false);
        t.update(secs(0), Some(250.0), TIMING);
        assert_eq!(t.level(), Level::Normal);
        t.update(secs(1), Some(250.0), TIMING);
        assert_eq!(t.level(), Level::Normal);
        assert_eq!(
            t.describe_pending(secs(1), TIMING).as_deref(),
            Some("memory 250B ≥ high 200B for 1s of 2s grace")
        );
        t.update(secs(2), Some(250.0), TIMING);
        assert_eq!(t.level(), Level::High);
        assert_eq!(
            t.describe(secs(2), TIMING),
            "memory 250B ≥ high 200B for 2s"
        );
    }

    #[test]
    fn critical_is_immediate_only_when_asked() {
        let mut memory = tracker(true);
        memory.update(secs(0), Some(350.0), TIMING);
        assert_eq!(memory.level(), Level::Critical);
        let mut cpu = tracker(false);
        cpu.update(secs(0), Some(350.0), TIMING);
        assert_eq!(cpu.level(), Level::Normal);
    }

    #[test]
    fn leaving_needs_hysteresis_and_transition() {
        let mut t = tracker(false);
        for s in 0..=2 {
            t.update(secs(s), Some(150.0), TIMING);
        }
        assert_eq!(t.level(), Level::Moderate);
        // 96 is below the threshold but inside the 5 % band (95..100): stays.
        for s in 3..30 {
            t.update(secs(s), Some(96.0), TIMING);
        }
        assert_eq!(t.level(), Level::Moderate);
        // Below 95 for 10 s: leaves at 30 + 10.
        for s in 30..40 {
            t.update(secs(s), Some(90.0), TIMING);
            assert_eq!(t.level(), Level::Moderate, "at {s}s");
        }
        t.update(secs(40), Some(90.0), TIMING);
        assert_eq!(t.level(), Level::Normal);
    }

    #[test]
    fn falling_from_critical_keeps_the_lower_level_the_value_is_in() {
        let mut t = tracker(true);
        t.update(secs(0), Some(400.0), TIMING);
        assert_eq!(t.level(), Level::Critical);
        for s in 1..=11 {
            t.update(secs(s), Some(150.0), TIMING);
        }
        assert_eq!(t.level(), Level::Moderate);
    }

    #[test]
    fn missing_values_change_nothing() {
        let mut t = tracker(false);
        t.update(secs(0), Some(150.0), TIMING);
        t.update(secs(1), None, TIMING);
        t.update(secs(2), Some(f64::NAN), TIMING);
        assert_eq!(t.level(), Level::Normal);
        t.update(secs(3), Some(150.0), TIMING);
        assert_eq!(t.level(), Level::Moderate);
        assert_eq!(t.value, Some(150.0));
    }
}
