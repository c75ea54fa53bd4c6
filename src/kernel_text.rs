//! Text formats the kernel uses in both `/proc` and cgroupfs, at the bottom of the house so
//! that both readers ([`crate::sample`] and [`crate::cgroup`]) build on them without
//! importing each other: the [`ParseError`] that names the file and the offending line, and
//! pressure stall information ([`parse_pressure`]: `/proc/pressure/*` and a cgroup's
//! `*.pressure`). Pure code, no I/O.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// A kernel file whose text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {reason} (line {line_number}: {line:?})")]
pub struct ParseError {
    /// The file that was parsed: the real path once the reader attached it
    /// with [`ParseError::in_file`], otherwise a generic name such as `/proc/[pid]/stat`.
    pub file: String,
    /// 1-based number of the offending line (0 when the file is empty).
    pub line_number: usize,
    /// The offending line as read (or the empty string for an empty file).
    pub line: String,
    /// What was wrong with it.
    pub reason: String,
}

impl ParseError {
    /// Creates an error for `file` about `line` (1-based `line_number`).
    pub fn new(
        file: impl Into<String>,
        line_number: usize,
        line: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            line_number,
            line: line.into(),
            reason: reason.into(),
        }
    }

    /// Replaces the generic file name with the real path that was read.
    #[must_use]
    pub fn in_file(mut self, path: impl AsRef<Path>) -> Self {
        self.file = path.as_ref().display().to_string();
        self
    }
}

// ---------------------------------------------------------------------------------------------
// PSI: /proc/pressure/{cpu,memory,io} and cgroup2 {cpu,memory,io}.pressure
// ---------------------------------------------------------------------------------------------

/// One line of a PSI file: the share of wall time some (or all) tasks were stalled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PressureLine {
    /// Stall percentage averaged over the last 10 seconds.
    pub avg10: f64,
    /// Stall percentage averaged over the last 60 seconds.
    pub avg60: f64,
    /// Stall percentage averaged over the last 300 seconds.
    pub avg300: f64,
    /// Total stall time since boot (or cgroup creation), in microseconds.
    pub total_usec: u64,
}

/// A whole PSI file: the `some` line and, when the kernel provides it, the `full` line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pressure {
    /// At least one task was stalled.
    pub some: PressureLine,
    /// All non-idle tasks were stalled at once. Absent for cpu on kernels before 5.13;
    /// present but all zeros for host-wide cpu on newer kernels.
    pub full: Option<PressureLine>,
}

/// Generic name used in errors from [`parse_pressure`] until the caller attaches the path.
pub const PRESSURE_FILE: &str = "pressure (PSI)";

/// Parses a PSI file such as `/proc/pressure/memory` or a cgroup's `memory.pressure`:
///
/// ```text
/// some avg10=34.30 avg60=16.23 avg300=3.99 total=12345617
/// full avg10=34.19 avg60=16.18 avg300=3.98 total=12282202
/// ```
///
/// `some` is required, `full` optional; lines with other leading words and unknown
/// `key=value` pairs are ignored.
pub fn parse_pressure(text: &str) -> Result<Pressure, ParseError> {
    let mut some = None;
    let mut full = None;
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        let mut words = line.split_ascii_whitespace();
        let slot = match words.next() {
            Some("some") => &mut some,
            Some("full") => &mut full,
            _ => continue,
        };
        *slot = Some(parse_pressure_line(words, line_number, line)?);
    }
    match some {
        Some(some) => Ok(Pressure { some, full }),
        None => Err(ParseError::new(
            PRESSURE_FILE,
            if text.is_empty() { 0 } else { 1 },
            text.lines().next().unwrap_or(""),
            "no \"some\" line",
        )),
    }
}

