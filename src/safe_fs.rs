//! Files in places someone else can reach: folders a job or another user can write to, and
//! paths a user hands to resctl.
//!
//! resctl runs as root next to jobs that may be hostile, so the rule, owned here, is:
//!
//! - **Writing.** Every file resctl creates in a folder that anyone else can write to is
//!   created with `openat` on a folder descriptor resctl opened itself, with
//!   `O_CREAT | O_EXCL | O_NOFOLLOW` — never by path, never by truncating what is there —
//!   and put in place with `renameat`, which replaces a planted symlink instead of following
//!   it ([`Folder::replace`], [`OutputFile`]). A FIFO resctl makes is opened non-blocking and
//!   checked with `fstat` to be the FIFO it just made ([`Folder::create_fifo`]).
//! - **Reading.** A file a user names (a configuration, a trace) is opened with `O_NONBLOCK`,
//!   must be a regular file by `fstat` (a FIFO or `/dev/zero` is refused, not read for ever),
//!   and is read up to a size bound ([`read_regular`], [`open_regular`]). Input that
//!   comes in lines (a socket client, a trace) is read a line at a time with a bound on
//!   the line ([`read_line_limited`]).
//! - **Sharing.** What a job may read is given to it file by file ([`Folder::chown`] with
//!   `AT_SYMLINK_NOFOLLOW`); the folders resctl makes for a job stay resctl's own.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufRead, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{fchownat, mkfifoat, unlinkat, Gid, Uid, UnlinkatFlags};

/// How many fresh names [`Folder::replace`] and [`Folder::create_unique_dir`] try before they
/// give up: a name is only taken when someone else guessed it, so a second try is already rare.
const NAME_ATTEMPTS: usize = 16;

/// An open folder: files in it are created, replaced and removed relative to this
/// descriptor, so a folder renamed or swapped for a symlink after it was opened is never
/// followed.
#[derive(Debug)]
pub struct Folder {
    fd: OwnedFd,
    path: PathBuf,
}

