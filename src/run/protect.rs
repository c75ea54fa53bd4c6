//! resctl protects itself when the host runs short of memory, so that it can still decide
//! when it is needed most: it lowers its own `oom_score_adj` (the kernel's OOM killer then
//! picks a job's process before the supervisor that could have shrunk the job), and it locks
//! its pages in memory with `mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)` so that its
//! code and the buffers it samples with (allocated once, reused every tick) are never
//! reclaimed or swapped out while the host thrashes. `MCL_ONFAULT` locks only the pages
//! resctl really touches — a few MiB — not whole thread stacks.
//!
//! Neither is inherited by the job: locks are not inherited across `fork` and `exec`, and the
//! job's `oom_score_adj` is set back to resctl's original value between fork and exec
//! ([`Protection::restore_in_child`]).
//!
//! Both need privileges: lowering `oom_score_adj` needs `CAP_SYS_RESOURCE`; locking needs
//! `CAP_IPC_LOCK` or an `RLIMIT_MEMLOCK` large enough. Without them resctl runs unprotected
//! and `resctl doctor` says so.

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

/// The `oom_score_adj` resctl gives itself: far below any job (0 by default), above -1000,
/// which would make it unkillable even if resctl itself were what leaked.
pub const OOM_SCORE_ADJ: i32 = -900;

/// Bit of `CAP_SYS_RESOURCE` in `/proc/self/status`'s `CapEff`.
const CAP_SYS_RESOURCE: u32 = 24;
/// Bit of `CAP_IPC_LOCK` in `/proc/self/status`'s `CapEff`.
const CAP_IPC_LOCK: u32 = 14;

/// What resctl could do to protect itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Protection {
    /// resctl's `oom_score_adj` before it changed it (the job gets this one).
    pub original_oom_score_adj: i32,
    /// The value now in force, or why it could not be lowered.
    pub oom_score_adj: Result<i32, String>,
    /// Whether resctl's memory is locked, or why not.
    pub memory_locked: Result<(), String>,
}

impl Protection {
    /// Lowers resctl's `oom_score_adj` and locks its memory, where permitted. Memory is
    /// locked only with `CAP_IPC_LOCK` or an unlimited `RLIMIT_MEMLOCK`: under a limit, the
    /// locked address space counts whole mappings against it and later thread stacks would
    /// fail to map.
    pub fn apply(proc_root: &Path) -> Protection {
        let check = ProtectionCheck::gather(proc_root);
        let path = proc_root.join("self/oom_score_adj");
        let original = read_oom_score_adj(&path).unwrap_or(0);
        let oom_score_adj = if original <= OOM_SCORE_ADJ {
            Ok(original)
        } else {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|mut file| file.write_all(OOM_SCORE_ADJ.to_string().as_bytes()))
                .map(|()| OOM_SCORE_ADJ)
                .map_err(|err| explain_oom_error(&err))
        };
        let flags = nix::sys::mman::MlockAllFlags::from_bits_retain(
            nix::libc::MCL_CURRENT | nix::libc::MCL_FUTURE | nix::libc::MCL_ONFAULT,
        );
        let memory_locked = if check.can_lock_memory {
            nix::sys::mman::mlockall(flags).map_err(|errno| format!("mlockall: {errno}"))
        } else {
            Err("needs CAP_IPC_LOCK or an unlimited RLIMIT_MEMLOCK".to_owned())
        };
        Protection {
            original_oom_score_adj: original,
            oom_score_adj,
            memory_locked,
        }
    }

    /// One line for the log: what is protected and what is not.
    pub fn describe(&self) -> String {
        let adj = match &self.oom_score_adj {
            Ok(value) => format!("oom_score_adj {value}"),
            Err(why) => format!(
                "oom_score_adj left at {} ({why})",
                self.original_oom_score_adj
            ),
        };
        let locked = match &self.memory_locked {
            Ok(()) => "memory locked".to_owned(),
            Err(why) => format!("memory not locked ({why})"),
        };
        format!("self-protection: {adj}; {locked}")
    }

    /// A closure for `CommandExt::pre_exec` that gives the job resctl's original
    /// `oom_score_adj` back (raising it needs no privilege); `None` when resctl did not
    /// change its own. Between fork and exec it only calls open(2), write(2) and close(2)
    /// on data prepared here.
    pub fn restore_in_child(&self) -> Option<impl Fn() -> io::Result<()> + Send + Sync + 'static> {
        let lowered =
            matches!(self.oom_score_adj, Ok(value) if value != self.original_oom_score_adj);
        if !lowered {
            return None;
        }
        let value = self.original_oom_score_adj.to_string().into_bytes();
        Some(move || {
            // SAFETY: a static NUL-terminated path and a buffer prepared before the fork; open,
            // write and close are async-signal-safe and allocate nothing.
            unsafe {
                let fd = nix::libc::open(
                    c"/proc/self/oom_score_adj".as_ptr(),
                    nix::libc::O_WRONLY | nix::libc::O_CLOEXEC,
                );
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                let written = nix::libc::write(fd, value.as_ptr().cast(), value.len());
                nix::libc::close(fd);
                if written < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        })
    }
}

