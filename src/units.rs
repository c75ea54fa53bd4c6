//! Sizes, limits, percentages and durations written the way systemd writes them.
//!
//! - Sizes are binary everywhere: `3.5G` = 3.5 GiB = 3 758 096 384 bytes, `300M`, `512K`,
//!   `1T`, a bare `1024` is bytes; the spellings `MiB`, `GiB`, `MB`, `GB` mean the same
//!   binary units (parse-size's `Config::new().with_binary()`).
//! - A [`Limit`] is a size, a percentage (`75%`, of the job's memory limit) or `max` /
//!   `infinity`.
//! - Durations use humantime (`1s`, `250ms`, `2m30s`); a bare number means seconds
//!   (`30`, `1.5`), like systemd.
//!
//! [`format_size`] is the compact, lossy form for people (logs, tables);
//! [`format_size_exact`] is the form written back into YAML, which reads back to the same
//! number of bytes. The `serde_*` modules plug these into `#[serde(with = "...")]`.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Examples of accepted sizes, quoted in error messages.
const SIZE_EXAMPLES: &str = "e.g. 3.5G, 300M, 512K, 1T or a number of bytes such as 1024";
/// Examples of accepted limits, quoted in error messages.
const LIMIT_EXAMPLES: &str = "a size (e.g. 3.5G, 300M, 1024), a percentage (e.g. 75%) or max";
/// Examples of accepted durations, quoted in error messages.
const DURATION_EXAMPLES: &str =
    "e.g. 1s, 250ms, 2m30s, 15min, or a number of seconds such as 30 or 1.5";
/// Examples of accepted percentages, quoted in error messages.
const PERCENT_EXAMPLES: &str = "a number above 0 and at most 100, e.g. 70 or 87.5%";

/// Binary unit suffixes from the largest down, with their power-of-two shift.
const BINARY_UNITS: [(&str, u32); 6] = [
    ("E", 60),
    ("P", 50),
    ("T", 40),
    ("G", 30),
    ("M", 20),
    ("K", 10),
];

