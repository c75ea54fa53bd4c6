//! Pure parsers for the text of procfs files (the PSI format and the parse error, shared
//! with cgroupfs, are in [`crate::kernel_text`]).
//!
//! Every parser takes the file's text and returns a typed value or a [`ParseError`] that
//! names the file and the offending line. The parsers do no I/O; the caller that knows the
//! real path attaches it with [`ParseError::in_file`]. Unknown keys and lines are ignored
//! (kernels add fields); a missing required field is an error, never a silent 0.

use serde::{Deserialize, Serialize};

use crate::kernel_text::ParseError;

// ---------------------------------------------------------------------------------------------
// /proc/PID/stat and /proc/PID/task/TID/stat
// ---------------------------------------------------------------------------------------------

/// Generic name used in errors from [`parse_stat`] until the caller attaches the path.
pub const STAT_FILE: &str = "/proc/[pid]/stat";

/// The fields resctl uses from one `/proc/PID/stat` or `/proc/PID/task/TID/stat` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatLine {
    /// Field 1: process id (for a task file: the thread id).
    pub pid: i32,
    /// Field 2: the command name without its parentheses (may contain spaces and parentheses;
    /// bytes that are not UTF-8 are replaced with U+FFFD).
    pub comm: String,
    /// Field 3: one-letter state (R, S, D, Z, T, t, X, I, ...).
    pub state: char,
    /// Field 4: parent's process id.
    pub ppid: i32,
    /// Field 14: user-mode CPU time in clock ticks.
    pub utime_ticks: u64,
    /// Field 15: kernel-mode CPU time in clock ticks.
    pub stime_ticks: u64,
    /// Field 20: number of threads of the process.
    pub num_threads: u32,
    /// Field 39: CPU the task last ran on.
    pub processor: i32,
}

/// Index, among the space-separated fields that follow the closing `)`, of stat field `n`
/// (1-based as in proc(5)): field 3 (state) is the first one after the comm.
const fn after_comm_index(field_number: usize) -> usize {
    field_number - 3
}

/// Parses a `/proc/PID/stat` or `/proc/PID/task/TID/stat` line.
///
/// The comm is delimited by the first `(` and the LAST `)`: a comm may itself contain
/// spaces and parentheses (`191 (a) b (c) S 181 ...`). Works on bytes because a comm
/// need not be UTF-8.
pub fn parse_stat(bytes: &[u8]) -> Result<StatLine, ParseError> {
    // The file is one line; a comm may contain any byte, even '\n', so it is not split.
    let line_bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let error = |reason: String| {
        ParseError::new(
            STAT_FILE,
            usize::from(!bytes.is_empty()),
            String::from_utf8_lossy(line_bytes),
            reason,
        )
    };
    if line_bytes.is_empty() {
        return Err(error("empty file".into()));
    }
    let open = line_bytes
        .iter()
        .position(|&byte| byte == b'(')
        .ok_or_else(|| error("no '(' before the command name".into()))?;
    let close = last_index_of(line_bytes, b')')
        .filter(|&close| close > open)
        .ok_or_else(|| error("no ')' after the command name".into()))?;
    let pid = parse_signed(line_bytes[..open].trim_ascii())
        .and_then(|pid| i32::try_from(pid).ok())
        .ok_or_else(|| error("field 1 (pid) is not an integer".into()))?;
    let comm = String::from_utf8_lossy(&line_bytes[open + 1..close]).into_owned();

    let mut fields = line_bytes[close + 1..]
        .split(|&byte| byte == b' ')
        .filter(|field| !field.is_empty());
    let mut position = 0;
    let mut take = |field_number: usize, name: &str| -> Result<&[u8], ParseError> {
        let skip = after_comm_index(field_number) - position;
        position = after_comm_index(field_number) + 1;
        fields
            .nth(skip)
            .ok_or_else(|| error(format!("line ends before field {field_number} ({name})")))
    };
    let state_field = take(3, "state")?;
    let state = match state_field {
        [letter] if letter.is_ascii_alphabetic() => char::from(*letter),
        _ => return Err(error("field 3 (state) is not a single letter".into())),
    };
    let number = |field: &[u8], field_number: usize, name: &str| {
        parse_signed(field).ok_or_else(|| {
            error(format!(
                "field {field_number} ({name}) is not an integer: {:?}",
                String::from_utf8_lossy(field)
            ))
        })
    };
    let ppid_field = take(4, "ppid")?;
    let ppid = number(ppid_field, 4, "ppid")?;
    let utime_field = take(14, "utime")?;
    let utime = number(utime_field, 14, "utime")?;
    let stime_field = take(15, "stime")?;
    let stime = number(stime_field, 15, "stime")?;
    let threads_field = take(20, "num_threads")?;
    let num_threads = number(threads_field, 20, "num_threads")?;
    let processor_field = take(39, "processor")?;
    let processor = number(processor_field, 39, "processor")?;

    let out_of_range = |field_number: usize, name: &str| {
        error(format!("field {field_number} ({name}) is out of range"))
    };
    Ok(StatLine {
        pid,
        comm,
        state,
        ppid: i32::try_from(ppid).map_err(|_| out_of_range(4, "ppid"))?,
        utime_ticks: u64::try_from(utime).map_err(|_| out_of_range(14, "utime"))?,
        stime_ticks: u64::try_from(stime).map_err(|_| out_of_range(15, "stime"))?,
        num_threads: u32::try_from(num_threads).map_err(|_| out_of_range(20, "num_threads"))?,
        processor: i32::try_from(processor).map_err(|_| out_of_range(39, "processor"))?,
    })
}