/// What `resctl doctor` says resctl could do here, without changing anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProtectionCheck {
    /// `oom_score_adj` can be lowered (CAP_SYS_RESOURCE).
    pub can_lower_oom_score_adj: bool,
    /// Memory can be locked (CAP_IPC_LOCK, or an unlimited RLIMIT_MEMLOCK).
    pub can_lock_memory: bool,
}

impl ProtectionCheck {
    /// Reads resctl's capabilities and memlock limit.
    pub fn gather(proc_root: &Path) -> ProtectionCheck {
        let effective = std::fs::read_to_string(proc_root.join("self/status"))
            .ok()
            .and_then(|status| effective_capabilities(&status))
            .unwrap_or(0);
        let has = |bit: u32| effective & (1u64 << bit) != 0;
        let unlimited_memlock =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK)
                .is_ok_and(|(soft, _)| soft == nix::sys::resource::RLIM_INFINITY);
        ProtectionCheck {
            can_lower_oom_score_adj: has(CAP_SYS_RESOURCE),
            can_lock_memory: has(CAP_IPC_LOCK) || unlimited_memlock,
        }
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        let yes_no =
            |ok: bool, yes: &str, no: &str| if ok { yes.to_owned() } else { no.to_owned() };
        format!(
            "{}; {}",
            yes_no(
                self.can_lower_oom_score_adj,
                &format!("oom_score_adj lowered to {OOM_SCORE_ADJ}"),
                "oom_score_adj not lowered (needs CAP_SYS_RESOURCE)"
            ),
            yes_no(
                self.can_lock_memory,
                "memory locked (mlockall)",
                "memory not locked (needs CAP_IPC_LOCK or an unlimited RLIMIT_MEMLOCK)"
            )
        )
    }
}

/// `CapEff` of a `/proc/PID/status` text.
fn effective_capabilities(status: &str) -> Option<u64> {
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

fn read_oom_score_adj(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn explain_oom_error(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::PermissionDenied => "needs CAP_SYS_RESOURCE".to_owned(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_read_from_status() {
        let status = "Name:\tresctl\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n";
        let caps = effective_capabilities(status).unwrap();
        assert_eq!(caps & (1 << CAP_SYS_RESOURCE), 0, "bit 24 cleared");
        assert_ne!(caps & (1 << CAP_IPC_LOCK), 0);
        assert_eq!(effective_capabilities("Name:\tx\n"), None);
    }

    #[test]
    fn the_job_gets_the_original_oom_score_adj_back() {
        // As a fresh child process: lower (where permitted), then spawn a child that reads its
        // own value through the restore hook.
        let protection = Protection {
            original_oom_score_adj: 0,
            oom_score_adj: Ok(OOM_SCORE_ADJ),
            memory_locked: Err("test".into()),
        };
        assert!(protection.restore_in_child().is_some());
        let unchanged = Protection {
            oom_score_adj: Err("needs CAP_SYS_RESOURCE".into()),
            ..protection.clone()
        };
        assert!(unchanged.restore_in_child().is_none());
        assert!(
            unchanged.describe().contains("oom_score_adj left at 0"),
            "{}",
            unchanged.describe()
        );
    }
}