/// A value that could not be read as a size, limit, percentage or duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// Not a size such as `3.5G` or `1024`.
    #[error("invalid size '{given}': {reason}; expected {SIZE_EXAMPLES}")]
    Size {
        /// The text as given.
        given: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Not a limit (size, percentage or `max`).
    #[error("invalid limit '{given}': {reason}; expected {LIMIT_EXAMPLES}")]
    Limit {
        /// The text as given.
        given: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Not a percentage in (0, 100].
    #[error("invalid percentage '{given}': {reason}; expected {PERCENT_EXAMPLES}")]
    Percent {
        /// The text as given.
        given: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Not a duration such as `1s` or `30`.
    #[error("invalid duration '{given}': {reason}; expected {DURATION_EXAMPLES}")]
    Duration {
        /// The text as given.
        given: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Parses a size with binary units (systemd's convention): `3.5G` = 3 758 096 384,
/// `300M`, `512K`, `1T`, `2GiB`, `2GB` (also binary), a bare `1024` is bytes.
/// Fractions of a byte are rounded to the nearest byte.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let trimmed = text.trim();
    let size_error = |reason: &str| UnitError::Size {
        given: text.to_string(),
        reason: reason.to_string(),
    };
    if trimmed.is_empty() {
        return Err(size_error("it is empty"));
    }
    if trimmed.starts_with('-') {
        return Err(size_error("a size cannot be negative"));
    }
    // parse-size 1.1 overflows (a panic in debug builds, a wrong size in release) when a
    // digit follows a mantissa of exactly u64::MAX; no size has more than 20 significant
    // digits, so longer numbers are refused before they reach it (found by fuzzing).
    let significant_digits = trimmed
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | '_' | ' '))
        .filter(char::is_ascii_digit)
        .skip_while(|digit| *digit == '0')
        .count();
    if significant_digits > 20 {
        return Err(size_error("it does not fit in 64 bits"));
    }
    parse_size::Config::new()
        .with_binary()
        .parse_size(trimmed)
        .map_err(|error| match error {
            parse_size::Error::PosOverflow => size_error("it does not fit in 64 bits"),
            parse_size::Error::Empty => size_error("it has no number"),
            _ => size_error("not a number with an optional unit K, M, G, T, P or E"),
        })
}

/// Parses a percentage in (0, 100], with or without a trailing `%` (`75`, `87.5%`).
pub fn parse_percent(text: &str) -> Result<f64, UnitError> {
    let trimmed = text.trim();
    let number = trimmed.strip_suffix('%').unwrap_or(trimmed).trim();
    let value: f64 = number.parse().map_err(|_| UnitError::Percent {
        given: text.to_string(),
        reason: "not a number".to_string(),
    })?;
    check_percent(value).map_err(|reason| UnitError::Percent {
        given: text.to_string(),
        reason,
    })
}

/// Checks that `value` is a percentage in (0, 100]; returns the reason when it is not.
fn check_percent(value: f64) -> Result<f64, String> {
    if !value.is_finite() {
        Err("it is not a finite number".to_string())
    } else if value <= 0.0 {
        Err("it must be above 0".to_string())
    } else if value > 100.0 {
        Err("it must be at most 100".to_string())
    } else {
        Ok(value)
    }
}

/// Parses a duration: humantime's `1s`, `250ms`, `2m30s`, `15min`, `1h`; a bare number is
/// seconds (`30` = 30 s, `1.5` = 1.5 s) like systemd.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let trimmed = text.trim();
    let duration_error = |reason: String| UnitError::Duration {
        given: text.to_string(),
        reason,
    };
    if trimmed.is_empty() {
        return Err(duration_error("it is empty".to_string()));
    }
    if trimmed.starts_with('-') {
        return Err(duration_error("a duration cannot be negative".to_string()));
    }
    if let Ok(seconds) = trimmed.parse::<f64>() {
        return seconds_to_duration(seconds).map_err(duration_error);
    }
    humantime::parse_duration(trimmed).map_err(|error| duration_error(error.to_string()))
}

/// Converts a number of seconds into a duration, refusing negative and non-finite values.
fn seconds_to_duration(seconds: f64) -> Result<Duration, String> {
    if !seconds.is_finite() {
        return Err("it is not a finite number".to_string());
    }
    if seconds < 0.0 {
        return Err("a duration cannot be negative".to_string());
    }
    Duration::try_from_secs_f64(seconds).map_err(|error| error.to_string())
}

/// Formats a size compactly for people: `3.5G`, `300M`, `121M`, `12B` — binary units, one
/// decimal below 100 of the unit and none from 100 on, `.0` dropped — the one formatter of
/// sizes in logs, reasons and tables. Lossy; use [`format_size_exact`] where the value must
/// read back unchanged.
pub fn format_size(bytes: u64) -> String {
    let Some(index) = BINARY_UNITS
        .iter()
        .position(|(_, shift)| bytes >> shift > 0)
    else {
        return format!("{bytes}B");
    };
    let (mut suffix, shift) = BINARY_UNITS[index];
    let mut scaled = bytes as f64 / (1u64 << shift) as f64;
    // 1023.96K would read 1024K: say 1M instead.
    if scaled >= 1023.5 && index > 0 {
        suffix = BINARY_UNITS[index - 1].0;
        scaled /= 1024.0;
    }
    let text = if scaled >= 100.0 {
        format!("{scaled:.0}")
    } else {
        format!("{scaled:.1}")
    };
    format!("{}{suffix}", text.strip_suffix(".0").unwrap_or(&text))
}

/// Formats a size so that [`parse_size()`] reads back exactly the same number: the largest
/// binary unit in which the value is whole (`2000M`) or a short number with one decimal
/// (`3.5G`, `1.5K`), else plain bytes (`1000000000B`).
pub fn format_size_exact(bytes: u64) -> String {
    for (suffix, shift) in BINARY_UNITS {
        let unit = 1u128 << shift;
        let value = u128::from(bytes);
        if value < unit {
            continue;
        }
        if value % unit == 0 {
            return format!("{}{suffix}", value / unit);
        }
        // One decimal only for a short number (1.5K, 3.5G), not for 2929687.5K.
        if (value * 10) % unit == 0 && value / unit < 1024 {
            let tenths = value * 10 / unit;
            return format!("{}.{}{suffix}", tenths / 10, tenths % 10);
        }
    }
    format!("{bytes}B")
}

/// Formats a duration compactly and exactly (humantime reads it back unchanged):
/// `1.5s`, `2m30s`, `250ms`, `15m`, `1h30m`, `0s`.
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let nanos = duration.subsec_nanos();
    if seconds == 0 {
        return match nanos {
            0 => "0s".to_string(),
            n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
            n if n % 1_000 == 0 => format!("{}us", n / 1_000),
            n => format!("{n}ns"),
        };
    }
    let mut text = String::new();
    let (hours, minutes, rest) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    if hours > 0 {
        text.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        text.push_str(&format!("{minutes}m"));
    }
    if rest > 0 || nanos > 0 {
        text.push_str(&rest.to_string());
        if nanos > 0 {
            let fraction = format!("{nanos:09}");
            text.push('.');
            text.push_str(fraction.trim_end_matches('0'));
        }
        text.push('s');
    }
    text
}

