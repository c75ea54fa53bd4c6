//! The per-run folder holding what resctl shares with the job: the thread file, the control
//! socket and the jobserver fifo.
//!
//! The folder stays resctl's own (mode 0700, or 0710 with the job's group when the job runs
//! as another user): the job's user may reach the files it needs, which resctl gives it one
//! by one, but cannot create, rename or remove anything in it. Every file is made through
//! the folder's descriptor ([`crate::safe_fs`]).
//!
//! Where it lives: `$XDG_RUNTIME_DIR/resctl/<pid>` when that folder exists, belongs to
//! resctl's user and nobody else can write into it (it is never created); else
//! `/run/resctl/<pid>` for root; else a private folder of an unguessable name in the
//! temporary folder (`/tmp/resctl-<pid>.<random>`, mode 0700), never a shared one. Each run
//! holds an exclusive `flock` on its folder; a folder that nobody holds and whose pid is gone
//! was left by a resctl that was SIGKILLed, and the next run removes it.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use nix::unistd::{Gid, Uid};

use crate::safe_fs::{owned_and_private, Folder};

/// Name of the folder under a runtime base (`/run/resctl`).
const BASE_NAME: &str = "resctl";
/// Prefix of the private fallback folders in the temporary folder.
const TEMP_PREFIX: &str = "resctl-";

/// Who the job runs as, when that is not resctl's own user: the folder's group becomes the
/// job's, and what the job must open is given to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobOwner {
    /// The job's user.
    pub uid: Uid,
    /// The job's primary group.
    pub gid: Gid,
}

/// A folder created for one run and removed (with its contents) when dropped.
#[derive(Debug)]
pub struct RuntimeDir {
    /// The folder it lives in, which removes it at the end.
    parent: Folder,
    name: OsString,
    folder: Folder,
    owner: Option<JobOwner>,
    /// Held for the whole run: tells later runs that this folder is alive.
    _lock: Flock<std::os::fd::OwnedFd>,
}

impl RuntimeDir {
    /// Creates this run's folder in the default place (see the module documentation),
    /// named after `id` (resctl's pid), for a job running as `owner` (`None`: as resctl).
    ///
    /// # Errors
    ///
    /// No usable place, or creating the folder failed; the error names the path.
    pub fn create(id: u32, owner: Option<JobOwner>) -> io::Result<Self> {
        let euid = nix::unistd::geteuid();
        let xdg = std::env::var_os("XDG_RUNTIME_DIR");
        match runtime_base(euid, xdg.as_deref()) {
            Some(base) => Self::create_in(&base, id, owner),
            None => Self::create_private(&std::env::temp_dir(), id, owner),
        }
    }