fn parse_pressure_line<'a>(
    pairs: impl Iterator<Item = &'a str>,
    line_number: usize,
    line: &str,
) -> Result<PressureLine, ParseError> {
    let error = |reason: String| ParseError::new(PRESSURE_FILE, line_number, line, reason);
    let (mut avg10, mut avg60, mut avg300, mut total) = (None, None, None, None);
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(error(format!("expected key=value, found {pair:?}")));
        };
        let slot = match key {
            "avg10" => &mut avg10,
            "avg60" => &mut avg60,
            "avg300" => &mut avg300,
            "total" => {
                let parsed = value
                    .parse::<u64>()
                    .map_err(|_| error(format!("total is not an integer: {value:?}")))?;
                total = Some(parsed);
                continue;
            }
            _ => continue,
        };
        let parsed = value
            .parse::<f64>()
            .map_err(|_| error(format!("{key} is not a number: {value:?}")))?;
        *slot = Some(parsed);
    }
    let missing = |name: &str| error(format!("missing {name}="));
    Ok(PressureLine {
        avg10: avg10.ok_or_else(|| missing("avg10"))?,
        avg60: avg60.ok_or_else(|| missing("avg60"))?,
        avg300: avg300.ok_or_else(|| missing("avg300"))?,
        total_usec: total.ok_or_else(|| missing("total"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::proc_fixture as fixture;

    fn line(avg10: f64, avg60: f64, avg300: f64, total_usec: u64) -> PressureLine {
        PressureLine {
            avg10,
            avg60,
            avg300,
            total_usec,
        }
    }

    #[test]
    fn pressure_memory_6_1_has_some_and_full() {
        let pressure = parse_pressure(fixture!("kernel-6.1/pressure/memory")).unwrap();
        assert_eq!(pressure.some, line(34.30, 16.23, 3.99, 12_345_617));
        assert_eq!(pressure.full, Some(line(34.19, 16.18, 3.98, 12_282_202)));
    }

    #[test]
    fn pressure_cpu_and_io_6_18() {
        let cpu = parse_pressure(fixture!("kernel-6.18-hybrid/pressure/cpu")).unwrap();
        assert_eq!(cpu.some, line(0.14, 0.72, 2.48, 398_332_960));
        assert_eq!(cpu.full, Some(line(0.0, 0.0, 0.0, 0)));
        let io = parse_pressure(fixture!("kernel-6.18-hybrid/pressure/io")).unwrap();
        assert_eq!(io.some.total_usec, 15_561_089);
        assert_eq!(io.full.unwrap().avg300, 0.08);
    }

    #[test]
    fn pressure_without_full_line_as_on_old_kernels_cpu() {
        let pressure = parse_pressure("some avg10=4.52 avg60=7.50 avg300=2.27 total=7595224\n");
        let pressure = pressure.unwrap();
        assert_eq!(pressure.some, line(4.52, 7.50, 2.27, 7_595_224));
        assert_eq!(pressure.full, None);
    }

    #[test]
    fn pressure_ignores_unknown_keys() {
        let text = "some avg10=1.00 avg60=2.00 avg300=3.00 total=4 extra=9\n";
        assert_eq!(parse_pressure(text).unwrap().some, line(1.0, 2.0, 3.0, 4));
    }

    #[test]
    fn pressure_errors_name_the_file_and_line() {
        let empty = parse_pressure("").unwrap_err();
        assert_eq!(empty.file, PRESSURE_FILE);
        assert!(empty.reason.contains("some"), "{empty}");

        let text = "some avg10=1.00 avg60=2.00 avg300=3.00 total=4\nfull avg10=x avg60=2 avg300=3 total=4\n";
        let error = parse_pressure(text)
            .unwrap_err()
            .in_file("/proc/pressure/io");
        assert_eq!(error.file, "/proc/pressure/io");
        assert_eq!(error.line_number, 2);
        assert_eq!(error.line, "full avg10=x avg60=2 avg300=3 total=4");
        let message = error.to_string();
        assert!(
            message.starts_with("/proc/pressure/io: avg10 is not a number"),
            "{message}"
        );

        let truncated = parse_pressure("some avg10=1.00 avg60=2.00 av").unwrap_err();
        assert_eq!(truncated.line_number, 1);
        assert!(truncated.reason.contains("key=value"), "{truncated}");
        let missing_total = parse_pressure("some avg10=1.00 avg60=2.00 avg300=3.00").unwrap_err();
        assert!(missing_total.reason.contains("total"), "{missing_total}");
    }
}
