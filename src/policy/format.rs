//! Short human formats for reasons: binary byte sizes ("3.1G") and durations ("1m 30s").

use std::time::Duration;

/// Bytes in systemd's binary units: "512B", "200M", "3.1G" (one decimal below 100 units).
pub(crate) fn bytes(value: u64) -> String {
    const UNITS: [&str; 6] = ["K", "M", "G", "T", "P", "E"];
    if value < 1024 {
        return format!("{value}B");
    }
    let mut scaled = value as f64 / 1024.0;
    let mut unit = 0;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    if scaled >= 100.0 {
        format!("{scaled:.0}{}", UNITS[unit])
    } else {
        format!("{scaled:.1}{}", UNITS[unit])
    }
}

/// A duration rounded to whole seconds ("2s", "1m 30s"), or milliseconds below a second.
pub(crate) fn duration(value: Duration) -> String {
    if value < Duration::from_secs(1) {
        return format!("{}ms", value.as_millis());
    }
    let rounded = Duration::from_secs(
        value
            .as_secs()
            .saturating_add(u64::from(value.subsec_millis() >= 500)),
    );
    humantime::format_duration(rounded).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(200 * 1024 * 1024), "200M");
        assert_eq!(bytes(3_328_599_654), "3.1G");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0G");
        assert_eq!(bytes(u64::MAX), "16.0E");
    }

    #[test]
    fn durations_round_to_seconds() {
        assert_eq!(duration(Duration::from_millis(250)), "250ms");
        assert_eq!(duration(Duration::from_millis(1600)), "2s");
        assert_eq!(duration(Duration::from_secs(90)), "1m 30s");
        assert_eq!(
            duration(Duration::MAX),
            humantime::format_duration(Duration::from_secs(u64::MAX)).to_string()
        );
    }
}
