//! A memory-aware GNU make jobserver: resctl owns the token pool of the job's build tools
//! (a FIFO, with a private return pipe for pipe-form clients) and shrinks their parallelism
//! by holding tokens back under pressure, growing it again by writing them back.
//! Invariant: tokens in the pool + in the return pipe + held by clients + withheld by
//! resctl == `jobs - 1`. The protocol, which client reads which form, and why the pool is
//! built this way: `docs/jobserver.md`.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::unistd::pipe2;

use crate::safe_fs::Folder;

/// File name of the token fifo inside the folder given to [`Jobserver::create`].
pub const FIFO_NAME: &str = "jobserver.fifo";

/// Largest pool accepted. A pipe's buffer may be as small as one page (4 KiB)
/// when the user exceeds `pipe-user-pages-soft`; every token must fit in it,
/// or returning a token could fail.
pub const MAX_JOBS: u32 = 4096;

/// Environment variable GNU make (and ninja, and cargo as a fallback) reads.
pub const ENV_MAKEFLAGS: &str = "MAKEFLAGS";

/// Environment variable cargo reads first (and passes on to rustc and build scripts).
pub const ENV_CARGO_MAKEFLAGS: &str = "CARGO_MAKEFLAGS";

/// The byte GNU make writes as a token; resctl writes it for new tokens and
/// gives back the very bytes it took otherwise.
const TOKEN: u8 = b'+';

/// How often the keeper retries when writing tokens back into the pool failed
/// (only when the pool's pipe buffer is full, which [`MAX_JOBS`] prevents).
const RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// How the job's tools find the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthForm {
    /// `--jobserver-auth=R,W`: inherited file descriptors. GNU make ≥ 4.2,
    /// cargo/rustc; not ninja. Shrinking is exact (returns pass through resctl).
    Pipe,
    /// `--jobserver-auth=fifo:PATH`: GNU make ≥ 4.4, cargo/rustc, ninja ≥ 1.13;
    /// make 4.3 stops with "invalid --jobserver-auth string". Returns go straight
    /// to the pool, so shrinking competes with the clients (best effort).
    Fifo,
}

/// A token pool for one job, with a target parallelism resctl can lower and raise.
#[derive(Debug)]
pub struct Jobserver {
    jobs: u32,
    fifo_path: PathBuf,
    /// The folder holding the fifo (the fifo is removed through it at the end).
    folder: Folder,
    /// The fifo opened `O_RDWR`, close-on-exec: `R` for pipe-form clients.
    client_read: OwnedFd,
    /// Write end of the return pipe, close-on-exec: `W` for pipe-form clients.
    client_write: OwnedFd,
    shared: Arc<Shared>,
    keeper: Option<JoinHandle<()>>,
}

/// What the keeper thread and the API share.
#[derive(Debug)]
struct Shared {
    jobs: u32,
    /// resctl's own open file description of the fifo, non-blocking.
    pool: OwnedFd,
    /// Read end of the return pipe, non-blocking.
    returns: OwnedFd,
    /// Wakes the keeper after a limit change or to stop it.
    wake: EventFd,
    /// All token moves happen with this lock held, so counts never double.
    state: Mutex<TokenState>,
}

/// Target and withheld tokens.
#[derive(Debug)]
struct TokenState {
    limit: u32,
    /// Token bytes resctl holds back from the clients.
    held: Vec<u8>,
    stopping: bool,
}

