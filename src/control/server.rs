//! The control socket server (`RESCTL_SOCKET`): JSON lines over a Unix stream socket
//! for jobs that want to talk to resctl — stage start/end, recommend, status, progress,
//! and thread-count events for subscribers. The protocol is in [`super::protocol`].
//!
//! Threads: one accept thread (polling the listener and a wake-up pair so [`stop`] ends it
//! at once), and per client a reader thread (requests → replies) and a writer thread that
//! drains the client's bounded queue, so the run loop's [`publish_threads`] never blocks on
//! a slow client: a subscriber whose queue is full is disconnected. At most
//! [`MAX_CLIENTS`] clients; only peers whose uid (`SO_PEERCRED`) is the allowed one or 0.
//!
//! Malformed input never stops the server: every line gets one reply, errors included.
//!
//! Stage times are on the server's own clock (time since [`ControlServer::start`]); the
//! memory, level and CPU time of a stage come from the snapshots fed with
//! [`ControlServer::update`], the CPU time read at its start and end from the latest one.
//!
//! [`stop`]: ControlServer::stop
//! [`publish_threads`]: ControlServer::publish_threads

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

pub use super::protocol::StatusSnapshot;
pub use crate::report::stages::StageSummary;

use super::protocol::{
    to_line, ErrorReply, Event, NoticeAction, OkReply, RecommendReply, Request, StageEndReply,
    StageStartReply, StatusReply, SubscribeReply, MAX_LINE_BYTES,
};
use crate::job_text::JobText;
use crate::policy::Ceiling;
use crate::report::stages::StageTracker;
use crate::safe_fs::{read_line_limited, LineRead};

/// Most clients connected at once; more are told so and closed.
pub const MAX_CLIENTS: usize = 64;
/// Lines queued for one client before it counts as stuck (a subscriber is then dropped).
const CLIENT_QUEUE_LINES: usize = 1024;
/// A write to a client that takes longer than this drops the client.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for the run loop's first snapshot before it is refused.
const FIRST_SNAPSHOT_WAIT: Duration = Duration::from_secs(3);
/// Finished stages kept for [`ControlServer::take_finished_stages`]; older ones are dropped.
const MAX_FINISHED_KEPT: usize = 4096;
/// Notices from `resctl daemon` kept until the run loop takes them; older ones are dropped.
const MAX_NOTICES: usize = 16;

/// The control socket: a listening Unix socket and the threads serving it.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
    /// Writing a byte here wakes the accept thread.
    wake: UnixStream,
}

/// What the accept thread, the client threads and the run loop share.
#[derive(Debug)]
struct Shared {
    allowed_uid: u32,
    started: Instant,
    stopping: AtomicBool,
    state: Mutex<State>,
    /// Signalled when the first snapshot arrives (and on stop).
    snapshot_arrived: Condvar,
}

#[derive(Debug, Default)]
struct State {
    snapshot: Option<StatusSnapshot>,
    /// The latest worker count (from `update` or `publish_threads`).
    threads: Option<u32>,
    tracker: StageTracker,
    finished: VecDeque<StageSummary>,
    progress: Option<u64>,
    /// The worker-count ceiling `resctl daemon` set, if any.
    ceiling: Option<Ceiling>,
    /// What `resctl daemon` said it did to the job, not yet taken (the newest
    /// [`MAX_NOTICES`]), reasons escaped.
    notices: VecDeque<(NoticeAction, String)>,
    clients: HashMap<u64, Client>,
    next_client_id: u64,
}

/// One connected client, as seen from the rest of the server.
#[derive(Debug)]
struct Client {
    /// A handle on the connection, to shut it down.
    stream: UnixStream,
    /// The client's outgoing queue (drained by its writer thread).
    outgoing: SyncSender<String>,
    subscribed: bool,
    threads: Vec<JoinHandle<()>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in another thread must not take the server down with it: the state is
        // plain data that stays consistent between statements.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Time on the server's clock (since it started).
    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// The state, once the run loop has sent a first snapshot (or the wait timed out).
    fn lock_with_snapshot(&self) -> MutexGuard<'_, State> {
        let guard = self.lock();
        let (guard, _) = self
            .snapshot_arrived
            .wait_timeout_while(guard, FIRST_SNAPSHOT_WAIT, |state| {
                state.snapshot.is_none() && !self.stopping()
            })
            .unwrap_or_else(PoisonError::into_inner);
        guard
    }
}

