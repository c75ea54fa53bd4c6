//! The daemon's side of the jobs `resctl run` registered: finding them (their run folders
//! in the daemon's runtime folder, `<pid>/job.json`), asking each for its state over its
//! control socket, setting a ceiling there, freezing or thawing its cgroup
//! (`cgroup.freeze`) and, where the configuration asks for it, killing it (`cgroup.kill`).
//! What to do is decided in [`super::jobs`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cgroup::reader::CgroupKind;
use crate::cgroup::writer;
use crate::control::client::ControlClient;
use crate::control::protocol::{
    NoticeAction, Registration, Request, StatusSnapshot, REGISTRATION_FILE,
};
use crate::safe_fs::read_regular;

/// Largest registration file read, bytes.
const MAX_REGISTRATION_BYTES: u64 = 64 * 1024;
/// How long a job's socket has to answer (the daemon's loop waits for it).
const REPLY_TIMEOUT: Duration = Duration::from_millis(1500);

/// A job a run registered.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredJob {
    /// resctl's pid (the run folder's name).
    pub resctl_pid: u32,
    /// What the run wrote.
    pub registration: Registration,
    /// Its control socket.
    pub socket: PathBuf,
}

impl RegisteredJob {
    /// The job's cgroup folder, if it has one.
    pub fn cgroup(&self) -> Option<&Path> {
        self.registration.cgroup.as_deref().map(Path::new)
    }

    /// Whether the job runs in the cgroup `slice_dir` or below it.
    pub fn inside(&self, slice_dir: &Path) -> bool {
        self.cgroup()
            .is_some_and(|cgroup| cgroup.starts_with(slice_dir))
    }

    /// Its state, from its socket.
    ///
    /// # Errors
    ///
    /// The socket did not answer (the run is ending), in words.
    pub fn status(&self) -> Result<StatusSnapshot, String> {
        self.client()?.status().map_err(|err| err.to_string())
    }

    /// Sets (`Some`) or lifts (`None`) its ceiling.
    ///
    /// # Errors
    ///
    /// The socket did not take it, in words.
    pub fn set_ceiling(&self, threads: Option<u32>, reason: &str) -> Result<(), String> {
        self.client()?
            .request(&Request::Ceiling {
                threads,
                reason: Some(reason.to_owned()),
            })
            .map(|_| ())
            .map_err(|err| err.to_string())
    }

    /// Tells the job's resctl what was done to its cgroup, or is about to be, and why: its
    /// log says so, and after a kill its summary does (a killed job cannot be asked).
    ///
    /// # Errors
    ///
    /// The socket did not take it (the run is ending), in words.
    pub fn tell(&self, action: NoticeAction, reason: &str) -> Result<(), String> {
        self.client()?
            .request(&Request::Notice {
                action,
                reason: reason.to_owned(),
            })
            .map(|_| ())
            .map_err(|err| err.to_string())
    }

    /// Freezes (`true`) or thaws its cgroup.
    ///
    /// # Errors
    ///
    /// It has no cgroup, or `cgroup.freeze` could not be written (gone), in words.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), String> {
        writer::set_frozen(self.own_cgroup()?, CgroupKind::V2, frozen)
            .map_err(|err| err.to_string())
    }

    /// Kills every process of its cgroup (`cgroup.kill`).
    ///
    /// # Errors
    ///
    /// It has no cgroup, or `cgroup.kill` could not be written (gone, or a kernel before
    /// 5.14), in words.
    pub fn kill(&self) -> Result<(), String> {
        writer::kill_all(self.own_cgroup()?, CgroupKind::V2).map_err(|err| err.to_string())
    }

    /// Its cgroup, or why there is none to act on.
    fn own_cgroup(&self) -> Result<&Path, String> {
        self.cgroup()
            .ok_or_else(|| "the job has no cgroup (monitor-only)".to_owned())
    }

    /// Whether its cgroup is frozen now (`cgroup.freeze` reads 1).
    pub fn frozen(&self) -> bool {
        self.cgroup().is_some_and(crate::cgroup::reader::is_frozen)
    }

    fn client(&self) -> Result<ControlClient, String> {
        ControlClient::connect_within(&self.socket, REPLY_TIMEOUT).map_err(|err| err.to_string())
    }
}

