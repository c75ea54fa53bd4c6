//! PSI files (`/proc/pressure/*` and the cgroup's `memory.pressure`, `cpu.pressure`,
//! `io.pressure`): `parse_pressure` on any UTF-8 text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resctl::kernel_text::parse_pressure;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_pressure(text);
});
