//! The control socket (`RESCTL_SOCKET`) driven through a real Unix socket in a tempdir:
//! every op, malformed input, a garbage flood, peer-uid checks (a forked child that
//! becomes `nobody`), subscriptions, per-stage figures, stop, and the Python example.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use resctl::control::client::{recommend_from_host, stage, ControlClient, DEFAULT_PER_WORKER};
use resctl::control::protocol::{Event, Request, StatusSnapshot, MAX_LINE_BYTES};
use resctl::control::server::{ControlServer, MAX_CLIENTS};
use resctl::policy::{Decision, Level, PolicyConfig};

mod common;
use resctl::sample::job::JobSample;
use serde_json::{json, Value};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;
const NOBODY: u32 = 65534;

/// A server in a fresh tempdir (kept alive by the returned guard).
fn server() -> (tempfile::TempDir, ControlServer) {
    let dir = tempfile::tempdir().unwrap();
    let server = ControlServer::start(&dir.path().join("control.sock"), 0).unwrap();
    (dir, server)
}

/// A snapshot as the run loop would build it, with the figures a test cares about.
fn snapshot(memory: u64, level: Level, threads: u32, cpu_secs: f64) -> StatusSnapshot {
    let decision = Decision {
        at: Duration::from_secs(1),
        level,
        memory_level: level,
        cpu_level: Level::Normal,
        psi_level: Level::Normal,
        threads,
        previous_threads: threads,
        reason: format!("memory at {level}: {threads} threads"),
        reclaim: None,
        leak: None,
    };
    let sample: JobSample = serde_json::from_value(json!({
        "at": {"secs": 1, "nanos": 0}, "cgroup": null, "processes": [], "host": null
    }))
    .unwrap();
    let mut snapshot = StatusSnapshot::new(&decision, &sample, &PolicyConfig::default(), None, 0.0);
    snapshot.memory_bytes = memory;
    snapshot.cpu_secs = cpu_secs;
    snapshot.recommendations = snapshot.recommend();
    snapshot
}

