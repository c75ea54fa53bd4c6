//! Finding and starting the job: PATH lookup (so "not found" and "not
//! executable" are told apart before anything is changed), the environment the
//! job gets, and the pre-exec move into its cgroup.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use super::protect::Protection;
use super::user::{JobUser, USER_SWITCH_ERRNO_FLAG};
use crate::exit::{NOT_EXECUTABLE, NOT_FOUND, RESCTL_FAILED};
use crate::job_text::escape;

/// Why the job could not be started, with the shell exit code that goes with it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No such command in PATH (or no such file).
    #[error("{0}: command not found")]
    NotFound(String),
    /// The file exists but cannot be executed.
    #[error("{command}: cannot execute: {reason}")]
    NotExecutable {
        /// The command as given.
        command: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The kernel refused to move the job into its cgroup (nothing ran).
    #[error("could not move the job into cgroup {cgroup}: {source}")]
    CgroupMove {
        /// The cgroup directory.
        cgroup: String,
        /// The kernel's error.
        source: io::Error,
    },
    /// The child could not become the `--user` user (nothing ran).
    #[error("could not switch the job to user {user}: {source}")]
    UserSwitch {
        /// The user's name.
        user: String,
        /// The kernel's error.
        source: io::Error,
    },
    /// Any other failure of resctl before the job ran.
    #[error("could not start {command}: {source}")]
    Other {
        /// The command as given.
        command: String,
        /// The error.
        source: io::Error,
    },
}

impl StartError {
    /// The exit code a shell would give for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            StartError::NotFound(_) => NOT_FOUND,
            StartError::NotExecutable { .. } => NOT_EXECUTABLE,
            StartError::CgroupMove { .. }
            | StartError::UserSwitch { .. }
            | StartError::Other { .. } => RESCTL_FAILED,
        }
    }
}

/// Resolves `program` like `execvp` would: a name with a slash is taken as a
/// path; otherwise each PATH entry is tried. Tells "not found" from "found but
/// not executable".
pub fn resolve_program(program: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf, StartError> {
    let shown = escape(&program.to_string_lossy());
    if program.is_empty() {
        return Err(StartError::NotFound(shown));
    }
    let as_path = Path::new(program);
    if program.as_encoded_bytes().contains(&b'/') {
        return check_executable(as_path, &shown).map(|()| as_path.to_path_buf());
    }
    let search = path_var
        .map(OsString::from)
        .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    let mut first_unexecutable = None;
    for dir in std::env::split_paths(&search) {
        let candidate = if dir.as_os_str().is_empty() {
            PathBuf::from(".").join(program)
        } else {
            dir.join(program)
        };
        match check_executable(&candidate, &shown) {
            Ok(()) => return Ok(candidate),
            Err(StartError::NotFound(_)) => continue,
            Err(other) => {
                first_unexecutable.get_or_insert(other);
            }
        }
    }
    Err(first_unexecutable.unwrap_or(StartError::NotFound(shown)))
}

fn check_executable(path: &Path, shown: &str) -> Result<(), StartError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(StartError::NotFound(shown.to_string()))
        }
        Err(err) => {
            return Err(StartError::NotExecutable {
                command: shown.to_string(),
                reason: err.to_string(),
            })
        }
    };
    if meta.is_dir() {
        return Err(StartError::NotExecutable {
            command: shown.to_string(),
            reason: "is a directory".to_string(),
        });
    }
    let executable = nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok()
        && meta.permissions().mode() & 0o111 != 0;
    if !executable {
        return Err(StartError::NotExecutable {
            command: shown.to_string(),
            reason: "permission denied".to_string(),
        });
    }
    Ok(())
}

/// Marks an errno that came from the pre-exec cgroup move rather than from
/// `execve`: std passes a pre_exec error's raw errno to the parent unchanged,
/// so a high bit that no real errno uses tells the two apart.
const CGROUP_MOVE_ERRNO_FLAG: i32 = 0x4000_0000;

/// What `execve` answers when the command exists but cannot be run — the job could not
/// run, so 126 like a shell: permission, format, a directory, a busy or looping file, an
/// argument list or name too long (E2BIG: arguments and environment over the kernel's
/// limit), a bad interpreter. Anything else (out of memory, out of processes) is a failure
/// to start at all (125).
const EXEC_REFUSALS: [i32; 11] = [
    nix::libc::EACCES,
    nix::libc::ENOEXEC,
    nix::libc::EISDIR,
    nix::libc::EPERM,
    nix::libc::E2BIG,
    nix::libc::ETXTBSY,
    nix::libc::ELOOP,
    nix::libc::ENAMETOOLONG,
    nix::libc::ENOTDIR,
    nix::libc::ELIBBAD,
    nix::libc::EINVAL,
];

