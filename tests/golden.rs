//! Golden test of what `resctl run` shows and writes: its log lines (numbers that vary from
//! run to run — durations, sizes, pids, paths — masked) and the shape of its JSON (every key
//! path of the `--summary-json` object and of each `--record` line kind). A restructuring
//! must leave both unchanged; a deliberate change regenerates the files with
//! `RESCTL_UPDATE_GOLDEN=1 cargo test --test golden` and shows up in the diff.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{resctl, resctl_bin, run_with_pid, stderr};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

/// Compares `actual` with the golden file `name`, or writes it when asked to.
fn assert_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("RESCTL_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "{}: {err} (RESCTL_UPDATE_GOLDEN=1 writes it)",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "{} differs; if the change is deliberate, regenerate with RESCTL_UPDATE_GOLDEN=1",
        path.display()
    );
}

/// Masks what varies between runs: paths, pids, durations, sizes, percentages and floats.
fn mask(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let words: Vec<String> = line.split(' ').map(mask_word).collect();
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out
}

fn mask_word(word: &str) -> String {
    let trimmed = word.trim_matches(|c: char| "(),;:".contains(c));
    let (start, _) = word.split_at(word.find(trimmed).unwrap_or(0));
    let end = &word[start.len() + trimmed.len()..];
    let masked = if trimmed.starts_with('/') && trimmed.len() > 1 {
        "<path>".to_owned()
    } else if is_measure(trimmed) {
        "<n>".to_owned()
    } else {
        trimmed.to_owned()
    };
    format!("{start}{masked}{end}")
}

/// A number with an optional sign and unit (`1.21s`, `27.9M`, `+0.5`, `1m5s`, `85%`, `0.93`),
/// but not a small plain integer (worker counts and exit codes stay visible).
fn is_measure(word: &str) -> bool {
    let word = word.strip_prefix(['+', '-']).unwrap_or(word);
    let digits = word
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .count();
    if digits == 0 {
        return false;
    }
    let (number, unit) = word.split_at(digits);
    let plain_small = unit.is_empty() && !number.contains('.') && number.len() <= 2;
    !plain_small && unit.chars().all(|c| c.is_ascii_alphanumeric() || c == '%')
}

/// Every key path of a JSON value: `a.b`, arrays as `a[]` (their elements merged).
fn key_paths(value: &serde_json::Value, prefix: &str, into: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                into.insert(path.clone());
                key_paths(inner, &path, into);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                key_paths(item, &format!("{prefix}[]"), into);
            }
        }
        _ => {}
    }
}

/// A stage line without its worker count, which depends on timing; for the "load" stage
/// (`whole`) also without its trend and level.
fn stage_shape(line: &str, whole: bool) -> String {
    let line = if whole {
        line.replace(", memory <n> MiB/min (r² <n>)", "")
    } else {
        line.to_owned()
    };
    let mut words: Vec<String> = Vec::new();
    let mut tokens = line.split(' ').peekable();
    while let Some(token) = tokens.next() {
        match (token, tokens.peek()) {
            (_, Some(next)) if next.starts_with("worker") && token.parse::<u32>().is_ok() => {
                words.push("<n>".to_owned());
                words.push("worker(s),".to_owned());
                tokens.next();
            }
            ("level", Some(_)) if whole && words.last().is_some_and(|w| w == "highest") => {
                words.push("level".to_owned());
                words.push("<level>".to_owned());
                tokens.next();
            }
            _ => words.push(token.to_owned()),
        }
    }
    words.join(" ")
}

/// Leaves out the keys that are there only when memory grew over the last leak window
/// (`time_to_limit`), which on a loaded machine it may not have: the shape is the rest.
fn without_optional(paths: &mut BTreeSet<String>) {
    paths.retain(|path| !path.ends_with("time_to_limit"));
}

fn lines_of(set: &BTreeSet<String>) -> String {
    set.iter().map(|path| format!("{path}\n")).collect()
}

#[test]
fn run_output_and_json_shapes_are_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.json");
    let trace = dir.path().join("trace.jsonl");
    // A stage, a thread change at critical (24M of RSS over a 12M level, watched through
    // /proc, so no cgroup differs between hosts), a stage left open, and exit code 3.
    let script = format!(
        "r='{bin}'; $r stage start load >/dev/null && $r stage end load >/dev/null && \
         $r stage start open >/dev/null; '{alloc}' 24M --hold 3s 2>/dev/null; exit 3",
        bin = resctl_bin().display(),
        alloc = common::example("alloc").display()
    );
    let (output, _) = run_with_pid(
        resctl()
            .current_dir("/")
            .arg("run")
            .args(common::SMALL_LEVELS)
            .args(["--interval", "200ms"])
            .arg("--summary-json")
            .arg(&summary)
            .arg("--record")
            .arg(&trace)
            .args(["--", "sh", "-c"])
            .arg(&script),
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));

    // The log: the lines such a run writes (each kind once, sorted: lines of different
    // threads interleave with timing). A stage's start reason depends on the host's load at
    // that moment, so only its start is kept; the "load" stage ends at once, and whether it
    // lasted the samples a memory trend needs depends on the machine's speed (an emulated
    // VM's does), so its trend is left out (the "open" stage keeps the trend's shape); so are
    // its worker count and level: on a starved machine the server handles its end after the
    // allocation that follows has reached critical (1 worker, critical) instead of before.
    // For the same reason the "open" stage may start at 1 worker instead of 3: its worker
    // count is masked too (its level is critical either way).
    let log: BTreeSet<String> = mask(&stderr(&output))
        .lines()
        .map(|line| match line.find(" started: ") {
            Some(at) if line.starts_with("resctl: stage ") => {
                format!("{} started: <reason>", &line[..at])
            }
            _ if line.contains("stage load: ") => stage_shape(line, true),
            _ if line.contains("stage open: ") => stage_shape(line, false),
            _ => line.to_owned(),
        })
        .collect();
    assert_golden("run-log.txt", &lines_of(&log));

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let mut paths = BTreeSet::new();
    key_paths(&json, "", &mut paths);
    without_optional(&mut paths);
    assert_golden("summary-json-keys.txt", &lines_of(&paths));

    let mut by_kind: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for line in std::fs::read_to_string(&trace).unwrap().lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let kind = value["kind"].as_str().unwrap_or("?").to_owned();
        key_paths(&value, "", by_kind.entry(kind).or_default());
    }
    by_kind.values_mut().for_each(without_optional);
    let record: String = by_kind
        .iter()
        .map(|(kind, paths)| format!("# {kind}\n{}", lines_of(paths)))
        .collect();
    assert_golden("record-keys.txt", &record);
}
