//! One watched slice: its samples go through the same observe → policy steps as a job's
//! (levels with grace and hysteresis, PSI, leak trend, reclaim at the cleanup level), and
//! what changed comes out as [`SliceEvent`]s — one per decision, never one per sample. Pure
//! code over samples: the daemon's loop does the reading and the acting.

use std::time::Duration;

use crate::cgroup::stats::CgroupSample;
use crate::policy::{Level, Policy, PolicyConfig, NO_LIMIT};
use crate::run::observe::Observer;
use crate::sample::job::JobSample;
use crate::units::format_size;

/// How long a quiet slice goes at most between full readings: in between, only its
/// charge (`memory.current`) is read, see [`SliceWatch::needs_full_reading`].
pub const QUIET_FULL_READING_EVERY: Duration = Duration::from_secs(5);

/// Share of the lowest level a quiet slice's charge must stay under for a full reading to
/// wait: the margin covers what memory can grow by within one interval and still be
/// caught before the level, read at the next tick.
const QUIET_SHARE: f64 = 0.9;

/// What a slice looked like at its last sample, for the status line and `resctl status`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SliceFigures {
    /// Memory less page cache, bytes.
    pub memory: u64,
    /// The cgroup's high-water mark, bytes, where the kernel keeps one.
    pub peak: Option<u64>,
    /// The tightest limit on the slice and above it, bytes (`None`: none).
    pub limit: Option<u64>,
    /// Memory PSI "some" avg10, percent.
    pub memory_psi: Option<f64>,
    /// The slice's level.
    pub level: Level,
    /// The kernel's OOM-kill count in the slice (cumulative).
    pub oom_kills: Option<u64>,
    /// Memory trend, bytes per second, once fitted over the leak window.
    pub leak_slope: Option<f64>,
    /// Time until memory reaches the limit at that trend; `None` when not growing.
    pub time_to_limit: Option<Duration>,
}

/// What the daemon logs and does about a slice.
#[derive(Debug, Clone, PartialEq)]
pub enum SliceEvent {
    /// The slice's level changed.
    Level {
        /// Level before.
        from: Level,
        /// Level now.
        to: Level,
        /// Why, in words (memory, its share of the limit, the thresholds).
        reason: String,
    },
    /// Reclaim this many bytes from the slice (`memory.reclaim`), memory having crossed the
    /// cleanup level going up.
    Reclaim {
        /// Bytes to reclaim.
        bytes: u64,
        /// Why, in words.
        reason: String,
    },
    /// The slice's cgroup could not be read (not started yet, or removed): said once, until
    /// it can be read again.
    Unreadable {
        /// What the reader said.
        reason: String,
    },
    /// The slice's cgroup can be read again after [`SliceEvent::Unreadable`].
    Readable,
}

impl SliceEvent {
    /// The event in a few words, for `resctl status` (`level normal -> high`).
    pub fn summary(&self) -> String {
        match self {
            SliceEvent::Level { from, to, .. } => format!("level {from} -> {to}"),
            SliceEvent::Reclaim { bytes, .. } => format!("reclaim {}", format_size(*bytes)),
            SliceEvent::Unreadable { .. } => "cgroup not readable".to_owned(),
            SliceEvent::Readable => "cgroup readable again".to_owned(),
        }
    }

    /// The `RESCTL_ACTION` of the event.
    pub fn action(&self) -> &'static str {
        match self {
            SliceEvent::Level { .. } => "level",
            SliceEvent::Reclaim { .. } => "reclaim",
            SliceEvent::Unreadable { .. } => "slice-unreadable",
            SliceEvent::Readable => "slice-readable",
        }
    }
}

/// A slice and what the daemon has learned of it.
pub struct SliceWatch {
    name: String,
    observer: Observer,
    policy: Policy,
    level: Level,
    unreadable: bool,
    figures: Option<SliceFigures>,
    /// When the last full reading was assessed.
    last_full: Option<Duration>,
}

impl SliceWatch {
    /// Watches slice `name` with `config` (its levels resolved against its budget).
    pub fn new(name: &str, config: PolicyConfig, cpus: usize, ticks_per_second: u64) -> Self {
        SliceWatch {
            name: name.to_owned(),
            observer: Observer::new(cpus, ticks_per_second),
            policy: Policy::new(config),
            level: Level::Normal,
            unreadable: false,
            figures: None,
            last_full: None,
        }
    }

