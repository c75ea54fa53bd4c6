//! `--record FILE`: every sample, observation and decision as JSON lines, so a
//! run can be replayed through the policy (`resctl replay`).
//!
//! Line kinds (field `kind`): `header` (policy configuration and run facts),
//! `tick` (sample, observation, decision), `end` (the summary).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::policy::{Decision, Observation, PolicyConfig};
use crate::report::summary::RunSummary;
use crate::safe_fs::{open_regular, read_line_limited, LineRead};
use crate::sample::job::JobSample;

/// One line of a trace.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TraceLine {
    /// First line: how the policy was configured.
    Header {
        /// resctl's version.
        version: String,
        /// The policy configuration of the run.
        policy: PolicyConfig,
        /// The job's cgroup, if any.
        cgroup: Option<String>,
    },
    /// One tick.
    Tick {
        /// Raw sample.
        sample: Box<JobSample>,
        /// What the policy saw.
        observation: Observation,
        /// What it decided.
        decision: Decision,
    },
    /// Last line.
    End {
        /// The run's summary.
        summary: Box<RunSummary>,
    },
}

/// Longest trace line `resctl replay` reads: a tick of a job with thousands of processes is
/// a few hundred KiB.
pub const MAX_TRACE_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Writes a trace file.
pub struct Recorder {
    out: BufWriter<File>,
}

impl Recorder {
    /// Writes the trace into `file` (made by [`crate::safe_fs::OutputFile::create_stream`]).
    pub fn new(file: File) -> Self {
        Recorder {
            out: BufWriter::new(file),
        }
    }

    /// Appends one line and flushes it (a trace of a crashed run is still useful).
    pub fn write(&mut self, line: &TraceLine) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, line)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}

/// Reads a trace: the policy configuration and the observations, in order. The file must
/// be a regular file; it is read a line at a time, each at most [`MAX_TRACE_LINE_BYTES`].
pub fn read_trace(path: &Path) -> Result<(PolicyConfig, Vec<Observation>), String> {
    let file = open_regular(path).map_err(|err| err.to_string())?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut config = None;
    let mut observations = Vec::new();
    for number in 1.. {
        let at = |what: &str| format!("{}:{number}: {what}", path.display());
        match read_line_limited(&mut reader, &mut line, MAX_TRACE_LINE_BYTES) {
            Ok(LineRead::Eof) => break,
            Ok(LineRead::TooLong) => {
                return Err(at(&format!(
                    "line longer than {MAX_TRACE_LINE_BYTES} bytes; not a trace of resctl's"
                )))
            }
            Ok(LineRead::Line) => {}
            Err(err) => return Err(at(&err.to_string())),
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed: TraceLine =
            serde_json::from_slice(&line).map_err(|err| at(&err.to_string()))?;
        match parsed {
            TraceLine::Header { policy, .. } => config = Some(policy),
            TraceLine::Tick { observation, .. } => observations.push(observation),
            TraceLine::End { .. } => {}
        }
    }
    let config =
        config.ok_or_else(|| format!("{}: no header line (kind \"header\")", path.display()))?;
    Ok((config, observations))
}