impl ControlServer {
    /// Binds `path` (mode 0600, removing a stale socket file first), accepts only peers whose
    /// uid (SO_PEERCRED) equals `allowed_uid` or is 0. When resctl runs as root for another
    /// user's job, the socket is handed to that user (chown) so the job can connect.
    ///
    /// # Errors
    ///
    /// `path` exists and is not a socket, or binding, chmod or starting the thread failed;
    /// the error names the path.
    pub fn start(path: &Path, allowed_uid: u32) -> io::Result<ControlServer> {
        let with_path = |what: &str, error: io::Error| {
            io::Error::new(
                error.kind(),
                format!("control socket {}: {what}: {error}", path.display()),
            )
        };
        remove_stale_socket(path).map_err(|error| with_path("removing the old file", error))?;
        let listener = UnixListener::bind(path).map_err(|error| with_path("bind", error))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|error| with_path("chmod 0600", error))?;
        let euid = nix::unistd::geteuid();
        if euid.is_root() && allowed_uid != euid.as_raw() {
            // lchown: the entry just bound is a socket; a symlink would not be followed.
            std::os::unix::fs::lchown(path, Some(allowed_uid), None)
                .map_err(|error| with_path("chown", error))?;
        }
        listener
            .set_nonblocking(true)
            .map_err(|error| with_path("set non-blocking", error))?;
        let (wake, woken) = UnixStream::pair().map_err(|error| with_path("wake pair", error))?;
        woken
            .set_nonblocking(true)
            .map_err(|error| with_path("wake pair", error))?;
        let shared = Arc::new(Shared {
            allowed_uid,
            started: Instant::now(),
            stopping: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            snapshot_arrived: Condvar::new(),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = std::thread::Builder::new()
            .name("resctl-socket".into())
            .spawn(move || accept_loop(&listener, &woken, &accept_shared))
            .map_err(|error| with_path("starting the accept thread", error))?;
        tracing::debug!("control socket listening on {}", path.display());
        Ok(ControlServer {
            path: path.to_path_buf(),
            shared,
            accept_thread: Some(accept_thread),
            wake,
        })
    }

    /// The socket's path (for `RESCTL_SOCKET`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Called by the run loop every tick with the latest state: feeds open stages and
    /// answers later status, recommend and stage requests.
    pub fn update(&self, snapshot: StatusSnapshot) {
        let now = self.shared.now();
        let mut state = self.shared.lock();
        state.tracker.set_leak_rule(snapshot.leak_rule);
        state
            .tracker
            .observe(now, snapshot.memory_bytes, snapshot.level);
        state.threads = Some(snapshot.threads);
        state.snapshot = Some(snapshot);
        drop(state);
        self.shared.snapshot_arrived.notify_all();
    }

    /// Called by the run loop when the thread count changes: pushes an event to subscribers.
    /// Never blocks on a client: a subscriber that stopped reading is disconnected.
    pub fn publish_threads(&self, threads: u32, previous: u32, reason: &str) {
        let line = to_line(&Event::Threads {
            threads,
            previous,
            reason: reason.to_owned(),
        });
        let mut state = self.shared.lock();
        state.threads = Some(threads);
        // The tick's own snapshot follows; until then a status shows the new count with the
        // reason for it, not the last snapshot's reason for the count before.
        if let Some(snapshot) = state.snapshot.as_mut() {
            snapshot.threads = threads;
            reason.clone_into(&mut snapshot.reason);
        }
        for (id, client) in state.clients.iter().filter(|(_, client)| client.subscribed) {
            match client.outgoing.try_send(line.clone()) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => {
                    tracing::warn!(
                        "control socket: subscriber {id} stopped reading; disconnecting it"
                    );
                    let _ = client.stream.shutdown(std::net::Shutdown::Both);
                }
            }
        }
    }

    /// The worker-count ceiling `resctl daemon` set (`ceiling` request), if any.
    pub fn ceiling(&self) -> Option<Ceiling> {
        self.shared.lock().ceiling.clone()
    }

    /// What `resctl daemon` said it did to the job (`notice` requests) since the last
    /// call, oldest first, reasons escaped.
    pub fn take_notices(&self) -> Vec<(NoticeAction, String)> {
        self.shared.lock().notices.drain(..).collect()
    }

    /// The latest cumulative progress units reported by the job, if any.
    pub fn progress_units(&self) -> Option<u64> {
        self.shared.lock().progress
    }

    /// Stages ended since the last call, oldest first.
    pub fn take_finished_stages(&self) -> Vec<StageSummary> {
        self.shared.lock().finished.drain(..).collect()
    }

