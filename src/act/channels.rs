//! The thread-count channels to the job (names are a contract, see the README):
//! `RESCTL_THREADS` (initial count, in the environment), `RESCTL_THREADS_FILE`
//! (the current count as a decimal and a newline, replaced atomically with
//! write + rename), and an opt-in signal on change.

use std::io;
use std::path::PathBuf;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::runtime_dir::SharedFile;

/// Environment variable: the recommended worker count when the job starts.
pub const ENV_THREADS: &str = "RESCTL_THREADS";
/// Environment variable: path of the file holding the current recommendation.
pub const ENV_THREADS_FILE: &str = "RESCTL_THREADS_FILE";

/// Name of the thread file in the run folder.
pub const THREADS_FILE_NAME: &str = "threads";

/// Where the current thread count is published.
#[derive(Debug)]
pub struct ThreadChannels {
    file: SharedFile,
    notify: Option<Signal>,
    job_pid: Option<i32>,
}

impl ThreadChannels {
    /// Channels writing to `file`; `notify` is sent to the job on every change
    /// (only when the user asked: an unaware process dies of SIGUSR1).
    pub fn new(file: SharedFile, notify: Option<Signal>) -> Self {
        ThreadChannels {
            file,
            notify,
            job_pid: None,
        }
    }

    /// The thread file's path.
    pub fn file(&self) -> PathBuf {
        self.file.path()
    }

    /// Sets the process that receives the change signal.
    pub fn set_job_pid(&mut self, pid: i32) {
        self.job_pid = Some(pid);
    }

    /// Writes the count atomically (a new file renamed over the old one, see
    /// [`SharedFile::write`]) and, if configured, signals the job.
    pub fn publish(&self, threads: u32) -> io::Result<()> {
        self.file.write(format!("{threads}\n").as_bytes())?;
        if let (Some(signal), Some(pid)) = (self.notify, self.job_pid) {
            kill(Pid::from_raw(pid), signal).map_err(io::Error::from)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safe_fs::Folder;

    #[test]
    fn publishes_decimal_and_newline_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let folder = Folder::open(dir.path()).unwrap();
        let channels = ThreadChannels::new(SharedFile::new(folder, "threads", None), None);
        channels.publish(4).unwrap();
        assert_eq!(std::fs::read_to_string(channels.file()).unwrap(), "4\n");
        channels.publish(12).unwrap();
        assert_eq!(std::fs::read_to_string(channels.file()).unwrap(), "12\n");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn a_symlink_or_fifo_planted_in_the_folder_is_never_followed_or_opened() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "root's file\n").unwrap();
        // What the old write + rename used as its temporary name, and the file itself.
        std::os::unix::fs::symlink(&victim, dir.path().join(".threads.tmp")).unwrap();
        nix::unistd::mkfifo(
            &dir.path().join(".threads.fifo"),
            nix::sys::stat::Mode::S_IRWXU,
        )
        .unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("threads")).unwrap();
        let folder = Folder::open(dir.path()).unwrap();
        let channels = ThreadChannels::new(SharedFile::new(folder, "threads", None), None);
        channels.publish(3).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root's file\n");
        let meta = std::fs::symlink_metadata(channels.file()).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(std::fs::read_to_string(channels.file()).unwrap(), "3\n");
    }
}
