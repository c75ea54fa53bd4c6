//! `--record FILE`: every sample, observation and decision as JSON lines, so a
//! run can be replayed through the policy (`resctl replay`).
//!
//! Line kinds (field `kind`): `header` (policy configuration and run facts),
//! `tick` (sample, observation, decision), `end` (the summary).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::policy::{Decision, Observation, PolicyConfig};
use crate::report::summary::RunSummary;
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

/// Writes a trace file.
pub struct Recorder {
    out: BufWriter<File>,
}

impl Recorder {
    /// Creates (truncates) the trace file.
    pub fn create(path: &Path) -> io::Result<Self> {
        Ok(Recorder {
            out: BufWriter::new(File::create(path)?),
        })
    }

    /// Appends one line and flushes it (a trace of a crashed run is still useful).
    pub fn write(&mut self, line: &TraceLine) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, line)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}

/// Reads a trace: the policy configuration and the observations, in order.
pub fn read_trace(path: &Path) -> Result<(PolicyConfig, Vec<Observation>), String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let mut config = None;
    let mut observations = Vec::new();
    for (index, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let parsed: TraceLine = serde_json::from_str(line)
            .map_err(|err| format!("{}:{}: {err}", path.display(), index + 1))?;
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
