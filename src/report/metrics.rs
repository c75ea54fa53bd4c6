//! resctl's metrics in OpenMetrics text (the `prometheus-client` crate): per watched target
//! — a slice the daemon holds, or the job of a `resctl run` — its memory, peak and limit,
//! level, memory PSI, worker count, leak slope and time to the limit, OOM kills and the
//! actions taken; and resctl's own sampling time and CPU time. [`Metrics`] holds the
//! figures; [`crate::report::metrics_export`] serves them over HTTP and writes them to a
//! file. The metric names and what each means are listed in the README ("Metrics").

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::policy::Level;

/// Longest target name kept in a label, characters (a job's command can be long).
const MAX_NAME_CHARS: usize = 120;

/// Which thing a series is about: `kind` is `slice` or `job`, `name` the slice unit or
/// the job's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct Target {
    /// `slice` or `job`.
    pub kind: String,
    /// The slice unit (`pipelines.slice`) or the job's name.
    pub name: String,
}

impl Target {
    /// A slice the daemon watches.
    pub fn slice(name: &str) -> Target {
        Target {
            kind: "slice".to_owned(),
            name: label_text(name),
        }
    }

    /// The job of a `resctl run`, named `name` (its job key or command).
    pub fn job(name: &str) -> Target {
        Target {
            kind: "job".to_owned(),
            name: label_text(name),
        }
    }
}

/// A target and one kind of action taken on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ActionLabels {
    kind: String,
    name: String,
    action: String,
}

/// One target's figures at a sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    /// Memory less reclaimable page cache, bytes.
    pub memory: u64,
    /// High-water mark, bytes, where the kernel keeps one.
    pub peak: Option<u64>,
    /// The tightest memory limit, bytes (`None`: none).
    pub limit: Option<u64>,
    /// The level.
    pub level: Level,
    /// Memory PSI "some" avg10, percent.
    pub memory_psi: Option<f64>,
    /// Workers recommended (jobs only).
    pub threads: Option<u32>,
    /// Memory trend, bytes per second, once fitted.
    pub leak_slope: Option<f64>,
    /// Time until memory reaches the limit at that trend; `None` when not growing.
    pub time_to_limit: Option<Duration>,
    /// The kernel's OOM-kill count of the cgroup (cumulative).
    pub oom_kills: Option<u64>,
}

