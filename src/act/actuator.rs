//! The actuator of one job: every change resctl makes for it, applied from each decision —
//! the thread channels (file and opt-in signal), the jobserver's token pool, the control
//! socket's published state, `memory.reclaim` (through the cgroup writer), and the restart
//! of the cgroup's high-water mark after each sample. It says what it did ([`Actions`]); the
//! reporter logs it. A failure costs that action, never the job.

use std::path::PathBuf;

use crate::cgroup::reader::CgroupKind;
use crate::cgroup::writer::{self, PeakReset};
use crate::control::protocol::StatusSnapshot;
use crate::control::server::ControlServer;
use crate::policy::Decision;
use crate::report::stages::StageSummary;
use crate::report::tick::Actions;

use super::channels::ThreadChannels;
use super::jobserver::Jobserver;

/// Everything resctl changes for one job.
pub struct Actuator {
    channels: ThreadChannels,
    jobserver: Option<Jobserver>,
    control: Option<ControlServer>,
    /// The job's cgroup, while it exists.
    cgroup: Option<(PathBuf, CgroupKind)>,
    /// The cgroup's high-water mark, restarted after every sample (v1 only).
    peak_reset: Option<PeakReset>,
}

impl Actuator {
    /// An actuator over the job's channels, its jobserver and control socket (when served)
    /// and its cgroup (`None`: monitor-only).
    pub fn new(
        channels: ThreadChannels,
        jobserver: Option<Jobserver>,
        control: Option<ControlServer>,
        cgroup: Option<(PathBuf, CgroupKind)>,
    ) -> Actuator {
        // Without it (v2, monitor-only) the peaks between samples come only from a rising
        // memory.peak (see the Observer).
        let peak_reset = cgroup.as_ref().and_then(|(dir, kind)| {
            PeakReset::open(dir, *kind)
                .map_err(|err| tracing::debug!("memory high-water mark: {err}"))
                .ok()
        });
        Actuator {
            channels,
            jobserver,
            control,
            cgroup,
            peak_reset,
        }
    }

    /// Restarts the cgroup's memory high-water mark after a sample, so the next sample's
    /// mark is the peak between the two (v1; see [`PeakReset`]). Returns whether it was
    /// restarted; a failed write (the cgroup went away) ends the restarts for the run.
    pub fn restart_peak(&mut self) -> bool {
        let Some(peak_reset) = &self.peak_reset else {
            return false;
        };
        match peak_reset.reset() {
            Ok(()) => true,
            Err(err) => {
                tracing::debug!("memory high-water mark: {err}");
                self.peak_reset = None;
                false
            }
        }
    }

    /// Applies a decision: a new thread count to every channel, and a reclaim.
    pub fn act(&mut self, decision: &Decision) -> Actions {
        let mut actions = Actions::default();
        if decision.changed() {
            actions.published = Some(
                self.channels
                    .publish(decision.threads)
                    .map_err(|err| err.to_string()),
            );
            if let Some(jobserver) = &self.jobserver {
                jobserver.set_limit(decision.threads);
            }
            if let Some(control) = &self.control {
                control.publish_threads(
                    decision.threads,
                    decision.previous_threads,
                    &decision.reason,
                );
            }
        }
        if let (Some(bytes), Some((dir, kind))) = (decision.reclaim, &self.cgroup) {
            actions.reclaimed = Some(
                writer::reclaim(dir, *kind, bytes)
                    .map(|()| bytes)
                    .map_err(|err| err.to_string()),
            );
        }
        actions
    }

    /// The job's cgroup was removed underneath: nothing more is done to it.
    pub fn cgroup_gone(&mut self) {
        self.cgroup = None;
        self.peak_reset = None;
    }

    /// Publishes the latest state to the control socket's clients.
    pub fn publish_status(&self, snapshot: StatusSnapshot) {
        if let Some(control) = &self.control {
            control.update(snapshot);
        }
    }

    /// The worker-count ceiling `resctl daemon` set through the control socket, if any.
    pub fn ceiling(&self) -> Option<crate::policy::Ceiling> {
        self.control.as_ref().and_then(ControlServer::ceiling)
    }

    /// What `resctl daemon` said it did to the job since the last call (control socket
    /// `notice` requests), oldest first, reasons escaped.
    pub fn take_notices(&self) -> Vec<(crate::control::protocol::NoticeAction, String)> {
        self.control
            .as_ref()
            .map(ControlServer::take_notices)
            .unwrap_or_default()
    }

    /// Work units the job reported through the control socket so far.
    pub fn progress_units(&self) -> Option<u64> {
        self.control
            .as_ref()
            .and_then(ControlServer::progress_units)
    }

    /// Stages the job ended since the last call.
    pub fn finished_stages(&self) -> Vec<StageSummary> {
        self.control
            .as_ref()
            .map(ControlServer::take_finished_stages)
            .unwrap_or_default()
    }

    /// The job has ended: stops the jobserver and the control socket; returns the stages
    /// ended since the last call and those still open (marked unfinished), in that order.
    pub fn finish(mut self) -> Vec<StageSummary> {
        if let Some(jobserver) = self.jobserver.take() {
            jobserver.stop();
        }
        let Some(control) = self.control.take() else {
            return Vec::new();
        };
        let unfinished = control.end_open_stages();
        let mut stages = control.take_finished_stages();
        stages.extend(unfinished);
        control.stop();
        stages
    }
}