// ---------------------------------------------------------------------------------------------
// /proc/PID/status (memory lines only)
// ---------------------------------------------------------------------------------------------

/// Generic name used in errors from [`parse_status_memory`] until the caller attaches the path.
pub const STATUS_FILE: &str = "/proc/[pid]/status";

/// Resident memory of one process from `/proc/PID/status`, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusMemory {
    /// `RssAnon`: resident anonymous memory (heap, stacks, private mappings).
    pub rss_anon: u64,
    /// `RssFile`: resident file-backed memory.
    pub rss_file: u64,
    /// `RssShmem`: resident shared memory (tmpfs, SysV shm, shared anonymous).
    pub rss_shmem: u64,
}

/// Parses the resident-memory lines (`RssAnon`, `RssFile`, `RssShmem`, in kB) of
/// `/proc/PID/status` into bytes.
///
/// A process without an address space (a zombie, a kernel thread) has no `Vm*`/`Rss*` lines
/// at all: that is reported as all zeros. A status that has `Vm*` lines but lacks one of the
/// three, or that ends before the `Threads:` line (truncated), is an error.
pub fn parse_status_memory(bytes: &[u8]) -> Result<StatusMemory, ParseError> {
    let (mut rss_anon, mut rss_file, mut rss_shmem) = (None, None, None);
    let mut has_address_space = false;
    let mut has_threads_line = false;
    let mut line_count = 0;
    for (index, line) in bytes.split(|&byte| byte == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        line_count = index + 1;
        let slot = if let Some(value) = line.strip_prefix(b"RssAnon:") {
            Some((&mut rss_anon, value))
        } else if let Some(value) = line.strip_prefix(b"RssFile:") {
            Some((&mut rss_file, value))
        } else if let Some(value) = line.strip_prefix(b"RssShmem:") {
            Some((&mut rss_shmem, value))
        } else {
            if line.starts_with(b"Vm") {
                has_address_space = true;
            } else if line.starts_with(b"Threads:") {
                has_threads_line = true;
            }
            None
        };
        if let Some((slot, value)) = slot {
            let bytes_value = parse_kib(value).ok_or_else(|| {
                ParseError::new(
                    STATUS_FILE,
                    index + 1,
                    String::from_utf8_lossy(line),
                    "expected a size in kB",
                )
            })?;
            *slot = Some(bytes_value);
        }
    }
    if !has_threads_line {
        let last_line = bytes
            .split(|&byte| byte == b'\n')
            .rfind(|line| !line.is_empty())
            .unwrap_or(b"");
        let reason = if bytes.is_empty() {
            "empty file"
        } else {
            "no Threads: line (truncated?)"
        };
        return Err(ParseError::new(
            STATUS_FILE,
            line_count,
            String::from_utf8_lossy(last_line),
            reason,
        ));
    }
    if !has_address_space && rss_anon.is_none() && rss_file.is_none() && rss_shmem.is_none() {
        return Ok(StatusMemory::default());
    }
    let missing = |name: &str| {
        ParseError::new(
            STATUS_FILE,
            0,
            "",
            format!("missing {name}: line (the process has Vm* lines)"),
        )
    };
    Ok(StatusMemory {
        rss_anon: rss_anon.ok_or_else(|| missing("RssAnon"))?,
        rss_file: rss_file.ok_or_else(|| missing("RssFile"))?,
        rss_shmem: rss_shmem.ok_or_else(|| missing("RssShmem"))?,
    })
}

