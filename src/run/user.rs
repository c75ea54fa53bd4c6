//! `resctl run --user USER`: the job runs as another user (resctl itself stays root, as it
//! must to manage cgroups), like `systemd-run --uid` or a service's `User=`. The user is
//! resolved before anything starts; the switch happens in the child between fork and exec,
//! after the move into the job's cgroup (which needs root): supplementary groups, then the
//! group, then the user.

use std::ffi::CString;
use std::io;
use std::path::PathBuf;

use nix::unistd::{Gid, Uid, User};

/// Marks an errno that came from the pre-exec user switch, like the cgroup move's flag in
/// [`super::command`]: std hands a pre_exec error's raw errno to the parent unchanged.
pub const USER_SWITCH_ERRNO_FLAG: i32 = 0x2000_0000;

/// The user a job runs as, resolved before the job starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobUser {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: Uid,
    /// Primary group id.
    pub gid: Gid,
    /// Supplementary groups (the primary one included), from the group database.
    pub groups: Vec<Gid>,
    /// Home folder (the job's `HOME`).
    pub home: PathBuf,
}

/// Why `--user` cannot be honoured.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    /// No such user name or id in the user database.
    #[error("--user {0}: no such user")]
    Unknown(String),
    /// The user database could not be read.
    #[error("--user {spec}: cannot read the user database: {reason}")]
    Lookup {
        /// What was given.
        spec: String,
        /// The error.
        reason: String,
    },
    /// Only root can start a job as another user.
    #[error(
        "--user {spec}: running the job as another user needs root (resctl runs as uid {euid})"
    )]
    NotRoot {
        /// What was given.
        spec: String,
        /// resctl's effective uid.
        euid: u32,
    },
}

impl JobUser {
    /// Resolves `spec`, a user name or a numeric uid, for a resctl running as `euid`.
    pub fn resolve(spec: &str, euid: Uid) -> Result<JobUser, UserError> {
        let lookup_error = |error: nix::Error| UserError::Lookup {
            spec: spec.to_owned(),
            reason: error.desc().to_owned(),
        };
        let user = match spec.parse::<u32>() {
            Ok(uid) => User::from_uid(Uid::from_raw(uid)).map_err(lookup_error)?,
            Err(_) => User::from_name(spec).map_err(lookup_error)?,
        }
        .ok_or_else(|| UserError::Unknown(spec.to_owned()))?;
        if !euid.is_root() && user.uid != euid {
            return Err(UserError::NotRoot {
                spec: spec.to_owned(),
                euid: euid.as_raw(),
            });
        }
        let groups = CString::new(user.name.clone())
            .ok()
            .and_then(|name| nix::unistd::getgrouplist(&name, user.gid).ok())
            .unwrap_or_else(|| vec![user.gid]);
        Ok(JobUser {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
            groups,
            home: user.dir,
        })
    }

    /// The job's `USER`, `LOGNAME` and `HOME`, as a service manager sets them.
    pub fn environment(&self) -> Vec<(String, std::ffi::OsString)> {
        vec![
            ("USER".to_owned(), self.name.clone().into()),
            ("LOGNAME".to_owned(), self.name.clone().into()),
            ("HOME".to_owned(), self.home.clone().into_os_string()),
        ]
    }

    /// A closure for `CommandExt::pre_exec` that switches the child to the user: groups,
    /// group, then user (after which it can no longer change them). It only makes the
    /// setgroups/setgid/setuid system calls on data prepared in the parent, so it is safe
    /// between fork and exec.
    pub fn switch_in_child(&self) -> impl Fn() -> io::Result<()> + Send + Sync + 'static {
        let (uid, gid, groups) = (self.uid, self.gid, self.groups.clone());
        move || {
            let flagged = |errno: nix::Error| {
                io::Error::from_raw_os_error(errno as i32 | USER_SWITCH_ERRNO_FLAG)
            };
            nix::unistd::setgroups(&groups).map_err(flagged)?;
            nix::unistd::setgid(gid).map_err(flagged)?;
            nix::unistd::setuid(uid).map_err(flagged)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_and_ids() {
        let root = Uid::from_raw(0);
        let by_name = JobUser::resolve("root", root).unwrap();
        assert_eq!(by_name.uid, root);
        assert_eq!(by_name.gid, Gid::from_raw(0));
        assert!(by_name.groups.contains(&Gid::from_raw(0)));
        let by_id = JobUser::resolve("0", root).unwrap();
        assert_eq!(by_id, by_name);
        let env = by_name.environment();
        assert_eq!(env[0], ("USER".to_owned(), "root".into()));
        assert_eq!(env[2].0, "HOME");
    }

    #[test]
    fn unknown_users_and_non_root_are_refused() {
        let root = Uid::from_raw(0);
        assert_eq!(
            JobUser::resolve("no-such-user-resctl", root),
            Err(UserError::Unknown("no-such-user-resctl".to_owned()))
        );
        assert_eq!(
            JobUser::resolve("4294967", root).unwrap_err().to_string(),
            "--user 4294967: no such user"
        );
        // Anyone may name themselves; only root may name someone else.
        assert!(JobUser::resolve("root", root).is_ok());
        let error = JobUser::resolve("root", Uid::from_raw(1000)).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("needs root (resctl runs as uid 1000)"),
            "{error}"
        );
    }
}
