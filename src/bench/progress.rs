//! `resctl bench`'s progress: on a terminal one line redrawn in place with the run under
//! way and an estimate of the time left (the mean of the runs so far times the runs
//! left); elsewhere (a log, a pipe) one log line per run.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::units::format_elapsed;

/// The progress of a sweep.
#[derive(Debug)]
pub struct Progress {
    total: usize,
    repeat: u32,
    started: Instant,
    done: usize,
    terminal: bool,
}

impl Progress {
    /// A sweep of `total` runs, each count `repeat` times; redrawn in place when standard
    /// error is a terminal.
    pub fn new(total: usize, repeat: u32) -> Progress {
        Progress {
            total,
            repeat,
            started: Instant::now(),
            done: 0,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// A run starts: `threads` threads, repeat `repeat` of the count.
    pub fn next(&mut self, threads: u32, repeat: u32) {
        self.done += 1;
        let line = format!(
            "bench: run {}/{}: {threads} threads, repeat {repeat}/{}{}",
            self.done,
            self.total,
            self.repeat,
            eta(self.started.elapsed(), self.done - 1, self.total)
                .map(|left| format!(", about {} left", format_elapsed(left)))
                .unwrap_or_default()
        );
        if self.terminal {
            let mut err = std::io::stderr().lock();
            // Back to the line's start and clear it, then the new line without a newline.
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
        } else {
            tracing::info!("{line}");
        }
    }

    /// The sweep has ended: the progress line is ended on a terminal.
    pub fn finish(&self) {
        if self.terminal && self.done > 0 {
            eprintln!();
        }
    }
}

/// Time left after `finished` of `total` runs took `elapsed`; `None` before the first.
fn eta(elapsed: Duration, finished: usize, total: usize) -> Option<Duration> {
    if finished == 0 {
        return None;
    }
    let per_run = elapsed / u32::try_from(finished).unwrap_or(u32::MAX);
    let left = u32::try_from(total.saturating_sub(finished)).unwrap_or(u32::MAX);
    Some(per_run * left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_is_the_mean_run_times_the_runs_left() {
        assert_eq!(eta(Duration::from_secs(10), 0, 6), None);
        assert_eq!(
            eta(Duration::from_secs(10), 2, 6),
            Some(Duration::from_secs(20))
        );
        assert_eq!(eta(Duration::from_secs(9), 3, 3), Some(Duration::ZERO));
    }
}
