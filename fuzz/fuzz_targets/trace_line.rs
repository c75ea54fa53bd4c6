//! `resctl replay` on an untrusted trace: each non-blank line parsed as a `TraceLine`
//! exactly as `read_trace` (src/report/record.rs) does, then the header's policy
//! configuration and the ticks' observations run through `policy::replay` (a fresh
//! `Policy`, `step` per observation). Panics anywhere on that path count as crashes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resctl::policy::replay;
use resctl::report::record::TraceLine;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The loop of read_trace, which itself takes a path.
    let mut config = None;
    let mut observations = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let Ok(parsed) = serde_json::from_str::<TraceLine>(line) else {
            // read_trace stops at the first bad line.
            return;
        };
        match parsed {
            TraceLine::Header { policy, .. } => config = Some(policy),
            TraceLine::Tick { observation, .. } => observations.push(observation),
            TraceLine::End { .. } => {}
        }
    }
    let Some(config) = config else {
        return;
    };
    let decisions = replay(config, &observations);
    assert_eq!(decisions.len(), observations.len());
});
