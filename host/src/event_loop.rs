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
    /// Plugins were added or removed while running.
    fn plugins_changed(&mut self, _session: &mut Session) {}
    /// Refresh period (may change at runtime).
    fn refresh(&self) -> Duration;
}

/// A ring map's fd, watched by tokio. Not owned: the BPF object closes it, and
/// the loop drops this registration before that can happen.
struct RingFd(RawFd);
impl AsRawFd for RingFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

fn register(fds: &[RawFd]) -> Vec<AsyncFd<RingFd>> {
    fds.iter()
        .filter_map(|&fd| {
            // SAFETY: the fd stays open while the session's poller lives; the
            // registrations are dropped and made anew whenever the poller changes.
            match unsafe { AsyncFd::register_with_interest(RingFd(fd), Interest::READABLE) } {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::warn!("cannot watch a ring buffer ({e}); it is drained at each refresh");
                    None
                }
            }
        })
        .collect()
}

/// While records keep coming, drain again after this long instead of waiting
/// for the next wake-up: under a burst the kernel's wake-ups arrive late (irq
/// work), and a 4 MiB ring fills in tens of milliseconds.
const BUSY_POLL: Duration = Duration::from_millis(1);

/// Dispatch everything the rings hold (in batches) to the plugins and frontend.
/// Returns how many records there were.
fn drain(session: &mut Session, fe: &mut dyn Frontend) -> Result<usize, StopReason> {
    let mut stop = None;
    let mut total = 0;
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
        total += n;
        if n < PUMP_BATCH {
            return Ok(total);
        }
    }
}

/// Debug builds only: `TRACER_HOST_FAULT=panic` makes the host's own code panic
/// at the first refresh, so the tests can show that a host bug still detaches
/// everything and restores the terminal. Release builds have no such switch.
fn injected_fault() {
    #[cfg(debug_assertions)]
    if std::env::var_os("TRACER_HOST_FAULT").is_some_and(|v| v == "panic") {
        panic!("host fault injected by TRACER_HOST_FAULT=panic");
    }
}

/// What runs beside the plugins, each optional.
#[derive(Default)]
pub struct Services<'a> {
    /// Plugins dropped into or taken out of the plugins directory.
    pub hotplug: Option<crate::hotplug::HotPlug>,
    /// Scrapes of the Prometheus endpoint.
    pub metrics: Option<crate::metrics_http::Endpoint>,
    /// SIGHUP: re-read the configuration. None: SIGHUP stops the host (a
    /// terminal that hangs up).
    pub reload: Option<Box<dyn FnMut(&mut Session) + 'a>>,
    /// SIGUSR1: write the report now.
    pub report: Option<Box<dyn FnMut(&Session) + 'a>>,
    /// Called at this period (the OTLP push), after the refresh it follows.
    pub every: Option<(Duration, Box<dyn FnMut(&Session) + 'a>)>,
}