/// The metric families and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
    memory: Family<Target, Gauge<u64, AtomicU64>>,
    peak: Family<Target, Gauge<u64, AtomicU64>>,
    limit: Family<Target, Gauge<u64, AtomicU64>>,
    level: Family<Target, Gauge>,
    memory_psi: Family<Target, Gauge<f64, AtomicU64>>,
    threads: Family<Target, Gauge>,
    leak_slope: Family<Target, Gauge<f64, AtomicU64>>,
    time_to_limit: Family<Target, Gauge<f64, AtomicU64>>,
    oom_kills: Family<Target, Counter>,
    actions: Family<ActionLabels, Counter>,
    sample_seconds: Gauge<f64, AtomicU64>,
    cpu_seconds: Counter<f64, AtomicU64>,
    /// The kernel's OOM-kill count last seen per target (the counter follows its growth).
    oom_seen: HashMap<Target, u64>,
    /// resctl's own CPU time last seen, seconds.
    cpu_seen: f64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every family registered, none with a series yet.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("resctl");
        let memory = Family::default();
        let peak = Family::default();
        let limit = Family::default();
        let level = Family::default();
        let memory_psi = Family::default();
        let threads = Family::default();
        let leak_slope = Family::default();
        let time_to_limit = Family::default();
        let oom_kills = Family::default();
        let actions = Family::default();
        let sample_seconds = Gauge::default();
        let cpu_seconds = Counter::default();
        registry.register_with_unit(
            "memory",
            "Memory less reclaimable page cache",
            Unit::Bytes,
            memory.clone(),
        );
        registry.register_with_unit(
            "memory_peak",
            "Highest memory the kernel recorded",
            Unit::Bytes,
            peak.clone(),
        );
        registry.register_with_unit(
            "memory_limit",
            "Tightest memory limit in force (absent: none)",
            Unit::Bytes,
            limit.clone(),
        );
        registry.register(
            "level",
            "Pressure level: 0 normal, 1 moderate, 2 high, 3 critical",
            level.clone(),
        );
        registry.register(
            "memory_pressure_some_avg10",
            "Memory PSI some avg10, percent",
            memory_psi.clone(),
        );
        registry.register("threads", "Workers recommended to the job", threads.clone());
        registry.register(
            "leak_slope_bytes_per_second",
            "Memory trend over the leak window (negative: falling)",
            leak_slope.clone(),
        );
        registry.register_with_unit(
            "time_to_limit",
            "Time until memory reaches the limit at its trend (absent: not growing)",
            Unit::Seconds,
            time_to_limit.clone(),
        );
        registry.register(
            "oom_kills",
            "Processes the kernel OOM-killed in the cgroup since resctl watched it",
            oom_kills.clone(),
        );
        registry.register(
            "actions",
            "Actions taken (threads, reclaim, level, limits, ...)",
            actions.clone(),
        );
        registry.register_with_unit(
            "sample_duration",
            "Time resctl's last sample of the kernel took",
            Unit::Seconds,
            sample_seconds.clone(),
        );
        registry.register_with_unit(
            "cpu",
            "CPU time resctl itself used",
            Unit::Seconds,
            cpu_seconds.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            memory,
            peak,
            limit,
            level,
            memory_psi,
            threads,
            leak_slope,
            time_to_limit,
            oom_kills,
            actions,
            sample_seconds,
            cpu_seconds,
            oom_seen: HashMap::new(),
            cpu_seen: 0.0,
        }
    }

    /// The registry, to encode from another thread (the HTTP server).
    pub fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry)
    }

    /// Sets `target`'s series from `figures`; a figure that is `None` removes its series.
    pub fn observe(&mut self, target: &Target, figures: &Figures) {
        self.memory.get_or_create(target).set(figures.memory);
        set_or_remove(&self.peak, target, figures.peak);
        set_or_remove(&self.limit, target, figures.limit);
        self.level
            .get_or_create(target)
            .set(level_number(figures.level));
        set_or_remove(&self.memory_psi, target, figures.memory_psi);
        set_or_remove(&self.threads, target, figures.threads.map(i64::from));
        set_or_remove(&self.leak_slope, target, figures.leak_slope);
        set_or_remove(
            &self.time_to_limit,
            target,
            figures.time_to_limit.map(|eta| eta.as_secs_f64()),
        );
        if let Some(kills) = figures.oom_kills {
            let counter = self.oom_kills.get_or_create(target);
            // The first reading is the baseline; a count that fell is a new cgroup.
            match self.oom_seen.insert(target.clone(), kills) {
                Some(seen) if kills > seen => {
                    counter.inc_by(kills - seen);
                }
                _ => {}
            }
        }
    }

    /// Counts one `action` on `target` (`threads`, `reclaim`, `level`, `limits`, ...).
    pub fn count_action(&self, target: &Target, action: &str) {
        self.actions
            .get_or_create(&ActionLabels {
                kind: target.kind.clone(),
                name: target.name.clone(),
                action: action.to_owned(),
            })
            .inc();
    }

    /// Removes every series of `target` (a slice no longer configured).
    pub fn forget(&mut self, target: &Target) {
        self.memory.remove(target);
        self.peak.remove(target);
        self.limit.remove(target);
        self.level.remove(target);
        self.memory_psi.remove(target);
        self.threads.remove(target);
        self.leak_slope.remove(target);
        self.time_to_limit.remove(target);
        self.oom_kills.remove(target);
        self.oom_seen.remove(target);
        // Counters of actions stay: they were taken, and Prometheus sees the series end.
    }

    /// resctl's own figures: how long the last sample took, and its CPU time so far.
    pub fn own(&mut self, sample: Duration) {
        self.sample_seconds.set(sample.as_secs_f64());
        if let Some(cpu) = own_cpu_seconds() {
            if cpu > self.cpu_seen {
                self.cpu_seconds.inc_by(cpu - self.cpu_seen);
                self.cpu_seen = cpu;
            }
        }
    }

    /// The OpenMetrics text of every series, ending in `# EOF`.
    pub fn render(&self) -> String {
        render(&self.registry)
    }
}

/// The OpenMetrics text of `registry`.
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String does not fail; an encoder error would leave the text cut.
    if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
        text.push_str("# EOF\n");
    }
    text
}

fn set_or_remove<N, A>(family: &Family<Target, Gauge<N, A>>, target: &Target, value: Option<N>)
where
    A: prometheus_client::metrics::gauge::Atomic<N> + Default,
    N: Copy,
{
    match value {
        Some(value) => {
            family.get_or_create(target).set(value);
        }
        None => {
            family.remove(target);
        }
    }
}

/// The number a level is exported as.
pub fn level_number(level: Level) -> i64 {
    match level {
        Level::Normal => 0,
        Level::Moderate => 1,
        Level::High => 2,
        Level::Critical => 3,
    }
}

/// `text` as a label value: control characters escaped, cut to [`MAX_NAME_CHARS`].
fn label_text(text: &str) -> String {
    let shown = crate::job_text::escape(text);
    match shown.char_indices().nth(MAX_NAME_CHARS) {
        Some((cut, _)) => format!("{}…", &shown[..cut]),
        None => shown,
    }
}