impl Folder {
    /// Opens the folder `path`. Symlinks in `path` are followed: whoever named the path chose
    /// them. Everything resctl does inside goes through the descriptor.
    ///
    /// # Errors
    ///
    /// `path` is missing, not a folder, or not accessible; the error names the path.
    pub fn open(path: &Path) -> io::Result<Folder> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| named(path, "open folder", errno))?;
        Ok(Folder {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Opens the folder `name` inside this one, refusing a symlink.
    ///
    /// # Errors
    ///
    /// `name` is missing, a symlink, or not a folder.
    pub fn open_child(&self, name: &OsStr) -> io::Result<Folder> {
        let path = self.path.join(name);
        let fd = openat(
            self.fd.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| named(&path, "open folder", errno))?;
        Ok(Folder { fd, path })
    }

    /// Creates the folder `name` inside this one with exactly `mode` (the umask does not
    /// apply) and opens it. An existing entry of that name is an error (`AlreadyExists`).
    ///
    /// # Errors
    ///
    /// The name exists, or the folder cannot be created or opened.
    pub fn create_dir(&self, name: &OsStr, mode: u32) -> io::Result<Folder> {
        let path = self.path.join(name);
        mkdirat(self.fd.as_fd(), name, Mode::from_bits_truncate(0o700))
            .map_err(|errno| named(&path, "create folder", errno))?;
        let child = self.open_child(name)?;
        fchmod(child.fd.as_fd(), Mode::from_bits_truncate(mode))
            .map_err(|errno| named(&path, "chmod", errno))?;
        Ok(child)
    }

    /// Creates a folder `<prefix><random>` with exactly `mode` and opens it: a name nobody
    /// can know beforehand (the private fallback run folder in a shared temp folder).
    ///
    /// # Errors
    ///
    /// Creating failed for another reason than a taken name, or every name tried was taken.
    pub fn create_unique_dir(&self, prefix: &str, mode: u32) -> io::Result<Folder> {
        let mut last = None;
        for _ in 0..NAME_ATTEMPTS {
            let name = OsString::from(format!("{prefix}{}", random_suffix()));
            match self.create_dir(&name, mode) {
                Ok(folder) => return Ok(folder),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => last = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free name")))
    }

    /// Creates the new file `name` (`O_CREAT | O_EXCL | O_NOFOLLOW`: an existing file, FIFO
    /// or symlink of that name is an error, never opened) for writing, with `mode` less the
    /// umask.
    ///
    /// # Errors
    ///
    /// The name exists, or the file cannot be created.
    pub fn create_file(&self, name: &OsStr, mode: u32) -> io::Result<File> {
        let fd = openat(
            self.fd.as_fd(),
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode),
        )
        .map_err(|errno| named(&self.path.join(name), "create", errno))?;
        Ok(File::from(fd))
    }

    /// Replaces the file `name` with `contents` atomically: a new file of a random name is
    /// created beside it ([`Folder::create_file`]), written, given `mode` (exactly, and
    /// `group` when set), and renamed over `name`. A reader sees the old or the new
    /// contents, never a mix; whatever stood at `name` (a symlink included) is replaced, not
    /// followed.
    ///
    /// # Errors
    ///
    /// Creating, writing or renaming failed; the temporary file is removed again.
    pub fn replace(
        &self,
        name: &OsStr,
        contents: &[u8],
        mode: u32,
        group: Option<Gid>,
    ) -> io::Result<()> {
        let (temp, mut file) = self.create_temp_beside(name, 0o600)?;
        let written = (|| {
            file.write_all(contents)?;
            fchmod(file.as_fd(), Mode::from_bits_truncate(mode))?;
            if group.is_some() {
                nix::unistd::fchown(file.as_fd(), None, group)?;
            }
            drop(file);
            renameat(self.fd.as_fd(), temp.as_os_str(), self.fd.as_fd(), name)?;
            Ok::<(), io::Error>(())
        })();
        if let Err(err) = written {
            let _ = unlinkat(
                self.fd.as_fd(),
                temp.as_os_str(),
                UnlinkatFlags::NoRemoveDir,
            );
            return Err(io::Error::new(
                err.kind(),
                format!("{}: {err}", self.path.join(name).display()),
            ));
        }
        Ok(())
    }

    /// Creates a new file `.<name>.<random>` beside `name`, returning its name and the file.
    fn create_temp_beside(&self, name: &OsStr, mode: u32) -> io::Result<(OsString, File)> {
        let mut last = None;
        for _ in 0..NAME_ATTEMPTS {
            let mut temp = OsString::from(".");
            temp.push(name);
            temp.push(format!(".{}", random_suffix()));
            match self.create_file(&temp, mode) {
                Ok(file) => return Ok((temp, file)),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => last = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
    }

    /// Makes the FIFO `name` (mode `mode`) and opens it read-write, non-blocking: opening
    /// never waits for a peer. The open refuses a symlink and `fstat` must show a FIFO, so
    /// nothing but the FIFO just made is ever opened.
    ///
    /// # Errors
    ///
    /// The name exists, or making or opening the FIFO failed.
    pub fn create_fifo(&self, name: &OsStr, mode: u32) -> io::Result<OwnedFd> {
        let path = self.path.join(name);
        mkfifoat(self.fd.as_fd(), name, Mode::from_bits_truncate(mode))
            .map_err(|errno| named(&path, "create fifo", errno))?;
        self.open_fifo(name)
    }

    /// Opens the FIFO `name` read-write and non-blocking, refusing anything but a FIFO.
    ///
    /// # Errors
    ///
    /// `name` is missing, a symlink, or not a FIFO.
    pub fn open_fifo(&self, name: &OsStr) -> io::Result<OwnedFd> {
        let path = self.path.join(name);
        let fd = openat(
            self.fd.as_fd(),
            name,
            OFlag::O_RDWR | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| named(&path, "open fifo", errno))?;
        let stat = fstat(fd.as_fd()).map_err(|errno| named(&path, "fstat", errno))?;
        if file_type(&stat) != SFlag::S_IFIFO {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not a fifo", path.display()),
            ));
        }
        Ok(fd)
    }

    /// Gives the entry `name` to `uid`/`gid` without following a symlink.
    ///
    /// # Errors
    ///
    /// The kernel refused (not root, or no such entry).
    pub fn chown(&self, name: &OsStr, uid: Option<Uid>, gid: Option<Gid>) -> io::Result<()> {
        fchownat(
            self.fd.as_fd(),
            name,
            uid,
            gid,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|errno| named(&self.path.join(name), "chown", errno))
    }

    /// Sets this folder's own owner (`None` keeps one) and mode.
    ///
    /// # Errors
    ///
    /// The kernel refused.
    pub fn set_owner_and_mode(&self, gid: Option<Gid>, mode: u32) -> io::Result<()> {
        if gid.is_some() {
            nix::unistd::fchown(self.fd.as_fd(), None, gid)
                .map_err(|errno| named(&self.path, "chown", errno))?;
        }
        fchmod(self.fd.as_fd(), Mode::from_bits_truncate(mode))
            .map_err(|errno| named(&self.path, "chmod", errno))
    }

    /// Removes the entry `name`: a file or symlink is unlinked (never followed), a folder is
    /// removed with everything in it. A missing entry is not an error.
    ///
    /// # Errors
    ///
    /// Something could not be removed.
    pub fn remove(&self, name: &OsStr) -> io::Result<()> {
        match unlinkat(self.fd.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => return Ok(()),
            Err(Errno::EISDIR) => {}
            Err(errno) => return Err(named(&self.path.join(name), "remove", errno)),
        }
        // std's remove_dir_all opens each level with O_NOFOLLOW and unlinks relative to it;
        // the path is only used for the top level, which lies in this folder of ours.
        match std::fs::remove_dir_all(self.path.join(name)) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    /// The names in this folder (`.` and `..` left out).
    ///
    /// # Errors
    ///
    /// The folder cannot be listed.
    pub fn entries(&self) -> io::Result<Vec<OsString>> {
        let dup = self.fd.try_clone()?;
        let mut dir =
            nix::dir::Dir::from_fd(dup).map_err(|errno| named(&self.path, "list", errno))?;
        let mut names = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(|errno| named(&self.path, "list", errno))?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name != "." && name != ".." {
                names.push(name.to_os_string());
            }
        }
        Ok(names)
    }

    /// This folder's `fstat`.
    ///
    /// # Errors
    ///
    /// The kernel refused.
    pub fn stat(&self) -> io::Result<FileStat> {
        fstat(self.fd.as_fd()).map_err(|errno| named(&self.path, "fstat", errno))
    }

    /// A second handle on the same folder.
    ///
    /// # Errors
    ///
    /// Out of descriptors.
    pub fn try_clone(&self) -> io::Result<Folder> {
        Ok(Folder {
            fd: self.fd.try_clone()?,
            path: self.path.clone(),
        })
    }

    /// The path the folder was opened at (for messages and for what the job is told).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder's descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Whether `stat` belongs to `uid` and no one else may write into it (group and others
/// lack `w`): the test for a folder resctl may create its files in.
pub fn owned_and_private(stat: &FileStat, uid: Uid) -> bool {
    stat.st_uid == uid.as_raw() && stat.st_mode & 0o022 == 0
}

/// A file a user named as an output (`--summary-json`, `--record`): its folder is opened and
/// checked when the run starts, so a mistake is reported before the job runs, and the file
/// is put in place by `renameat` from a new file in that folder — never opened by path, so a
/// symlink or FIFO planted at the name is replaced, not followed.
#[derive(Debug)]
pub struct OutputFile {
    folder: Folder,
    name: OsString,
    path: PathBuf,
}

impl OutputFile {
    /// Opens the folder of `path` and checks that a file can be created there.
    ///
    /// # Errors
    ///
    /// The folder is missing or not writable, `path` names a folder, or has no file name;
    /// every error names `path`.
    pub fn prepare(path: &Path) -> io::Result<OutputFile> {
        let name = path.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a file name", path.display()),
            )
        })?;
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let folder = Folder::open(parent).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("{}: its folder cannot be used: {err}", path.display()),
            )
        })?;
        if let Ok(stat) =
            nix::sys::stat::fstatat(folder.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
        {
            if file_type(&stat) == SFlag::S_IFDIR {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: is a folder", path.display()),
                ));
            }
        }
        // Can a file be made there? Made and removed at once, so nothing is left behind.
        let (probe, file) = folder.create_temp_beside(name, 0o600).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("{}: cannot write in its folder: {err}", path.display()),
            )
        })?;
        drop(file);
        let _ = unlinkat(
            folder.fd.as_fd(),
            probe.as_os_str(),
            UnlinkatFlags::NoRemoveDir,
        );
        Ok(OutputFile {
            folder,
            name: name.to_os_string(),
            path: path.to_path_buf(),
        })
    }

    /// [`OutputFile::prepare`] for the path of an optional command-line option `flag`
    /// (`None` when the option was not given); the error begins with the flag.
    ///
    /// # Errors
    ///
    /// As [`OutputFile::prepare`], in words: `--record: /x/y: its folder cannot be used: …`.
    pub fn prepare_for(flag: &str, path: Option<&Path>) -> Result<Option<OutputFile>, String> {
        path.map(OutputFile::prepare)
            .transpose()
            .map_err(|err| format!("{flag}: {err}"))
    }

    /// Writes the whole file: replaced atomically (mode 0666 less the umask).
    ///
    /// # Errors
    ///
    /// Creating, writing or renaming failed.
    pub fn write(&self, contents: &[u8]) -> io::Result<()> {
        let umask_mode = 0o666 & !current_umask();
        self.folder.replace(&self.name, contents, umask_mode, None)
    }

    /// Creates the file now, empty, and returns it for writing as a stream (a trace).
    ///
    /// # Errors
    ///
    /// Creating or renaming failed.
    pub fn create_stream(&self) -> io::Result<File> {
        let (temp, file) = self.folder.create_temp_beside(&self.name, 0o666)?;
        if let Err(errno) = renameat(
            self.folder.fd.as_fd(),
            temp.as_os_str(),
            self.folder.fd.as_fd(),
            self.name.as_os_str(),
        ) {
            let _ = unlinkat(
                self.folder.fd.as_fd(),
                temp.as_os_str(),
                UnlinkatFlags::NoRemoveDir,
            );
            return Err(named(&self.path, "rename into place", errno));
        }
        Ok(file)
    }

    /// The path as the user gave it.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads the regular file `path` whole, refusing what is not a regular file (a FIFO, a