pub async fn run(session: &mut Session, fe: &mut dyn Frontend, duration: Option<Duration>, terminal: bool, services: Services<'_>) -> StopReason {
    let Services { mut hotplug, mut metrics, mut reload, mut report, mut every } = services;
    let mut every_tick = every.as_ref().map(|(p, _)| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + *p, *p);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let mk = |k: SignalKind| signal(k).expect("installing a signal handler");
    let (mut sigint, mut sigterm, mut sighup, mut sigusr1) =
        (mk(SignalKind::interrupt()), mk(SignalKind::terminate()), mk(SignalKind::hangup()), mk(SignalKind::user_defined1()));
    let deadline = duration.map(|d| tokio::time::Instant::now() + d);
    let mut events = if terminal { Some(EventStream::new()) } else { None };
    let mut watched = session.poller_generation();
    let mut watch = register(&session.ring_fds());
    let mut period = fe.refresh();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    // Records in the last drain: non-zero means a burst is on, so poll again soon.
    let mut busy = false;
    loop {
        let step: Result<usize, StopReason> = tokio::select! {
            _ = sigint.recv() => Err(StopReason::Signal("SIGINT")),
            _ = sigterm.recv() => Err(StopReason::Signal("SIGTERM")),
            _ = sighup.recv() => match reload.as_mut() {
                Some(r) => {
                    r(session);
                    fe.plugins_changed(session);
                    Ok(usize::from(busy))
                }
                None => Err(StopReason::Signal("SIGHUP")),
            },
            _ = async { every_tick.as_mut().unwrap().tick().await }, if every_tick.is_some() => {
                if let Some((_, f)) = every.as_mut() {
                    f(session);
                }
                Ok(usize::from(busy))
            }
            _ = sigusr1.recv() => {
                match report.as_mut() {
                    Some(r) => r(session),
                    None => tracing::warn!("SIGUSR1: there is no --report file to write"),
                }
                Ok(usize::from(busy))
            }
            _ = async { tokio::time::sleep_until(deadline.unwrap()).await }, if deadline.is_some() => {
                // Take what is still in the rings before the final report.
                drain(session, fe).and(Err(StopReason::DurationOver))
            }
            _ = tokio::time::sleep(BUSY_POLL), if busy => drain(session, fe),
            // In an async block: select! builds disabled branches' futures too,
            // and select_all panics on an empty list.
            (ready, _, _) = async { futures_util::future::select_all(watch.iter().map(|w| Box::pin(w.readable()))).await }, if !watch.is_empty() => {
                match ready {
                    Ok(mut guard) => {
                        // Cleared before draining: data that arrives meanwhile
                        // makes the fd readable again.
                        guard.clear_ready();
                        drain(session, fe)
                    }
                    Err(e) => Err(StopReason::Error(format!("waiting for ring buffers: {e}"))),
                }
            }
            _ = tick.tick() => {
                // Also drains here, so a missed wake-up costs at most one period.
                drain(session, fe).and_then(|n| {
                    injected_fault();
                    tracer_core::format::Clock::resample();
                    if let Some(h) = hotplug.as_mut() {
                        if h.tick(session) {
                            fe.plugins_changed(session);
                        }
                    }
                    session.refresh();
                    fe.tick(session).map(|_| n)
                })
            }
            // A scrape: encoded here, where the plugins live, from what the
            // last refresh read (the HTTP thread waits for the text).
            req = async { metrics.as_mut().unwrap().requests.recv().await }, if metrics.is_some() => {
                if let (Some(req), Some(m)) = (req, metrics.as_ref()) {
                    let _ = req.reply.send(crate::exposition::encode(session, &m.exposition));
                }
                Ok(usize::from(busy))
            }
            ev = async { hotplug.as_mut().unwrap().events.recv().await }, if hotplug.is_some() => {
                if let (Some(ev), Some(h)) = (ev, hotplug.as_mut()) {
                    if h.apply(ev, session) {
                        fe.plugins_changed(session);
                    }
                }
                Ok(usize::from(busy))
            }
            ev = async { events.as_mut().unwrap().next().await }, if events.is_some() => {
                match ev {
                    Some(Ok(ev)) => fe.terminal_event(ev, session).map(|_| usize::from(busy)),
                    Some(Err(e)) => Err(StopReason::Error(format!("reading the terminal: {e}"))),
                    None => Err(StopReason::Error("the terminal closed".into())),
                }
            }
        };
        match step {
            Ok(n) => busy = n > 0,
            Err(StopReason::Error(e)) => return StopReason::Error(e),
            Err(reason) => {
                // Records still in the rings (wake-ups are batched) are part of
                // the run: hand them over before the final report.
                if let Err(StopReason::Error(e)) = drain(session, fe) {
                    return StopReason::Error(e);
                }
                return reason;
            }
        }
        // A plugin may have been stopped (fault, or switched off): follow the poller.
        if session.poller_generation() != watched {
            watch.clear(); // deregister before the old fd numbers can be reused
            watched = session.poller_generation();
            watch = register(&session.ring_fds());
        }
        if fe.refresh() != period {
            period = fe.refresh();
            tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
    }
}