impl Jobserver {
    /// A pool for `jobs` parallel jobs: `jobs - 1` tokens in the fifo (the
    /// client's implicit token is the first job), fifo at `dir/jobserver.fifo`.
    /// The target starts at `jobs`. Fails on `jobs` outside `1..=MAX_JOBS`, or
    /// when the fifo can't be created (e.g. it exists already).
    pub fn create(jobs: u32, dir: &Folder) -> io::Result<Jobserver> {
        if !(1..=MAX_JOBS).contains(&jobs) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("jobserver: {jobs} jobs requested, must be between 1 and {MAX_JOBS}"),
            ));
        }
        let folder = dir.try_clone()?;
        // Made and opened through the folder's descriptor, never by path: see crate::safe_fs.
        let pool = folder
            .create_fifo(OsStr::new(FIFO_NAME), 0o600)
            .map_err(|err| io::Error::new(err.kind(), format!("jobserver: {err}")))?;
        match Self::open_pool(jobs, folder, pool) {
            Ok(jobserver) => Ok(jobserver),
            Err(err) => {
                let _ = dir.remove(OsStr::new(FIFO_NAME));
                Err(err)
            }
        }
    }

    fn open_pool(jobs: u32, folder: Folder, pool: OwnedFd) -> io::Result<Jobserver> {
        let fifo_path = folder.path().join(FIFO_NAME);
        // The clients' descriptor is a second open of the same fifo (its own file
        // description, blocking like make expects); O_RDWR: opening never waits for a
        // peer, and readers never see end-of-file while the pool exists.
        let client_read = folder
            .open_fifo(OsStr::new(FIFO_NAME))
            .map_err(|err| io::Error::new(err.kind(), format!("jobserver: {err}")))?;
        clear_nonblocking(&client_read)?;
        let client_read = above_stdio(client_read)?;
        let (returns, client_write) = pipe2(OFlag::O_CLOEXEC).map_err(|errno| {
            io::Error::other(format!("jobserver: creating return pipe: {errno}"))
        })?;
        set_nonblocking(&returns)?;
        let client_write = above_stdio(client_write)?;
        let wake = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|errno| io::Error::other(format!("jobserver: creating eventfd: {errno}")))?;

        let initial = vec![TOKEN; (jobs - 1) as usize];
        let written = write_tokens(pool.as_fd(), &initial)?;
        if written != initial.len() {
            return Err(io::Error::other(format!(
                "jobserver: the fifo {} took only {written} of {} tokens",
                fifo_path.display(),
                initial.len()
            )));
        }

        let shared = Arc::new(Shared {
            jobs,
            pool,
            returns,
            wake,
            state: Mutex::new(TokenState {
                limit: jobs,
                held: Vec::new(),
                stopping: false,
            }),
        });
        let keeper_shared = Arc::clone(&shared);
        let keeper = std::thread::Builder::new()
            .name("resctl-jobserver".to_string())
            .spawn(move || keeper_shared.keep())?;
        tracing::debug!(jobs, fifo = %fifo_path.display(), "jobserver created");
        Ok(Jobserver {
            jobs,
            fifo_path,
            folder,
            client_read,
            client_write,
            shared,
            keeper: Some(keeper),
        })
    }

    /// Environment for the job in the pipe form (see [`AuthForm::Pipe`]):
    /// `MAKEFLAGS` and `CARGO_MAKEFLAGS`, both `" -j{jobs} --jobserver-auth=R,W"`
    /// — exactly what GNU make 4.3 hands its sub-makes. GNU make ≥ 4.2 and
    /// cargo (which passes the pool on to rustc) read it; ninja ≥ 1.13 ignores
    /// it with a warning (use [`Jobserver::env_for`] with [`AuthForm::Fifo`]).
    /// The variables replace any inherited ones, including user flags such as
    /// `-k`. `R` and `W` ([`Jobserver::inherited_fds`]) must stay open in the
    /// child: see [`Jobserver::prepare_child`].
    pub fn env(&self) -> Vec<(String, String)> {
        self.env_for(AuthForm::Pipe)
    }

    /// Environment for the job in the given form: `MAKEFLAGS` and `CARGO_MAKEFLAGS`.
    pub fn env_for(&self, form: AuthForm) -> Vec<(String, String)> {
        let makeflags = self.makeflags(form);
        vec![
            (ENV_MAKEFLAGS.to_string(), makeflags.clone()),
            (ENV_CARGO_MAKEFLAGS.to_string(), makeflags),
        ]
    }

    /// The `MAKEFLAGS` value: `" -j{jobs} --jobserver-auth=…"`.
    pub fn makeflags(&self, form: AuthForm) -> String {
        let auth = match form {
            AuthForm::Pipe => {
                let [read, write] = self.inherited_fds();
                format!("{read},{write}")
            }
            AuthForm::Fifo => format!("fifo:{}", self.fifo_path.display()),
        };
        format!(" -j{} --jobserver-auth={auth}", self.jobs)
    }

    /// `[R, W]`: the fds pipe-form clients use, to keep open across exec.
    /// Both are ≥ 3 and close-on-exec in resctl.
    pub fn inherited_fds(&self) -> [RawFd; 2] {
        [self.client_read.as_raw_fd(), self.client_write.as_raw_fd()]
    }

    /// A closure for `CommandExt::pre_exec` that clears close-on-exec on
    /// [`Jobserver::inherited_fds`] in the child. It only calls `fcntl`
    /// (async-signal-safe, no allocation), so it is safe to run between
    /// fork and exec. The Jobserver must outlive the spawn.
    pub fn prepare_child(&self) -> impl Fn() -> io::Result<()> + Send + Sync + 'static {
        let fds = self.inherited_fds();
        move || {
            for fd in fds {
                clear_close_on_exec(fd)?;
            }
            Ok(())
        }
    }

    /// Sets up `command` as a client in `form`: adds [`Jobserver::env_for`] and, for the
    /// pipe form, registers [`Jobserver::prepare_child`] as a `pre_exec` hook (after any
    /// hooks registered before). Fifo-form clients open the path and inherit nothing.
    pub fn configure_command(&self, command: &mut Command, form: AuthForm) {
        command.envs(self.env_for(form));
        if form == AuthForm::Fifo {
            return;
        }
        let prepare = self.prepare_child();
        // SAFETY: the hook runs in the forked child before exec; it only calls
        // fcntl(F_SETFD) on two descriptor numbers, which is async-signal-safe
        // and neither allocates nor takes locks.
        unsafe {
            command.pre_exec(prepare);
        }
    }

    /// Sets the target parallelism, clamped to `1..=jobs`. Lower: resctl
    /// withholds `jobs - limit` tokens — those free in the pool at once, the
    /// rest as clients return them (the keeper thread takes them; this call
    /// never waits). Higher: held tokens go back into the pool at once.
    pub fn set_limit(&self, jobs: u32) {
        let limit = jobs.clamp(1, self.jobs);
        {
            let mut state = self.shared.lock();
            if state.limit != limit {
                tracing::debug!(from = state.limit, to = limit, "jobserver limit");
            }
            state.limit = limit;
            self.shared.rebalance(&mut state);
        }
        self.shared.wake_keeper();
    }

    /// Tokens resctl holds back right now.
    pub fn withheld(&self) -> u32 {
        count(self.shared.lock().held.len())
    }

    /// The current target parallelism (`1..=jobs`).
    pub fn limit(&self) -> u32 {
        self.shared.lock().limit
    }

    /// The pool's size: the parallelism with nothing withheld.
    pub fn jobs(&self) -> u32 {
        self.jobs
    }

    /// The token fifo (for the [`AuthForm::Fifo`] form).
    pub fn fifo_path(&self) -> &Path {
        &self.fifo_path
    }

    /// Tokens free in the pool right now (not held by a client nor by resctl).
    /// With no client running, `available() + withheld() == jobs - 1`.
    pub fn available(&self) -> io::Result<u32> {
        let _state = self.shared.lock();
        bytes_readable(self.shared.pool.as_fd())
    }

    /// Call only when no client is running (the job has exited): drains the
    /// pool and the return pipe and puts back exactly `jobs - 1 - withheld`
    /// tokens. Returns how many tokens had been lost (held by clients that
    /// died holding them, e.g. a killed make).
    pub fn restore_lost(&self) -> io::Result<u32> {
        let mut state = self.shared.lock();
        let mut drained = 0usize;
        let mut buffer = [0u8; 256];
        for fd in [self.shared.returns.as_fd(), self.shared.pool.as_fd()] {
            loop {
                match read_tokens(fd, &mut buffer)? {
                    0 => break,
                    read => drained += read,
                }
            }
        }
        let expected = (self.jobs - 1) as usize;
        let free = expected.saturating_sub(state.held.len());
        let lost = free.saturating_sub(drained);
        let written = write_tokens(self.shared.pool.as_fd(), &vec![TOKEN; free])?;
        // Tokens the full pipe refused stay with resctl; the keeper retries.
        let unwritten = free - written;
        state.held.extend(std::iter::repeat_n(TOKEN, unwritten));
        if lost > 0 {
            tracing::info!(lost, "jobserver: restored tokens lost by clients");
        }
        drop(state);
        self.shared.wake_keeper();
        Ok(count(lost))
    }

    /// Stops the keeper and removes the fifo (clients still running lose the pool).
    pub fn stop(self) {
        drop(self);
    }

    fn shutdown(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.wake_keeper();
        if let Some(keeper) = self.keeper.take() {
            if keeper.join().is_err() {
                tracing::warn!("jobserver: the keeper thread panicked");
            }
        }
        if let Err(err) = self.folder.remove(OsStr::new(FIFO_NAME)) {
            tracing::warn!("jobserver: {err}");
        }
    }
}

