//! `resctl run --metrics-textfile` and `--metrics-listen`: the job's figures as OpenMetrics
//! text, written after every sample and served while the job runs; a mistake in either is
//! an error before the job starts. Runs on any host (the job is watched through /proc
//! when no cgroup can be made).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;

use common::{resctl, stderr};

#[test]
fn a_run_writes_its_metrics_textfile_with_the_jobs_series() {
    let dir = tempfile::tempdir().unwrap();
    let textfile = dir.path().join("job.prom");
    let output = resctl()
        .args([
            "run",
            "--interval",
            "200ms",
            "--threads",
            "3",
            "--job-key",
            "etl",
        ])
        .arg("--metrics-textfile")
        .arg(&textfile)
        .args(["--", "sh", "-c", "sleep 1"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = std::fs::read_to_string(&textfile).unwrap();
    for series in [
        "resctl_threads{kind=\"job\",name=\"etl\"} 3",
        "resctl_level{kind=\"job\",name=\"etl\"} 0",
        "resctl_memory_bytes{kind=\"job\",name=\"etl\"} ",
        "resctl_sample_duration_seconds ",
        "resctl_cpu_seconds_total ",
    ] {
        assert!(text.contains(series), "no {series:?} in:\n{text}");
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
    let memory: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix("resctl_memory_bytes{kind=\"job\",name=\"etl\"} "))
        .and_then(|value| value.parse().ok())
        .unwrap();
    assert!(memory > 0, "{text}");
}

#[test]
fn a_run_serves_its_metrics_while_the_job_runs() {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    let mut child = resctl()
        .args([
            "run",
            "--interval",
            "200ms",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .args(["--", "sh", "-c"])
        .arg(format!(
            "while [ ! -e '{}' ]; do sleep 0.1; done",
            release.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let address = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("resctl never said where it serves: {seen:?}");
        };
        if let Some(rest) = line.split("serving http://").nth(1) {
            break rest.trim_end_matches("/metrics").to_owned();
        }
        seen.push(line);
    };
    // The first sample comes within an interval; scrape until the job's series is there.
    let mut reply = String::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        reply.clear();
        stream.read_to_string(&mut reply).unwrap();
        if reply.contains("resctl_threads{kind=\"job\",name=\"sh\"}") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::fs::write(&release, "").unwrap();
    let status = child.wait().unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(status.success(), "{seen:?} {rest:?}");
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(
        reply.contains("resctl_threads{kind=\"job\",name=\"sh\"}"),
        "{reply}"
    );
    // The server is gone with the run.
    assert!(TcpStream::connect(&address).is_err());
}

#[test]
fn a_taken_address_or_unwritable_textfile_stops_the_run_before_the_job_starts() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let job = format!("touch '{}'", marker.display());
    let output = resctl()
        .args(["run", "--metrics-listen", &address, "--", "sh", "-c", &job])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(125), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("--metrics-listen {address}: ")),
        "{}",
        stderr(&output)
    );
    let output = resctl()
        .args(["run", "--metrics-textfile"])
        .arg(dir.path().join("missing/job.prom"))
        .args(["--", "sh", "-c", &job])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(125), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--metrics-textfile: "),
        "{}",
        stderr(&output)
    );
    assert!(!marker.exists(), "the job ran");
}