/// device such as `/dev/zero`, a folder) and a file larger than `limit` bytes.
///
/// # Errors
///
/// Opening or reading failed, the file is not regular, or it is larger than `limit`; the
/// error names `path`.
pub fn read_regular(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", path.display())))?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: larger than {} bytes, more than resctl reads from such a file",
                path.display(),
                limit
            ),
        ));
    }
    Ok(bytes)
}

/// [`read_regular`] as UTF-8 text.
///
/// # Errors
///
/// As [`read_regular`], or the file is not UTF-8.
pub fn read_regular_text(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_regular(path, limit)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not UTF-8 text", path.display()),
        )
    })
}

/// Opens `path` for reading only if it is a regular file: opened with `O_NONBLOCK` (a FIFO
/// does not block the open) and checked with `fstat`; the returned file reads normally.
///
/// # Errors
///
/// Opening failed or `path` is not a regular file; the error names it.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| named(path, "open", errno))?;
    let stat = fstat(fd.as_fd()).map_err(|errno| named(path, "fstat", errno))?;
    let kind = file_type(&stat);
    if kind != SFlag::S_IFREG {
        let what = match kind {
            SFlag::S_IFDIR => "a folder",
            SFlag::S_IFIFO => "a fifo",
            SFlag::S_IFCHR | SFlag::S_IFBLK => "a device",
            SFlag::S_IFSOCK => "a socket",
            _ => "not a regular file",
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: is {what}, not a regular file", path.display()),
        ));
    }
    // Regular files never block; reads are plain from here on.
    nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()))
        .map_err(|errno| named(path, "fcntl", errno))?;
    Ok(File::from(fd))
}