impl Drop for Jobserver {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, TokenState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wake_keeper(&self) {
        if let Err(errno) = self.wake.write(1) {
            tracing::warn!("jobserver: waking the keeper: {errno}");
        }
    }

    /// Tokens resctl should hold for the current limit.
    fn target(&self, state: &TokenState) -> usize {
        (self.jobs - state.limit) as usize
    }

    /// Moves tokens between the pool and the held set towards the target,
    /// without waiting: takes what is free, gives back any excess.
    fn rebalance(&self, state: &mut TokenState) {
        let target = self.target(state);
        let held = state.held.len();
        if held > target {
            match write_tokens(self.pool.as_fd(), &state.held[target..]) {
                Ok(written) => state.held.truncate(held - written),
                Err(err) => tracing::warn!("jobserver: returning tokens to the pool: {err}"),
            }
        } else if held < target {
            let mut buffer = vec![0u8; target - held];
            match read_tokens(self.pool.as_fd(), &mut buffer) {
                Ok(read) => state.held.extend_from_slice(&buffer[..read]),
                Err(err) => tracing::warn!("jobserver: taking tokens from the pool: {err}"),
            }
        }
    }

    /// Takes tokens returned by pipe-form clients: keeps them while short of
    /// the target, forwards the rest into the pool.
    fn take_returns(&self, state: &mut TokenState) {
        let mut buffer = [0u8; 256];
        loop {
            let read = match read_tokens(self.returns.as_fd(), &mut buffer) {
                Ok(0) => return,
                Ok(read) => read,
                Err(err) => {
                    tracing::warn!("jobserver: reading returned tokens: {err}");
                    return;
                }
            };
            state.held.extend_from_slice(&buffer[..read]);
            self.rebalance(state);
        }
    }

