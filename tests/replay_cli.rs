//! Replaying recorded traces: the policy is deterministic, so a replay of a
//! real run's observations gives the decisions that run made.

mod common;

use std::path::PathBuf;

use common::{resctl, stderr, stdout};
use resctl::policy::{Decision, Level};
use resctl::report::record::{read_trace, TraceLine};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/traces")
        .join(name)
}

/// Replays the recorded run `name` and checks every decision against the one the live run
/// made; returns the decisions.
fn replay_matches_the_live_run(name: &str) -> Vec<Decision> {
    let path = fixture(name);
    let (config, observations) = read_trace(&path).unwrap();
    let replayed = resctl::policy::replay(config, &observations);
    let recorded: Vec<Decision> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter_map(
            |line| match serde_json::from_str::<TraceLine>(line).unwrap() {
                TraceLine::Tick { decision, .. } => Some(decision),
                _ => None,
            },
        )
        .collect();
    assert_eq!(replayed.len(), recorded.len());
    for (live, again) in recorded.iter().zip(&replayed) {
        assert_eq!(live.threads, again.threads, "{name} at {:?}", live.at);
        assert_eq!(live.level, again.level, "{name} at {:?}", live.at);
        assert_eq!(
            in_todays_units(&live.reason),
            again.reason,
            "{name} at {:?}",
            live.at
        );
    }
    recorded
}

/// A reason recorded before resctl had one formatter for sizes and durations, written the
/// way that formatter writes them: the policy's formatter then kept a needless `.0` in sizes
/// (`50.0M`, now `50M`) and a space in minute durations (`1m 40s`, now `1m40s`); its
/// rounding is the one formatter's now. The words and every number stay what they were.
fn in_todays_units(reason: &str) -> String {
    let chars: Vec<char> = reason.chars().collect();
    let mut out = String::with_capacity(reason.len());
    let mut index = 0;
    while index < chars.len() {
        let digit_before = index > 0 && chars[index - 1].is_ascii_digit();
        let needless_tenth = digit_before
            && chars[index] == '.'
            && chars.get(index + 1) == Some(&'0')
            && chars
                .get(index + 2)
                .is_some_and(|unit| "KMGTPE".contains(*unit))
            && !chars
                .get(index + 3)
                .is_some_and(char::is_ascii_alphanumeric);
        let minute_space = digit_before
            && index >= 2
            && chars[index - 1].is_ascii_digit()
            && out.ends_with('m')
            && chars[index] == ' '
            && chars.get(index + 1).is_some_and(char::is_ascii_digit);
        if needless_tenth {
            index += 2;
            continue;
        }
        if minute_space {
            index += 1;
            continue;
        }
        out.push(chars[index]);
        index += 1;
    }
    out
}

#[test]
fn replaying_a_recorded_run_gives_the_decisions_it_made() {
    let recorded = replay_matches_the_live_run("pool-critical-v1.jsonl");
    assert!(
        recorded
            .iter()
            .any(|d| d.previous_threads == 4 && d.threads == 1 && d.level == Level::Critical),
        "the run fell back to one worker at critical"
    );
}

#[test]
fn replaying_a_recorded_growth_gives_the_decisions_it_made() {
    let recorded = replay_matches_the_live_run("pool-growth-v1.jsonl");
    let changes: Vec<(u32, u32)> = recorded
        .iter()
        .filter(|d| d.changed())
        .map(|d| (d.previous_threads, d.threads))
        .collect();
    assert_eq!(changes, vec![(2, 3)], "grew by one, never into high");
    assert!(recorded.iter().all(|d| d.level < Level::High));
}

#[test]
fn replay_prints_the_changes() {
    let output = resctl()
        .arg("replay")
        .arg(fixture("pool-critical-v1.jsonl"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("critical"), "{text}");
    assert!(text.contains("threads  4 ->  1"), "{text}");
    assert!(text.contains("1 thread changes"), "{text}");
}

#[test]
fn replay_of_a_bad_trace_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(&path, "{\"kind\":\"tick\"}\n").unwrap();
    let output = resctl().arg("replay").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("bad.jsonl:1:"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn run_record_writes_a_replayable_trace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.jsonl");
    let output = resctl()
        .args(["run", "--monitor-only", "--interval", "100ms", "--record"])
        .arg(&path)
        .args(["--", "sleep", "1"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let (_, observations) = read_trace(&path).unwrap();
    assert!(observations.len() >= 2, "{} ticks", observations.len());
    let last = std::fs::read_to_string(&path).unwrap();
    assert!(last.lines().last().unwrap().contains("\"kind\":\"end\""));
}