/// What the job is started with.
pub struct JobCommand<'a> {
    /// Resolved program path.
    pub program: PathBuf,
    /// Arguments after the program (argv[1..]).
    pub args: Vec<OsString>,
    /// `argv[0]` as the user typed it.
    pub arg0: OsString,
    /// Variables to set in the job's environment.
    pub set_env: Vec<(String, OsString)>,
    /// Variables to remove from the job's environment (e.g. NOTIFY_SOCKET).
    pub remove_env: Vec<String>,
    /// `cgroup.procs` of the job's cgroup, opened beforehand, and its directory.
    pub cgroup_procs: Option<(File, PathBuf)>,
    /// Hybrid hosts: `cgroup.procs` of the job's cgroup2 leaf for its pressure figures,
    /// opened beforehand. The move into it is not fatal: the caller checks it after the
    /// start ([`crate::placement::Placement::confirm_pressure_cgroup`]).
    pub pressure_procs: Option<File>,
    /// Further set-up of the command (a jobserver's inherited fds), applied
    /// after the cgroup move is registered.
    pub configure: Option<&'a dyn Fn(&mut Command)>,
    /// Run the job as this user (`--user`); the switch is the last step before exec.
    pub user: Option<&'a JobUser>,
    /// resctl's own protection, whose `oom_score_adj` the job must not inherit.
    pub protection: Option<&'a Protection>,
}

impl JobCommand<'_> {
    /// Starts the job. When a cgroup is given the child moves itself into it
    /// between fork and exec, so the job never runs outside it.
    pub fn spawn(&self) -> Result<Child, StartError> {
        let mut command = Command::new(&self.program);
        command.arg0(&self.arg0).args(&self.args);
        for name in &self.remove_env {
            command.env_remove(name);
        }
        for (name, value) in &self.set_env {
            command.env(name, value);
        }
        if let Some((procs, _)) = &self.cgroup_procs {
            let fd = std::os::fd::AsRawFd::as_raw_fd(procs);
            // SAFETY: the closure runs in the forked child before exec; it only
            // calls write(2) on an fd opened by the parent, which is
            // async-signal-safe, and allocates nothing.
            unsafe {
                command.pre_exec(move || move_self_into_cgroup(fd));
            }
        }
        if let Some(procs) = &self.pressure_procs {
            let fd = std::os::fd::AsRawFd::as_raw_fd(procs);
            // SAFETY: as above (write(2) on an fd the parent opened); a failed move is
            // ignored here and found by the caller after the start.
            unsafe {
                command.pre_exec(move || {
                    let _ = move_self_into_cgroup(fd);
                    Ok(())
                });
            }
        }
        if let Some(configure) = self.configure {
            configure(&mut command);
        }
        if let Some(restore) = self.protection.and_then(Protection::restore_in_child) {
            // SAFETY: the hook runs in the forked child before exec and only makes the
            // open/write/close system calls on data prepared in the parent.
            unsafe {
                command.pre_exec(restore);
            }
        }
        if let Some(user) = self.user {
            let switch = user.switch_in_child();
            // SAFETY: the hook runs in the forked child before exec and only makes the
            // setgroups/setgid/setuid system calls on data prepared in the parent.
            unsafe {
                command.pre_exec(switch);
            }
        }
        command
            .spawn()
            .map_err(|err| self.classify_spawn_error(err))
    }

    fn classify_spawn_error(&self, err: io::Error) -> StartError {
        let shown = escape(&self.arg0.to_string_lossy());
        match err.raw_os_error() {
            Some(code) if code & CGROUP_MOVE_ERRNO_FLAG != 0 => StartError::CgroupMove {
                cgroup: self
                    .cgroup_procs
                    .as_ref()
                    .map(|(_, dir)| dir.display().to_string())
                    .unwrap_or_default(),
                source: io::Error::from_raw_os_error(code & !CGROUP_MOVE_ERRNO_FLAG),
            },
            Some(code) if code & USER_SWITCH_ERRNO_FLAG != 0 => StartError::UserSwitch {
                user: self.user.map(|user| user.name.clone()).unwrap_or_default(),
                source: io::Error::from_raw_os_error(code & !USER_SWITCH_ERRNO_FLAG),
            },
            Some(code) if code == nix::libc::ENOENT => StartError::NotFound(shown),
            Some(code) if EXEC_REFUSALS.contains(&code) => StartError::NotExecutable {
                command: shown,
                reason: err.to_string(),
            },
            _ => StartError::Other {
                command: shown,
                source: err,
            },
        }
    }
}

