//! Pure parsers for the text of cgroupfs files (no I/O).
//!
//! Each parser gets the file's path (for error messages only) and its text. The formats are:
//! a single value (`memory.current`), a single value or `max` (`memory.high`), a v1 limit
//! where a huge number means unlimited, a list of pids (`cgroup.procs`), and `key value`
//! lines (`memory.stat`, `memory.events`, `cpu.stat`, `cgroup.events`, v1 `memory.oom_control`)
//! handled by one generic routine, [`parse_keyed`]. PSI files are parsed by
//! [`crate::kernel_text::parse_pressure`].

use std::path::Path;

use super::stats::{CpuStat, MemoryEvents, MemoryStat};
use crate::kernel_text::ParseError;

/// Smallest v1 limit value that means "unlimited".
///
/// The kernel reports an unset v1 limit as `PAGE_COUNTER_MAX * PAGE_SIZE`, which is
/// `i64::MAX` rounded down to a multiple of the page size: 9223372036854771712 with 4 KiB
/// pages, 9223372036854710272 with 64 KiB pages. This threshold covers page sizes up to 256 KiB.
pub const V1_UNLIMITED_THRESHOLD: u64 = i64::MAX as u64 - (256 * 1024 - 1);

fn error(file: &Path, line_number: usize, line: &str, reason: impl Into<String>) -> ParseError {
    ParseError::new(file.display().to_string(), line_number, line, reason)
}

/// Returns the only line of a single-value file (trailing newline allowed).
fn single_line<'a>(file: &Path, text: &'a str) -> Result<&'a str, ParseError> {
    let mut lines = text.lines();
    let Some(first) = lines.next() else {
        return Err(error(file, 0, "", "empty file, expected one value"));
    };
    if let Some(extra) = lines.find(|line| !line.trim().is_empty()) {
        return Err(error(file, 2, extra, "expected a single line"));
    }
    let value = first.trim();
    if value.is_empty() {
        return Err(error(file, 1, first, "empty line, expected one value"));
    }
    Ok(value)
}

fn parse_number(
    file: &Path,
    line_number: usize,
    line: &str,
    word: &str,
) -> Result<u64, ParseError> {
    word.parse::<u64>().map_err(|_| {
        error(
            file,
            line_number,
            line,
            format!("{word:?} is not an unsigned integer"),
        )
    })
}

/// Parses a file holding one unsigned integer, such as `memory.current` or `pids.current`.
pub fn parse_u64(file: &Path, text: &str) -> Result<u64, ParseError> {
    let value = single_line(file, text)?;
    parse_number(file, 1, value, value)
}

/// Parses a v2 limit such as `memory.high` or `memory.max`: a number, or `max` (→ `None`).
pub fn parse_max_or_u64(file: &Path, text: &str) -> Result<Option<u64>, ParseError> {
    let value = single_line(file, text)?;
    if value == "max" {
        return Ok(None);
    }
    parse_number(file, 1, value, value).map(Some)
}

/// Parses a v1 limit such as `memory.limit_in_bytes`: values at or above
/// [`V1_UNLIMITED_THRESHOLD`] mean unlimited (→ `None`).
pub fn parse_v1_limit(file: &Path, text: &str) -> Result<Option<u64>, ParseError> {
    let value = parse_u64(file, text)?;
    Ok((value < V1_UNLIMITED_THRESHOLD).then_some(value))
}

/// Parses `cgroup.procs` (or `cgroup.threads`): one pid per line; empty file → no pids.
pub fn parse_pids(file: &Path, text: &str) -> Result<Vec<i32>, ParseError> {
    let mut pids = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let word = line.trim();
        if word.is_empty() {
            continue;
        }
        match word.parse::<i32>() {
            Ok(pid) if pid > 0 => pids.push(pid),
            _ => {
                return Err(error(
                    file,
                    index + 1,
                    line,
                    format!("{word:?} is not a process id"),
                ))
            }
        }
    }
    Ok(pids)
}

/// Parses a space-separated word list such as `cgroup.controllers` or `cgroup.subtree_control`.
pub fn parse_word_list(text: &str) -> Vec<String> {
    text.split_ascii_whitespace().map(str::to_owned).collect()
}

