//! The cgroup `memory.stat` parsers, v2 (`parse_memory_stat`) and v1
//! (`parse_memory_stat_v1`), both on every UTF-8 input.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use resctl::cgroup::parse::{parse_memory_stat, parse_memory_stat_v1};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("memory.stat");
    let _ = parse_memory_stat(file, text);
    let _ = parse_memory_stat_v1(file, text);
});