    /// The slice unit's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The figures of the last readable sample.
    pub fn figures(&self) -> Option<SliceFigures> {
        self.figures
    }

    /// Takes a new configuration (a reload) and keeps what was watched: the level entered
    /// and its timers, the last figures, the CPU counters and the memory trend.
    pub fn reconfigure(&mut self, config: PolicyConfig) {
        self.policy.reconfigure(config);
        // New levels: the next reading is a full one.
        self.last_full = None;
    }

    /// Whether the reading at `at` must be a full one (every file of the slice's cgroup,
    /// then [`SliceWatch::assess`]), given its charge (`memory.current`, page cache
    /// included, so never below its memory; `None`: not read), which `charge` reads only
    /// when nothing else already asks for a full reading: a slice read in full does not
    /// read that file twice in one tick.
    ///
    /// A full reading waits only while all of this holds: the slice is quiet (no level in
    /// force or on its way, for memory, CPU or PSI), its charge is under 90 % of its lowest
    /// memory level, cleanup level and limit, and the last full reading is younger than
    /// [`QUIET_FULL_READING_EVERY`]. So memory never reaches a level unseen, and CPU, PSI
    /// and the leak trend are seen at least that often; a slice near a level, or in one,
    /// is read in full every tick.
    pub fn needs_full_reading(&self, at: Duration, charge: impl FnOnce() -> Option<u64>) -> bool {
        let Some(last_full) = self.last_full else {
            return true;
        };
        if self.unreadable || at.saturating_sub(last_full) >= QUIET_FULL_READING_EVERY {
            return true;
        }
        let Some(quiet_below) = self.policy.quiet_below() else {
            return true;
        };
        let Some(charge) = charge() else {
            return true;
        };
        let limit = self
            .figures
            .and_then(|figures| figures.limit)
            .unwrap_or(u64::MAX);
        charge as f64 >= quiet_below.min(limit) as f64 * QUIET_SHARE
    }

    /// Feeds one reading of the slice's cgroup taken at `at` (`Err`: why it could not be
    /// read) with the tightest limit on it and above it, as [`JobSample::memory_limit`]
    /// has it: [`NO_LIMIT`] when none applies, `None` when it could not be read this time
    /// (the levels then stay where the last limit put them); returns what changed.
    pub fn assess(
        &mut self,
        at: Duration,
        reading: Result<CgroupSample, String>,
        memory_limit: Option<u64>,
    ) -> Vec<SliceEvent> {
        let mut events = Vec::new();
        let sample = match reading {
            Ok(sample) => sample,
            Err(reason) => {
                if !self.unreadable {
                    self.unreadable = true;
                    events.push(SliceEvent::Unreadable { reason });
                }
                return events;
            }
        };
        if std::mem::take(&mut self.unreadable) {
            events.push(SliceEvent::Readable);
        }
        self.last_full = Some(at);
        let memory_psi = sample.memory_pressure.as_ref().map(|p| p.some.avg10);
        let peak = sample.memory_peak;
        let oom_kills = sample.events.oom_kill;
        let limit = match memory_limit {
            Some(NO_LIMIT) => None,
            Some(limit) => Some(limit),
            None => self.figures.and_then(|figures| figures.limit),
        };
        let observation = self.observer.observe(&JobSample {
            at,
            cgroup: Some(sample),
            processes: Vec::new(),
            host: None,
            memory_limit,
            cgroup_gone: false,
        });
        let decision = self.policy.step(&observation);
        if decision.level != self.level {
            events.push(SliceEvent::Level {
                from: self.level,
                to: decision.level,
                reason: self.describe(observation.memory_bytes, limit),
            });
            self.level = decision.level;
        }
        if let Some(bytes) = decision.reclaim {
            events.push(SliceEvent::Reclaim {
                bytes,
                reason: format!(
                    "memory {} crossed the cleanup level {}",
                    format_size(observation.memory_bytes),
                    format_size(self.policy.config().memory_cleanup)
                ),
            });
        }
        self.figures = Some(SliceFigures {
            memory: observation.memory_bytes,
            peak,
            limit,
            memory_psi,
            level: self.level,
            oom_kills,
            leak_slope: decision.leak.as_ref().map(|leak| leak.slope_bytes_per_sec),
            time_to_limit: decision.leak.as_ref().and_then(|leak| leak.time_to_limit),
        });
        events
    }