/// What [`read_line_limited`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineRead {
    /// A line (now in the buffer, without its newline).
    Line,
    /// A line longer than the limit; it was read and thrown away.
    TooLong,
    /// The peer closed the connection with no partial line left.
    Eof,
}

/// Reads one `\n`-terminated line into `line` (cleared first), keeping memory bounded:
/// a line longer than `limit` bytes is consumed up to its newline and reported as
/// [`LineRead::TooLong`]. A last line without newline counts as a line.
///
/// # Errors
///
/// Read errors other than `Interrupted` (including a read timeout).
pub fn read_line_limited<R: BufRead>(
    reader: &mut R,
    line: &mut Vec<u8>,
    limit: usize,
) -> io::Result<LineRead> {
    line.clear();
    let mut too_long = false;
    let mut read_any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            return Ok(match (read_any, too_long) {
                (false, _) => LineRead::Eof,
                (true, true) => LineRead::TooLong,
                (true, false) => LineRead::Line,
            });
        }
        read_any = true;
        let newline = available.iter().position(|&byte| byte == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        if !too_long {
            if line.len() + chunk.len() > limit {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let consumed = newline.map_or(available.len(), |index| index + 1);
        reader.consume(consumed);
        if newline.is_some() {
            return Ok(if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
    }
}

/// The file type bits of a `stat`.
pub fn file_type(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits())
}

/// The process's umask (read by setting and restoring it; resctl is single-purpose and
/// does this before it starts threads that create files).
fn current_umask() -> u32 {
    let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
    nix::sys::stat::umask(old);
    old.bits()
}

/// A hard-to-guess suffix for new names: the process's randomly keyed hasher over a
/// counter, the pid and the time.
fn random_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    format!("{:016x}", hasher.finish())
}

/// An errno as an `io::Error` that names the path and what was being done.
fn named(path: &Path, what: &str, errno: Errno) -> io::Error {
    let error = io::Error::from(errno);
    io::Error::new(error.kind(), format!("{}: {what}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8], limit: usize) -> Vec<(LineRead, String)> {
        let mut reader = io::BufReader::with_capacity(7, input);
        let mut line = Vec::new();
        let mut found = Vec::new();
        loop {
            let read = read_line_limited(&mut reader, &mut line, limit).unwrap();
            if read == LineRead::Eof {
                return found;
            }
            found.push((read, String::from_utf8(line.clone()).unwrap()));
        }
    }

    #[test]
    fn long_lines_are_skipped_and_reading_goes_on() {
        let input = format!("short\n{}\nnext\nlast", "x".repeat(40));
        assert_eq!(
            read_all(input.as_bytes(), 20),
            vec![
                (LineRead::Line, "short".into()),
                (LineRead::TooLong, String::new()),
                (LineRead::Line, "next".into()),
                (LineRead::Line, "last".into()),
            ]
        );
        // Exactly at the limit is fine; one more byte is not.
        assert_eq!(
            read_all(b"12345\n", 5),
            vec![(LineRead::Line, "12345".into())]
        );
        assert_eq!(
            read_all(b"123456\n", 5),
            vec![(LineRead::TooLong, String::new())]
        );
        assert_eq!(read_all(b"", 5), vec![]);
    }
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    #[test]
    fn replace_never_follows_a_symlink_at_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "secret\n").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("threads")).unwrap();
        let folder = Folder::open(dir.path()).unwrap();
        folder
            .replace(OsStr::new("threads"), b"3\n", 0o644, None)
            .unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "secret\n");
        let meta = std::fs::symlink_metadata(dir.path().join("threads")).unwrap();
        assert!(meta.file_type().is_file(), "the symlink was replaced");
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("threads")).unwrap(),
            "3\n"
        );
        let names = folder.entries().unwrap();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }

    #[test]
    fn create_file_refuses_symlinks_and_fifos_without_opening_them() {
        let dir = tempfile::tempdir().unwrap();
        let folder = Folder::open(dir.path()).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        nix::unistd::mkfifo(&dir.path().join("fifo"), Mode::S_IRWXU).unwrap();
        for name in ["link", "fifo"] {
            let err = folder.create_file(OsStr::new(name), 0o600).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{name}: {err}");
            assert!(err.to_string().contains(name), "{err}");
        }
        assert!(std::fs::symlink_metadata(dir.path().join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
    }

    #[test]
    fn fifos_are_made_and_opened_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let folder = Folder::open(dir.path()).unwrap();
        let fd = folder.create_fifo(OsStr::new("pool"), 0o600).unwrap();
        assert_eq!(file_type(&fstat(fd.as_fd()).unwrap()), SFlag::S_IFIFO);
        // A second fifo of that name cannot be made; a plain file is not opened as one.
        assert!(folder.create_fifo(OsStr::new("pool"), 0o600).is_err());
        std::fs::write(dir.path().join("plain"), "").unwrap();
        let err = folder.open_fifo(OsStr::new("plain")).unwrap_err();
        assert!(err.to_string().contains("not a fifo"), "{err}");
    }

    #[test]
    fn directories_are_created_with_exact_modes_and_removed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let folder = Folder::open(dir.path()).unwrap();
        let child = folder.create_dir(OsStr::new("run"), 0o710).unwrap();
        assert_eq!(child.stat().unwrap().st_mode & 0o777, 0o710);
        assert!(folder.create_dir(OsStr::new("run"), 0o700).is_err());
        child
            .replace(OsStr::new("threads"), b"1\n", 0o640, None)
            .unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("run/loop")).unwrap();
        folder.remove(OsStr::new("run")).unwrap();
        assert!(!dir.path().join("run").exists());
        assert!(dir.path().exists(), "the symlink's target was not followed");
        folder.remove(OsStr::new("run")).unwrap();
        let unique = folder.create_unique_dir("resctl-", 0o700).unwrap();
        assert!(unique
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("resctl-"));
    }

    #[test]
    fn reads_refuse_devices_fifos_folders_and_oversized_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_regular(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(err.to_string().contains("is a device"), "{err}");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::S_IRWXU).unwrap();
        // Would block for ever with a plain open.
        let err = read_regular(&fifo, 1024).unwrap_err();
        assert!(err.to_string().contains("is a fifo"), "{err}");
        let err = read_regular(dir.path(), 1024).unwrap_err();
        assert!(err.to_string().contains("is a folder"), "{err}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 2000]).unwrap();
        let err = read_regular(&big, 1000).unwrap_err();
        assert!(err.to_string().contains("larger than 1000 bytes"), "{err}");
        assert_eq!(read_regular(&big, 2000).unwrap().len(), 2000);
        assert_eq!(read_regular_text(&big, 2000).unwrap().len(), 2000);
    }

    #[test]
    fn output_files_are_checked_first_and_replace_what_stands_there() {
        let dir = tempfile::tempdir().unwrap();
        let err = OutputFile::prepare(&dir.path().join("missing/summary.json")).unwrap_err();
        assert!(err.to_string().contains("missing/summary.json"), "{err}");
        let err = OutputFile::prepare(dir.path()).unwrap_err();
        assert!(err.to_string().contains("is a folder"), "{err}");

        let target = dir.path().join("summary.json");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep\n").unwrap();
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        let output = OutputFile::prepare(&target).unwrap();
        assert_eq!(
            Folder::open(dir.path()).unwrap().entries().unwrap().len(),
            2
        );
        output.write(b"{}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "{}\n");

        let fifo = dir.path().join("trace");
        nix::unistd::mkfifo(&fifo, Mode::S_IRWXU).unwrap();
        let mut stream = OutputFile::prepare(&fifo).unwrap().create_stream().unwrap();
        stream.write_all(b"line\n").unwrap();
        assert_eq!(std::fs::read_to_string(&fifo).unwrap(), "line\n");
    }

    #[test]
    fn private_means_owned_and_not_writable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let folder = Folder::open(dir.path()).unwrap();
        let me = nix::unistd::geteuid();
        folder.set_owner_and_mode(None, 0o755).unwrap();
        assert!(owned_and_private(&folder.stat().unwrap(), me));
        folder.set_owner_and_mode(None, 0o777).unwrap();
        assert!(!owned_and_private(&folder.stat().unwrap(), me));
        assert!(!owned_and_private(
            &folder.stat().unwrap(),
            Uid::from_raw(me.as_raw() + 1)
        ));
    }
}
