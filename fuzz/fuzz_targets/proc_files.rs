//! The /proc parsers (src/sample/proc_parse.rs): `/proc/PID/stat` (and task stat),
//! `/proc/PID/status`, `/proc/meminfo`, `/proc/loadavg`, `/proc/stat`. The first byte picks
//! the parser (modulo 5), the rest is the file's content: raw bytes for stat and status
//! (read as bytes by the sampler), UTF-8 text for the others.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resctl::sample::proc_parse;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, content)) = data.split_first() else {
        return;
    };
    match selector % 5 {
        0 => {
            let _ = proc_parse::parse_stat(content);
        }
        1 => {
            let _ = proc_parse::parse_status_memory(content);
        }
        selector => {
            let Ok(text) = std::str::from_utf8(content) else {
                return;
            };
            match selector {
                2 => {
                    let _ = proc_parse::parse_meminfo(text);
                }
                3 => {
                    let _ = proc_parse::parse_loadavg(text);
                }
                _ => {
                    if let Ok(stat) = proc_parse::parse_cpu_stat(text) {
                        let _ = stat.total.busy();
                        let _ = stat.total.total();
                        for cpu in &stat.per_cpu {
                            let _ = cpu.busy();
                            let _ = cpu.total();
                        }
                    }
                }
            }
        }
    }
});
