//! On a systemd host the job's cgroup lives in a transient scope that systemd
//! creates with `Delegate=yes` in the requested slice. resctl asks for it over
//! D-Bus (`StartTransientUnit` with its own pid, [`enter`]) and goes on in the
//! same process once systemd has moved it there. Where the system bus cannot be
//! reached (systemd without a bus daemon), it re-executes itself under
//! `systemd-run --scope` instead, which talks to systemd's private socket and
//! then execs resctl inside the scope (same pid, so signals and the exit status
//! pass through). Inside, resctl owns the scope's subtree and places the job there.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::systemd::manager::{start_delegated_scope, Bus, ManagerError, ScopeRequest};

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

/// Moves this process into a new delegated scope `resctl-<pid>.scope` in `slice` over
/// D-Bus, returning once systemd has done so.
///
/// # Errors
///
/// [`ManagerError::Unreachable`] when there is no system bus (try [`reexec_in_scope`]);
/// any other error means systemd itself said no.
pub fn enter(slice: &str) -> Result<(), ManagerError> {
    let pid = std::process::id();
    let unit = unit_name(pid);
    let description = format!("resctl run (pid {pid})");
    start_delegated_scope(
        &Bus::System,
        &ScopeRequest {
            unit: &unit,
            slice,
            description: &description,
            pid,
        },
    )
}

/// The `systemd-run` command line that re-executes resctl in a delegated scope.
pub fn reexec_command(slice: &str, pid: u32, resctl_args: &[OsString]) -> Result<Command, String> {
    let exe = std::env::current_exe()
        .map_err(|err| format!("cannot find resctl's own executable: {err}"))?;
    let unit = unit_name(pid);
    let mut command = Command::new("systemd-run");
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
pub fn reexec_in_scope(slice: &str, resctl_args: &[OsString]) -> String {
    match reexec_command(slice, std::process::id(), resctl_args) {
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
