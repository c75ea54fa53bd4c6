//! systemd's memory pressure protocol for the job (systemd's `docs/PRESSURE.md`).
//!
//! Services that already speak it (anything built on sd-event's
//! `sd_event_add_memory_pressure()`, among others) read two variables:
//!
//! - `MEMORY_PRESSURE_WATCH`: the file to watch, here the job cgroup's `memory.pressure`;
//! - `MEMORY_PRESSURE_WRITE`: base64 of the bytes to write into it right after opening it —
//!   a PSI trigger. resctl uses systemd's default, `"some 200000 2000000"` (200 ms of stall
//!   within 2 s), NUL-terminated exactly as systemd encodes it (`base64mem(b, strlen(b) + 1)`),
//!   so the value is byte-for-byte what a service gets under systemd.
//!
//! The job then `poll`s the file for `POLLPRI` and releases caches when it fires — memory
//! resctl does not have to take away with fewer workers.
//!
//! Only on cgroup v2: v1 has no per-cgroup PSI file, so [`environment`] returns nothing there
//! (systemd does not set the variables on such hosts either). On a hybrid host the job's
//! cgroup2 leaf (see [`crate::placement`]) has one, and that is the file named. A job started from a service
//! that itself had `MemoryPressureWatch=` inherits that service's variables, which point at
//! the service's cgroup, not the job's: when [`environment`] returns nothing, remove
//! [`VARIABLES`] from the job's environment.

use std::path::Path;

/// The variable naming the file to watch.
pub const ENV_WATCH: &str = "MEMORY_PRESSURE_WATCH";
/// The variable holding base64 of the bytes to write into it.
pub const ENV_WRITE: &str = "MEMORY_PRESSURE_WRITE";
/// Both variables, to remove from the job's environment where resctl sets none.
pub const VARIABLES: [&str; 2] = [ENV_WATCH, ENV_WRITE];
/// systemd's default trigger (`MEMORY_PRESSURE_DEFAULT_TYPE`, `..._THRESHOLD_USEC` 200 ms,
/// `..._WINDOW_USEC` 2 s): a 2 s window is the shortest an unprivileged job may use.
pub const DEFAULT_TRIGGER: &str = "some 200000 2000000";
/// The PSI file watched, in the job's cgroup.
pub const PRESSURE_FILE: &str = "memory.pressure";

/// The protocol's variables for a job in the cgroup v2 directory `job_cgroup`:
/// `MEMORY_PRESSURE_WATCH=<job_cgroup>/memory.pressure` and
/// `MEMORY_PRESSURE_WRITE=<base64 of DEFAULT_TRIGGER and a NUL>`. Nothing when the directory
/// has no `memory.pressure` file: a cgroup v1 directory, or a kernel without PSI.
pub fn environment(job_cgroup: &Path) -> Vec<(String, String)> {
    let watch = job_cgroup.join(PRESSURE_FILE);
    if !watch.is_file() {
        return Vec::new();
    }
    vec![
        (ENV_WATCH.to_string(), watch.to_string_lossy().into_owned()),
        (ENV_WRITE.to_string(), write_value(DEFAULT_TRIGGER)),
    ]
}

/// `MEMORY_PRESSURE_WRITE`'s value for `trigger`: base64 of its bytes and a terminating NUL.
pub fn write_value(trigger: &str) -> String {
    let mut bytes = trigger.as_bytes().to_vec();
    bytes.push(0);
    base64_encode(&bytes)
}

/// The standard base64 alphabet (RFC 4648 §4).
const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 (RFC 4648, standard alphabet, `=` padding, no line breaks), as systemd's
/// `base64mem` writes it.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut encoded = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk
            .iter()
            .enumerate()
            .fold(0u32, |group, (index, &byte)| {
                group | u32::from(byte) << (16 - 8 * index)
            });
        // One input byte gives two characters, two give three, three give four.
        for position in 0..4 {
            if position <= chunk.len() {
                let sextet = (group >> (18 - 6 * position)) & 0x3f;
                encoded.push(char::from(BASE64_ALPHABET[sextet as usize]));
            } else {
                encoded.push('=');
            }
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::wakeup_fixture_copy as fixture_copy;

    #[test]
    fn base64_rfc4648_vectors() {
        // RFC 4648 §10.
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64_encode(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    #[test]
    fn base64_binary_bytes_use_the_whole_alphabet() {
        assert_eq!(base64_encode(&[0, 0, 0]), "AAAA");
        assert_eq!(base64_encode(&[0xff, 0xff, 0xff]), "////");
        assert_eq!(base64_encode(&[0xfb, 0xef, 0xbe]), "++++");
        assert_eq!(base64_encode(&[0]), "AA==");
        let all: Vec<u8> = (0..=255).collect();
        let encoded = base64_encode(&all);
        assert_eq!(encoded.len(), 344);
        assert!(encoded.starts_with("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g"));
        assert!(encoded.ends_with("+/w=="));
    }

    #[test]
    fn write_value_is_systemds_default_with_its_nul() {
        // What systemd 252+ puts into a service's MEMORY_PRESSURE_WRITE by default.
        assert_eq!(write_value(DEFAULT_TRIGGER), "c29tZSAyMDAwMDAgMjAwMDAwMAA=");
        assert_eq!(
            write_value("full 100000 1000000"),
            "ZnVsbCAxMDAwMDAgMTAwMDAwMAA="
        );
    }

    #[test]
    fn v2_cgroup_gets_watch_and_write() {
        let job = fixture_copy("v2-job");
        let variables = environment(job.path());
        let watch = job.path().join("memory.pressure");
        assert_eq!(
            variables,
            vec![
                (
                    "MEMORY_PRESSURE_WATCH".to_string(),
                    watch.display().to_string()
                ),
                (
                    "MEMORY_PRESSURE_WRITE".to_string(),
                    "c29tZSAyMDAwMDAgMjAwMDAwMAA=".to_string()
                ),
            ]
        );
    }

    #[test]
    fn v1_cgroup_and_missing_directory_get_nothing() {
        let job = fixture_copy("v1-job");
        assert!(job.path().join("memory.usage_in_bytes").is_file());
        assert!(environment(job.path()).is_empty());
        assert!(environment(&job.path().join("gone")).is_empty());
    }
}