    /// The keeper thread: waits for returned tokens, for free tokens while
    /// resctl is short of its target, and for wake-ups.
    fn keep(&self) {
        loop {
            let (short, excess) = {
                let mut state = self.lock();
                if state.stopping {
                    return;
                }
                self.take_returns(&mut state);
                self.rebalance(&mut state);
                let target = self.target(&state);
                (state.held.len() < target, state.held.len() > target)
            };
            let mut fds = vec![
                PollFd::new(self.returns.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.wake.as_fd(), PollFlags::POLLIN),
            ];
            if short {
                fds.push(PollFd::new(self.pool.as_fd(), PollFlags::POLLIN));
            }
            let timeout = if excess {
                PollTimeout::try_from(RETRY_INTERVAL).unwrap_or(PollTimeout::MAX)
            } else {
                PollTimeout::NONE
            };
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(errno) => {
                    tracing::warn!("jobserver: waiting for tokens: {errno}");
                    std::thread::sleep(RETRY_INTERVAL);
                }
            }
            drop(fds);
            match self.wake.read() {
                Ok(_) | Err(Errno::EAGAIN) => {}
                Err(errno) => tracing::warn!("jobserver: reading the wake-up counter: {errno}"),
            }
        }
    }
}

/// Reads up to `buffer.len()` tokens without waiting; 0 when none is there.
fn read_tokens(fd: BorrowedFd<'_>, buffer: &mut [u8]) -> io::Result<usize> {
    loop {
        match nix::unistd::read(fd, buffer) {
            Ok(read) => return Ok(read),
            Err(Errno::EAGAIN) => return Ok(0),
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// Writes tokens without waiting; returns how many the pipe took.
fn write_tokens(fd: BorrowedFd<'_>, tokens: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while written < tokens.len() {
        match nix::unistd::write(fd, &tokens[written..]) {
            Ok(count) => written += count,
            Err(Errno::EAGAIN) => break,
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(written)
}

fn clear_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let flags = OFlag::from_bits_retain(flags) & !OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    Ok(())
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    Ok(())
}

/// Moves `fd` to a number ≥ 3 (close-on-exec), so the child's stdio set-up
/// (dup2 onto 0, 1, 2) can never overwrite an inherited jobserver fd — that
/// happens if resctl itself was started with a standard stream closed.
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    let duplicate = fcntl(&fd, FcntlArg::F_DUPFD_CLOEXEC(3)).map_err(io::Error::from)?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(duplicate) })
}