    fn describe(&self, memory: u64, limit: Option<u64>) -> String {
        let config = self.policy.config();
        let share = limit
            .filter(|&limit| limit > 0)
            .map(|limit| {
                format!(
                    " ({:.0} % of the {} limit)",
                    memory as f64 * 100.0 / limit as f64,
                    format_size(limit)
                )
            })
            .unwrap_or_default();
        format!(
            "memory {}{share}; levels moderate {}, high {}, critical {}",
            format_size(memory),
            format_size(config.memory_moderate),
            format_size(config.memory_high),
            format_size(config.memory_critical)
        )
    }

    /// One line for systemd's STATUS=: `name level memory/limit`.
    pub fn status(&self) -> String {
        match self.figures {
            Some(figures) => format!(
                "{} {} {}{}",
                self.name,
                figures.level,
                format_size(figures.memory),
                figures
                    .limit
                    .map(|limit| format!("/{}", format_size(limit)))
                    .unwrap_or_default()
            ),
            None => format!("{} not running", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn config() -> PolicyConfig {
        PolicyConfig {
            memory_moderate: 50 * MIB,
            memory_high: 75 * MIB,
            memory_critical: 90 * MIB,
            memory_cleanup: 0,
            grace: Duration::from_secs(2),
            ..PolicyConfig::default()
        }
    }

    fn reading(memory_mib: u64) -> Result<CgroupSample, String> {
        Ok(CgroupSample {
            memory_current: Some(memory_mib * MIB),
            ..CgroupSample::default()
        })
    }

    fn levels(events: &[SliceEvent]) -> Vec<(Level, Level)> {
        events
            .iter()
            .filter_map(|event| match event {
                SliceEvent::Level { from, to, .. } => Some((*from, *to)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_level_is_one_event_when_entered_after_its_grace_not_one_per_sample() {
        let mut slice = SliceWatch::new("build.slice", config(), 2, 100);
        let mut seen = Vec::new();
        for second in 0..10 {
            let memory = if second < 3 { 10 } else { 80 };
            seen.extend(slice.assess(
                Duration::from_secs(second),
                reading(memory),
                Some(100 * MIB),
            ));
        }
        assert_eq!(levels(&seen), vec![(Level::Normal, Level::High)]);
        let SliceEvent::Level { reason, .. } = &seen[0] else {
            panic!("{seen:?}")
        };
        assert!(reason.contains("80M (80 % of the 100M limit)"), "{reason}");
        assert_eq!(slice.figures().map(|f| f.level), Some(Level::High));
        assert_eq!(slice.status(), "build.slice high 80M/100M");
    }

    #[test]
    fn an_unreadable_slice_is_said_once_and_its_return_once() {
        let mut slice = SliceWatch::new("etl.slice", config(), 2, 100);
        assert_eq!(slice.status(), "etl.slice not running");
        let first = slice.assess(Duration::ZERO, Err("no such cgroup".into()), None);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].action(), "slice-unreadable");
        assert!(slice
            .assess(Duration::from_secs(1), Err("no such cgroup".into()), None)
            .is_empty());
        let back = slice.assess(Duration::from_secs(2), reading(10), Some(NO_LIMIT));
        assert_eq!(back, vec![SliceEvent::Readable]);
        assert_eq!(slice.figures().map(|f| f.limit), Some(None));
        // A limit read once stays known while a tick cannot read it.
        slice.assess(Duration::from_secs(3), reading(10), Some(100 * MIB));
        slice.assess(Duration::from_secs(4), reading(10), None);
        assert_eq!(slice.figures().map(|f| f.limit), Some(Some(100 * MIB)));
    }

    #[test]
    fn a_reload_keeps_the_level_entered_and_the_figures() {
        let mut slice = SliceWatch::new("build.slice", config(), 2, 100);
        for second in 0..5 {
            slice.assess(Duration::from_secs(second), reading(95), Some(100 * MIB));
        }
        assert_eq!(slice.figures().map(|f| f.level), Some(Level::Critical));
        slice.reconfigure(PolicyConfig {
            memory_critical: 120 * MIB,
            ..config()
        });
        assert_eq!(slice.figures().map(|f| f.level), Some(Level::Critical));
        // Under the new levels 95M is high: one event, once critical has been left for the
        // transition period.
        let mut seen = Vec::new();
        for second in 5..30 {
            seen.extend(slice.assess(Duration::from_secs(second), reading(95), Some(100 * MIB)));
        }
        assert_eq!(levels(&seen), vec![(Level::Critical, Level::High)]);
    }

    fn secs(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    #[test]
    fn a_quiet_slice_far_from_its_levels_waits_for_a_full_reading() {
        let mut slice = SliceWatch::new("build.slice", config(), 2, 100);
        assert!(
            slice.needs_full_reading(secs(0), || Some(10 * MIB)),
            "never read in full"
        );
        slice.assess(secs(0), reading(10), Some(100 * MIB));
        assert!(!slice.needs_full_reading(secs(1), || Some(10 * MIB)));
        assert!(!slice.needs_full_reading(secs(4), || Some(44 * MIB)));
        // 90 % of the lowest level (moderate, 50M), the charge unknown, or 5 s since the last.
        assert!(slice.needs_full_reading(secs(1), || Some(45 * MIB)));
        assert!(slice.needs_full_reading(secs(1), || None));
        assert!(slice.needs_full_reading(secs(5), || Some(10 * MIB)));
        // Where a full reading is due anyway, the charge is not read at all.
        assert!(slice.needs_full_reading(secs(5), || panic!("charge read for nothing")));
        // A level on its way (memory above moderate, within its grace) is followed every tick,
        // whatever the charge says.
        slice.assess(secs(5), reading(60), Some(100 * MIB));
        assert_eq!(slice.figures().map(|f| f.level), Some(Level::Normal));
        assert!(slice.needs_full_reading(secs(6), || Some(10 * MIB)));
        slice.assess(secs(6), reading(10), Some(100 * MIB));
        assert!(!slice.needs_full_reading(secs(7), || Some(10 * MIB)));
        // A limit under the levels counts as one; new levels from a reload are read at once.
        slice.assess(secs(7), reading(10), Some(20 * MIB));
        assert!(slice.needs_full_reading(secs(8), || Some(18 * MIB)));
        assert!(!slice.needs_full_reading(secs(8), || Some(17 * MIB)));
        slice.reconfigure(config());
        assert!(slice.needs_full_reading(secs(8), || Some(10 * MIB)));
        // A slice that could not be read is tried in full every tick.
        slice.assess(secs(9), Err("gone".into()), None);
        assert!(slice.needs_full_reading(secs(10), || Some(10 * MIB)));
    }

    #[test]
    fn glancing_at_the_charge_between_full_readings_sees_every_memory_level_at_the_same_tick() {
        // Memory (cache excluded) wanders, jumps and falls; the charge is memory plus 0-8M
        // of page cache. A watch read in full every tick and one read in full only when
        // needs_full_reading says so must log the same level changes at the same ticks.
        let mut every_tick = SliceWatch::new("a.slice", config(), 2, 100);
        let mut glancing = SliceWatch::new("a.slice", config(), 2, 100);
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut memory_mib: u64 = 5;
        let (mut seen_every, mut seen_glancing, mut full_readings) = (Vec::new(), Vec::new(), 0);
        for second in 0..2_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            memory_mib = match state % 100 {
                0..=2 => 5 + state % 90,                       // a jump anywhere
                3..=40 => memory_mib.saturating_sub(1).max(1), // drifting down
                41..=80 => (memory_mib + 1).min(98),           // drifting up
                _ => memory_mib,
            };
            let cache = (state >> 20) % 9;
            let at = secs(second);
            for event in every_tick.assess(at, reading(memory_mib), Some(100 * MIB)) {
                seen_every.push((second, event));
            }
            if glancing.needs_full_reading(at, || Some((memory_mib + cache) * MIB)) {
                full_readings += 1;
                for event in glancing.assess(at, reading(memory_mib), Some(100 * MIB)) {
                    seen_glancing.push((second, event));
                }
            }
        }
        let level_changes = |seen: &[(u64, SliceEvent)]| {
            seen.iter()
                .filter(|(_, event)| matches!(event, SliceEvent::Level { .. }))
                .map(|(second, event)| (*second, event.summary()))
                .collect::<Vec<_>>()
        };
        assert!(level_changes(&seen_every).len() > 10, "{seen_every:?}");
        assert_eq!(level_changes(&seen_glancing), level_changes(&seen_every));
        assert!(
            full_readings < 2_000,
            "some readings were skipped: {full_readings}"
        );
    }
}