    /// Ends the stages still open (the job has ended without ending them), oldest first,
    /// each marked unfinished.
    pub fn end_open_stages(&self) -> Vec<StageSummary> {
        let now = self.shared.now();
        let mut state = self.shared.lock();
        let cpu_time = latest_cpu_time(&state);
        state.tracker.end_all(now, cpu_time)
    }

    /// Stops accepting, closes clients, removes the socket file (also on Drop).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(accept_thread) = self.accept_thread.take() else {
            return;
        };
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = self.wake.write_all(b"x");
        let _ = accept_thread.join();
        let clients: Vec<Client> = self.shared.lock().clients.drain().map(|(_, c)| c).collect();
        self.shared.snapshot_arrived.notify_all();
        let mut threads = Vec::new();
        for client in clients {
            let _ = client.stream.shutdown(std::net::Shutdown::Both);
            threads.extend(client.threads);
        }
        for thread in threads {
            let _ = thread.join();
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(
                "control socket: cannot remove {}: {error}",
                self.path.display()
            ),
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Removes `path` if it is a socket left by an earlier run; refuses anything else.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "exists and is not a socket; not removing it",
        )),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

fn accept_loop(listener: &UnixListener, woken: &UnixStream, shared: &Arc<Shared>) {
    loop {
        let mut fds = [
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(woken.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(errno) => {
                tracing::warn!("control socket: poll failed: {errno}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if shared.stopping() {
            return;
        }
        let mut drain = [0u8; 64];
        while matches!((&*woken).read(&mut drain), Ok(read) if read > 0) {}
        loop {
            match listener.accept() {
                Ok((stream, _)) => admit(stream, shared),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    // EMFILE and friends: wait a little instead of spinning.
                    tracing::warn!("control socket: accept failed: {error}");
                    std::thread::sleep(Duration::from_millis(100));
                    break;
                }
            }
        }
    }
}

/// Checks a new connection's peer and cap, then starts its threads.
fn admit(stream: UnixStream, shared: &Arc<Shared>) {
    let uid = match getsockopt(&stream, PeerCredentials) {
        Ok(credentials) => credentials.uid(),
        Err(errno) => {
            tracing::warn!("control socket: cannot read the peer's credentials: {errno}");
            return;
        }
    };
    if uid != shared.allowed_uid && uid != 0 {
        tracing::warn!(
            "control socket: refused a connection from uid {uid} (only {} or root may connect)",
            shared.allowed_uid
        );
        return;
    }
    if let Err(error) = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)))
    {
        tracing::warn!("control socket: cannot set up a connection: {error}");
        return;
    }
    let mut state = shared.lock();
    if state.clients.len() >= MAX_CLIENTS {
        drop(state);
        let line = to_line(&ErrorReply::new(format!(
            "too many clients ({MAX_CLIENTS} connected); retry later"
        )));
        let _ = (&stream).write_all(format!("{line}\n").as_bytes());
        return;
    }
    if let Err(error) = start_client(&mut state, stream, uid, shared) {
        tracing::warn!("control socket: cannot start a client's threads: {error}");
    }
}

/// Registers a client and spawns its reader and writer, with the state locked so the
/// reader cannot deregister before it is registered.
fn start_client(
    state: &mut State,
    stream: UnixStream,
    peer_uid: u32,
    shared: &Arc<Shared>,
) -> io::Result<()> {
    let id = state.next_client_id;
    state.next_client_id += 1;
    let for_writer = stream.try_clone()?;
    let for_shutdown = stream.try_clone()?;
    let (outgoing, queue) = mpsc::sync_channel(CLIENT_QUEUE_LINES);
    let writer = std::thread::Builder::new()
        .name(format!("resctl-socket-w{id}"))
        .spawn(move || write_loop(for_writer, queue))?;
    let reader_shared = Arc::clone(shared);
    let reader_outgoing = outgoing.clone();
    let reader = std::thread::Builder::new()
        .name(format!("resctl-socket-r{id}"))
        .spawn(move || read_loop(id, peer_uid, stream, reader_outgoing, &reader_shared));
    let reader = match reader {
        Ok(reader) => reader,
        Err(error) => {
            // The writer ends once its queue's last sender is gone.
            drop(outgoing);
            let _ = writer.join();
            return Err(error);
        }
    };
    state.clients.insert(
        id,
        Client {
            stream: for_shutdown,
            outgoing,
            subscribed: false,
            threads: vec![reader, writer],
        },
    );
    Ok(())
}

