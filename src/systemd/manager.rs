//! The systemd manager's D-Bus interface (`org.freedesktop.systemd1.Manager`), reached on
//! the system bus through zbus, driven to completion on the calling thread (`block_on`).
//!
//! [`start_delegated_scope`] is `systemd-run --scope -p Delegate=yes` without a fork and
//! an exec: it moves the calling process into a new transient scope and returns once
//! systemd reports the scope's start job done. [`slice_memory`] and [`set_slice_memory`]
//! read and set a slice's `MemoryHigh=`/`MemoryMax=` (runtime properties: systemd writes
//! the cgroup files, never resctl). Every call opens its own connection and closes it
//! before it returns, so no bus thread outlives it (a job may be forked afterwards).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use zbus::export::futures_core::Stream;
use zbus::{OwnedObjectPath, Variant};

/// How long systemd may take to answer a call or finish the scope's start job.
pub const MANAGER_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a scope could not be had over D-Bus.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// No connection to the system bus (no bus daemon, no socket, no permission): a caller
    /// may try another way (`systemd-run`, which reaches systemd's private socket).
    #[error("could not reach systemd on the system bus: {0}")]
    Unreachable(String),
    /// systemd answered the call with an error (invalid name, slice, permission).
    #[error("systemd refused: {0}")]
    Refused(String),
    /// The scope's start job ended with another result than `done`.
    #[error("systemd's job to start {unit} ended '{result}'")]
    JobFailed {
        /// The unit.
        unit: String,
        /// systemd's job result (`failed`, `canceled`, `timeout`, `dependency`, ...).
        result: String,
    },
    /// No answer in time.
    #[error("systemd did not finish starting {0} within {MANAGER_TIMEOUT:?}")]
    TimedOut(String),
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
trait Manager {
    /// `StartTransientUnit(s name, s mode, a(sv) properties, a(sa(sv)) aux) -> o job`.
    #[allow(clippy::type_complexity)]
    fn start_transient_unit(
        &self,
        name: &str,
        mode: &str,
        properties: &[(&str, Variant<'_>)],
        aux: &[(&str, Vec<(&str, Variant<'_>)>)],
    ) -> zbus::Result<OwnedObjectPath>;

    /// `LoadUnit(s name) -> o unit`: the unit's object, loading it if needed.
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;

    /// `SetUnitProperties(s name, b runtime, a(sv) properties)`.
    fn set_unit_properties(
        &self,
        name: &str,
        runtime: bool,
        properties: &[(&str, Variant<'_>)],
    ) -> zbus::Result<()>;

    /// `JobRemoved(u id, o job, s unit, s result)`.
    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: zbus::ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

/// A slice unit's memory properties (`org.freedesktop.systemd1.Slice`).
#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Slice",
    default_service = "org.freedesktop.systemd1"
)]
trait Slice {
    /// `MemoryHigh`, bytes; `u64::MAX` is infinity.
    #[zbus(property)]
    fn memory_high(&self) -> zbus::Result<u64>;

    /// `MemoryMax`, bytes; `u64::MAX` is infinity.
    #[zbus(property)]
    fn memory_max(&self) -> zbus::Result<u64>;
}

/// A slice's `MemoryHigh=` and `MemoryMax=`, bytes; `u64::MAX` is systemd's infinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryProperties {
    /// `MemoryHigh=`.
    pub high: u64,
    /// `MemoryMax=`.
    pub max: u64,
}

/// Reads a slice's memory properties as systemd has them now (its unit file and drop-ins,
/// and runtime changes).
///
/// # Errors
///
/// [`ManagerError`]: unreachable bus, refused call, timeout.
pub fn slice_memory(bus: &Bus, slice: &str) -> Result<MemoryProperties, ManagerError> {
    with_manager(bus, slice, |connection, manager| async move {
        let path = manager.load_unit(slice).await.map_err(refused)?;
        let unit = SliceProxy::builder(&connection)
            .path(path)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(refused)?;
        Ok(MemoryProperties {
            high: unit.memory_high().await.map_err(refused)?,
            max: unit.memory_max().await.map_err(refused)?,
        })
    })
}

/// Sets a slice's `MemoryHigh=` and `MemoryMax=` at run time (`systemctl set-property
/// --runtime`: a drop-in under /run that is gone at reboot); systemd writes the cgroup files.
///
/// # Errors
///
/// [`ManagerError`]: unreachable bus, refused call, timeout.
pub fn set_slice_memory(
    bus: &Bus,
    slice: &str,
    memory: MemoryProperties,
) -> Result<(), ManagerError> {
    with_manager(bus, slice, |_, manager| async move {
        let properties = [
            ("MemoryHigh", Variant::from(memory.high)),
            ("MemoryMax", Variant::from(memory.max)),
        ];
        manager
            .set_unit_properties(slice, true, &properties)
            .await
            .map_err(refused)
    })
}

fn unreachable(err: zbus::Error) -> ManagerError {
    ManagerError::Unreachable(err.to_string())
}

fn refused(err: zbus::Error) -> ManagerError {
    ManagerError::Refused(err.to_string())
}

/// Connects to `bus`, hands `work` the connection and the manager's proxy, and runs it to
/// completion within [`MANAGER_TIMEOUT`]; the connection is closed on return.
fn with_manager<'a, T, F, Fut>(bus: &'a Bus, unit: &str, work: F) -> Result<T, ManagerError>
where
    F: FnOnce(zbus::Connection, ManagerProxy<'static>) -> Fut,
    Fut: Future<Output = Result<T, ManagerError>> + 'a,
{
    let task = async move {
        let connection = connect(bus).await?;
        let manager = ManagerProxy::new(&connection).await.map_err(unreachable)?;
        work(connection, manager).await
    };
    zbus::block_on(first_of(task, Timer::after(MANAGER_TIMEOUT)))
        .unwrap_or_else(|| Err(ManagerError::TimedOut(unit.to_string())))
}

async fn connect(bus: &Bus) -> Result<zbus::Connection, ManagerError> {
    let builder = match bus {
        Bus::System => zbus::connection::Builder::system(),
        Bus::Address(address) => zbus::connection::Builder::address(address.as_str()),
    };
    builder
        .method_timeout(MANAGER_TIMEOUT)
        .build()
        .await
        .map_err(unreachable)
}

/// Which bus systemd is reached on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    /// The system bus (`DBUS_SYSTEM_BUS_ADDRESS`, else `/run/dbus/system_bus_socket`).
    System,
    /// A D-Bus address such as `unix:path=/run/...` (tests, and later the user bus).
    Address(String),
}

/// What the new scope is.
#[derive(Debug, Clone)]
pub struct ScopeRequest<'a> {
    /// The unit name, ending in `.scope`, unique per run.
    pub unit: &'a str,
    /// The slice it goes into (systemd creates a missing slice on demand).
    pub slice: &'a str,
    /// One line for `systemctl status`.
    pub description: &'a str,
    /// The process moved into it (`PIDs`).
    pub pid: u32,
}

/// Creates a transient scope with `Delegate=yes` in `slice`, moves `pid` into it and waits
/// for the start job to finish.
///
/// # Errors
///
/// [`ManagerError`]: unreachable bus, refused call, failed job, timeout.
pub fn start_delegated_scope(bus: &Bus, request: &ScopeRequest<'_>) -> Result<(), ManagerError> {
    with_manager(bus, request.unit, |_, manager| {
        start_and_wait(manager, request)
    })
}

async fn start_and_wait(
    manager: ManagerProxy<'static>,
    request: &ScopeRequest<'_>,
) -> Result<(), ManagerError> {
    // The match goes in before the call: the job may end before the reply is read.
    let mut removed = manager.receive_job_removed().await.map_err(unreachable)?;
    let properties = [
        ("Slice", Variant::from(request.slice)),
        ("Delegate", Variant::from(true)),
        ("PIDs", Variant::from(vec![request.pid])),
        ("CollectMode", Variant::from("inactive-or-failed")),
        ("Description", Variant::from(request.description)),
    ];
    let job = manager
        .start_transient_unit(request.unit, "fail", &properties, &[])
        .await
        .map_err(refused)?;
    loop {
        let Some(signal) = next(&mut removed).await else {
            return Err(ManagerError::Unreachable(
                "the connection closed before the scope's start job ended".to_string(),
            ));
        };
        let Ok(args) = signal.args() else { continue };
        if args.job().as_str() != job.as_str() {
            continue;
        }
        return match *args.result() {
            "done" => Ok(()),
            other => Err(ManagerError::JobFailed {
                unit: request.unit.to_string(),
                result: other.to_string(),
            }),
        };
    }
}

/// The next item of a stream.
async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
}

/// Runs `work` until it finishes (`Some`) or `timer` fires first (`None`).
async fn first_of<F: Future>(work: F, timer: Timer) -> Option<F::Output> {
    let mut work = std::pin::pin!(work);
    let mut timer = std::pin::pin!(timer);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// A future that is ready after a duration, woken by a short-lived thread (zbus's own
/// runtime exposes no timer). Dropping it ends the thread at once: the thread waits on a
/// channel whose sender the timer holds, not in a sleep.
struct Timer {
    duration: Duration,
    state: Option<Arc<TimerState>>,
    /// Dropped with the timer, which wakes the thread to end without firing.
    cancel: Option<mpsc::Sender<()>>,
}

#[derive(Default)]
struct TimerState {
    fired: AtomicBool,
    /// The thread has returned.
    ended: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Timer {
    fn after(duration: Duration) -> Timer {
        Timer {
            duration,
            state: None,
            cancel: None,
        }
    }
}

impl Future for Timer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let duration = self.duration;
        if self.state.is_none() {
            let state = Arc::new(TimerState::default());
            let fire = Arc::clone(&state);
            let (cancel, cancelled) = mpsc::channel::<()>();
            std::thread::spawn(move || {
                // Only a timeout fires; the sender dropped (the timer gone) ends the wait.
                if let Err(mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(duration) {
                    fire.fired.store(true, Ordering::Release);
                    if let Some(waker) = fire.waker.lock().ok().and_then(|mut w| w.take()) {
                        waker.wake();
                    }
                }
                fire.ended.store(true, Ordering::Release);
            });
            self.state = Some(state);
            self.cancel = Some(cancel);
        }
        let Some(state) = self.state.as_ref() else {
            return Poll::Pending;
        };
        if state.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if let Ok(mut waker) = state.waker.lock() {
            *waker = Some(cx.waker().clone());
        }
        // The thread may have fired between the check and storing the waker.
        if state.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timer_ends_work_that_never_finishes() {
        let outcome = zbus::block_on(first_of(
            std::future::pending::<()>(),
            Timer::after(Duration::from_millis(20)),
        ));
        assert_eq!(outcome, None);
    }

    #[test]
    fn a_dropped_timer_ends_its_thread_at_once() {
        let mut timer = Box::pin(Timer::after(Duration::from_secs(600)));
        let waker = std::task::Waker::noop();
        assert!(timer
            .as_mut()
            .poll(&mut Context::from_waker(waker))
            .is_pending());
        let state = timer.state.clone().expect("polled: the thread runs");
        drop(timer);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !state.ended.load(Ordering::Acquire) {
            assert!(
                std::time::Instant::now() < deadline,
                "the thread still waits"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!state.fired.load(Ordering::Acquire));
    }

    #[test]
    fn finished_work_wins_over_the_timer() {
        let outcome = zbus::block_on(first_of(async { 7 }, Timer::after(Duration::from_secs(60))));
        assert_eq!(outcome, Some(7));
    }

    #[test]
    fn no_bus_is_unreachable_not_refused() {
        // A bus address that cannot exist: connecting fails before any call is made.
        let bus = Bus::Address("unix:path=/nonexistent/resctl-test-bus".to_string());
        let result = start_delegated_scope(
            &bus,
            &ScopeRequest {
                unit: "resctl-test.scope",
                slice: "resctl.slice",
                description: "test",
                pid: std::process::id(),
            },
        );
        assert!(
            matches!(result, Err(ManagerError::Unreachable(_))),
            "{result:?}"
        );
    }
}