/// Formats a duration for people, rounded (not for reading back): `19ms`, `1.53s`, `2s`,
/// `2m5s`, `1h2m` — the one formatter of durations in logs, reasons and tables.
pub fn format_elapsed(duration: Duration) -> String {
    let millis = duration.as_millis();
    let seconds = duration.as_secs();
    if millis < 1000 {
        format!("{millis}ms")
    } else if seconds < 60 && duration.subsec_nanos() == 0 {
        format!("{seconds}s")
    } else if seconds < 60 {
        format!("{:.2}s", duration.as_secs_f64())
    } else if seconds < 3600 && seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else if seconds < 3600 {
        format!("{}m{}s", seconds / 60, seconds % 60)
    } else {
        format!("{}h{}m", seconds / 3600, seconds % 3600 / 60)
    }
}

/// Formats a percentage without a needless `.0`: `75%`, `87.5%`.
pub fn format_percent(percent: f64) -> String {
    format!("{percent}%")
}

/// Computes `percent` % of `whole`, rounded to the nearest byte.
pub fn percent_of(whole: u64, percent: f64) -> u64 {
    (whole as f64 * percent / 100.0).round() as u64
}

/// A memory limit reading meaning "no limit applies" (`max` everywhere up the tree).
pub const NO_LIMIT: u64 = u64::MAX;

/// A memory amount that is either absolute, relative to the job's limit, or no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// An absolute number of bytes.
    Bytes(u64),
    /// A percentage in (0, 100] of a reference amount (the job's memory limit for
    /// thresholds; the host's memory for cgroup limits).
    Percent(f64),
    /// No limit (`max`, `infinity`).
    Unlimited,
}

/// Parses a [`Limit`]: a size (`3.5G`, `1024`), a percentage (`75%`, `87.5%`), or
/// `max` / `infinity` for [`Limit::Unlimited`].
pub fn parse_limit(text: &str) -> Result<Limit, UnitError> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("max") || trimmed.eq_ignore_ascii_case("infinity") {
        return Ok(Limit::Unlimited);
    }
    if trimmed.ends_with('%') {
        return parse_percent(trimmed).map(Limit::Percent);
    }
    parse_size(trimmed)
        .map(Limit::Bytes)
        .map_err(|error| match error {
            UnitError::Size { reason, .. } => UnitError::Limit {
                given: text.to_string(),
                reason,
            },
            other => other,
        })
}

impl Limit {
    /// The number of bytes this limit stands for: a percentage is taken of `of` (the
    /// job's limit); `None` for [`Limit::Unlimited`] and for a percentage without `of`.
    pub fn resolve(&self, of: Option<u64>) -> Option<u64> {
        match *self {
            Limit::Bytes(bytes) => Some(bytes),
            Limit::Percent(percent) => of.map(|whole| percent_of(whole, percent)),
            Limit::Unlimited => None,
        }
    }

