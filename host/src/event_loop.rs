//! The host's one event loop (single-threaded tokio): ring-buffer readiness,
//! the refresh tick, terminal input, signals and the --duration deadline. Plugins
//! and the poller live on this thread only, so no plugin state is shared.

use crossterm::event::{Event, EventStream};
use futures_util::StreamExt;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;
use tokio::io::{unix::AsyncFd, Interest};
use tokio::signal::unix::{signal, SignalKind};
use tracer_core::session::{PluginSlot, Session, PUMP_BATCH};
use tracer_plugin_api::FieldValue;

#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    DurationOver,
    Signal(&'static str),
    Quit,
    OutputClosed,
    Error(String),
}

/// What differs between the headless writer and the TUI.
pub trait Frontend {
    /// Whether records should be decoded and passed to [`Frontend::record`].
    fn wants_records(&self) -> bool;
    fn record(&mut self, _slot: &PluginSlot, _ring: u32, _values: &[FieldValue]) -> Result<(), StopReason> {
        Ok(())
    }
    /// Called at every refresh, after the session read its maps.
    fn tick(&mut self, session: &mut Session) -> Result<(), StopReason>;
    fn terminal_event(&mut self, _ev: Event, _session: &mut Session) -> Result<(), StopReason> {
        Ok(())
    }
    /// Refresh period (may change at runtime).
    fn refresh(&self) -> Duration;
}

/// The ring buffer manager's epoll fd, watched by tokio. Not owned: the poller
/// closes it, and the loop drops this registration before that can happen.
struct EpollFd(RawFd);
impl AsRawFd for EpollFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

fn register(fd: Option<RawFd>) -> Option<AsyncFd<EpollFd>> {
    let fd = fd?;
    // SAFETY: the fd stays open while the session's poller lives; `watch` is
    // re-created (and this registration dropped) whenever the poller changes.
    match unsafe { AsyncFd::register_with_interest(EpollFd(fd), Interest::READABLE) } {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::warn!("cannot watch the ring buffers ({}); polling at each refresh", e);
            None
        }
    }
}

/// Dispatch everything the rings hold (in batches) to the plugins and frontend.
fn drain(session: &mut Session, fe: &mut dyn Frontend) -> Result<(), StopReason> {
    let mut stop = None;
    loop {
        let n = if fe.wants_records() {
            let mut sink = |slot: &PluginSlot, ring: u32, values: &[FieldValue]| {
                if stop.is_none() {
                    if let Err(s) = fe.record(slot, ring, values) {
                        stop = Some(s);
                    }
                }
            };
            session.pump(Some(&mut sink))
        } else {
            session.pump(None)
        }
        .map_err(StopReason::Error)?;
        if let Some(s) = stop {
            return Err(s);
        }
        if n < PUMP_BATCH {
            return Ok(());
        }
    }
}

pub async fn run(
    session: &mut Session,
    fe: &mut dyn Frontend,
    duration: Option<Duration>,
    terminal: bool,
) -> StopReason {
    let mk = |k: SignalKind| signal(k).expect("installing a signal handler");
    let (mut sigint, mut sigterm, mut sighup) =
        (mk(SignalKind::interrupt()), mk(SignalKind::terminate()), mk(SignalKind::hangup()));
    let deadline = duration.map(|d| tokio::time::Instant::now() + d);
    let mut events = if terminal { Some(EventStream::new()) } else { None };
    let mut watched_fd = session.epoll_fd();
    let mut watch = register(watched_fd);
    let mut period = fe.refresh();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        let step: Result<(), StopReason> = tokio::select! {
            _ = sigint.recv() => Err(StopReason::Signal("SIGINT")),
            _ = sigterm.recv() => Err(StopReason::Signal("SIGTERM")),
            _ = sighup.recv() => Err(StopReason::Signal("SIGHUP")),
            _ = async { tokio::time::sleep_until(deadline.unwrap()).await }, if deadline.is_some() => {
                // Take what is still in the rings before the final report.
                drain(session, fe).and(Err(StopReason::DurationOver))
            }
            ready = async { watch.as_ref().unwrap().readable().await }, if watch.is_some() => {
                match ready {
                    Ok(mut guard) => {
                        guard.clear_ready();
                        drain(session, fe)
                    }
                    Err(e) => Err(StopReason::Error(format!("waiting for ring buffers: {e}"))),
                }
            }
            _ = tick.tick() => {
                // Also drains here, so a missed wake-up costs at most one period.
                drain(session, fe).and_then(|_| {
                    session.refresh();
                    fe.tick(session)
                })
            }
            ev = async { events.as_mut().unwrap().next().await }, if events.is_some() => {
                match ev {
                    Some(Ok(ev)) => fe.terminal_event(ev, session),
                    Some(Err(e)) => Err(StopReason::Error(format!("reading the terminal: {e}"))),
                    None => Err(StopReason::Error("the terminal closed".into())),
                }
            }
        };
        if let Err(reason) = step {
            return reason;
        }
        // A plugin may have been stopped (fault, or switched off): follow the poller.
        if session.epoll_fd() != watched_fd {
            drop(watch.take()); // deregister before the old fd number can be reused
            watched_fd = session.epoll_fd();
            watch = register(watched_fd);
        }
        if fe.refresh() != period {
            period = fe.refresh();
            tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
    }
}