/// resctl's user and system CPU time so far, seconds.
fn own_cpu_seconds() -> Option<f64> {
    use nix::sys::resource::{getrusage, UsageWho};
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let secs =
        |time: nix::sys::time::TimeVal| time.tv_sec() as f64 + time.tv_usec() as f64 / 1_000_000.0;
    Some(secs(usage.user_time()) + secs(usage.system_time()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(text: &str, name: &str) -> Vec<String> {
        text.lines()
            .filter(|line| line.starts_with(name) && line[name.len()..].starts_with('{'))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_slices_figures_become_its_series_and_missing_figures_no_series() {
        let mut metrics = Metrics::new();
        let slice = Target::slice("pipelines.slice");
        metrics.observe(
            &slice,
            &Figures {
                memory: 300 << 20,
                peak: Some(400 << 20),
                limit: Some(1 << 30),
                level: Level::High,
                memory_psi: Some(1.5),
                ..Figures::default()
            },
        );
        let text = metrics.render();
        assert_eq!(
            series(&text, "resctl_memory_bytes"),
            ["resctl_memory_bytes{kind=\"slice\",name=\"pipelines.slice\"} 314572800"]
        );
        assert_eq!(
            series(&text, "resctl_memory_limit_bytes"),
            ["resctl_memory_limit_bytes{kind=\"slice\",name=\"pipelines.slice\"} 1073741824"]
        );
        assert_eq!(
            series(&text, "resctl_level"),
            ["resctl_level{kind=\"slice\",name=\"pipelines.slice\"} 2"]
        );
        assert!(series(&text, "resctl_threads").is_empty(), "{text}");
        assert!(series(&text, "resctl_time_to_limit_seconds").is_empty());
        assert!(text.contains("# TYPE resctl_memory_bytes gauge"), "{text}");
        assert!(text.contains("# UNIT resctl_memory_bytes bytes"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");

        // The limit goes away: so does its series.
        metrics.observe(
            &slice,
            &Figures {
                memory: 1,
                ..Figures::default()
            },
        );
        assert!(series(&metrics.render(), "resctl_memory_limit_bytes").is_empty());
    }

    #[test]
    fn oom_kills_count_from_the_first_reading_and_survive_a_new_cgroup() {
        let mut metrics = Metrics::new();
        let job = Target::job("make");
        let with_kills = |kills| Figures {
            oom_kills: Some(kills),
            ..Figures::default()
        };
        metrics.observe(&job, &with_kills(5));
        metrics.observe(&job, &with_kills(7));
        metrics.observe(&job, &with_kills(0)); // a new cgroup: no change
        metrics.observe(&job, &with_kills(1));
        assert_eq!(
            series(&metrics.render(), "resctl_oom_kills_total"),
            ["resctl_oom_kills_total{kind=\"job\",name=\"make\"} 3"]
        );
    }

    #[test]
    fn actions_are_counted_per_kind_and_forgetting_a_target_drops_its_gauges() {
        let mut metrics = Metrics::new();
        let slice = Target::slice("etl.slice");
        metrics.observe(&slice, &Figures::default());
        metrics.count_action(&slice, "level");
        metrics.count_action(&slice, "level");
        metrics.count_action(&slice, "reclaim");
        let text = metrics.render();
        assert!(text.contains(
            "resctl_actions_total{kind=\"slice\",name=\"etl.slice\",action=\"level\"} 2"
        ));
        metrics.forget(&slice);
        let text = metrics.render();
        assert!(series(&text, "resctl_memory_bytes").is_empty(), "{text}");
        assert!(series(&text, "resctl_level").is_empty(), "{text}");
    }

    #[test]
    fn a_hostile_job_name_cannot_break_out_of_its_label() {
        let mut metrics = Metrics::new();
        let name = "x\"} 1\nresctl_level{kind=\"slice\"} 3\n".to_owned() + &"y".repeat(500);
        let job = Target::job(&name);
        metrics.observe(&job, &Figures::default());
        let text = metrics.render();
        let forged: Vec<_> = text
            .lines()
            .filter(|line| line.starts_with("resctl_level{kind=\"slice\""))
            .collect();
        assert!(forged.is_empty(), "{text}");
        assert!(job.name.chars().count() <= MAX_NAME_CHARS + 1);
        assert!(text.lines().all(|line| line.len() < 1024), "{text}");
    }

    #[test]
    fn resctls_own_cpu_time_only_grows() {
        let mut metrics = Metrics::new();
        metrics.own(Duration::from_millis(3));
        let busy = (0..2_000_000u64).fold(0u64, |sum, x| sum.wrapping_add(x * x));
        assert!(busy > 0);
        metrics.own(Duration::from_millis(4));
        let text = metrics.render();
        assert!(
            text.contains("resctl_sample_duration_seconds 0.004"),
            "{text}"
        );
        let cpu: f64 = text
            .lines()
            .find_map(|line| line.strip_prefix("resctl_cpu_seconds_total "))
            .and_then(|value| value.parse().ok())
            .unwrap_or(-1.0);
        assert!(cpu >= 0.0, "{text}");
    }
}