    /// Creates `<base>/resctl/<id>`, creating `<base>/resctl` (0755) if needed; `base`
    /// must exist. Leftovers of dead runs in `<base>/resctl` are removed first.
    ///
    /// # Errors
    ///
    /// `<base>/resctl` is not resctl's user's own or others may write into it, or creating
    /// failed.
    pub fn create_in(base: &Path, id: u32, owner: Option<JobOwner>) -> io::Result<Self> {
        let euid = nix::unistd::geteuid();
        let base = Folder::open(base)?;
        let parent = match base.create_dir(OsStr::new(BASE_NAME), 0o755) {
            Ok(parent) => parent,
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                base.open_child(OsStr::new(BASE_NAME))?
            }
            Err(err) => return Err(err),
        };
        if !owned_and_private(&parent.stat()?, euid) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{}: not owned by uid {euid} or writable by others; resctl does not put \
                     its files there",
                    parent.path().display()
                ),
            ));
        }
        remove_stale(&parent, |name| name.parse::<i32>().ok());
        let name = OsString::from(id.to_string());
        // A folder of our pid that survived a SIGKILL is stale: nobody holds it.
        if let Ok(old) = parent.open_child(&name) {
            if Flock::lock(lockable_fd(&old)?, FlockArg::LockExclusiveNonblock).is_ok() {
                parent.remove(&name)?;
            }
        }
        let folder = parent.create_dir(&name, 0o700)?;
        Self::finish(parent, name, folder, owner)
    }

    /// Creates a private folder `<temp>/resctl-<id>.<random>` (0700), removing leftovers of
    /// dead runs of the same user there first.
    fn create_private(temp: &Path, id: u32, owner: Option<JobOwner>) -> io::Result<Self> {
        let parent = Folder::open(temp)?;
        let euid = nix::unistd::geteuid();
        remove_stale(&parent, |name| {
            let rest = name.strip_prefix(TEMP_PREFIX)?;
            let (pid, _) = rest.split_once('.')?;
            let owned = parent
                .open_child(OsStr::new(name))
                .and_then(|folder| folder.stat())
                .is_ok_and(|stat| stat.st_uid == euid.as_raw());
            owned.then(|| pid.parse::<i32>().ok()).flatten()
        });
        let folder = parent.create_unique_dir(&format!("{TEMP_PREFIX}{id}."), 0o700)?;
        let name = folder
            .path()
            .file_name()
            .map(OsStr::to_os_string)
            .unwrap_or_default();
        Self::finish(parent, name, folder, owner)
    }

    fn finish(
        parent: Folder,
        name: OsString,
        folder: Folder,
        owner: Option<JobOwner>,
    ) -> io::Result<Self> {
        let lock = Flock::lock(lockable_fd(&folder)?, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, errno)| io::Error::from(errno))?;
        let euid = nix::unistd::geteuid();
        let owner = owner.filter(|owner| owner.uid != euid);
        let dir = RuntimeDir {
            parent,
            name,
            folder,
            owner,
            _lock: lock,
        };
        if let Some(owner) = owner {
            // The job's group may pass through to the files given to it, nothing more.
            dir.folder.set_owner_and_mode(Some(owner.gid), 0o710)?;
        }
        Ok(dir)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.folder.path()
    }

    /// The path of `name` in the folder.
    pub fn file_path(&self, name: &str) -> PathBuf {
        self.folder.path().join(name)
    }

    /// The open folder, for creating files in it.
    pub fn folder(&self) -> &Folder {
        &self.folder
    }

    /// The job's user when it is not resctl's.
    pub fn owner(&self) -> Option<JobOwner> {
        self.owner
    }

    /// Gives the entry `name` (a socket or fifo resctl made) to the job's user, if the job
    /// runs as another user; a no-op otherwise.
    ///
    /// # Errors
    ///
    /// The kernel refused the chown.
    pub fn give_to_job(&self, name: &str) -> io::Result<()> {
        match self.owner {
            Some(owner) => self
                .folder
                .chown(OsStr::new(name), Some(owner.uid), Some(owner.gid)),
            None => Ok(()),
        }
    }

    /// A file the job reads, replaced atomically on every [`SharedFile::write`]: mode 0640
    /// with the job's group when it runs as another user, else 0600.
    ///
    /// # Errors
    ///
    /// Out of descriptors.
    pub fn shared_file(&self, name: &str) -> io::Result<SharedFile> {
        Ok(SharedFile {
            folder: self.folder.try_clone()?,
            name: OsString::from(name),
            group: self.owner.map(|owner| owner.gid),
        })
    }
}

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = self.parent.remove(&self.name);
    }
}

/// A file in the run folder that the job reads and resctl replaces (the thread file).
#[derive(Debug)]
pub struct SharedFile {
    folder: Folder,
    name: OsString,
    group: Option<Gid>,
}

impl SharedFile {
    /// A shared file in `folder` (tests and callers that own the folder themselves).
    pub fn new(folder: Folder, name: &str, group: Option<Gid>) -> SharedFile {
        SharedFile {
            folder,
            name: OsString::from(name),
            group,
        }
    }

    /// Replaces the contents atomically ([`Folder::replace`]).
    ///
    /// # Errors
    ///
    /// Writing or renaming failed (the folder full or read-only, say).
    pub fn write(&self, contents: &[u8]) -> io::Result<()> {
        let mode = if self.group.is_some() { 0o640 } else { 0o600 };
        self.folder.replace(&self.name, contents, mode, self.group)
    }

    /// The file's path, for the job's environment.
    pub fn path(&self) -> PathBuf {
        self.folder.path().join(&self.name)
    }
}

/// `$XDG_RUNTIME_DIR` when it is a folder of `euid`'s that nobody else can write into, else
/// `/run` for root when it is root's and private the same way; `None` otherwise (the
/// private temporary folder is used). Never creates anything.
fn runtime_base(euid: Uid, xdg_runtime_dir: Option<&OsStr>) -> Option<PathBuf> {
    let usable = |path: &Path| {
        Folder::open(path)
            .and_then(|folder| folder.stat())
            .is_ok_and(|stat| owned_and_private(&stat, euid))
    };
    if let Some(dir) = xdg_runtime_dir.filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if dir.is_absolute() && usable(&dir) {
            return Some(dir);
        }
        tracing::debug!(
            "XDG_RUNTIME_DIR={} is not a folder of uid {euid} that only it can write; not used",
            dir.display()
        );
    }
    let run = Path::new("/run");
    (euid.is_root() && usable(run)).then(|| run.to_path_buf())
}

