//! On a systemd host the job's cgroup lives in a transient scope that systemd
//! creates with `Delegate=yes` in the requested slice. resctl asks for it over
//! D-Bus (`StartTransientUnit` with its own pid, [`enter`]) and goes on in the
//! same process once systemd has moved it there. Where the system bus cannot be
//! reached (systemd without a bus daemon), it re-executes itself under
//! `systemd-run --scope` instead, which talks to systemd's private socket and
//! then execs resctl inside the scope (same pid, so signals and the exit status
//! pass through). Inside, resctl owns the scope's subtree and places the job there.
//!
//! Without root the scope comes from the user's own manager (`systemd --user`, which runs
//! while the user is logged in or has lingering enabled): over the user bus when there is
//! one, else with `systemd-run --user --scope`, which reaches the manager through its
//! private socket in `$XDG_RUNTIME_DIR/systemd/`. The scope's controllers are those the
//! system hands to `user@UID.service` (memory and pids on a stock systemd; cpu where an
//! administrator's `Delegate=` drop-in adds it).

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::unistd::Uid;

use crate::systemd::manager::{start_delegated_scope, Bus, ManagerError, ScopeRequest};

/// Which systemd instance creates resctl's scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manager {
    /// The system manager (PID 1), over the system bus: for root.
    System,
    /// The user's own manager, for everyone else.
    User {
        /// The user's runtime folder (`$XDG_RUNTIME_DIR`), which holds the manager's
        /// private socket and, with dbus-user-session, the user bus.
        runtime_dir: PathBuf,
    },
}

impl Manager {
    /// The manager for this process: the system's for root, else the user's own, or why
    /// the user has none to ask (one line with the fix).
    pub fn for_this_process() -> Result<Manager, String> {
        let euid = nix::unistd::geteuid();
        if euid.is_root() {
            return Ok(Manager::System);
        }
        let runtime_dir = user_runtime_dir(euid, std::env::var_os("XDG_RUNTIME_DIR"))?;
        let private_socket = runtime_dir.join("systemd/private");
        if !private_socket.exists() {
            return Err(format!(
                "no systemd user manager runs for uid {euid} ({} is missing): log in, or run \
                 `loginctl enable-linger` once to keep one running",
                private_socket.display()
            ));
        }
        Ok(Manager::User { runtime_dir })
    }

    /// The bus to ask over, or why there is none (then `systemd-run` is the way in).
    fn bus(&self) -> Result<Bus, ManagerError> {
        match self {
            Manager::System => Ok(Bus::System),
            Manager::User { runtime_dir } => {
                if let Some(address) = std::env::var_os("DBUS_SESSION_BUS_ADDRESS") {
                    return Ok(Bus::Address(address.to_string_lossy().into_owned()));
                }
                let socket = runtime_dir.join("bus");
                if socket.exists() {
                    return Ok(Bus::Address(format!("unix:path={}", socket.display())));
                }
                Err(ManagerError::Unreachable(format!(
                    "no user bus ({} is missing)",
                    socket.display()
                )))
            }
        }
    }
}

/// `$XDG_RUNTIME_DIR` when set, else `/run/user/UID`: a folder `euid` owns (what
/// `systemd-run --user` needs to find the manager), or why there is none.
fn user_runtime_dir(euid: Uid, from_env: Option<OsString>) -> Result<PathBuf, String> {
    let (dir, source) = match from_env.filter(|value| !value.is_empty()) {
        Some(value) => (PathBuf::from(value), "XDG_RUNTIME_DIR"),
        None => (PathBuf::from(format!("/run/user/{euid}")), "the default"),
    };
    match std::fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() && meta.uid() == euid.as_raw() => Ok(dir),
        Ok(_) => Err(format!(
            "{} ({source}) is not a folder of uid {euid}, so no systemd user manager can be \
             reached",
            dir.display()
        )),
        Err(err) => Err(format!(
            "{} ({source}): {err}; no systemd user manager runs for uid {euid}: log in, or run \
             `loginctl enable-linger` once to keep one running",
            dir.display()
        )),
    }
}

/// Set in the environment of the re-executed resctl: the scope's unit name.
pub const ENV_IN_SCOPE: &str = "RESCTL_SCOPE";

/// True when systemd is the init system (the test systemd itself uses).
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// True when this resctl already runs inside the scope it asked for.
pub fn inside_own_scope() -> bool {
    std::env::var_os(ENV_IN_SCOPE).is_some()
}

/// The scope's unit name: unique per run.
pub fn unit_name(pid: u32) -> String {
    format!("resctl-{pid}.scope")
}

/// Moves this process into a new delegated scope `resctl-<pid>.scope` in `slice` of
/// `manager` over D-Bus, returning once systemd has done so.
///
/// # Errors
///
/// [`ManagerError::Unreachable`] when there is no bus to reach the manager (try
/// [`reexec_in_scope`]); any other error means systemd itself said no.
pub fn enter(manager: &Manager, slice: &str) -> Result<(), ManagerError> {
    let pid = std::process::id();
    let unit = unit_name(pid);
    let description = format!("resctl run (pid {pid})");
    start_delegated_scope(
        &manager.bus()?,
        &ScopeRequest {
            unit: &unit,
            slice,
            description: &description,
            pid,
        },
    )
}