// ---------------------------------------------------------------------------------------------
// /proc/meminfo
// ---------------------------------------------------------------------------------------------

/// Generic name used in errors from [`parse_meminfo`] until the caller attaches the path.
pub const MEMINFO_FILE: &str = "/proc/meminfo";

/// The host-wide memory figures resctl uses from `/proc/meminfo`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemInfo {
    /// `MemTotal`: usable RAM.
    pub mem_total: u64,
    /// `MemAvailable`: the kernel's estimate of memory available without swapping.
    pub mem_available: u64,
    /// `SwapTotal`.
    pub swap_total: u64,
    /// `SwapFree`.
    pub swap_free: u64,
}

/// Parses `/proc/meminfo` (`Key:   123 kB` lines); all four fields are required.
pub fn parse_meminfo(text: &str) -> Result<MemInfo, ParseError> {
    let (mut mem_total, mut mem_available, mut swap_total, mut swap_free) =
        (None, None, None, None);
    for (index, line) in text.lines().enumerate() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "MemTotal" => &mut mem_total,
            "MemAvailable" => &mut mem_available,
            "SwapTotal" => &mut swap_total,
            "SwapFree" => &mut swap_free,
            _ => continue,
        };
        let parsed = parse_kib(value.as_bytes()).ok_or_else(|| {
            ParseError::new(MEMINFO_FILE, index + 1, line, "expected a size in kB")
        })?;
        *slot = Some(parsed);
    }
    let missing = |name: &str| {
        ParseError::new(
            MEMINFO_FILE,
            usize::from(!text.is_empty()),
            text.lines().next().unwrap_or(""),
            format!("missing {name}: line"),
        )
    };
    Ok(MemInfo {
        mem_total: mem_total.ok_or_else(|| missing("MemTotal"))?,
        mem_available: mem_available.ok_or_else(|| missing("MemAvailable"))?,
        swap_total: swap_total.ok_or_else(|| missing("SwapTotal"))?,
        swap_free: swap_free.ok_or_else(|| missing("SwapFree"))?,
    })
}

// ---------------------------------------------------------------------------------------------
// /proc/loadavg
// ---------------------------------------------------------------------------------------------

/// Generic name used in errors from [`parse_loadavg`] until the caller attaches the path.
pub const LOADAVG_FILE: &str = "/proc/loadavg";

/// `/proc/loadavg`: `0.78 0.20 0.07 1/74 403`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoadAvg {
    /// Load average over 1 minute.
    pub load1: f64,
    /// Load average over 5 minutes.
    pub load5: f64,
    /// Load average over 15 minutes.
    pub load15: f64,
    /// Scheduling entities (threads) currently runnable (the number before the `/`).
    pub runnable: u32,
    /// Scheduling entities that exist (the number after the `/`).
    pub total_entities: u32,
}

