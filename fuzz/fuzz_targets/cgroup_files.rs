//! The cgroupfs key/value and single-value parsers (src/cgroup/parse.rs) and the layout
//! detection's parsers of `/proc/self/mountinfo` and `/proc/self/cgroup`
//! (src/cgroup/detect.rs). The first byte picks the parser (modulo 13), the rest is the
//! file's content as UTF-8.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use resctl::cgroup::detect::{parse_cgroup_mounts, parse_proc_cgroup};
use resctl::cgroup::parse;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, content)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(content) else {
        return;
    };
    let file = Path::new("fuzz");
    match selector % 13 {
        0 => {
            let _ = parse::parse_u64(file, text);
        }
        1 => {
            let _ = parse::parse_max_or_u64(file, text);
        }
        2 => {
            let _ = parse::parse_v1_limit(file, text);
        }
        3 => {
            let _ = parse::parse_pids(file, text);
        }
        4 => {
            let _ = parse::parse_word_list(text);
        }
        5 => {
            let _ = parse::parse_keyed(file, text, ["a", "b", "nr_periods", "max"]);
        }
        6 => {
            let _ = parse::parse_memory_events(file, text);
        }
        7 => {
            let _ = parse::parse_cpu_stat(file, text);
        }
        8 => {
            let _ = parse::parse_oom_control(file, text);
        }
        9 => {
            let _ = parse::parse_populated(file, text);
        }
        10 => {
            let _ = parse_cgroup_mounts(file, text);
        }
        11 => {
            let _ = parse_proc_cgroup(file, text);
        }
        _ => {
            // Odd key lists: an empty key and a repeated one.
            let _ = parse::parse_keyed(file, text, ["", "x", "x"]);
        }
    }
});