/// Clears FD_CLOEXEC; async-signal-safe (for `pre_exec`).
fn clear_close_on_exec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl(F_SETFD) changes only the descriptor's flags and fails
    // with EBADF on a number that is not open; it touches no memory.
    let result = unsafe { nix::libc::fcntl(fd, nix::libc::F_SETFD, 0) };
    if result == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Bytes waiting in a pipe (FIONREAD).
fn bytes_readable(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let mut readable: nix::libc::c_int = 0;
    // SAFETY: FIONREAD stores one c_int through the pointer, which points to
    // a live local of that type.
    let result = unsafe { nix::libc::ioctl(fd.as_raw_fd(), nix::libc::FIONREAD, &mut readable) };
    if result == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(u32::try_from(readable).unwrap_or(0))
}

fn count(tokens: usize) -> u32 {
    u32::try_from(tokens).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(dir: &tempfile::TempDir) -> Folder {
        Folder::open(dir.path()).unwrap()
    }
    use std::time::Instant;

    /// Waits up to 2 s for `condition`.
    fn eventually(mut condition: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if condition() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        condition()
    }

    fn client_fds(jobserver: &Jobserver) -> (BorrowedFd<'_>, BorrowedFd<'_>) {
        (
            jobserver.client_read.as_fd(),
            jobserver.client_write.as_fd(),
        )
    }

    /// Acts like a client: reads one token through `R` (made non-blocking on
    /// its own description by reopening through /proc, as a client would).
    fn client_take(jobserver: &Jobserver) -> Option<u8> {
        let [read, _] = jobserver.inherited_fds();
        let own = nix::fcntl::open(
            format!("/proc/self/fd/{read}").as_str(),
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        let mut byte = [0u8; 1];
        match nix::unistd::read(&own, &mut byte) {
            Ok(1) => Some(byte[0]),
            _ => None,
        }
    }

    fn client_give_back(jobserver: &Jobserver, token: u8) {
        let (_, write) = client_fds(jobserver);
        assert_eq!(nix::unistd::write(write, &[token]).unwrap(), 1);
    }

    #[test]
    fn pool_starts_with_jobs_minus_one_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let jobserver = Jobserver::create(4, &folder(&dir)).unwrap();
        assert_eq!(jobserver.available().unwrap(), 3);
        assert_eq!(jobserver.withheld(), 0);
        assert_eq!(jobserver.limit(), 4);
        assert_eq!(jobserver.jobs(), 4);
        let single = tempfile::tempdir().unwrap();
        assert_eq!(
            Jobserver::create(1, &folder(&single))
                .unwrap()
                .available()
                .unwrap(),
            0
        );
    }

    #[test]
    fn rejects_zero_and_huge_pools() {
        let dir = tempfile::tempdir().unwrap();
        for jobs in [0, MAX_JOBS + 1] {
            let err = Jobserver::create(jobs, &folder(&dir)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains(&jobs.to_string()), "{err}");
        }
        assert!(!dir.path().join(FIFO_NAME).exists());
    }

    #[test]
    fn existing_fifo_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Jobserver::create(2, &folder(&dir)).unwrap();
        let err = Jobserver::create(2, &folder(&dir)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(err.to_string().contains(FIFO_NAME), "{err}");
    }

    #[test]
    fn env_names_both_fds_and_the_job_count() {
        let dir = tempfile::tempdir().unwrap();
        let jobserver = Jobserver::create(6, &folder(&dir)).unwrap();
        let [read, write] = jobserver.inherited_fds();
        assert!(read > 2 && write > 2 && read != write);
        let expected = format!(" -j6 --jobserver-auth={read},{write}");
        assert_eq!(
            jobserver.env(),
            vec![
                ("MAKEFLAGS".to_string(), expected.clone()),
                ("CARGO_MAKEFLAGS".to_string(), expected),
            ]
        );
        let fifo = jobserver.env_for(AuthForm::Fifo);
        assert_eq!(
            fifo[0].1,
            format!(
                " -j6 --jobserver-auth=fifo:{}",
                dir.path().join(FIFO_NAME).display()
            )
        );
    }

    #[test]
    fn fds_are_close_on_exec_in_resctl() {
        let dir = tempfile::tempdir().unwrap();
        let jobserver = Jobserver::create(2, &folder(&dir)).unwrap();
        let (read, write) = client_fds(&jobserver);
        for fd in [read, write] {
            let flags = fcntl(fd, FcntlArg::F_GETFD).unwrap();
            assert_ne!(flags & nix::libc::FD_CLOEXEC, 0);
        }
    }

    #[test]
    fn lowering_takes_free_tokens_at_once_and_raising_gives_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let jobserver = Jobserver::create(4, &folder(&dir)).unwrap();
        jobserver.set_limit(1);
        assert_eq!(
            (jobserver.withheld(), jobserver.available().unwrap()),
            (3, 0)
        );
        jobserver.set_limit(3);
        assert_eq!(
            (jobserver.withheld(), jobserver.available().unwrap()),
            (1, 2)
        );
        jobserver.set_limit(0);
        assert_eq!((jobserver.limit(), jobserver.withheld()), (1, 3));
        jobserver.set_limit(99);
        assert_eq!((jobserver.limit(), jobserver.withheld()), (4, 0));
        assert_eq!(jobserver.available().unwrap(), 3);
    }

    #[test]
    fn tokens_in_use_are_withheld_when_returned() {
        let dir = tempfile::tempdir().unwrap();
        let jobserver = Jobserver::create(3, &folder(&dir)).unwrap();
        let first = client_take(&jobserver).unwrap();
        let second = client_take(&jobserver).unwrap();
        assert_eq!(client_take(&jobserver), None);
        jobserver.set_limit(1);
        assert_eq!(jobserver.withheld(), 0);
        client_give_back(&jobserver, first);
        assert!(eventually(|| jobserver.withheld() == 1));
        client_give_back(&jobserver, second);
        assert!(eventually(|| jobserver.withheld() == 2));
        assert_eq!(jobserver.available().unwrap(), 0);
    }

    #[test]
    fn returned_tokens_reach_the_pool_when_not_withheld() {
        let dir = tempfile::tempdir().unwrap();
        let jobserver = Jobserver::create(3, &folder(&dir)).unwrap();
        let token = client_take(&jobserver).unwrap();
        assert_eq!(jobserver.available().unwrap(), 1);
        client_give_back(&jobserver, token);
        assert!(eventually(|| jobserver.available().unwrap() == 2));
        assert_eq!(jobserver.withheld(), 0);
    }

    #[test]
    fn restore_lost_refills_what_a_dead_client_held() {
        let dir = tempfile::tempdir().unwrap();
        let jobserver = Jobserver::create(5, &folder(&dir)).unwrap();
        jobserver.set_limit(4);
        client_take(&jobserver).unwrap();
        client_take(&jobserver).unwrap();
        assert_eq!(jobserver.available().unwrap(), 1);
        assert_eq!(jobserver.restore_lost().unwrap(), 2);
        assert_eq!(jobserver.available().unwrap(), 3);
        assert_eq!(jobserver.withheld(), 1);
        assert_eq!(jobserver.restore_lost().unwrap(), 0);
    }

    #[test]
    fn prepare_child_clears_close_on_exec() {
        let dir = tempfile::tempdir().unwrap();
        let jobserver = Jobserver::create(2, &folder(&dir)).unwrap();
        let [read, write] = jobserver.inherited_fds();
        let output = {
            let mut command = Command::new("sh");
            command.args([
                "-c",
                &format!(
                    "test -e /proc/self/fd/{read} && test -e /proc/self/fd/{write} && echo open"
                ),
            ]);
            jobserver.configure_command(&mut command, AuthForm::Pipe);
            command.output().unwrap()
        };
        assert_eq!(String::from_utf8_lossy(&output.stdout), "open\n");
        // The fifo form inherits nothing: the client opens the path in MAKEFLAGS.
        let output = {
            let mut command = Command::new("sh");
            command.args([
                "-c",
                &format!("test -e /proc/self/fd/{read} || echo \"closed $MAKEFLAGS\""),
            ]);
            jobserver.configure_command(&mut command, AuthForm::Fifo);
            command.output().unwrap()
        };
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!(
                "closed  -j2 --jobserver-auth=fifo:{}\n",
                jobserver.fifo_path().display()
            )
        );
        let unprepared = Command::new("sh")
            .args([
                "-c",
                &format!("test -e /proc/self/fd/{read} || echo closed"),
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&unprepared.stdout), "closed\n");
    }

    #[test]
    fn stop_removes_the_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let jobserver = Jobserver::create(2, &folder(&dir)).unwrap();
        let fifo = jobserver.fifo_path().to_path_buf();
        assert!(fifo.exists());
        jobserver.stop();
        assert!(!fifo.exists());
    }
}