/// The generic `key value` parser: returns the values of `keys`, in the same order.
///
/// Keys absent from the text give `None`. Lines whose key is not in `keys` are ignored
/// (kernels add keys), but every non-empty line must at least have a key and a value. A
/// wanted key with a value that is not an unsigned integer, or with extra words, is an
/// error naming the file and the line. If a key repeats, the last line wins.
pub fn parse_keyed<const N: usize>(
    file: &Path,
    text: &str,
    keys: [&str; N],
) -> Result<[Option<u64>; N], ParseError> {
    let mut values = [None; N];
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        let mut words = line.split_ascii_whitespace();
        let Some(key) = words.next() else {
            continue;
        };
        let Some(value) = words.next() else {
            return Err(error(
                file,
                line_number,
                line,
                format!("key {key:?} has no value"),
            ));
        };
        let Some(slot) = keys.iter().position(|wanted| *wanted == key) else {
            continue;
        };
        if words.next().is_some() {
            return Err(error(file, line_number, line, "expected \"key value\""));
        }
        values[slot] = Some(parse_number(file, line_number, line, value)?);
    }
    Ok(values)
}

/// Returns the error for a required key that is missing from a `key value` file.
fn missing_key(file: &Path, text: &str, key: &str) -> ParseError {
    error(
        file,
        text.lines().count(),
        text.lines().last().unwrap_or(""),
        format!("required key {key:?} is missing"),
    )
}

/// Parses v2 `memory.events` (or `memory.events.local`).
pub fn parse_memory_events(file: &Path, text: &str) -> Result<MemoryEvents, ParseError> {
    let [low, high, max, oom, oom_kill, oom_group_kill] = parse_keyed(
        file,
        text,
        ["low", "high", "max", "oom", "oom_kill", "oom_group_kill"],
    )?;
    Ok(MemoryEvents {
        low,
        high,
        max,
        oom,
        oom_kill,
        oom_group_kill,
        under_oom: None,
    })
}

/// Parses v2 `memory.stat`.
pub fn parse_memory_stat(file: &Path, text: &str) -> Result<MemoryStat, ParseError> {
    let [anon, file_bytes, inactive_file, active_file, shmem, kernel, sock, pgmajfault, refault_anon, refault_file] =
        parse_keyed(
            file,
            text,
            [
                "anon",
                "file",
                "inactive_file",
                "active_file",
                "shmem",
                "kernel",
                "sock",
                "pgmajfault",
                "workingset_refault_anon",
                "workingset_refault_file",
            ],
        )?;
    Ok(MemoryStat {
        anon,
        file: file_bytes,
        inactive_file,
        active_file,
        shmem,
        kernel,
        sock,
        pgmajfault,
        workingset_refault_anon: refault_anon,
        workingset_refault_file: refault_file,
    })
}

/// What v1 `memory.stat` provides: the hierarchical (`total_*`) breakdown and the swap usage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct V1MemoryStat {
    /// `total_rss` → anon, `total_cache` → file, `total_shmem` → shmem, `total_pgmajfault`,
    /// `total_workingset_refault_{anon,file}`. `kernel` and `sock` are not in v1 `memory.stat`
    /// (they come from `memory.kmem.*usage_in_bytes`) and stay `None` here.
    pub stat: MemoryStat,
    /// `total_swap` (present only with swap accounting).
    pub swap: Option<u64>,
}

/// Parses v1 `memory.stat`, using the hierarchical `total_*` keys (this cgroup and its children).
pub fn parse_memory_stat_v1(file: &Path, text: &str) -> Result<V1MemoryStat, ParseError> {
    let [rss, cache, inactive_file, active_file, shmem, pgmajfault, refault_anon, refault_file, swap] =
        parse_keyed(
            file,
            text,
            [
                "total_rss",
                "total_cache",
                "total_inactive_file",
                "total_active_file",
                "total_shmem",
                "total_pgmajfault",
                "total_workingset_refault_anon",
                "total_workingset_refault_file",
                "total_swap",
            ],
        )?;
    Ok(V1MemoryStat {
        stat: MemoryStat {
            anon: rss,
            file: cache,
            inactive_file,
            active_file,
            shmem,
            kernel: None,
            sock: None,
            pgmajfault,
            workingset_refault_anon: refault_anon,
            workingset_refault_file: refault_file,
        },
        swap,
    })
}

/// Parses v2 `cpu.stat`: `usage_usec`, `user_usec` and `system_usec` are required (the
/// kernel always writes them); the throttling keys exist only with the cpu controller on.
pub fn parse_cpu_stat(file: &Path, text: &str) -> Result<CpuStat, ParseError> {
    let [usage, user, system, nr_periods, nr_throttled, throttled_usec] = parse_keyed(
        file,
        text,
        [
            "usage_usec",
            "user_usec",
            "system_usec",
            "nr_periods",
            "nr_throttled",
            "throttled_usec",
        ],
    )?;
    let required =
        |value: Option<u64>, key: &str| value.ok_or_else(|| missing_key(file, text, key));
    Ok(CpuStat {
        usage_usec: required(usage, "usage_usec")?,
        user_usec: required(user, "user_usec")?,
        system_usec: required(system, "system_usec")?,
        nr_periods,
        nr_throttled,
        throttled_usec,
    })
}

