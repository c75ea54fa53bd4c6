//! How the policy's reasons show durations: rounded to whole seconds (a level held for
//! "2s", not "1.97s"), below a second in milliseconds, written by the one formatter
//! ([`crate::units::format_elapsed`]). Sizes are written by [`crate::units::format_size`].

use std::time::Duration;

pub(crate) use crate::units::format_size as bytes;

/// A duration rounded to whole seconds ("2s", "1m30s"), or milliseconds below a second.
pub(crate) fn duration(value: Duration) -> String {
    if value < Duration::from_secs(1) {
        return crate::units::format_elapsed(value);
    }
    let rounded = value
        .as_secs()
        .saturating_add(u64::from(value.subsec_millis() >= 500));
    crate::units::format_elapsed(Duration::from_secs(rounded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_to_seconds() {
        assert_eq!(duration(Duration::from_millis(250)), "250ms");
        assert_eq!(duration(Duration::from_millis(1600)), "2s");
        assert_eq!(duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3G");
    }
}