/// Writes "0" (this process) into an open `cgroup.procs`. Runs in the child
/// between fork and exec: write(2) only.
fn move_self_into_cgroup(fd: std::os::fd::RawFd) -> io::Result<()> {
    // SAFETY: `fd` is a valid open descriptor owned by the parent's File, which
    // outlives the fork; the buffer is a static byte string.
    let written = unsafe { nix::libc::write(fd, b"0".as_ptr().cast(), 1) };
    if written == 1 {
        Ok(())
    } else {
        let errno = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(nix::libc::EIO);
        Err(io::Error::from_raw_os_error(errno | CGROUP_MOVE_ERRNO_FLAG))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_and_classifies_programs() {
        let found = resolve_program(OsStr::new("sh"), Some(OsStr::new("/nonexistent:/bin")));
        assert_eq!(found.unwrap(), PathBuf::from("/bin/sh"));
        let missing = resolve_program(OsStr::new("no-such-cmd-xyz"), Some(OsStr::new("/bin")));
        assert_eq!(missing.unwrap_err().exit_code(), NOT_FOUND);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("script");
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        let err = resolve_program(file.as_os_str(), None).unwrap_err();
        assert_eq!(err.exit_code(), NOT_EXECUTABLE);
        let err = resolve_program(dir.path().as_os_str(), None).unwrap_err();
        assert_eq!(err.exit_code(), NOT_EXECUTABLE);
        assert_eq!(
            resolve_program(OsStr::new(""), None)
                .unwrap_err()
                .exit_code(),
            NOT_FOUND
        );
    }

    /// `/bin/true` with the given cgroup and user.
    fn true_command(
        cgroup_procs: Option<(File, PathBuf)>,
        user: Option<&JobUser>,
    ) -> JobCommand<'_> {
        JobCommand {
            program: PathBuf::from("/bin/true"),
            args: vec![],
            arg0: OsString::from("true"),
            set_env: vec![],
            remove_env: vec![],
            cgroup_procs,
            pressure_procs: None,
            configure: None,
            user,
            protection: None,
        }
    }

    #[test]
    fn exec_refusals_give_126_and_other_failures_125() {
        let command = true_command(None, None);
        let classify = |errno: i32| {
            command
                .classify_spawn_error(io::Error::from_raw_os_error(errno))
                .exit_code()
        };
        assert_eq!(classify(nix::libc::E2BIG), NOT_EXECUTABLE);
        assert_eq!(classify(nix::libc::ETXTBSY), NOT_EXECUTABLE);
        assert_eq!(classify(nix::libc::EACCES), NOT_EXECUTABLE);
        assert_eq!(classify(nix::libc::ENOENT), NOT_FOUND);
        assert_eq!(classify(nix::libc::ENOMEM), RESCTL_FAILED);
        assert_eq!(classify(nix::libc::EAGAIN), RESCTL_FAILED);
    }

    #[test]
    fn a_failed_cgroup_move_is_reported_as_resctl_failure() {
        let dir = tempfile::tempdir().unwrap();
        // A read-only file: the child's write fails with EBADF.
        let path = dir.path().join("cgroup.procs");
        std::fs::write(&path, "").unwrap();
        let read_only = File::open(&path).unwrap();
        let err = true_command(Some((read_only, dir.path().to_path_buf())), None)
            .spawn()
            .unwrap_err();
        assert!(matches!(err, StartError::CgroupMove { .. }), "{err:?}");
        assert_eq!(err.exit_code(), RESCTL_FAILED);
    }

    #[test]
    fn a_failed_user_switch_is_reported_as_resctl_failure() {
        use nix::unistd::{Gid, Uid};
        // More supplementary groups than the kernel allows (65536): setgroups fails with
        // EINVAL as root (EPERM otherwise), before anything runs.
        let user = JobUser {
            name: "many-groups".to_owned(),
            uid: Uid::from_raw(65534),
            gid: Gid::from_raw(65534),
            groups: (0..70_000).map(Gid::from_raw).collect(),
            home: PathBuf::from("/"),
        };
        let err = true_command(None, Some(&user)).spawn().unwrap_err();
        assert!(matches!(err, StartError::UserSwitch { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("could not switch the job to user many-groups: "),
            "{err}"
        );
        assert_eq!(err.exit_code(), RESCTL_FAILED);
    }
}