/// What v1 `memory.oom_control` reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct V1OomControl {
    /// `oom_kill_disable`: the OOM killer is disabled for this cgroup.
    pub oom_kill_disable: Option<bool>,
    /// `under_oom`: the cgroup is out of memory right now.
    pub under_oom: Option<bool>,
    /// `oom_kill`: processes killed by the OOM killer in this cgroup (kernel 4.13+).
    pub oom_kill: Option<u64>,
}

/// Parses v1 `memory.oom_control`.
pub fn parse_oom_control(file: &Path, text: &str) -> Result<V1OomControl, ParseError> {
    let [disable, under_oom, oom_kill] =
        parse_keyed(file, text, ["oom_kill_disable", "under_oom", "oom_kill"])?;
    Ok(V1OomControl {
        oom_kill_disable: disable.map(|value| value != 0),
        under_oom: under_oom.map(|value| value != 0),
        oom_kill,
    })
}

/// Parses v2 `cgroup.events` and returns its required `populated` flag (the cgroup or a
/// descendant holds a live process).
pub fn parse_populated(file: &Path, text: &str) -> Result<bool, ParseError> {
    let [populated] = parse_keyed(file, text, ["populated"])?;
    populated
        .map(|value| value != 0)
        .ok_or_else(|| missing_key(file, text, "populated"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const V2_JOB: &str =
        "tests/fixtures/cgroup/v2/sys/fs/cgroup/system.slice/vmtest.service/fixture-job";
    const V1_JOB: &str =
        "tests/fixtures/cgroup/hybrid/sys/fs/cgroup/memory/host.slice/session-1.scope/fixture-job";
    const V2_ROOT: &str = "tests/fixtures/cgroup/v2/sys/fs/cgroup";

    fn fixture(dir: &str, name: &str) -> (PathBuf, String) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        (path, text)
    }

    #[test]
    fn single_values_from_the_v2_fixture() {
        let (path, text) = fixture(V2_JOB, "memory.current");
        assert_eq!(parse_u64(&path, &text).unwrap(), 46_030_848);
        let (path, text) = fixture(V2_JOB, "memory.peak");
        assert_eq!(parse_u64(&path, &text).unwrap(), 174_886_912);
        let (path, text) = fixture(V2_JOB, "memory.peak.after-oom");
        assert_eq!(parse_u64(&path, &text).unwrap(), 202_604_544);
        let (path, text) = fixture(V2_JOB, "pids.current");
        assert_eq!(parse_u64(&path, &text).unwrap(), 6);
    }

    #[test]
    fn v2_limits_number_or_max() {
        let (path, text) = fixture(V2_JOB, "memory.high");
        assert_eq!(parse_max_or_u64(&path, &text).unwrap(), Some(157_286_400));
        let (path, text) = fixture(V2_JOB, "memory.max");
        assert_eq!(parse_max_or_u64(&path, &text).unwrap(), Some(209_715_200));
        let (path, text) = fixture(V2_JOB, "memory.swap.max");
        assert_eq!(parse_max_or_u64(&path, &text).unwrap(), None);
    }

    #[test]
    fn v1_limits_huge_means_unlimited() {
        let (path, text) = fixture(V1_JOB, "memory.limit_in_bytes");
        assert_eq!(parse_v1_limit(&path, &text).unwrap(), Some(104_857_600));
        let (path, text) = fixture(V1_JOB, "memory.soft_limit_in_bytes");
        assert_eq!(parse_v1_limit(&path, &text).unwrap(), None);
        let here = Path::new("memory.limit_in_bytes");
        // 64 KiB pages: i64::MAX rounded down to 65536.
        assert_eq!(parse_v1_limit(here, "9223372036854710272\n").unwrap(), None);
        assert_eq!(
            parse_v1_limit(here, "18446744073709551615\n").unwrap(),
            None
        );
        assert_eq!(
            parse_v1_limit(here, "9223372036854000000\n").unwrap(),
            Some(9_223_372_036_854_000_000)
        );
    }

    #[test]
    fn single_value_errors_name_file_and_line() {
        let here = Path::new("/cg/memory.current");
        let err = parse_u64(here, "").unwrap_err();
        assert_eq!(err.file, "/cg/memory.current");
        assert!(err.reason.contains("empty"), "{err}");
        let err = parse_u64(here, "12ab\n").unwrap_err();
        assert_eq!((err.line_number, err.line.as_str()), (1, "12ab"));
        assert!(err.to_string().contains("/cg/memory.current"), "{err}");
        assert!(err.to_string().contains("12ab"), "{err}");
        let err = parse_u64(here, "1\n2\n").unwrap_err();
        assert_eq!((err.line_number, err.line.as_str()), (2, "2"));
        let err = parse_max_or_u64(here, "maximum\n").unwrap_err();
        assert_eq!(err.line, "maximum");
        assert!(parse_u64(here, "-5\n").is_err());
    }

    #[test]
    fn pids_from_fixtures_and_errors() {
        let (path, text) = fixture(V2_JOB, "cgroup.procs");
        assert_eq!(parse_pids(&path, &text).unwrap(), vec![191]);
        let (path, text) = fixture(V2_JOB, "cgroup.threads");
        assert_eq!(
            parse_pids(&path, &text).unwrap(),
            vec![191, 265, 267, 268, 270, 271]
        );
        let (path, text) = fixture(V1_JOB, "cgroup.procs");
        assert_eq!(parse_pids(&path, &text).unwrap(), vec![8064]);
        assert_eq!(parse_pids(&path, "").unwrap(), Vec::<i32>::new());
        let err = parse_pids(Path::new("/cg/cgroup.procs"), "12\nx3\n").unwrap_err();
        assert_eq!((err.line_number, err.line.as_str()), (2, "x3"));
        assert_eq!(err.file, "/cg/cgroup.procs");
    }

    #[test]
    fn word_lists() {
        let (_, text) = fixture(V2_JOB, "cgroup.controllers");
        assert_eq!(parse_word_list(&text), ["cpu", "memory", "pids"]);
        let (_, text) = fixture(V2_JOB, "cgroup.subtree_control");
        assert!(parse_word_list(&text).is_empty());
    }

    #[test]
    fn memory_events_v2() {
        let (path, text) = fixture(V2_JOB, "memory.events");
        let events = parse_memory_events(&path, &text).unwrap();
        assert_eq!(
            events,
            MemoryEvents {
                low: Some(0),
                high: Some(226),
                max: Some(0),
                oom: Some(0),
                oom_kill: Some(0),
                oom_group_kill: Some(0),
                under_oom: None,
            }
        );
        let (path, text) = fixture(V2_JOB, "memory.events.after-oom");
        assert_eq!(parse_memory_events(&path, &text).unwrap().high, Some(985));
        // An older kernel without oom_group_kill: absent key → None, not 0.
        let old = "low 0\nhigh 3\nmax 1\noom 1\noom_kill 1\n";
        let events = parse_memory_events(&path, old).unwrap();
        assert_eq!(events.oom_kill, Some(1));
        assert_eq!(events.oom_group_kill, None);
    }

    #[test]
    fn memory_stat_v2_job_and_root() {
        let (path, text) = fixture(V2_JOB, "memory.stat");
        let stat = parse_memory_stat(&path, &text).unwrap();
        assert_eq!(
            stat,
            MemoryStat {
                anon: Some(45_522_944),
                file: Some(131_072),
                inactive_file: Some(126_976),
                active_file: Some(4_096),
                shmem: Some(0),
                kernel: Some(376_832),
                sock: Some(0),
                pgmajfault: Some(3),
                workingset_refault_anon: Some(0),
                workingset_refault_file: Some(30),
            }
        );
        let (path, text) = fixture(V2_ROOT, "memory.stat");
        let stat = parse_memory_stat(&path, &text).unwrap();
        assert_eq!(stat.anon, Some(53_927_936));
        assert_eq!(stat.shmem, Some(290_816));
        assert_eq!(stat.pgmajfault, Some(210));
    }

    #[test]
    fn memory_stat_unknown_keys_ignored_absent_keys_none() {
        let here = Path::new("/cg/memory.stat");
        let stat = parse_memory_stat(here, "anon 5\nbrand_new_key 7\nfuture_words x y\n").unwrap();
        assert_eq!(stat.anon, Some(5));
        assert_eq!(stat.file, None);
        assert_eq!(stat.kernel, None);
    }

    #[test]
    fn memory_stat_malformed_lines_are_errors() {
        let (path, text) = fixture(V2_JOB, "memory.stat");
        // Truncated: the last line lost its value.
        let truncated = text.replace("file 131072\n", "file\n");
        let err = parse_memory_stat(&path, &truncated).unwrap_err();
        assert_eq!((err.line_number, err.line.as_str()), (2, "file"));
        assert!(err.file.ends_with("fixture-job/memory.stat"), "{err}");
        assert!(err.reason.contains("no value"), "{err}");
        // A non-number.
        let bad = text.replace("shmem 0\n", "shmem 12k\n");
        let err = parse_memory_stat(&path, &bad).unwrap_err();
        assert_eq!(err.line, "shmem 12k");
        assert_eq!(err.line_number, 10);
        assert!(
            err.to_string()
                .contains("\"12k\" is not an unsigned integer"),
            "{err}"
        );
        // A key without value is malformed even when we do not use that key.
        let err = parse_memory_stat(&path, "anon 1\nslab\n").unwrap_err();
        assert_eq!(err.line_number, 2);
        // Extra words on a wanted key.
        let err = parse_memory_stat(&path, "anon 1 2\n").unwrap_err();
        assert_eq!(err.line, "anon 1 2");
    }

    #[test]
    fn dirty_cache_on_the_active_list_is_still_page_cache() {
        const WRITER: &str = "tests/fixtures/cgroup/v1-writer-at-limit";
        let (path, text) = fixture(WRITER, "memory.stat");
        let stat = parse_memory_stat_v1(&path, &text).unwrap().stat;
        let (_, usage) = fixture(WRITER, "memory.usage_in_bytes");
        let usage: u64 = usage.trim().parse().unwrap();
        assert_eq!(usage, 32 << 20);
        // Less the inactive list alone, a job that only writes a file reads as 70 % full.
        let inactive = stat.inactive_file.unwrap();
        assert!(usage - inactive > 22 << 20, "{stat:?}");
        // Less both file lists, what is left is the writer's anon and kernel memory (1.3M).
        assert!(usage - stat.reclaimable_page_cache() < 2 << 20, "{stat:?}");
    }

    #[test]
    fn memory_stat_v1_total_keys() {
        let (path, text) = fixture(V1_JOB, "memory.stat");
        let parsed = parse_memory_stat_v1(&path, &text).unwrap();
        assert_eq!(parsed.stat.anon, Some(114_688));
        assert_eq!(parsed.stat.file, Some(32_768));
        assert_eq!(parsed.stat.inactive_file, Some(16_384));
        assert_eq!(parsed.stat.active_file, Some(16_384));
        assert_eq!(parsed.stat.shmem, Some(0));
        assert_eq!(parsed.stat.pgmajfault, Some(10));
        assert_eq!(parsed.stat.workingset_refault_file, Some(647));
        assert_eq!(parsed.stat.kernel, None);
        assert_eq!(parsed.swap, Some(0));
        let err = parse_memory_stat_v1(&path, "total_rss 1\ntotal_cache -4\n").unwrap_err();
        assert_eq!((err.line_number, err.line.as_str()), (2, "total_cache -4"));
    }

    #[test]
    fn cpu_stat_job_and_errors() {
        let (path, text) = fixture(V2_JOB, "cpu.stat");
        assert_eq!(
            parse_cpu_stat(&path, &text).unwrap(),
            CpuStat {
                usage_usec: 2_767_615,
                user_usec: 1_353_536,
                system_usec: 1_414_078,
                nr_periods: Some(82),
                nr_throttled: Some(46),
                throttled_usec: Some(2_082_510),
            }
        );
        // Without the cpu controller only the three core keys exist.
        let core = "usage_usec 10\nuser_usec 6\nsystem_usec 4\n";
        let stat = parse_cpu_stat(&path, core).unwrap();
        assert_eq!((stat.usage_usec, stat.nr_periods), (10, None));
        let err = parse_cpu_stat(&path, "usage_usec 10\nuser_usec 6\n").unwrap_err();
        assert!(err.reason.contains("system_usec"), "{err}");
        assert!(err.file.ends_with("cpu.stat"));
    }

    #[test]
    fn oom_control_v1() {
        let (path, text) = fixture(V1_JOB, "memory.oom_control");
        assert_eq!(
            parse_oom_control(&path, &text).unwrap(),
            V1OomControl {
                oom_kill_disable: Some(false),
                under_oom: Some(false),
                oom_kill: Some(1),
            }
        );
    }

    #[test]
    fn cgroup_events_populated() {
        let (path, text) = fixture(V2_JOB, "cgroup.events");
        assert!(parse_populated(&path, &text).unwrap());
        assert!(!parse_populated(&path, "populated 0\nfrozen 0\n").unwrap());
        let err = parse_populated(&path, "frozen 0\n").unwrap_err();
        assert!(err.reason.contains("populated"), "{err}");
    }
}
