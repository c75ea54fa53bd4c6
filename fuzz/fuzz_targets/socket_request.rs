//! The control socket's request path without a server (src/control/protocol.rs and the pure
//! part of src/control/server.rs's `handle_line`): bytes from a client → `read_line_limited`
//! (the first input byte varies the reader's buffer size and the line limit, so lines
//! split across reads and over-long lines are covered) → UTF-8 check → `Request` parse →
//! the stage tracker (`StageTracker::start`/`observe`/`end`/`open_stages`, as the server
//! drives it) → the reply line (`to_line`). A line that parses as a status snapshot is
//! also rendered as the client does (`render_status`, `StatusSnapshot::recommend`).
//!
//! Invariants checked: a line read never exceeds the limit nor holds a newline; every
//! request serialises and parses back to itself; every reply is one JSON line.
#![no_main]

use std::io::BufReader;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use resctl::control::client::render_status;
use resctl::control::protocol::{
    to_line, ErrorReply, OkReply, RecommendReply, Request, StageEndReply, StageStartReply,
    StatusSnapshot, MAX_LINE_BYTES,
};
use resctl::policy::LeakRule;
use resctl::policy::Level;
use resctl::report::stages::StageTracker;
use resctl::safe_fs::{read_line_limited, LineRead};

/// Lines handled per input at most (the real server has no such limit, but every line is
/// independent apart from the tracker; this keeps one input's run time bounded).
const MAX_LINES: usize = 512;

fn check_reply(reply: &str) {
    assert!(!reply.contains('\n'), "reply spans lines: {reply:?}");
    let value: serde_json::Value = serde_json::from_str(reply).expect("reply is not JSON");
    assert!(value.get("ok").is_some(), "reply has no \"ok\": {reply}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&shape, input)) = data.split_first() else {
        return;
    };
    // Buffer capacity 1..=16 bytes or 8 KiB (the server's BufReader default); limit either
    // the server's or a small one so that "too long" is reached by short inputs too.
    let capacity = if shape & 0x10 == 0 {
        usize::from(shape & 0x0f) + 1
    } else {
        8 * 1024
    };
    let limit = if shape & 0x20 == 0 {
        MAX_LINE_BYTES
    } else {
        usize::from(shape >> 6) * 16 + 8
    };
    let mut reader = BufReader::with_capacity(capacity, input);
    let mut line = Vec::new();
    let mut tracker = StageTracker::new(LeakRule::default());
    let mut clock = Duration::ZERO;
    let mut threads: u32 = 4;
    let mut level = Level::Normal;
    for _ in 0..MAX_LINES {
        clock += Duration::from_millis(250);
        let reply = match read_line_limited(&mut reader, &mut line, limit) {
            Ok(LineRead::Eof) => break,
            Ok(LineRead::TooLong) => to_line(&ErrorReply::new(format!(
                "request line longer than {limit} bytes"
            ))),
            Ok(LineRead::Line) => {
                assert!(
                    line.len() <= limit,
                    "line of {} > limit {limit}",
                    line.len()
                );
                assert!(!line.contains(&b'\n'), "line holds a newline");
                let Ok(text) = std::str::from_utf8(&line) else {
                    check_reply(&to_line(&ErrorReply::new("request is not UTF-8")));
                    continue;
                };
                if let Ok(snapshot) = serde_json::from_str::<StatusSnapshot>(text) {
                    let _ = render_status(&snapshot);
                    let _ = snapshot.recommend();
                    let _ = snapshot.cpu_time();
                }
                match serde_json::from_str::<Request>(text) {
                    Err(error) => to_line(&ErrorReply::new(format!("bad request: {error}"))),
                    Ok(request) => {
                        let again: Request = serde_json::from_str(&to_line(&request))
                            .expect("a request's own line does not parse");
                        assert_eq!(again, request);
                        match request {
                            Request::StageStart {
                                workers: Some(0), ..
                            } => to_line(&ErrorReply::new("workers must be at least 1")),
                            Request::StageStart { name, workers } => {
                                let granted = workers.map_or(threads, |asked| asked.min(threads));
                                match tracker.start(name.as_str(), granted, clock, clock / 2) {
                                    Ok(()) => to_line(&StageStartReply {
                                        ok: true,
                                        threads: granted,
                                        level,
                                        reason: format!("{granted} workers"),
                                    }),
                                    Err(error) => to_line(&ErrorReply::new(error.to_string())),
                                }
                            }
                            Request::StageEnd { name } => {
                                match tracker.end(name.as_str(), clock, clock / 2) {
                                    Some(stage) => {
                                        let _ = stage.describe();
                                        to_line(&StageEndReply { ok: true, stage })
                                    }
                                    None => to_line(&ErrorReply::new(format!(
                                        "no open stage named {name:?} (open: {})",
                                        tracker.open_stages(clock).len()
                                    ))),
                                }
                            }
                            Request::Recommend { current, context } => {
                                if let Some(current) = current {
                                    threads = current.clamp(1, 64);
                                }
                                to_line(&RecommendReply {
                                    ok: true,
                                    threads,
                                    reason: format!("for {}", context.unwrap_or_default()),
                                })
                            }
                            Request::Status => {
                                let open = tracker.open_stages(clock);
                                let _ = serde_json::to_string(&open).expect("open stages encode");
                                to_line(&OkReply { ok: true })
                            }
                            Request::Progress { units } => {
                                // Drive the stage trends with fuzzed readings.
                                level = match units % 4 {
                                    0 => Level::Normal,
                                    1 => Level::Moderate,
                                    2 => Level::High,
                                    _ => Level::Critical,
                                };
                                tracker.observe(clock, units, level);
                                to_line(&OkReply { ok: true })
                            }
                            Request::Subscribe => to_line(&OkReply { ok: true }),
                            Request::Ceiling {
                                threads: Some(0), ..
                            } => to_line(&ErrorReply::new("a ceiling must be at least 1 thread")),
                            Request::Ceiling { reason, .. } => {
                                let shown = resctl::job_text::escape(reason.as_deref().unwrap_or(""));
                                assert!(!shown.contains('\n'), "an escaped reason holds a newline");
                                to_line(&OkReply { ok: true })
                            }
                            Request::Notice { reason, .. } => {
                                let shown = resctl::job_text::escape(&reason);
                                assert!(!shown.contains('\n'), "an escaped reason holds a newline");
                                to_line(&OkReply { ok: true })
                            }
                        }
                    }
                }
            }
            Err(error) => panic!("reading from a slice failed: {error}"),
        };
        check_reply(&reply);
    }
});