/// Parses `/proc/loadavg`; the trailing last-pid field is ignored.
pub fn parse_loadavg(text: &str) -> Result<LoadAvg, ParseError> {
    let line = text.lines().next().unwrap_or("");
    let error =
        |reason: &str| ParseError::new(LOADAVG_FILE, usize::from(!text.is_empty()), line, reason);
    if line.trim().is_empty() {
        return Err(error("empty file"));
    }
    let mut fields = line.split_ascii_whitespace();
    let mut load = |name: &str| -> Result<f64, ParseError> {
        fields
            .next()
            .ok_or_else(|| error(&format!("line ends before the {name} load average")))?
            .parse::<f64>()
            .map_err(|_| error(&format!("the {name} load average is not a number")))
    };
    let (load1, load5, load15) = (load("1-minute")?, load("5-minute")?, load("15-minute")?);
    let entities = fields
        .next()
        .ok_or_else(|| error("line ends before runnable/total"))?;
    let (runnable, total) = entities
        .split_once('/')
        .and_then(|(runnable, total)| Some((runnable.parse().ok()?, total.parse().ok()?)))
        .ok_or_else(|| error("expected runnable/total integers in field 4"))?;
    Ok(LoadAvg {
        load1,
        load5,
        load15,
        runnable,
        total_entities: total,
    })
}

// ---------------------------------------------------------------------------------------------
// /proc/stat (cpu lines)
// ---------------------------------------------------------------------------------------------

/// Generic name used in errors from [`parse_cpu_stat`] until the caller attaches the path.
pub const PROC_STAT_FILE: &str = "/proc/stat";

/// CPU time of one `cpu` line of `/proc/stat`, in clock ticks (see
/// [`clock_ticks_per_second`](crate::sample::procfs::clock_ticks_per_second)).
/// `guest` and `guest_nice` are not kept: the kernel already counts them in `user`/`nice`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuTimes {
    /// Time in user mode.
    pub user: u64,
    /// Time in user mode at a positive nice value.
    pub nice: u64,
    /// Time in kernel mode.
    pub system: u64,
    /// Idle time.
    pub idle: u64,
    /// Idle time while I/O was outstanding.
    pub iowait: u64,
    /// Time servicing hardware interrupts.
    pub irq: u64,
    /// Time servicing softirqs.
    pub softirq: u64,
    /// Time stolen by the hypervisor for other guests.
    pub steal: u64,
}

impl CpuTimes {
    /// Ticks spent doing work: user + nice + system + irq + softirq + steal, saturating
    /// at `u64::MAX` (each field is any u64 the file holds, so the sum can overflow).
    pub fn busy(&self) -> u64 {
        [self.nice, self.system, self.irq, self.softirq, self.steal]
            .into_iter()
            .fold(self.user, u64::saturating_add)
    }

    /// All ticks: [`busy`](Self::busy) + idle + iowait, saturating at `u64::MAX`.
    pub fn total(&self) -> u64 {
        self.busy()
            .saturating_add(self.idle)
            .saturating_add(self.iowait)
    }
}

/// The `cpu` lines of `/proc/stat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStat {
    /// The aggregate `cpu` line (all CPUs).
    pub total: CpuTimes,
    /// One entry per `cpuN` line, in file order (offline CPUs have no line).
    pub per_cpu: Vec<CpuTimes>,
}

