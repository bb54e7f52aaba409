//! The plugin-side adapter: plugins implement the plain Rust trait [`NativeTracer`];
//! [`into_tracer_box`] wraps it in the ABI-stable [`Tracer`] object and makes every
//! entry point catch panics.
//!
//! Why: each plugin `.so` has its own copy of std. A panic that unwinds across the
//! boundary aborts the whole host without running its destructors, so BPF links
//! would stay attached and the terminal raw. Here a panic becomes an `RErr`, the
//! plugin is marked poisoned (its state may be half-updated) and every later call
//! answers with the same error, so the host can switch it off and carry on.

use crate::{
    Configuration, ErrorKind, MapSnapshot, MetricSample, Panel, PanelContent, PluginDescriptor, PluginError, ProbeSpec, Tracer, TracerBox,
    Tracer_TO,
};
use crate::value::FieldValue;
use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RErr, ROk, ROption, RResult, RSlice, RStr, RVec},
};
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

/// What a plugin implements. Plain Rust types; no ABI concerns. Errors are
/// plain text; the adapter gives them their kind by entry point (a refused
/// `configure` is a settings error, a refused record or map an input error, a
/// panic in any entry point is fatal).
pub trait NativeTracer: 'static {
    fn describe(&self) -> PluginDescriptor;
    /// Settings are a JSON object; return the config map's bytes or an error that
    /// names the key to fix.
    fn configure(&mut self, settings_json: &str) -> Result<Vec<u8>, String>;
    /// The probes the settings last configured call for, where they differ
    /// from the descriptor's (a tracer whose hooks are chosen by its settings).
    fn probes(&self) -> Option<Vec<ProbeSpec>> {
        None
    }
    /// Aggregate one record; when `out` is given, also push its decoded fields
    /// (as rows of the ring's fields: none, one or several, see `Tracer::on_record`).
    fn on_record(
        &mut self,
        ring: u32,
        data: &[u8],
        out: Option<&mut RVec<FieldValue>>,
    ) -> Result<(), String>;
    fn on_map(&mut self, _snapshot: &MapSnapshot) -> Result<(), String> {
        Ok(())
    }
    fn panel(&self, id: &str) -> Result<Panel, String>;
    fn reset(&mut self);
    /// The current value of each declared metric.
    fn metrics(&self) -> Vec<MetricSample> {
        Vec::new()
    }
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replace this library's panic hook (it is this `.so`'s own std) with one that
/// records the message instead of printing it over the host's terminal.
fn install_quiet_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = info.payload().downcast_ref::<String>() {
                s.clone()
            } else {
                "panic".to_string()
            };
            let place = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg}{place}")));
        }));
    });
}

fn panic_message(entry: &str) -> String {
    let detail = LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| "panic".into());
    format!("plugin panicked in {entry}: {detail}")
}

/// Run the plugin's constructor under `catch_unwind`. Used by [`crate::export_tracer`].
pub fn construct<T: NativeTracer>(ctor: impl FnOnce() -> T) -> RResult<TracerBox, PluginError> {
    install_quiet_panic_hook();
    match catch_unwind(AssertUnwindSafe(ctor)) {
        Ok(t) => ROk(into_tracer_box(t)),
        Err(_) => RErr(PluginError::new(ErrorKind::PANICKED, panic_message("new"))),
    }
}

/// Wrap a native tracer into the ABI-stable object the host receives.
pub fn into_tracer_box<T: NativeTracer>(t: T) -> TracerBox {
    install_quiet_panic_hook();
    Tracer_TO::from_value(Guarded { inner: t, poisoned: RefCell::new(None) }, TD_Opaque)
}

struct Guarded<T> {
    inner: T,
    poisoned: RefCell<Option<String>>,
}

/// Call `f` unless the plugin is poisoned; an error it returns gets `kind`; a
/// panic becomes a fatal error and poisons the plugin.
fn guarded<R>(
    poisoned: &RefCell<Option<String>>,
    entry: &str,
    kind: ErrorKind,
    f: impl FnOnce() -> Result<R, String>,
) -> RResult<R, PluginError> {
    if let Some(why) = poisoned.borrow().as_ref() {
        return RErr(PluginError::new(ErrorKind::PANICKED, format!("plugin disabled after an earlier panic ({why})")));
    }
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => ROk(v),
        Ok(Err(e)) => RErr(PluginError::new(kind, e)),
        Err(_) => {
            let msg = panic_message(entry);
            *poisoned.borrow_mut() = Some(msg.clone());
            RErr(PluginError::new(ErrorKind::PANICKED, msg))
        }
    }
}

impl<T: NativeTracer> Tracer for Guarded<T> {
    fn describe(&self) -> RResult<PluginDescriptor, PluginError> {
        guarded(&self.poisoned, "describe", ErrorKind::OTHER, || Ok(self.inner.describe()))
    }

    fn configure(&mut self, settings_json: RStr<'_>) -> RResult<Configuration, PluginError> {
        let inner = &mut self.inner;
        guarded(&self.poisoned, "configure", ErrorKind::SETTINGS, || {
            let config = inner.configure(settings_json.as_str())?;
            let probes = inner.probes().map(RVec::from);
            Ok(Configuration { config: config.into(), probes: ROption::from(probes) })
        })
    }

    fn on_record(
        &mut self,
        ring: u32,
        data: RSlice<'_, u8>,
        decode: bool,
        out: &mut RVec<FieldValue>,
    ) -> RResult<(), PluginError> {
        let inner = &mut self.inner;
        guarded(&self.poisoned, "on_record", ErrorKind::INPUT, || {
            inner.on_record(ring, data.as_slice(), if decode { Some(out) } else { None })
        })
    }

    fn on_map(&mut self, snapshot: &MapSnapshot) -> RResult<(), PluginError> {
        let inner = &mut self.inner;
        guarded(&self.poisoned, "on_map", ErrorKind::INPUT, || inner.on_map(snapshot))
    }

    fn panel(&self, id: RStr<'_>) -> RResult<PanelContent, PluginError> {
        guarded(&self.poisoned, "panel", ErrorKind::NO_SUCH_PANEL, || self.inner.panel(id.as_str()).map(Panel::boxed))
    }

    fn reset(&mut self) -> RResult<(), PluginError> {
        let inner = &mut self.inner;
        guarded(&self.poisoned, "reset", ErrorKind::OTHER, || {
            inner.reset();
            Ok(())
        })
    }

    fn metrics(&self) -> RResult<RVec<MetricSample>, PluginError> {
        guarded(&self.poisoned, "metrics", ErrorKind::OTHER, || Ok(self.inner.metrics().into()))
    }
}
