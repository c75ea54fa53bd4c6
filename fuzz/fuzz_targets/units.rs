//! Size, percentage, duration and limit parsing (src/units.rs), with the documented read
//! backs of the exact formatters: `format_size_exact` → `parse_size`, `format_duration` →
//! `parse_duration`, `format_percent` → `parse_percent`, `Limit`'s `Display` →
//! `parse_limit`. The lossy formatters for people (`format_size`, `format_elapsed`) only
//! must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resctl::units::{
    format_duration, format_elapsed, format_percent, format_size, format_size_exact,
    parse_duration, parse_limit, parse_percent, parse_size, percent_of,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(bytes) = parse_size(text) {
        let _ = format_size(bytes);
        let exact = format_size_exact(bytes);
        assert_eq!(parse_size(&exact).ok(), Some(bytes), "{text:?} → {exact:?}");
    }
    if let Ok(percent) = parse_percent(text) {
        let shown = format_percent(percent);
        assert_eq!(
            parse_percent(&shown).ok(),
            Some(percent),
            "{text:?} → {shown:?}"
        );
        let _ = percent_of(u64::MAX, percent);
    }
    if let Ok(duration) = parse_duration(text) {
        let _ = format_elapsed(duration);
        let shown = format_duration(duration);
        assert_eq!(
            parse_duration(&shown).ok(),
            Some(duration),
            "{text:?} → {shown:?}"
        );
    }
    if let Ok(limit) = parse_limit(text) {
        let shown = limit.to_string();
        assert_eq!(
            parse_limit(&shown).ok(),
            Some(limit),
            "{text:?} → {shown:?}"
        );
        let _ = limit.resolve(Some(u64::MAX));
        let _ = limit.resolve(None);
        let _ = limit.is_percent();
    }
});