/// A raw line-level connection.
struct Raw {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Raw {
    fn connect(path: &Path) -> Raw {
        let stream = UnixStream::connect(path).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Raw {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    fn reply(&mut self) -> Value {
        let mut line = String::new();
        let read = self.reader.read_line(&mut line).unwrap();
        assert!(read > 0, "connection closed instead of a reply");
        serde_json::from_str(&line).unwrap()
    }

    fn ask(&mut self, line: &str) -> Value {
        self.send(format!("{line}\n").as_bytes());
        self.reply()
    }
}

fn error_of(reply: &Value) -> &str {
    assert_eq!(reply["ok"], false, "{reply}");
    reply["error"].as_str().unwrap()
}

#[test]
fn every_op_round_trips() {
    let (_dir, server) = server();
    server.update(snapshot(GIB, Level::Moderate, 3, 10.0));
    let mut raw = Raw::connect(server.path());

    let start = raw.ask(r#"{"op":"stage_start","name":"models","workers":4}"#);
    assert_eq!(start["ok"], true);
    assert_eq!(start["threads"], 3);
    assert_eq!(start["level"], "moderate");
    assert_eq!(
        start["reason"],
        "3 workers instead of 4: memory at moderate: 3 threads"
    );

    let recommend = raw.ask(r#"{"op":"recommend","current":4,"context":"dbt models"}"#);
    assert_eq!(recommend["threads"], 3);
    assert_eq!(
        recommend["reason"],
        "for dbt models: reduce 4 → 3: memory at moderate: 3 threads"
    );

    assert_eq!(
        raw.ask(r#"{"op":"progress","units":10}"#),
        json!({"ok": true})
    );
    assert_eq!(server.progress_units(), Some(10));

    let status = raw.ask(r#"{"op":"status"}"#);
    let status = &status["status"];
    assert_eq!(status["level"], "moderate");
    assert_eq!(status["memory_bytes"], GIB);
    assert_eq!(status["threads"], 3);
    assert_eq!(status["thresholds"]["high"], 3000 * MIB);
    assert_eq!(status["stages_open"][0]["name"], "models");
    assert_eq!(status["stages_open"][0]["workers"], 3);
    assert_eq!(status["leak"], Value::Null);
    assert_eq!(
        status["recommendations"][0],
        "memory at moderate (1G ≥ 2G): run at most 3 workers"
    );

    server.update(snapshot(2 * GIB, Level::High, 3, 12.5));
    let end = raw.ask(r#"{"op":"stage_end","name":"models"}"#);
    let stage = &end["stage"];
    assert_eq!(stage["name"], "models");
    assert_eq!(stage["peak_memory"], 2 * GIB);
    assert_eq!(stage["highest_level"], "high");
    assert_eq!(stage["cpu_secs"], 2.5);
    assert_eq!(stage["workers"], 3);
    assert!(stage["duration_secs"].as_f64().unwrap() >= 0.0);
    for key in ["trend_mb_per_min", "leak_suspected"] {
        assert!(stage.get(key).is_some(), "{key} missing in {stage}");
    }

    assert_eq!(
        raw.ask(r#"{"op":"subscribe"}"#),
        json!({"ok": true, "threads": 3})
    );
    server.stop();
}

#[test]
fn client_library_speaks_the_protocol() {
    let (_dir, server) = server();
    server.update(snapshot(GIB, Level::Normal, 6, 0.0));
    let mut client = ControlClient::connect(server.path()).unwrap();
    assert_eq!(stage(&mut client, true, "load", Some(4)).unwrap(), "4");
    assert_eq!(stage(&mut client, true, "wide", None).unwrap(), "6");
    let summary = stage(&mut client, false, "load", None).unwrap();
    assert!(summary.starts_with("stage load: "), "{summary}");
    assert!(summary.contains("4 workers, peak 1G"), "{summary}");
    let error = stage(&mut client, false, "load", None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "resctl refused the request: no open stage named \"load\" (open: \"wide\")"
    );
    let value = client
        .request(&Request::Recommend {
            current: None,
            context: None,
        })
        .unwrap();
    assert_eq!(value["threads"], 6);
}

#[test]
fn malformed_lines_get_errors_and_the_connection_still_works() {
    let (_dir, server) = server();
    server.update(snapshot(GIB, Level::Normal, 2, 0.0));
    let mut raw = Raw::connect(server.path());
    let cases: [(&[u8], &str); 9] = [
        (b"not json\n", "bad request: expected ident"),
        (b"{\"op\":\"explode\"}\n", "unknown variant `explode`"),
        (b"{\"op\":\"stage_end\"}\n", "missing field `name`"),
        (b"{\"name\":\"x\"}\n", "missing field `op`"),
        (b"[1,2]\n", "bad request: invalid type"),
        (b"\n", "bad request: EOF while parsing"),
        (
            b"\xff\xfe{}\n",
            "request is not UTF-8 (invalid byte at offset 0)",
        ),
        (
            b"{\"op\":\"stage_start\",\"name\":\"z\",\"workers\":0}\n",
            "workers must be at least 1",
        ),
        (
            b"{\"op\":\"stage_end\",\"name\":\"never\"}\n",
            "no open stage named \"never\" (open: none)",
        ),
    ];
    for (line, expected) in cases {
        raw.send(line);
        let reply = raw.reply();
        let error = error_of(&reply);
        assert!(
            error.contains(expected),
            "{:?}: {error:?}",
            String::from_utf8_lossy(line)
        );
    }
    let mut long = vec![b'x'; MAX_LINE_BYTES + 1];
    long.push(b'\n');
    raw.send(&long);
    assert_eq!(
        error_of(&raw.reply()),
        format!("request line longer than {MAX_LINE_BYTES} bytes")
    );
    // Exactly at the limit is read (and is bad JSON).
    let mut at_limit = vec![b' '; MAX_LINE_BYTES - 2];
    at_limit.extend_from_slice(b"{}\n");
    at_limit.remove(0);
    raw.send(&at_limit);
    assert!(error_of(&raw.reply()).contains("missing field `op`"));
    assert_eq!(raw.ask(r#"{"op":"status"}"#)["status"]["threads"], 2);
}

#[test]
fn a_flood_of_garbage_does_not_hurt_the_server() {
    let (_dir, server) = server();
    server.update(snapshot(GIB, Level::Normal, 5, 0.0));
    let mut raw = Raw::connect(server.path());
    let mut writer = raw.writer.try_clone().unwrap();
    let flood = std::thread::spawn(move || {
        // xorshift: reproducible junk, newline-terminated, including invalid UTF-8.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for index in 0..1000 {
            let mut line = Vec::new();
            for _ in 0..(index % 97) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let byte = (state & 0xff) as u8;
                line.push(if byte == b'\n' { b'?' } else { byte });
            }
            line.push(b'\n');
            writer.write_all(&line).unwrap();
        }
    });
    for index in 0..1000 {
        let reply = raw.reply();
        assert_eq!(reply["ok"], false, "line {index}: {reply}");
    }
    flood.join().unwrap();
    assert_eq!(raw.ask(r#"{"op":"status"}"#)["status"]["threads"], 5);
    // And new clients are still served.
    let mut other = Raw::connect(server.path());
    assert_eq!(other.ask(r#"{"op":"recommend"}"#)["threads"], 5);
}

/// How the forked `nobody` child's attempt ended.
#[derive(Debug, PartialEq)]
enum PeerOutcome {
    ConnectRefused,
    ClosedWithoutReply,
    GotReply,
    Other(i32),
}

/// Forks a child that becomes uid `uid`, connects to `path`, sends a status request and
/// reports what happened through its exit code. The child only makes system calls
/// (everything it needs is prepared before the fork).
fn connect_as(uid: u32, path: &Path) -> PeerOutcome {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};
    use std::os::fd::AsRawFd;

    let address = UnixAddr::new(path).unwrap();
    let request = b"{\"op\":\"status\"}\n";
    let child = || -> i32 {
        if nix::unistd::setuid(nix::unistd::Uid::from_raw(uid)).is_err() {
            return 40;
        }
        let Ok(fd) = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::empty(),
            None,
        ) else {
            return 50;
        };
        match connect(fd.as_raw_fd(), &address) {
            Ok(()) => {}
            Err(nix::errno::Errno::EACCES | nix::errno::Errno::ECONNREFUSED) => return 0,
            Err(_) => return 60,
        }
        // The server may already have closed: a failed write is "closed" too.
        if nix::unistd::write(&fd, request).is_err() {
            return 10;
        }
        let mut fds = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&fd),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16)) {
            Ok(0) => return 30,
            Ok(_) => {}
            Err(_) => return 70,
        }
        let mut buffer = [0u8; 256];
        match nix::unistd::read(&fd, &mut buffer) {
            Ok(0) | Err(nix::errno::Errno::ECONNRESET) => 10,
            Ok(_) => 20,
            Err(_) => 80,
        }
    };
    // SAFETY: the child runs only `child`, which makes system calls on values prepared
    // before the fork (no allocation, no locks), then leaves with _exit.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            let code = child();
            // SAFETY: _exit ends the forked child without running the parent's atexit
            // handlers or unwinding the test harness's state.
            unsafe { nix::libc::_exit(code) }
        }
        ForkResult::Parent { child } => match waitpid(child, None).unwrap() {
            WaitStatus::Exited(_, 0) => PeerOutcome::ConnectRefused,
            WaitStatus::Exited(_, 10) => PeerOutcome::ClosedWithoutReply,
            WaitStatus::Exited(_, 20) => PeerOutcome::GotReply,
            WaitStatus::Exited(_, code) => PeerOutcome::Other(code),
            other => panic!("child ended as {other:?}"),
        },
    }
}

fn open_to_everyone(dir: &Path, socket: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666)).unwrap();
}

#[test]
fn socket_is_private_to_its_owner() {
    let (dir, server) = server();
    let mode = std::fs::metadata(server.path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // The folder lets nobody through, but the socket's 0600 alone refuses it.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        connect_as(NOBODY, server.path()),
        PeerOutcome::ConnectRefused
    );
}

#[test]
fn another_uid_is_closed_without_reply_by_peer_credentials() {
    let (dir, server) = server();
    server.update(snapshot(GIB, Level::Normal, 2, 0.0));
    open_to_everyone(dir.path(), server.path());
    assert_eq!(
        connect_as(NOBODY, server.path()),
        PeerOutcome::ClosedWithoutReply
    );
    // Root is always allowed, and the server carries on.
    let mut raw = Raw::connect(server.path());
    assert_eq!(raw.ask(r#"{"op":"status"}"#)["ok"], true);
}

#[test]
fn the_allowed_uid_gets_the_socket_and_is_served() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = ControlServer::start(&dir.path().join("s"), NOBODY).unwrap();
    server.update(snapshot(GIB, Level::Normal, 2, 0.0));
    let metadata = std::fs::metadata(server.path()).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&metadata), NOBODY);
    assert_eq!(connect_as(NOBODY, server.path()), PeerOutcome::GotReply);
}

#[test]
fn a_status_between_a_change_and_the_next_snapshot_gives_the_reason_for_the_new_count() {
    let (_dir, server) = server();
    server.update(snapshot(GIB, Level::Normal, 4, 0.0));
    server.publish_threads(2, 4, "slice test.slice at high: at most 2 threads");
    let status = Raw::connect(server.path()).ask(r#"{"op":"status"}"#);
    assert_eq!(status["status"]["threads"], 2, "{status}");
    assert_eq!(
        status["status"]["reason"], "slice test.slice at high: at most 2 threads",
        "{status}"
    );
}

#[test]
fn subscribers_receive_thread_changes() {
    let (_dir, server) = server();
    server.update(snapshot(GIB, Level::Normal, 8, 0.0));
    let subscription = ControlClient::connect(server.path())
        .unwrap()
        .subscribe()
        .unwrap();
    assert_eq!(subscription.threads(), 8);
    let mut raw = Raw::connect(server.path());
    assert_eq!(raw.ask(r#"{"op":"subscribe"}"#)["threads"], 8);

    server.publish_threads(6, 8, "memory high: 8 → 6 threads");
    server.publish_threads(1, 6, "memory critical: sequential fallback");
    let events: Vec<Event> = subscription.take(2).map(Result::unwrap).collect();
    assert_eq!(
        events,
        vec![
            Event::Threads {
                threads: 6,
                previous: 8,
                reason: "memory high: 8 → 6 threads".into()
            },
            Event::Threads {
                threads: 1,
                previous: 6,
                reason: "memory critical: sequential fallback".into()
            },
        ]
    );
    assert_eq!(raw.reply()["event"], "threads");
    assert_eq!(raw.reply()["threads"], 1);
    // The published count is what later requests see.
    assert_eq!(raw.ask(r#"{"op":"recommend"}"#)["threads"], 1);
}

#[test]
fn a_subscriber_that_stops_reading_never_blocks_publishing() {
    let (_dir, server) = server();
    server.update(snapshot(GIB, Level::Normal, 4, 0.0));
    let mut idle = Raw::connect(server.path());
    assert_eq!(idle.ask(r#"{"op":"subscribe"}"#)["ok"], true);
    let reason = "x".repeat(1000);
    // 5000 events of 1 KB overflow any socket buffer: if publishing blocked
    // on the subscriber that never reads, this loop would never end (the test
    // would hang); no timing is asserted.
    for count in 0..5000 {
        server.publish_threads(count % 8 + 1, 4, &reason);
    }
    // The stuck subscriber was dropped: reading on finds the end of the stream.
    let mut drained = 0;
    let mut line = String::new();
    loop {
        line.clear();
        match idle.reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => drained += 1,
            Err(error) => panic!("after {drained} lines: {error}"),
        }
    }
    assert!(drained < 5000, "{drained}");
    let mut fresh = Raw::connect(server.path());
    assert_eq!(fresh.ask(r#"{"op":"status"}"#)["ok"], true);
}

#[test]
fn stage_figures_match_the_snapshots_fed() {
    let (_dir, server) = server();
    server.update(snapshot(GIB, Level::Normal, 4, 100.0));
    let mut raw = Raw::connect(server.path());
    assert_eq!(
        raw.ask(r#"{"op":"stage_start","name":"outer","workers":2}"#)["threads"],
        2
    );
    server.update(snapshot(3 * GIB, Level::High, 4, 101.0));
    assert_eq!(
        raw.ask(r#"{"op":"stage_start","name":"inner"}"#)["threads"],
        4
    );
    server.update(snapshot(3500 * MIB, Level::Critical, 1, 103.0));
    server.update(snapshot(2 * GIB, Level::Moderate, 1, 104.0));
    std::thread::sleep(Duration::from_millis(200));
    let inner = raw.ask(r#"{"op":"stage_end","name":"inner"}"#)["stage"].clone();
    server.update(snapshot(GIB, Level::Normal, 2, 110.0));
    let outer = raw.ask(r#"{"op":"stage_end","name":"outer"}"#)["stage"].clone();

    assert_eq!(inner["peak_memory"], 3500 * MIB);
    assert_eq!(inner["highest_level"], "critical");
    assert_eq!(inner["cpu_secs"], 3.0);
    assert_eq!(inner["workers"], 4);
    assert_eq!(inner["samples"], 2);
    assert!(inner["duration_secs"].as_f64().unwrap() >= 0.2, "{inner}");
    assert_eq!(outer["peak_memory"], 3500 * MIB);
    assert_eq!(outer["highest_level"], "critical");
    assert_eq!(outer["cpu_secs"], 10.0);
    assert_eq!(outer["workers"], 2);
    assert_eq!(outer["samples"], 4);
    assert!(outer["duration_secs"].as_f64().unwrap() >= inner["duration_secs"].as_f64().unwrap());

    let finished = server.take_finished_stages();
    let names: Vec<&str> = finished.iter().map(|stage| stage.name.as_str()).collect();
    assert_eq!(names, ["inner", "outer"]);
    assert_eq!(finished[1].peak_memory, 3500 * MIB);
    assert!(server.take_finished_stages().is_empty());
}

#[test]
fn requests_before_the_first_sample_wait_for_it() {
    let (_dir, server) = server();
    let path = server.path().to_path_buf();
    let asker = std::thread::spawn(move || Raw::connect(&path).ask(r#"{"op":"status"}"#));
    std::thread::sleep(Duration::from_millis(300));
    server.update(snapshot(GIB, Level::Normal, 7, 0.0));
    let reply = asker.join().unwrap();
    assert_eq!(reply["status"]["threads"], 7);
}

#[test]
fn clients_are_capped() {
    let (_dir, server) = server();
    server.update(snapshot(GIB, Level::Normal, 2, 0.0));
    let mut clients: Vec<Raw> = (0..MAX_CLIENTS)
        .map(|_| Raw::connect(server.path()))
        .collect();
    // Each has been admitted once it answers.
    for client in &mut clients {
        assert_eq!(client.ask(r#"{"op":"progress","units":1}"#)["ok"], true);
    }
    let mut extra = Raw::connect(server.path());
    assert_eq!(
        error_of(&extra.reply()),
        format!("too many clients ({MAX_CLIENTS} connected); retry later")
    );
    drop(clients.pop());
    // The slot frees once the server has seen the disconnect.
    let freed = common::eventually(Duration::from_secs(5), Duration::from_millis(50), || {
        let mut again = Raw::connect(server.path());
        // A refused connection may be closed before the request is written: the reply
        // (already sent) is what counts.
        let _ = again.writer.write_all(b"{\"op\":\"status\"}\n");
        again.reply()["ok"] == true
    });
    assert!(freed, "slot never freed");
}

#[test]
fn stop_closes_clients_and_removes_the_socket() {
    let (_dir, server) = server();
    server.update(snapshot(GIB, Level::Normal, 2, 0.0));
    let path = server.path().to_path_buf();
    let mut raw = Raw::connect(&path);
    assert_eq!(raw.ask(r#"{"op":"status"}"#)["ok"], true);
    // stop() returning at all shows it does not wait for the idle client.
    server.stop();
    assert!(!path.exists());
    let mut rest = Vec::new();
    assert_eq!(raw.reader.read_to_end(&mut rest).unwrap(), 0);
    assert!(UnixStream::connect(&path).is_err());
}

#[test]
fn drop_removes_the_socket_and_start_replaces_a_stale_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("control.sock");
    // A socket file left behind by a dead process.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let server = ControlServer::start(&path, 0).unwrap();
    server.update(snapshot(GIB, Level::Normal, 3, 0.0));
    assert_eq!(
        Raw::connect(&path).ask(r#"{"op":"recommend"}"#)["threads"],
        3
    );
    drop(server);
    assert!(!path.exists());

    let not_a_socket = dir.path().join("file");
    std::fs::write(&not_a_socket, "keep me").unwrap();
    let error = ControlServer::start(&not_a_socket, 0)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&not_a_socket.display().to_string()),
        "{error}"
    );
    assert!(error.contains("not a socket"), "{error}");
    assert_eq!(std::fs::read_to_string(&not_a_socket).unwrap(), "keep me");
}

fn fixture(kernel: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/socket")
        .join(kernel)
        .join(file)
}

#[test]
fn recommend_from_host_reads_a_proc_tree() {
    let root = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("kernel-6.1", "stat"), root.path().join("stat")).unwrap();
    // The captured meminfo with MemAvailable raised to 5 GiB.
    let meminfo = std::fs::read_to_string(fixture("kernel-6.1", "meminfo")).unwrap();
    let edited: String = meminfo
        .lines()
        .map(|line| {
            if line.starts_with("MemAvailable:") {
                "MemAvailable:    5242880 kB".to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(root.path().join("meminfo"), edited).unwrap();
    let (threads, reason) = recommend_from_host(root.path(), 8, 3 * GIB);
    assert_eq!(threads, 1, "{reason}");
    assert_eq!(
        reason,
        "host: 1 (limited by memory: max 8, 2 CPUs, MemAvailable 5G ÷ 3G per worker = 1)"
    );
    let (threads, reason) = recommend_from_host(root.path(), 8, DEFAULT_PER_WORKER);
    assert_eq!(threads, 2, "{reason}");
    assert_eq!(
        reason,
        "host: 2 (limited by CPUs: max 8, 2 CPUs, MemAvailable 5G ÷ 1G per worker = 5)"
    );
}

#[test]
fn python_example_runs_a_stage_against_the_server() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipping: python3 is not installed");
        return;
    }
    let (_dir, server) = server();
    server.update(snapshot(GIB, Level::High, 3, 0.0));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/stage_client.py");
    let output = Command::new("python3")
        .arg(&script)
        .args(["--stage", "models", "--workers", "4", "--items", "12"])
        .env("RESCTL_SOCKET", server.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with("stage models: 3 workers (high: 3 workers instead of 4"),
        "{stdout}"
    );
    assert!(stdout.contains("stage models done: "), "{stdout}");
    assert!(
        stdout.contains(&format!("peak {GIB} bytes, highest level high")),
        "{stdout}"
    );
    assert!(
        stdout.contains("resctl recommends: memory at high (1G ≥ 2.9G): run at most 3 workers"),
        "{stdout}"
    );
    assert_eq!(server.progress_units(), Some(12));
    let finished = server.take_finished_stages();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].workers, 3);
}