/// The jobs registered in `runtime_dir` (`<pid>/job.json`); folders without a readable
/// registration are skipped (a run starting, or one without a cgroup of its own).
pub fn registered_jobs(runtime_dir: &Path) -> Vec<RegisteredJob> {
    let Ok(entries) = std::fs::read_dir(runtime_dir) else {
        return Vec::new();
    };
    let mut jobs: Vec<RegisteredJob> = entries
        .flatten()
        .filter_map(|entry| {
            let resctl_pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let folder = entry.path();
            let bytes =
                read_regular(&folder.join(REGISTRATION_FILE), MAX_REGISTRATION_BYTES).ok()?;
            let registration = serde_json::from_slice(&bytes).ok()?;
            Some(RegisteredJob {
                resctl_pid,
                registration,
                socket: folder.join("control.sock"),
            })
        })
        .collect();
    jobs.sort_by_key(|job| job.resctl_pid);
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_jobs_are_read_from_their_run_folders_and_placed_in_slices() {
        let dir = tempfile::tempdir().unwrap();
        let write = |pid: &str, text: &str| {
            let folder = dir.path().join(pid);
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join(REGISTRATION_FILE), text).unwrap();
        };
        write(
            "42",
            r#"{"pid":43,"cgroup":"/sys/fs/cgroup/etl.slice/resctl-42.scope/job","priority":5,"name":"make"}"#,
        );
        write("7", r#"{"pid":8,"cgroup":null,"priority":0,"name":"x"}"#);
        write("9", "not json");
        write(
            "daemon",
            r#"{"pid":1,"cgroup":null,"priority":0,"name":"y"}"#,
        );
        std::fs::create_dir_all(dir.path().join("11")).unwrap();
        let jobs = registered_jobs(dir.path());
        let pids: Vec<u32> = jobs.iter().map(|job| job.resctl_pid).collect();
        assert_eq!(pids, [7, 42]);
        let make = &jobs[1];
        assert_eq!(make.registration.priority, 5);
        assert!(make.inside(Path::new("/sys/fs/cgroup/etl.slice")));
        assert!(!make.inside(Path::new("/sys/fs/cgroup/et")));
        assert!(!jobs[0].inside(Path::new("/sys/fs/cgroup")));
        assert!(make.status().is_err(), "no socket there");
        assert!(jobs[0].set_frozen(true).is_err());
        assert_eq!(
            jobs[0].kill(),
            Err("the job has no cgroup (monitor-only)".to_owned())
        );
    }

    #[test]
    fn a_kill_goes_to_the_jobs_own_cgroup_kill() {
        let dir = tempfile::tempdir().unwrap();
        let cgroup = dir.path().join("etl.slice/resctl-42.scope/job");
        std::fs::create_dir_all(&cgroup).unwrap();
        std::fs::write(cgroup.join("cgroup.kill"), "").unwrap();
        std::fs::write(dir.path().join("etl.slice/cgroup.kill"), "").unwrap();
        let job = RegisteredJob {
            resctl_pid: 42,
            registration: Registration {
                pid: 43,
                cgroup: Some(cgroup.display().to_string()),
                priority: 0,
                name: "make".to_owned(),
            },
            socket: dir.path().join("42/control.sock"),
        };
        job.kill().unwrap();
        assert_eq!(
            std::fs::read_to_string(cgroup.join("cgroup.kill")).unwrap(),
            "1"
        );
        // The slice's is not touched.
        assert_eq!(
            std::fs::read_to_string(dir.path().join("etl.slice/cgroup.kill")).unwrap(),
            ""
        );
    }
}