/// Removes the folders in `parent` that a dead run left: those `pid_of` names, whose pid is
/// gone and which no run holds locked.
fn remove_stale(parent: &Folder, pid_of: impl Fn(&str) -> Option<i32>) {
    let Ok(names) = parent.entries() else {
        return;
    };
    for name in names {
        let Some(pid) = name.to_str().and_then(&pid_of) else {
            continue;
        };
        if pid <= 0 || process_exists(pid) {
            continue;
        }
        let Ok(folder) = parent.open_child(&name) else {
            continue;
        };
        let Ok(fd) = lockable_fd(&folder) else {
            continue;
        };
        if Flock::lock(fd, FlockArg::LockExclusiveNonblock).is_ok() {
            match parent.remove(&name) {
                Ok(()) => tracing::debug!(
                    "removed the run folder of a resctl that ended without cleaning up: {}",
                    parent.path().join(&name).display()
                ),
                Err(err) => tracing::warn!("could not remove a stale run folder: {err}"),
            }
        }
    }
}

/// A descriptor of `folder` to lock.
fn lockable_fd(folder: &Folder) -> io::Result<std::os::fd::OwnedFd> {
    folder.fd().as_fd().try_clone_to_owned()
}

/// Whether a process with this pid exists (EPERM: it exists, but is not ours).
fn process_exists(pid: i32) -> bool {
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_private_and_removed_on_drop() {
        let base = tempfile::tempdir().unwrap();
        let dir = RuntimeDir::create_in(base.path(), 42, None).unwrap();
        let path = dir.path().to_path_buf();
        assert!(path.ends_with("resctl/42"));
        assert_eq!(mode(&path), 0o700);
        let file = dir.shared_file("threads").unwrap();
        file.write(b"3\n").unwrap();
        assert_eq!(mode(&file.path()), 0o600);
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn a_job_of_another_user_gets_its_group_on_the_folder_and_files_only() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to give files away");
            return;
        }
        let base = tempfile::tempdir().unwrap();
        let owner = JobOwner {
            uid: Uid::from_raw(65534),
            gid: Gid::from_raw(65534),
        };
        let dir = RuntimeDir::create_in(base.path(), 43, Some(owner)).unwrap();
        let meta = std::fs::metadata(dir.path()).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), mode(dir.path())),
            (0, 65534, 0o710)
        );
        let file = dir.shared_file("threads").unwrap();
        file.write(b"2\n").unwrap();
        let meta = std::fs::metadata(file.path()).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), mode(&file.path())),
            (0, 65534, 0o640)
        );
    }

    #[test]
    fn folders_of_dead_runs_are_removed_and_live_ones_kept() {
        let base = tempfile::tempdir().unwrap();
        let live = RuntimeDir::create_in(base.path(), 44, None).unwrap();
        // A pid that cannot exist (above pid_max's ceiling) stands for a dead run.
        let dead = base.path().join("resctl/2147483000");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("threads"), "1\n").unwrap();
        // Our own pid, unlocked: a leftover of a SIGKILLed run whose pid we now have.
        let own = std::process::id();
        std::fs::create_dir(base.path().join(format!("resctl/{own}"))).unwrap();
        let next = RuntimeDir::create_in(base.path(), own, None).unwrap();
        assert!(!dead.exists(), "the dead run's folder is gone");
        assert!(live.path().exists(), "a live run's folder is kept");
        assert!(next.path().exists());
    }

    #[test]
    fn a_shared_or_foreign_base_is_refused() {
        let base = tempfile::tempdir().unwrap();
        std::fs::create_dir(base.path().join("resctl")).unwrap();
        std::fs::set_permissions(
            base.path().join("resctl"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        let err = RuntimeDir::create_in(base.path(), 45, None).unwrap_err();
        assert!(err.to_string().contains("writable by others"), "{err}");
    }

    #[test]
    fn the_private_fallback_is_unguessable_and_swept_when_dead() {
        let temp = tempfile::tempdir().unwrap();
        let stale = temp.path().join("resctl-2147483000.deadbeef");
        std::fs::create_dir(&stale).unwrap();
        let other = temp.path().join("resctl-notapid");
        std::fs::create_dir(&other).unwrap();
        let dir = RuntimeDir::create_private(temp.path(), 46, None).unwrap();
        let name = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with("resctl-46."), "{name}");
        assert!(name.len() > "resctl-46.".len() + 8, "{name}");
        assert_eq!(mode(dir.path()), 0o700);
        assert!(!stale.exists());
        assert!(other.exists());
    }

    #[test]
    fn xdg_runtime_dir_is_used_only_when_private_and_never_created() {
        let base = tempfile::tempdir().unwrap();
        let missing = base.path().join("nonexistent/x");
        let euid = nix::unistd::geteuid();
        let check = |value: &Path| runtime_base(euid, Some(value.as_os_str()));
        let chosen = check(&missing);
        assert!(!missing.exists(), "XDG_RUNTIME_DIR was created");
        assert_ne!(chosen.as_deref(), Some(missing.as_path()));
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(check(base.path()).as_deref(), Some(base.path()));
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_ne!(check(base.path()).as_deref(), Some(base.path()));
    }
}