    /// Whether this limit is a percentage (and so needs a reference amount).
    pub fn is_percent(&self) -> bool {
        matches!(self, Limit::Percent(_))
    }
}

impl fmt::Display for Limit {
    /// The exact human form that [`parse_limit`] reads back: `3.5G`, `75%`, `max`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Limit::Bytes(bytes) => formatter.write_str(&format_size_exact(bytes)),
            Limit::Percent(percent) => formatter.write_str(&format_percent(percent)),
            Limit::Unlimited => formatter.write_str("max"),
        }
    }
}

impl FromStr for Limit {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_limit(text)
    }
}

impl Serialize for Limit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_unit(deserializer)
    }
}

/// A number of bytes that reads and writes as a human size (`3.5G`, `800M`, or a bare
/// integer of bytes in YAML).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    /// The exact form ([`format_size_exact`]).
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&format_size_exact(self.0))
    }
}

impl FromStr for Size {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_size(text).map(Size)
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_unit(deserializer)
    }
}

/// A value that YAML may hold as text (`3.5G`, `30s`, `75%`) or as a bare number
/// (bytes, seconds, percent); one [`UnitVisitor`] serves every such type.
trait UnitValue: Sized {
    /// What the visitor says it expected.
    const EXPECTING: &'static str;
    /// Reads the text form.
    fn from_text(text: &str) -> Result<Self, UnitError>;
    /// Reads a bare non-negative integer.
    fn from_unsigned(value: u64) -> Result<Self, UnitError>;
    /// Reads a bare floating-point number.
    fn from_float(value: f64) -> Result<Self, UnitError>;
}

/// The error for a bare fractional number where a byte count is expected.
const FRACTIONAL_BYTES: &str = "a bare number is a count of bytes and must be a whole number";

impl UnitValue for Size {
    const EXPECTING: &'static str = "a size such as 3.5G, 300M or a number of bytes";

    fn from_text(text: &str) -> Result<Self, UnitError> {
        parse_size(text).map(Size)
    }

    fn from_unsigned(value: u64) -> Result<Self, UnitError> {
        Ok(Size(value))
    }

    fn from_float(value: f64) -> Result<Self, UnitError> {
        Err(UnitError::Size {
            given: value.to_string(),
            reason: FRACTIONAL_BYTES.to_string(),
        })
    }
}

impl UnitValue for Limit {
    const EXPECTING: &'static str = LIMIT_EXAMPLES;

    fn from_text(text: &str) -> Result<Self, UnitError> {
        parse_limit(text)
    }

    fn from_unsigned(value: u64) -> Result<Self, UnitError> {
        Ok(Limit::Bytes(value))
    }

    fn from_float(value: f64) -> Result<Self, UnitError> {
        Err(UnitError::Limit {
            given: value.to_string(),
            reason: FRACTIONAL_BYTES.to_string(),
        })
    }
}

/// A duration read through [`UnitVisitor`].
struct DurationValue(Duration);

impl UnitValue for DurationValue {
    const EXPECTING: &'static str = "a duration such as 1s, 250ms, 2m30s or a number of seconds";

    fn from_text(text: &str) -> Result<Self, UnitError> {
        parse_duration(text).map(DurationValue)
    }

    fn from_unsigned(value: u64) -> Result<Self, UnitError> {
        Ok(DurationValue(Duration::from_secs(value)))
    }

    fn from_float(value: f64) -> Result<Self, UnitError> {
        seconds_to_duration(value)
            .map(DurationValue)
            .map_err(|reason| UnitError::Duration {
                given: value.to_string(),
                reason,
            })
    }
}

/// A percentage read through [`UnitVisitor`].
struct PercentValue(f64);

impl UnitValue for PercentValue {
    const EXPECTING: &'static str = "a percentage above 0 and at most 100, such as 70 or 87.5%";

    fn from_text(text: &str) -> Result<Self, UnitError> {
        parse_percent(text).map(PercentValue)
    }

