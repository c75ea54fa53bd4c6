//! Process file descriptors (`pidfd_open(2)`, Linux ≥ 5.3): a handle on one process that
//! stays tied to it after it ends, so a signal sent through it can never reach another
//! process that was given the same pid, and that becomes readable when the process exits.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::libc;
use nix::sys::signal::Signal;

/// A pidfd of one process.
#[derive(Debug)]
pub struct PidFd(OwnedFd);

impl PidFd {
    /// Opens a pidfd for `pid`. Call it before the process can be reaped (for a child: before
    /// `wait`), or the pid may already name another process.
    ///
    /// # Errors
    ///
    /// ESRCH when no such process exists; ENOSYS on kernels older than 5.3.
    pub fn open(pid: i32) -> io::Result<PidFd> {
        // SAFETY: pidfd_open(2) takes a pid and a flags word (0) by value and returns a new
        // descriptor or -1; no memory is shared with the kernel.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = i32::try_from(raw).map_err(|_| io::Error::other("pidfd_open: fd out of range"))?;
        // SAFETY: `fd` was just returned by the kernel, is open, and nothing else owns it.
        Ok(PidFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Sends `signal` to the process (`pidfd_send_signal(2)`).
    ///
    /// # Errors
    ///
    /// ESRCH once the process has ended (even if its pid now names another process).
    pub fn send_signal(&self, signal: Signal) -> io::Result<()> {
        // SAFETY: pidfd_send_signal(2) takes the descriptor, the signal number, a null
        // siginfo pointer (the kernel fills it in as for kill(2)) and flags 0; it reads no
        // memory of ours.
        let result = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                signal as libc::c_int,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The descriptor itself (readable once the process has exited).
    pub fn into_fd(self) -> OwnedFd {
        self.0
    }
}

impl AsFd for PidFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_reach_the_process_and_never_a_successor() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pidfd = PidFd::open(child.id() as i32).unwrap();
        pidfd.send_signal(Signal::SIGTERM).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(15)
        );
        // Reaped: the pidfd refuses instead of signalling whoever has the pid now.
        let err = pidfd.send_signal(Signal::SIGTERM).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ESRCH));
    }
}