/// The `systemd-run` command line that re-executes resctl in a delegated scope of
/// `manager`.
pub fn reexec_command(
    manager: &Manager,
    slice: &str,
    pid: u32,
    resctl_args: &[OsString],
) -> Result<Command, String> {
    let exe = std::env::current_exe()
        .map_err(|err| format!("cannot find resctl's own executable: {err}"))?;
    let unit = unit_name(pid);
    let mut command = Command::new("systemd-run");
    if let Manager::User { runtime_dir } = manager {
        // systemd-run finds the user's manager through $XDG_RUNTIME_DIR.
        command.arg("--user").env("XDG_RUNTIME_DIR", runtime_dir);
    }
    command
        .arg("--scope")
        .arg("--quiet")
        .arg("--collect")
        .arg(format!("--slice={slice}"))
        .arg(format!("--unit={unit}"))
        .arg("--property=Delegate=yes")
        .arg("--")
        .arg(exe)
        .args(resctl_args)
        .env(ENV_IN_SCOPE, &unit);
    Ok(command)
}

/// Re-executes; returns only on failure, with a message.
pub fn reexec_in_scope(manager: &Manager, slice: &str, resctl_args: &[OsString]) -> String {
    match reexec_command(manager, slice, std::process::id(), resctl_args) {
        Ok(mut command) => {
            let err = command.exec();
            format!("could not run systemd-run to create a scope in {slice}: {err}")
        }
        Err(message) => message,
    }
}

/// True when systemd delegated `dir` to its unit (`Delegate=yes`): systemd
/// marks such cgroups with the `trusted.delegate` (or, for user managers,
/// `user.delegate`) extended attribute. Inside one, resctl owns the subtree
/// and needs no scope of its own.
pub fn is_delegated(dir: &Path) -> bool {
    ["trusted.delegate", "user.delegate"]
        .iter()
        .any(|name| xattr_value(dir, name).is_some_and(|v| v.trim_end_matches('\0') == "1"))
}

/// Reads a small extended attribute; None when absent or unreadable.
fn xattr_value(path: &Path, name: &str) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let name = std::ffi::CString::new(name).ok()?;
    let mut buffer = [0u8; 16];
    // SAFETY: both strings are NUL-terminated CStrings that outlive the call;
    // the buffer pointer and length describe a live stack array.
    let length = unsafe {
        nix::libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
        )
    };
    let length = usize::try_from(length).ok()?;
    Some(String::from_utf8_lossy(buffer.get(..length)?).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(command: &Command) -> Vec<String> {
        command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_users_manager_is_asked_with_systemd_run_user_and_its_runtime_folder() {
        let manager = Manager::User {
            runtime_dir: PathBuf::from("/run/user/1000"),
        };
        let command = reexec_command(&manager, "build.slice", 42, &["run".into()]).unwrap();
        let given = args(&command);
        assert_eq!(given[0], "--user", "{given:?}");
        assert!(given.contains(&"--property=Delegate=yes".to_string()));
        assert!(given.contains(&"--unit=resctl-42.scope".to_string()));
        let runtime = command
            .get_envs()
            .find(|(name, _)| *name == "XDG_RUNTIME_DIR")
            .and_then(|(_, value)| value);
        assert_eq!(runtime, Some(std::ffi::OsStr::new("/run/user/1000")));
        // The system's manager: no --user.
        let system = reexec_command(&Manager::System, "build.slice", 42, &[]).unwrap();
        assert!(!args(&system).contains(&"--user".to_string()));
    }

    #[test]
    fn a_runtime_folder_must_exist_and_belong_to_the_user() {
        let euid = nix::unistd::geteuid();
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            user_runtime_dir(euid, Some(dir.path().into())).unwrap(),
            dir.path()
        );
        let missing = dir.path().join("gone");
        let err = user_runtime_dir(euid, Some(missing.clone().into())).unwrap_err();
        assert!(
            err.contains(&missing.display().to_string())
                && err.contains("XDG_RUNTIME_DIR")
                && err.contains("loginctl enable-linger"),
            "{err}"
        );
        // Someone else's folder is not the user's runtime folder.
        let other = Uid::from_raw(euid.as_raw().wrapping_add(1));
        let err = user_runtime_dir(other, Some(dir.path().into())).unwrap_err();
        assert!(err.contains("is not a folder of uid"), "{err}");
        // Unset (or empty): /run/user/UID.
        let err = user_runtime_dir(Uid::from_raw(4_000_000), Some("".into())).unwrap_err();
        assert!(err.contains("/run/user/4000000 (the default)"), "{err}");
    }
}
