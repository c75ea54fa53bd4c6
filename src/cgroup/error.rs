//! The error type of the cgroupfs layer, and the translation of errno values into words a
//! person understands.

use std::fmt;
use std::io;
use std::path::PathBuf;

use nix::errno::Errno;

use crate::kernel_text::ParseError;

/// Anything that went wrong while detecting, reading or changing cgroups.
///
/// Every variant names the path it concerns; parse errors also carry the offending line.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A cgroup file or directory (or `/proc/self/{mountinfo,cgroup}`) could not be opened or read.
    #[error("reading {path}: {problem}")]
    Read {
        /// The file or directory that was read.
        path: PathBuf,
        /// What went wrong, in words.
        problem: FsProblem,
        /// The underlying error from the kernel.
        #[source]
        source: io::Error,
    },
    /// A file's text was not in the format the kernel documents (names the file and the line).
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// [`CgroupDir::open`](super::CgroupDir::open) was pointed at something that is not the
    /// expected cgroup filesystem.
    #[error("{path} is not on a {expected} filesystem (statfs magic {found:#x})")]
    NotCgroupfs {
        /// The directory that was checked.
        path: PathBuf,
        /// The filesystem that was expected: `cgroup2` or `cgroup (v1)`.
        expected: &'static str,
        /// The filesystem magic number that `fstatfs` reported.
        found: u64,
    },
    /// Writing a value into a cgroup file failed.
    #[error("writing {value:?} to {path}: {problem}")]
    Write {
        /// The cgroup file written to.
        path: PathBuf,
        /// The value that was written.
        value: String,
        /// What went wrong, in words.
        problem: FsProblem,
        /// The underlying error from the kernel.
        #[source]
        source: io::Error,
    },
    /// Creating a cgroup directory failed (including: it already exists).
    #[error("creating cgroup {path}: {problem}")]
    Create {
        /// The cgroup directory that was to be created.
        path: PathBuf,
        /// What went wrong, in words.
        problem: FsProblem,
        /// The underlying error from the kernel.
        #[source]
        source: io::Error,
    },
    /// Removing a cgroup directory failed (after retrying while it was busy).
    #[error("removing cgroup {path}: {problem}")]
    Remove {
        /// The cgroup directory that could not be removed.
        path: PathBuf,
        /// What went wrong, in words.
        problem: FsProblem,
        /// The underlying error from the kernel.
        #[source]
        source: io::Error,
    },
    /// `memory.reclaim` answered EAGAIN: the kernel could not reclaim the requested amount
    /// (nothing reclaimable is left). Not a failure of resctl; the caller decides what next.
    #[error("{path}: the kernel found too little reclaimable memory for {bytes} bytes (EAGAIN)")]
    NothingReclaimable {
        /// The `memory.reclaim` file written to.
        path: PathBuf,
        /// The number of bytes that was asked for.
        bytes: u64,
    },
    /// The operation does not exist for this kind of cgroup (e.g. `memory.reclaim` on v1).
    #[error("{operation} is not supported by cgroup v1 ({path})")]
    Unsupported {
        /// What was attempted.
        operation: &'static str,
        /// The cgroup directory it was attempted on.
        path: PathBuf,
    },
    /// A child cgroup name that would escape the parent or is not a single path component.
    #[error("invalid cgroup name {name:?}: {reason}")]
    InvalidName {
        /// The name that was refused.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
}

/// What an errno means for a cgroupfs operation, in words a person understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsProblem {
    /// EACCES or EPERM.
    NoPermission,
    /// ENOENT or ENODEV: the cgroup was removed underneath us, or the file does not exist
    /// (its controller is not enabled).
    Removed,
    /// EBUSY.
    Busy,
    /// EINVAL or ERANGE: the kernel refused the value.
    Refused,
    /// EEXIST.
    AlreadyExists,
    /// ESRCH: the process does not exist (any more).
    NoSuchProcess,
    /// ENOTEMPTY: the directory still holds something other than cgroups.
    NotEmpty,
    /// EOPNOTSUPP: the kernel does not support this file (e.g. PSI disabled).
    NotSupported,
    /// Anything else: the system's own description of the error.
    Other(String),
}

impl FsProblem {
    /// Classifies an I/O error by its errno.
    pub fn from_io(error: &io::Error) -> Self {
        use nix::errno::Errno;
        let Some(code) = error.raw_os_error() else {
            return Self::Other(error.to_string());
        };
        match Errno::from_raw(code) {
            Errno::EACCES | Errno::EPERM => Self::NoPermission,
            Errno::ENOENT | Errno::ENODEV => Self::Removed,
            Errno::EBUSY => Self::Busy,
            Errno::EINVAL | Errno::ERANGE => Self::Refused,
            Errno::EEXIST => Self::AlreadyExists,
            Errno::ESRCH => Self::NoSuchProcess,
            Errno::ENOTEMPTY => Self::NotEmpty,
            Errno::EOPNOTSUPP => Self::NotSupported,
            _ => Self::Other(error.to_string()),
        }
    }
}

impl fmt::Display for FsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoPermission => f.write_str(
                "no permission (EACCES/EPERM): run as root, or inside a cgroup subtree \
                 delegated to this user",
            ),
            Self::Removed => f.write_str(
                "no such cgroup or file (ENOENT): the cgroup was removed underneath us, \
                 or its controller is not enabled",
            ),
            Self::Busy => f.write_str(
                "busy (EBUSY): the cgroup still has processes or children, or (v1) the \
                 usage could not be reclaimed below the new limit",
            ),
            Self::Refused => f.write_str("value refused by the kernel (EINVAL)"),
            Self::AlreadyExists => f.write_str("already exists (EEXIST)"),
            Self::NoSuchProcess => f.write_str("no such process (ESRCH)"),
            Self::NotEmpty => {
                f.write_str("directory not empty (ENOTEMPTY): it holds non-cgroup files")
            }
            Self::NotSupported => f.write_str("not supported by this kernel (EOPNOTSUPP)"),
            Self::Other(text) => f.write_str(text),
        }
    }
}

impl CgroupError {
    /// A read error for `path`.
    pub(crate) fn read(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Read {
            path: path.into(),
            problem: FsProblem::from_io(&source),
            source,
        }
    }

    /// A write error for `value` written to `path`.
    pub(crate) fn write(
        path: impl Into<PathBuf>,
        value: impl Into<String>,
        source: io::Error,
    ) -> Self {
        Self::Write {
            path: path.into(),
            value: value.into(),
            problem: FsProblem::from_io(&source),
            source,
        }
    }

    /// Whether a read failed because the cgroup is gone (removed underneath: ENODEV on a
    /// file kept open, ENOENT on a new open).
    pub fn is_gone(&self) -> bool {
        matches!(self, Self::Read { source, .. }
            if matches!(source.raw_os_error(), Some(code) if code == Errno::ENODEV as i32 || code == Errno::ENOENT as i32))
    }

    /// The classified problem, when the error came from the kernel.
    pub fn problem(&self) -> Option<&FsProblem> {
        match self {
            Self::Read { problem, .. }
            | Self::Write { problem, .. }
            | Self::Create { problem, .. }
            | Self::Remove { problem, .. } => Some(problem),
            _ => None,
        }
    }
}