/// Parses the `cpu` and `cpuN` lines of `/proc/stat`; the aggregate line is required,
/// each line needs at least the eight fields user..steal, other lines are ignored.
pub fn parse_cpu_stat(text: &str) -> Result<CpuStat, ParseError> {
    let mut total = None;
    let mut per_cpu = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix("cpu") else {
            continue;
        };
        let mut fields = rest.split_ascii_whitespace();
        let is_aggregate = rest.starts_with(' ');
        if !is_aggregate {
            let cpu_number = fields.next().unwrap_or("");
            if cpu_number.parse::<u32>().is_err() {
                continue;
            }
        }
        let error = |reason: String| ParseError::new(PROC_STAT_FILE, index + 1, line, reason);
        let mut values = [0_u64; 8];
        const NAMES: [&str; 8] = [
            "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
        ];
        for (value, name) in values.iter_mut().zip(NAMES) {
            let field = fields
                .next()
                .ok_or_else(|| error(format!("line ends before the {name} field")))?;
            *value = field
                .parse()
                .map_err(|_| error(format!("{name} is not an integer: {field:?}")))?;
        }
        let [user, nice, system, idle, iowait, irq, softirq, steal] = values;
        let times = CpuTimes {
            user,
            nice,
            system,
            idle,
            iowait,
            irq,
            softirq,
            steal,
        };
        if is_aggregate {
            total = Some(times);
        } else {
            per_cpu.push(times);
        }
    }
    let total = total.ok_or_else(|| {
        ParseError::new(
            PROC_STAT_FILE,
            usize::from(!text.is_empty()),
            text.lines().next().unwrap_or(""),
            "no aggregate \"cpu \" line",
        )
    })?;
    Ok(CpuStat { total, per_cpu })
}

// ---------------------------------------------------------------------------------------------
// small helpers
// ---------------------------------------------------------------------------------------------

/// Position of the last `needle` in `haystack`. Compares 16 bytes at a time without
/// branching (the compiler vectorises it): a stat line has ~250 bytes after the comm.
fn last_index_of(haystack: &[u8], needle: u8) -> Option<usize> {
    const CHUNK: usize = 16;
    let mut end = haystack.len();
    while end >= CHUNK {
        let chunk = &haystack[end - CHUNK..end];
        if chunk
            .iter()
            .fold(false, |found, &byte| found | (byte == needle))
        {
            break;
        }
        end -= CHUNK;
    }
    haystack[..end].iter().rposition(|&byte| byte == needle)
}

/// Parses an optionally negative decimal integer made only of ASCII digits.
fn parse_signed(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', digits)) => (true, digits),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut value: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value
            .checked_mul(10)?
            .checked_add(i64::from(digit - b'0'))?;
    }
    Some(if negative { -value } else { value })
}