    fn from_unsigned(value: u64) -> Result<Self, UnitError> {
        Self::from_float(value as f64)
    }

    fn from_float(value: f64) -> Result<Self, UnitError> {
        check_percent(value)
            .map(PercentValue)
            .map_err(|reason| UnitError::Percent {
                given: value.to_string(),
                reason,
            })
    }
}

/// Deserializes any [`UnitValue`] from a string or a bare number.
struct UnitVisitor<T>(PhantomData<T>);

/// Runs a [`UnitVisitor`] for `T` on `deserializer`.
fn deserialize_unit<'de, T: UnitValue, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    deserializer.deserialize_any(UnitVisitor(PhantomData))
}

impl<'de, T: UnitValue> Visitor<'de> for UnitVisitor<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(T::EXPECTING)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        T::from_text(text).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<T, E> {
        T::from_unsigned(value).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<T, E> {
        match u64::try_from(value) {
            Ok(unsigned) => T::from_unsigned(unsigned),
            Err(_) => T::from_text(&value.to_string()),
        }
        .map_err(E::custom)
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<T, E> {
        T::from_float(value).map_err(E::custom)
    }
}

/// Serde for [`Duration`] as seconds in a float (`2.5` = 2 s 500 ms).
pub mod serde_secs {
    use std::time::Duration;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the duration as seconds.
    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(value.as_secs_f64())
    }

    /// Reads seconds; negative, infinite or NaN values are errors.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let seconds = f64::deserialize(deserializer)?;
        Duration::try_from_secs_f64(seconds)
            .map_err(|error| D::Error::custom(format!("invalid duration {seconds} s: {error}")))
    }

    /// The same for `Option<Duration>` (`null` or absent = `None`).
    pub mod option {
        use std::time::Duration;

        use serde::de::Error as _;
        use serde::{Deserialize, Deserializer, Serializer};

        /// Writes the duration as seconds, or `null`.
        pub fn serialize<S: Serializer>(
            value: &Option<Duration>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match value {
                Some(value) => serializer.serialize_f64(value.as_secs_f64()),
                None => serializer.serialize_none(),
            }
        }

        /// Reads seconds or `null`.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Duration>, D::Error> {
            Option::<f64>::deserialize(deserializer)?
                .map(|seconds| {
                    Duration::try_from_secs_f64(seconds).map_err(|error| {
                        D::Error::custom(format!("invalid duration {seconds} s: {error}"))
                    })
                })
                .transpose()
        }
    }
}

/// `#[serde(with = "crate::units::serde_size")]` for a `u64` byte count written as a size.
pub mod serde_size {
    use super::{deserialize_unit, format_size_exact, Size};
    use serde::{Deserializer, Serializer};

    /// Writes the exact human form (`800M`).
    pub fn serialize<S: Serializer>(bytes: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_size_exact(*bytes))
    }

    /// Reads a size string (`800M`) or a bare integer of bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        deserialize_unit(deserializer).map(|Size(bytes)| bytes)
    }
}

/// `#[serde(with = "crate::units::serde_duration")]` for a `Duration`.
pub mod serde_duration {
    use super::{deserialize_unit, format_duration, DurationValue};
    use serde::{Deserializer, Serializer};
    use std::time::Duration;

    /// Writes the compact exact form (`1.5s`, `2m30s`).
    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(*duration))
    }

    /// Reads a duration string (`250ms`) or a bare number of seconds (`30`, `1.5`).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserialize_unit(deserializer).map(|DurationValue(duration)| duration)
    }
}

/// `#[serde(default, with = "crate::units::serde_opt_duration")]` for an `Option<Duration>`
/// (`null` or absent is `None`).
pub mod serde_opt_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Wrapper so `Option` can delegate to [`super::serde_duration`].
    #[derive(Deserialize)]
    struct Wrapped(#[serde(with = "super::serde_duration")] Duration);

    /// Writes `null` or the compact form.
    pub fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => super::serde_duration::serialize(duration, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Reads `null` or a duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(duration)| duration))
    }
}