/// Sends queued lines to the client until the queue closes or a write fails.
fn write_loop(mut stream: UnixStream, queue: Receiver<String>) {
    for mut line in queue {
        line.push('\n');
        if let Err(error) = stream.write_all(line.as_bytes()) {
            tracing::debug!("control socket: client write failed: {error}");
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

/// Reads requests and queues one reply for each, until the client goes away.
fn read_loop(
    id: u64,
    peer_uid: u32,
    stream: UnixStream,
    outgoing: SyncSender<String>,
    shared: &Arc<Shared>,
) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        let reply = match read_line_limited(&mut reader, &mut line, MAX_LINE_BYTES) {
            Ok(LineRead::Eof) => break,
            Ok(LineRead::TooLong) => Some(to_line(&ErrorReply::new(format!(
                "request line longer than {MAX_LINE_BYTES} bytes"
            )))),
            Ok(LineRead::Line) => handle_line(id, peer_uid, &line, &outgoing, shared),
            Err(error) => {
                tracing::debug!("control socket: client {id} read failed: {error}");
                break;
            }
        };
        if let Some(reply) = reply {
            if outgoing.send(reply).is_err() {
                break;
            }
        }
        if shared.stopping() {
            break;
        }
    }
    let client = shared.lock().clients.remove(&id);
    if let Some(client) = client {
        let _ = client.stream.shutdown(std::net::Shutdown::Both);
        // Dropping the handles detaches both threads; they are ending.
    }
}

/// The reply line for one request line (`None` when the reply was queued already).
fn handle_line(
    id: u64,
    peer_uid: u32,
    line: &[u8],
    outgoing: &SyncSender<String>,
    shared: &Arc<Shared>,
) -> Option<String> {
    let text = match std::str::from_utf8(line) {
        Ok(text) => text,
        Err(error) => {
            return Some(to_line(&ErrorReply::new(format!(
                "request is not UTF-8 (invalid byte at offset {})",
                error.valid_up_to()
            ))))
        }
    };
    let request: Request = match serde_json::from_str(text) {
        Ok(request) => request,
        Err(error) => {
            return Some(to_line(&ErrorReply::new(format!("bad request: {error}"))));
        }
    };
    let reply = match request {
        Request::StageStart { name, workers } => stage_start(shared, &name, workers),
        Request::StageEnd { name } => stage_end(shared, &name),
        Request::Recommend { current, context } => recommend(shared, current, context.as_ref()),
        Request::Status => status(shared),
        Request::Progress { units } => {
            shared.lock().progress = Some(units);
            Ok(to_line(&OkReply { ok: true }))
        }
        Request::Subscribe => return subscribe(id, outgoing, shared),
        Request::Ceiling { threads, reason } => set_ceiling(shared, peer_uid, threads, reason),
        Request::Notice { action, reason } => take_notice(shared, peer_uid, action, &reason),
    };
    Some(reply.unwrap_or_else(|error| to_line(&ErrorReply::new(error))))
}

/// `ceiling`: only root may set it (the daemon), not the job itself; `threads: null`
/// lifts it.
fn set_ceiling(
    shared: &Shared,
    peer_uid: u32,
    threads: Option<u32>,
    reason: Option<String>,
) -> Result<String, String> {
    from_the_daemon(peer_uid, "set a ceiling")?;
    if threads == Some(0) {
        return Err("a ceiling must be at least 1 thread".to_owned());
    }
    let reason = crate::job_text::escape(reason.as_deref().unwrap_or("a ceiling from outside"));
    shared.lock().ceiling = threads.map(|threads| Ceiling { threads, reason });
    Ok(to_line(&OkReply { ok: true }))
}

/// Refuses a request only `resctl daemon` (root) may make, naming `what` it would do.
fn from_the_daemon(peer_uid: u32, what: &str) -> Result<(), String> {
    if peer_uid == 0 {
        Ok(())
    } else {
        Err(format!("only root (resctl daemon) may {what}"))
    }
}

/// `notice`: only root may send it (the daemon); kept, escaped, for the run loop to log.
fn take_notice(
    shared: &Shared,
    peer_uid: u32,
    action: NoticeAction,
    reason: &str,
) -> Result<String, String> {
    from_the_daemon(peer_uid, "send a notice")?;
    let mut state = shared.lock();
    if state.notices.len() >= MAX_NOTICES {
        state.notices.pop_front();
    }
    state
        .notices
        .push_back((action, crate::job_text::escape(reason)));
    Ok(to_line(&OkReply { ok: true }))
}

/// The error when no snapshot arrived in time.
fn no_snapshot() -> String {
    "resctl has not sampled the job yet; retry in a second".to_owned()
}

fn workers_text(count: u32) -> String {
    format!("{count} worker{}", if count == 1 { "" } else { "s" })
}

fn stage_start(shared: &Shared, name: &JobText, workers: Option<u32>) -> Result<String, String> {
    if workers == Some(0) {
        return Err("workers must be at least 1".to_owned());
    }
    let now = shared.now();
    let mut state = shared.lock_with_snapshot();
    let state = &mut *state;
    let snapshot = state.snapshot.as_ref().ok_or_else(no_snapshot)?;
    let allowed = state.threads.unwrap_or(snapshot.threads);
    let granted = workers.map_or(allowed, |asked| asked.min(allowed));
    let reason = match workers {
        Some(asked) if asked > allowed => format!(
            "{} instead of {asked}: {}",
            workers_text(granted),
            snapshot.reason
        ),
        Some(asked) => format!(
            "{} as asked (up to {allowed} allowed): {}",
            workers_text(asked),
            snapshot.reason
        ),
        None => format!("{}: {}", workers_text(granted), snapshot.reason),
    };
    let level = snapshot.level;
    let cpu_time = snapshot.cpu_time();
    state
        .tracker
        .start(name.as_str(), granted, now, cpu_time)
        .map_err(|error| error.to_string())?;
    tracing::info!(
        resctl_action = "stage-start",
        resctl_threads = granted,
        "stage {name} started: {reason}"
    );
    Ok(to_line(&StageStartReply {
        ok: true,
        threads: granted,
        level,
        reason,
    }))
}

/// The job's CPU time in the latest snapshot (zero before the first).
fn latest_cpu_time(state: &State) -> Duration {
    state
        .snapshot
        .as_ref()
        .map(StatusSnapshot::cpu_time)
        .unwrap_or_default()
}

fn stage_end(shared: &Shared, name: &JobText) -> Result<String, String> {
    let now = shared.now();
    let mut state = shared.lock();
    let cpu_time = latest_cpu_time(&state);
    let Some(stage) = state.tracker.end(name.as_str(), now, cpu_time) else {
        let open: Vec<String> = state
            .tracker
            .open_stages(now)
            .into_iter()
            .map(|stage| format!("{:?}", stage.name))
            .collect();
        let open = if open.is_empty() {
            "none".to_owned()
        } else {
            open.join(", ")
        };
        return Err(format!("no open stage named {name:?} (open: {open})"));
    };
    if state.finished.len() >= MAX_FINISHED_KEPT {
        state.finished.pop_front();
    }
    state.finished.push_back(stage.clone());
    Ok(to_line(&StageEndReply { ok: true, stage }))
}

fn recommend(
    shared: &Shared,
    current: Option<u32>,
    context: Option<&JobText>,
) -> Result<String, String> {
    let state = shared.lock_with_snapshot();
    let snapshot = state.snapshot.as_ref().ok_or_else(no_snapshot)?;
    let threads = state.threads.unwrap_or(snapshot.threads);
    let verdict = match current {
        Some(current) if threads < current => format!("reduce {current} → {threads}"),
        Some(current) if threads > current => format!("increase {current} → {threads}"),
        Some(_) => format!("keep {threads}"),
        None => workers_text(threads),
    };
    let context = context
        .filter(|context| !context.as_str().is_empty())
        .map(|context| format!("for {context}: "))
        .unwrap_or_default();
    Ok(to_line(&RecommendReply {
        ok: true,
        threads,
        reason: format!("{context}{verdict}: {}", snapshot.reason),
    }))
}

fn status(shared: &Shared) -> Result<String, String> {
    let now = shared.now();
    let state = shared.lock_with_snapshot();
    let mut status = state.snapshot.clone().ok_or_else(no_snapshot)?;
    if let Some(threads) = state.threads {
        status.threads = threads;
    }
    status.stages_open = state.tracker.open_stages(now);
    Ok(to_line(&StatusReply { ok: true, status }))
}

/// Marks the client as a subscriber and queues the reply under the lock, so no event can
/// overtake it.
fn subscribe(id: u64, outgoing: &SyncSender<String>, shared: &Arc<Shared>) -> Option<String> {
    let mut state = shared.lock_with_snapshot();
    let Some(threads) = state
        .threads
        .or_else(|| state.snapshot.as_ref().map(|s| s.threads))
    else {
        return Some(to_line(&ErrorReply::new(no_snapshot())));
    };
    let client = state.clients.get_mut(&id)?;
    let reply = to_line(&SubscribeReply { ok: true, threads });
    match outgoing.try_send(reply) {
        Ok(()) => {
            client.subscribed = true;
            None
        }
        Err(_) => {
            // The client has not read 1024 replies: it is not listening.
            let _ = client.stream.shutdown(std::net::Shutdown::Both);
            None
        }
    }
}