/// Parses `   44380 kB` into bytes; the `kB` unit is required.
fn parse_kib(value: &[u8]) -> Option<u64> {
    let number = value.trim_ascii().strip_suffix(b"kB")?.trim_ascii();
    let kib = u64::try_from(parse_signed(number)?).ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::proc_fixture as fixture;

    const V61_STAT: &str = fixture!("kernel-6.1/pid/stat");
    const V61_STATUS: &str = fixture!("kernel-6.1/pid/status");

    #[test]
    fn stat_comm_with_parentheses_and_spaces() {
        let stat = parse_stat(V61_STAT.as_bytes()).unwrap();
        assert_eq!(
            stat,
            StatLine {
                pid: 191,
                comm: "a) b (c".into(),
                state: 'S',
                ppid: 181,
                utime_ticks: 58,
                stime_ticks: 43,
                num_threads: 6,
                processor: 1,
            }
        );
    }

    #[test]
    fn task_stat_fixtures() {
        let main = parse_stat(fixture!("kernel-6.1/pid/task/191/stat").as_bytes()).unwrap();
        assert_eq!(
            (main.pid, main.utime_ticks, main.stime_ticks),
            (191, 57, 43)
        );
        let worker = parse_stat(fixture!("kernel-6.1/pid/task/271/stat").as_bytes()).unwrap();
        assert_eq!(worker.pid, 271);
        assert_eq!(worker.comm, "a) b (c");
        assert_eq!((worker.utime_ticks, worker.stime_ticks), (0, 0));
        assert_eq!((worker.num_threads, worker.processor), (6, 1));
    }

    #[test]
    fn stat_comm_that_is_not_utf8() {
        // Fields 4..=52 after the comm: field n holds n, except utime/stime/processor.
        let mut line = b"7 (bad\xff) R".to_vec();
        for field_number in 4..=52 {
            let value = match field_number {
                14 => 5,
                15 => 6,
                39 => 3,
                other => other,
            };
            line.extend_from_slice(format!(" {value}").as_bytes());
        }
        let stat = parse_stat(&line).unwrap();
        assert_eq!(stat.ppid, 4);
        assert_eq!(stat.num_threads, 20);
        assert_eq!(stat.comm, "bad\u{fffd}");
        assert_eq!(
            (
                stat.state,
                stat.utime_ticks,
                stat.stime_ticks,
                stat.processor
            ),
            ('R', 5, 6, 3)
        );
    }

    /// A stat line with this comm whose field n (n >= 4) holds n, except the ones set here.
    fn synthetic_stat(comm: &[u8], utime: u64, stime: u64, processor: i32) -> Vec<u8> {
        let mut line = b"4242 (".to_vec();
        line.extend_from_slice(comm);
        line.extend_from_slice(b") D");
        for field_number in 4..=52_u64 {
            let value = match field_number {
                14 => utime.to_string(),
                15 => stime.to_string(),
                39 => processor.to_string(),
                other => other.to_string(),
            };
            line.extend_from_slice(format!(" {value}").as_bytes());
        }
        line.push(b'\n');
        line
    }

    #[test]
    fn stat_comm_with_newline_and_closing_parens() {
        let stat = parse_stat(&synthetic_stat(b"x\n) R 1 (y))", 11, 12, 1)).unwrap();
        assert_eq!(stat.comm, "x\n) R 1 (y))");
        assert_eq!((stat.pid, stat.state, stat.ppid), (4242, 'D', 4));
        assert_eq!(
            (stat.utime_ticks, stat.stime_ticks, stat.processor),
            (11, 12, 1)
        );
    }

    #[test]
    fn last_index_of_across_chunk_boundaries() {
        for length in 0..70 {
            for position in 0..length {
                let mut haystack = vec![b'1'; length];
                haystack[position] = b')';
                assert_eq!(
                    last_index_of(&haystack, b')'),
                    Some(position),
                    "{length}/{position}"
                );
                if position > 0 {
                    haystack[0] = b')';
                    assert_eq!(last_index_of(&haystack, b')'), Some(position));
                }
            }
            assert_eq!(last_index_of(&vec![b'1'; length], b')'), None);
        }
    }

    proptest::proptest! {
        #[test]
        fn stat_parses_any_comm(
            comm in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            utime in 0..u64::from(u32::MAX),
            stime in 0..u64::from(u32::MAX),
            processor in 0..4096_i32,
        ) {
            let stat = parse_stat(&synthetic_stat(&comm, utime, stime, processor)).unwrap();
            proptest::prop_assert_eq!(stat.comm, String::from_utf8_lossy(&comm).into_owned());
            proptest::prop_assert_eq!(
                (stat.utime_ticks, stat.stime_ticks, stat.processor, stat.num_threads),
                (utime, stime, processor, 20)
            );
        }
    }

    #[test]
    fn stat_errors_name_the_file_and_line() {
        let half = &V61_STAT[..V61_STAT.len() / 2];
        let error = parse_stat(half.as_bytes())
            .unwrap_err()
            .in_file("/proc/191/stat");
        assert_eq!(error.file, "/proc/191/stat");
        assert_eq!(error.line, half);
        assert!(
            error.reason.contains("line ends before field 39"),
            "{error}"
        );
        assert!(error.to_string().starts_with("/proc/191/stat: "), "{error}");

        let no_close = V61_STAT.replace(')', "");
        let error = parse_stat(no_close.as_bytes()).unwrap_err();
        assert_eq!(error.file, STAT_FILE);
        assert!(error.reason.contains("')'"), "{error}");

        let non_numeric = V61_STAT.replacen(" 58 43 ", " 58 x43 ", 1);
        let error = parse_stat(non_numeric.as_bytes()).unwrap_err();
        assert!(error.reason.contains("field 15 (stime)"), "{error}");
        assert_eq!(error.line, non_numeric.trim_end());

        let error = parse_stat(b"").unwrap_err();
        assert_eq!(
            (error.line_number, error.reason.as_str()),
            (0, "empty file")
        );
        let error = parse_stat(b"191 (x) S 181").unwrap_err();
        assert!(error.reason.contains("field 14 (utime)"), "{error}");
    }

    #[test]
    fn status_memory_fixture() {
        let memory = parse_status_memory(V61_STATUS.as_bytes()).unwrap();
        assert_eq!(
            memory,
            StatusMemory {
                rss_anon: 44_380 * 1024,
                rss_file: 5_532 * 1024,
                rss_shmem: 0,
            }
        );
    }

    #[test]
    fn status_of_zombie_without_address_space_is_zero() {
        let zombie = "Name:\tx\nState:\tZ (zombie)\nTgid:\t5\nThreads:\t1\nSigQ:\t0/7821\n";
        assert_eq!(
            parse_status_memory(zombie.as_bytes()).unwrap(),
            StatusMemory::default()
        );
    }

    #[test]
    fn status_errors() {
        let error = parse_status_memory(b"")
            .unwrap_err()
            .in_file("/proc/9/status");
        assert_eq!(error.file, "/proc/9/status");
        assert_eq!(error.reason, "empty file");

        let cut = &V61_STATUS[..V61_STATUS.find("RssFile").unwrap() + 3];
        let error = parse_status_memory(cut.as_bytes()).unwrap_err();
        assert!(error.reason.contains("truncated"), "{error}");
        assert_eq!(error.line, "Rss");

        let without_shmem = V61_STATUS.replace("RssShmem:\t       0 kB\n", "");
        let error = parse_status_memory(without_shmem.as_bytes()).unwrap_err();
        assert!(error.reason.contains("RssShmem"), "{error}");

        let bad = V61_STATUS.replace("44380 kB", "44x80 kB");
        let error = parse_status_memory(bad.as_bytes()).unwrap_err();
        assert_eq!(error.line, "RssAnon:\t   44x80 kB");
        assert_eq!(error.line_number, 23);
    }

    #[test]
    fn meminfo_fixtures() {
        let memory = parse_meminfo(fixture!("kernel-6.1/meminfo")).unwrap();
        assert_eq!(
            memory,
            MemInfo {
                mem_total: 2_012_120 * 1024,
                mem_available: 1_793_000 * 1024,
                swap_total: 0,
                swap_free: 0,
            }
        );
        let memory = parse_meminfo(fixture!("kernel-6.18-hybrid/meminfo")).unwrap();
        assert_eq!(memory.mem_total, 24_684_084 * 1024);
        assert_eq!(memory.mem_available, 24_170_832 * 1024);
    }

    #[test]
    fn meminfo_errors() {
        let text = fixture!("kernel-6.1/meminfo");
        let error = parse_meminfo(&text.replace("MemAvailable", "MemAvail")).unwrap_err();
        assert!(error.reason.contains("MemAvailable"), "{error}");
        let error = parse_meminfo(&text.replace("1793000 kB", "17x3000 kB")).unwrap_err();
        assert_eq!(
            (error.line_number, error.line.as_str()),
            (3, "MemAvailable:    17x3000 kB")
        );
        let error = parse_meminfo("").unwrap_err().in_file("/proc/meminfo");
        assert!(
            error
                .to_string()
                .starts_with("/proc/meminfo: missing MemTotal"),
            "{error}"
        );
    }

    #[test]
    fn loadavg_fixtures() {
        let load = parse_loadavg(fixture!("kernel-6.1/loadavg")).unwrap();
        assert_eq!(
            load,
            LoadAvg {
                load1: 0.78,
                load5: 0.20,
                load15: 0.07,
                runnable: 1,
                total_entities: 74,
            }
        );
        let load = parse_loadavg(fixture!("kernel-6.18-hybrid/loadavg")).unwrap();
        assert_eq!(
            (load.load15, load.runnable, load.total_entities),
            (0.69, 2, 79)
        );
    }

    #[test]
    fn loadavg_errors() {
        assert_eq!(parse_loadavg("").unwrap_err().reason, "empty file");
        let error = parse_loadavg("0.78 0.20").unwrap_err();
        assert!(error.reason.contains("15-minute"), "{error}");
        assert_eq!(error.line, "0.78 0.20");
        let error = parse_loadavg("0.78 0.20 0.07 1-74 403").unwrap_err();
        assert!(error.reason.contains("runnable/total"), "{error}");
        let error = parse_loadavg("0.78 x 0.07 1/74 403").unwrap_err();
        assert!(error.reason.contains("5-minute"), "{error}");
    }

    #[test]
    fn cpu_stat_fixtures() {
        let stat = parse_cpu_stat(fixture!("kernel-6.1/stat")).unwrap();
        assert_eq!(
            stat.total,
            CpuTimes {
                user: 1180,
                nice: 0,
                system: 1426,
                idle: 4779,
                iowait: 5,
                irq: 0,
                softirq: 4,
                steal: 0,
            }
        );
        assert_eq!(stat.total.busy(), 1180 + 1426 + 4);
        assert_eq!(stat.total.total(), 1180 + 1426 + 4779 + 5 + 4);
        assert_eq!(stat.per_cpu.len(), 2);
        assert_eq!(stat.per_cpu[1].user, 630);
        assert_eq!(stat.per_cpu[1].idle, 2379);

        let stat = parse_cpu_stat(fixture!("kernel-6.18-hybrid/stat")).unwrap();
        assert_eq!(stat.total.steal, 350);
        assert_eq!(stat.total.system, 70_588);
        assert_eq!(stat.per_cpu[0].softirq, 52);
        assert_eq!(stat.per_cpu.len(), 2);
    }

    #[test]
    fn cpu_stat_errors() {
        let text = fixture!("kernel-6.1/stat");
        let error = parse_cpu_stat(&text.replace("cpu1 630 0 672 2379", "cpu1 630 0 6x2 2379"))
            .unwrap_err()
            .in_file("/proc/stat");
        assert_eq!(error.line_number, 3);
        assert!(
            error
                .to_string()
                .starts_with("/proc/stat: system is not an integer"),
            "{error}"
        );
        let error = parse_cpu_stat("cpu  1180 0 1426 4779\n").unwrap_err();
        assert!(error.reason.contains("iowait"), "{error}");
        let error = parse_cpu_stat("").unwrap_err();
        assert!(error.reason.contains("cpu"), "{error}");
    }

    /// Found by fuzz/ (target proc_files, input minimised with `cargo fuzz tmin`): a field
    /// of u64::MAX made `busy` and `total` overflow (a panic in debug builds).
    #[test]
    fn cpu_times_sums_saturate_instead_of_overflowing() {
        let stat = parse_cpu_stat("cpu 18446744073709551615 0 1 7 0 1 0 1").unwrap();
        assert_eq!(stat.total.user, u64::MAX);
        assert_eq!(stat.total.busy(), u64::MAX);
        assert_eq!(stat.total.total(), u64::MAX);
        let stat =
            parse_cpu_stat("cpu 9223372036854775808 0 0 9223372036854775808 0 0 0 0").unwrap();
        assert_eq!(stat.total.busy(), 1 << 63);
        assert_eq!(stat.total.total(), u64::MAX);
    }
}