/// `#[serde(with = "crate::units::serde_percent")]` for an `f64` percentage in (0, 100],
/// written as a number (`70`) or with a sign (`70%`).
pub mod serde_percent {
    use super::{deserialize_unit, PercentValue};
    use serde::{Deserializer, Serializer};

    /// Writes the bare number.
    pub fn serialize<S: Serializer>(percent: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(*percent)
    }

    /// Reads `70`, `87.5` or `"87.5%"`, refusing values outside (0, 100].
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        deserialize_unit(deserializer).map(|PercentValue(percent)| percent)
    }
}

/// `#[serde(default, with = "crate::units::serde_opt_percent")]` for an `Option<f64>`
/// percentage.
pub mod serde_opt_percent {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Wrapper so `Option` can delegate to [`super::serde_percent`].
    #[derive(Deserialize)]
    struct Wrapped(#[serde(with = "super::serde_percent")] f64);

    /// Writes `null` or the bare number.
    pub fn serialize<S: Serializer>(
        percent: &Option<f64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match percent {
            Some(percent) => serializer.serialize_f64(*percent),
            None => serializer.serialize_none(),
        }
    }

    /// Reads `null` or a percentage.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<f64>, D::Error> {
        Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(percent)| percent))
    }
}

/// `#[serde(default, with = "crate::units::serde_opt_size")]` for an `Option<u64>` size.
pub mod serde_opt_size {
    use super::Size;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `null` or the exact human form.
    pub fn serialize<S: Serializer>(bytes: &Option<u64>, serializer: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => super::serde_size::serialize(bytes, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Reads `null` or a size.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u64>, D::Error> {
        Ok(Option::<Size>::deserialize(deserializer)?.map(|Size(bytes)| bytes))
    }
}

#[cfg(test)]
mod elapsed_tests {
    use super::*;

    #[test]
    fn elapsed_is_rounded_for_people() {
        assert_eq!(format_elapsed(Duration::from_nanos(19_528_292)), "19ms");
        assert_eq!(format_elapsed(Duration::from_millis(1534)), "1.53s");
        assert_eq!(format_elapsed(Duration::from_secs(2)), "2s");
        assert_eq!(format_elapsed(Duration::from_secs(125)), "2m5s");
        assert_eq!(format_elapsed(Duration::from_secs(3720)), "1h2m");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;

    #[test]
    fn sizes_use_binary_units_everywhere() {
        assert_eq!(parse_size("3.5G").unwrap(), 3_758_096_384);
        assert_eq!(parse_size("300M").unwrap(), 300 * MIB);
        assert_eq!(parse_size("512K").unwrap(), 512 * 1024);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("1T").unwrap(), 1 << 40);
        assert_eq!(parse_size("2GiB").unwrap(), 2 * GIB);
        assert_eq!(parse_size("2GB").unwrap(), 2 * GIB);
        assert_eq!(parse_size("300MiB").unwrap(), 300 * MIB);
        assert_eq!(parse_size("300MB").unwrap(), 300 * MIB);
        assert_eq!(parse_size(" 1.5 k ").unwrap(), 1536);
        assert_eq!(parse_size("12B").unwrap(), 12);
    }

    #[test]
    fn size_errors_quote_the_input_and_an_example() {
        let message = parse_size("3X").unwrap_err().to_string();
        assert!(message.contains("'3X'"), "{message}");
        assert!(message.contains("3.5G"), "{message}");
        assert!(parse_size("").is_err());
        assert!(parse_size("-1G")
            .unwrap_err()
            .to_string()
            .contains("negative"));
        assert!(parse_size("99999999E")
            .unwrap_err()
            .to_string()
            .contains("64 bits"));
    }

    #[test]
    fn limits_accept_sizes_percentages_and_max() {
        assert_eq!(parse_limit("3.5G").unwrap(), Limit::Bytes(3_758_096_384));
        assert_eq!(parse_limit("75%").unwrap(), Limit::Percent(75.0));
        assert_eq!(parse_limit("87.5 %").unwrap(), Limit::Percent(87.5));
        assert_eq!(parse_limit("100%").unwrap(), Limit::Percent(100.0));
        assert_eq!(parse_limit("max").unwrap(), Limit::Unlimited);
        assert_eq!(parse_limit("infinity").unwrap(), Limit::Unlimited);
        assert!(matches!(parse_limit("0%"), Err(UnitError::Percent { .. })));
        assert!(matches!(
            parse_limit("100.1%"),
            Err(UnitError::Percent { .. })
        ));
        assert!(matches!(parse_limit("lots"), Err(UnitError::Limit { .. })));
        assert!(parse_limit("lots").unwrap_err().to_string().contains("75%"));
    }

    #[test]
    fn limits_resolve_against_the_job_limit() {
        let job_limit = Some(4000 * MIB);
        assert_eq!(Limit::Percent(87.5).resolve(job_limit), Some(3500 * MIB));
        assert_eq!(Limit::Percent(50.0).resolve(None), None);
        assert_eq!(Limit::Bytes(5).resolve(None), Some(5));
        assert_eq!(Limit::Unlimited.resolve(job_limit), None);
    }

    #[test]
    fn durations_follow_humantime_and_bare_seconds() {
        assert_eq!(parse_duration("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m30s").unwrap(), Duration::from_secs(150));
        assert_eq!(parse_duration("15min").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        let message = parse_duration("soon").unwrap_err().to_string();
        assert!(
            message.contains("'soon'") && message.contains("250ms"),
            "{message}"
        );
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn a_mantissa_past_u64_max_is_refused_not_wrapped() {
        // The fuzzer's input: 18446744073709551615 followed by more digits.
        let input = format!(
            "  {}18446744073709551615{}783",
            "0".repeat(78),
            " ".repeat(31)
        );
        let err = parse_size(&input).unwrap_err().to_string();
        assert!(err.contains("does not fit in 64 bits"), "{err}");
        assert!(parse_size("184467440737095516157K").is_err());
        assert!(parse_size("18446744073709551615.9").is_err());
        assert_eq!(parse_size("0000000000000000000000001K").unwrap(), 1024);
        assert_eq!(parse_size("1.5000000000000000000K").unwrap(), 1536);
    }

    #[test]
    fn sizes_format_compactly() {
        assert_eq!(format_size(3_758_096_384), "3.5G");
        assert_eq!(format_size(300 * MIB), "300M");
        assert_eq!(format_size(1023 * 1024), "1023K");
        assert_eq!(format_size(12), "12B");
        assert_eq!(format_size(0), "0B");
        assert_eq!(format_size(1024 * 1024 - 1), "1M");
        assert_eq!(
            format_size(1_000_000_000),
            "954M",
            "no decimal from 100 of the unit on"
        );
        assert_eq!(format_size(50 * MIB), "50M", "no needless .0");
        assert_eq!(format_size(8_650_752), "8.2M", "one decimal below 100");
        assert_eq!(format_size(u64::MAX), "16E");
    }

    #[test]
    fn exact_sizes_keep_every_byte() {
        assert_eq!(format_size_exact(3_758_096_384), "3.5G");
        assert_eq!(format_size_exact(3500 * MIB), "3500M");
        assert_eq!(format_size_exact(1536), "1.5K");
        assert_eq!(format_size_exact(1_000_000_000), "1000000000B");
        assert_eq!(format_size_exact(1023 * 1024 + 512), "1023.5K");
        assert_eq!(format_size_exact(1_000_000_001), "1000000001B");
        assert_eq!(format_size_exact(0), "0B");
    }

    #[test]
    fn durations_format_compactly() {
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(150)), "2m30s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(900)), "15m");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_micros(5)), "5us");
    }

    #[test]
    fn limit_display_reads_back() {
        for limit in [
            Limit::Bytes(3_758_096_384),
            Limit::Percent(87.5),
            Limit::Unlimited,
        ] {
            assert_eq!(parse_limit(&limit.to_string()).unwrap(), limit);
        }
        assert_eq!(Limit::Percent(75.0).to_string(), "75%");
    }

    #[derive(Debug, PartialEq, Deserialize, Serialize)]
    struct Units {
        size: Size,
        limit: Limit,
        #[serde(with = "serde_duration")]
        every: Duration,
        #[serde(with = "serde_percent")]
        cpu: f64,
    }

    #[test]
    fn yaml_accepts_strings_and_bare_numbers() {
        let parsed: Units =
            serde_saphyr::from_str("size: 3.5G\nlimit: 75%\nevery: 30s\ncpu: 70\n").unwrap();
        assert_eq!(
            parsed,
            Units {
                size: Size(3_758_096_384),
                limit: Limit::Percent(75.0),
                every: Duration::from_secs(30),
                cpu: 70.0
            }
        );
        let bare: Units =
            serde_saphyr::from_str("size: 1024\nlimit: 2000M\nevery: 1.5\ncpu: 87.5%\n").unwrap();
        assert_eq!(bare.size, Size(1024));
        assert_eq!(bare.limit, Limit::Bytes(2000 * MIB));
        assert_eq!(bare.every, Duration::from_millis(1500));
        assert_eq!(bare.cpu, 87.5);
        let written = serde_saphyr::to_string(&bare).unwrap();
        assert_eq!(written, "size: 1K\nlimit: 2000M\nevery: 1.5s\ncpu: 87.5\n");
        let again: Units = serde_saphyr::from_str(&written).unwrap();
        assert_eq!(again, bare);
    }

    #[test]
    fn yaml_unit_errors_point_at_the_value() {
        let error = serde_saphyr::from_str::<Units>("size: 1G\nlimit: 0%\nevery: 1s\ncpu: 1\n")
            .unwrap_err();
        let location = error.location().unwrap();
        assert_eq!((location.line(), location.column()), (2, 8));
        assert!(error.to_string().contains("must be above 0"));
        let error = serde_saphyr::from_str::<Units>("size: 1.5\nlimit: 1G\nevery: 1s\ncpu: 1\n")
            .unwrap_err();
        assert!(error.to_string().contains("whole number"), "{error}");
        let error = serde_saphyr::from_str::<Units>("size: 1\nlimit: 1G\nevery: 1s\ncpu: 101\n")
            .unwrap_err();
        assert!(error.to_string().contains("at most 100"), "{error}");
    }

    proptest! {
        #[test]
        fn compact_size_round_trips_within_rounding(bytes in 0u64..(1u64 << 62)) {
            let text = format_size(bytes);
            let parsed = parse_size(&text).unwrap();
            // One decimal of the chosen unit: the error is at most half a tenth of it,
            // i.e. under 5 % of the value (the value is at least one unit).
            let tolerance = (bytes as f64 * 0.05).max(0.5);
            prop_assert!((parsed as f64 - bytes as f64).abs() <= tolerance,
                "{} -> {} -> {}", bytes, text, parsed);
        }

        #[test]
        fn exact_size_round_trips(bytes in 0u64..(1u64 << 53)) {
            prop_assert_eq!(parse_size(&format_size_exact(bytes)).unwrap(), bytes);
        }

        #[test]
        fn exact_size_round_trips_for_unit_multiples(tenths in 1u64..100_000, shift in 0u32..5) {
            // Values like 3.5G or 1234.5M, which configs hold.
            let bytes = tenths * (1u64 << (10 * shift)) / 10;
            prop_assert_eq!(parse_size(&format_size_exact(bytes)).unwrap(), bytes);
        }

        #[test]
        fn duration_round_trips(nanos in 0u64..(10 * 24 * 3600 * 1_000_000_000u64)) {
            let duration = Duration::from_nanos(nanos);
            prop_assert_eq!(parse_duration(&format_duration(duration)).unwrap(), duration);
        }

        #[test]
        fn percent_limit_round_trips(tenths in 1u32..=1000) {
            let limit = Limit::Percent(f64::from(tenths) / 10.0);
            prop_assert_eq!(parse_limit(&limit.to_string()).unwrap(), limit);
        }
    }
}
