//! A running set of plugins: their BPF runtimes, the shared poller, dispatch of
//! records to plugins, counters and map reads. Knows nothing of any one tracer.

use crate::bpf_runtime::{self, BpfRuntime};
use crate::loader::{self, LoadFailure, LoadedPlugin};
use crate::poller::Poller;
use abi_stable::std_types::{RSlice, RStr, RVec};
use std::path::{Path, PathBuf};
use tracer_plugin_api::{
    FieldSpec, FieldValue, MapEntry, MapSnapshot, PanelContent, PluginDescriptor, ProbeSpec, TracerBox,
};

/// Records dispatched per call of [`Session::pump`] at most, so one busy plugin
/// cannot starve the UI and the inbox stays small.
pub const PUMP_BATCH: usize = 8192;

#[derive(Debug, Clone, PartialEq)]
pub enum SlotState {
    Running,
    /// Loaded but not started (not selected, or switched off).
    Off,
    /// Could not start or was stopped after a fault: one line, then details.
    Failed(String),
    /// Its file was taken out of the plugins directory: stopped on purpose.
    Removed,
}

/// Per-plugin figures for the status line and the final report.
#[derive(Debug, Clone, Default)]
pub struct PluginStats {
    pub records: u64,
    pub record_errors: u64,
    /// Sum of the plugin's drop counters (ring buffer full, state map full, ...),
    /// over every attachment since the host started.
    pub drops: u64,
    /// Every declared counter: (name, value), over every attachment.
    pub counters: Vec<(String, u64)>,
    /// Counters of earlier attachments (a detached plugin's maps are gone, its
    /// losses are not).
    counters_before: Vec<u64>,
    /// Set while a counter cannot be read: the figures above are then not
    /// current and must not be shown as if they were.
    pub counter_error: Option<String>,
    pub last_error: Option<String>,
    /// Kernel-side cost while BPF statistics are on: ns per program run over
    /// the last refresh, and % of one CPU.
    pub bpf_ns_per_event: Option<f64>,
    pub bpf_cpu_percent: f64,
    cost: crate::bpf_stats::CostMeter,
    /// While BPF statistics are on: the plugin's programs' run time (ns) and
    /// runs since it was first started, over every attachment (the kernel's
    /// figures start again with each new program). For exported counters.
    pub bpf_run_ns_total: u64,
    pub bpf_runs_total: u64,
    /// The kernel's (run ns, runs) at the last refresh.
    bpf_last: (u64, u64),
}

pub struct PluginSlot {
    pub path: PathBuf,
    pub desc: PluginDescriptor,
    tracer: TracerBox,
    bpf: Option<BpfRuntime>,
    pub state: SlotState,
    pub stats: PluginStats,
    /// The settings (JSON) last applied, so a reset can write the kernel filter
    /// anew.
    settings: String,
    /// The probes the settings chose, where they differ from the descriptor's.
    probes: Option<RVec<ProbeSpec>>,
    /// Device and inode of the plugin file when it was loaded.
    file_id: Option<(u64, u64)>,
}

/// (device, inode) of a file, to tell a file renamed into place twice from one
/// replaced by another.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl PluginSlot {
    /// A loaded plugin, not started.
    fn new(LoadedPlugin { path, tracer, desc }: LoadedPlugin) -> PluginSlot {
        PluginSlot {
            file_id: file_id(&path),
            path,
            desc,
            tracer,
            bpf: None,
            state: SlotState::Off,
            stats: PluginStats::default(),
            settings: "{}".into(),
            probes: None,
        }
    }

    pub fn name(&self) -> &str {
        self.desc.info.name.as_str()
    }

    /// The settings (JSON) it runs with.
    pub fn settings(&self) -> &str {
        &self.settings
    }

    pub fn runtime(&self) -> Option<&BpfRuntime> {
        self.bpf.as_ref()
    }

    /// Field specs of ring `ring`.
    pub fn fields(&self, ring: u32) -> &[FieldSpec] {
        self.desc.rings.get(ring as usize).map(|r| r.fields.as_slice()).unwrap_or(&[])
    }

    /// The plugin's metric samples as of the last map read.
    pub fn metrics(&self) -> Result<Vec<tracer_plugin_api::MetricSample>, String> {
        self.tracer.metrics().into_result().map(|v| v.into_vec()).map_err(|e| e.to_string())
    }

    /// Current contents of one of this plugin's panels.
    pub fn panel(&self, id: &str) -> Result<PanelContent, String> {
        self.tracer.panel(RStr::from(id)).into_result().map_err(|e| e.to_string())
    }

    /// Read every declared counter (summed with earlier attachments). A counter
    /// that cannot be read leaves the last figures and says why.
    fn read_counters(&mut self) {
        let Some(rt) = &self.bpf else { return };
        let mut counters = Vec::new();
        let mut drops = 0u64;
        let mut error = None;
        for (i, c) in self.desc.counters.iter().enumerate() {
            match rt.read_percpu_u64(c.map.as_str(), c.index) {
                Ok(v) => {
                    let v = v.saturating_add(self.stats.counters_before.get(i).copied().unwrap_or(0));
                    if c.is_drop {
                        drops = drops.saturating_add(v);
                    }
                    counters.push((c.name.to_string(), v));
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        match error {
            None => {
                self.stats.counters = counters;
                self.stats.drops = drops;
                self.stats.counter_error = None;
            }
            Some(e) => {
                self.stats.last_error = Some(e.clone());
                self.stats.counter_error = Some(e);
            }
        }
    }

    fn configure(&mut self, settings_json: &str) -> Result<Configured, String> {
        let c = self.tracer.configure(RStr::from(settings_json)).into_result().map_err(|e| e.to_string())?;
        Ok(Configured {
            config: self.desc.config_map.as_ref().into_option().map(|m| (m.to_string(), c.config.to_vec())),
            probes: c.probes.into_option(),
        })
    }

    /// Whether the plugin takes these settings (and the host its `attach`
    /// key), without loading anything: `--check-config`.
    /// Hand every polled map to the plugin. Returns the error of a plugin
    /// that says it cannot go on (others are kept as its last error).
    fn read_polled_maps(&mut self) -> Option<String> {
        let rt = self.bpf.as_ref()?;
        for name in self.desc.polled_maps.iter() {
            let snap = match rt.read_map(name.as_str()) {
                Ok((per_key, entries)) => MapSnapshot {
                    name: name.clone(),
                    values_per_key: per_key,
                    entries: entries.into_iter().map(|(k, v)| MapEntry { key: k.into(), value: v.into() }).collect(),
                },
                Err(e) => {
                    self.stats.last_error = Some(e);
                    continue;
                }
            };
            if let Err(e) = self.tracer.on_map(&snap).into_result() {
                let fatal = e.is_fatal();
                let e = e.to_string();
                self.stats.last_error = Some(e.clone());
                if fatal {
                    return Some(e);
                }
            }
        }
        None
    }

    pub fn check_settings(&mut self, settings_json: &str) -> Result<(), String> {
        let (plugin_json, _) = split_host_settings(settings_json)?;
        self.configure(&plugin_json).map(|_| ())
    }

    /// The descriptor with the probes the settings call for.
    fn desc_for(&self, probes: &Option<RVec<ProbeSpec>>) -> std::borrow::Cow<'_, PluginDescriptor> {
        match probes {
            None => std::borrow::Cow::Borrowed(&self.desc),
            Some(p) => {
                let mut d = self.desc.clone();
                d.probes = p.clone();
                std::borrow::Cow::Owned(d)
            }
        }
    }
}

/// What a plugin's settings came to.
struct Configured {
    /// (config map, bytes for key 0)
    config: Option<(String, Vec<u8>)>,
    /// The probes to attach, where the settings change them.
    probes: Option<RVec<ProbeSpec>>,
}

/// Probes compared by what they attach: programs and their targets.
fn probes_key(p: &Option<RVec<ProbeSpec>>) -> Option<Vec<String>> {
    p.as_ref().map(|ps| {
        ps.iter()
            .flat_map(|p| p.alternatives.iter().flat_map(|a| a.programs.iter()).map(move |r| format!("{}:{}:{}:{}", p.name, r.name, r.target, r.optional)))
            .collect()
    })
}

/// Why a plugin did not start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StartError {
    /// The plugin refused its settings (the message names the setting).
    #[error("{0}")]
    Settings(String),
    /// Loading or attaching its BPF programs failed.
    #[error("{0}")]
    Bpf(String),
}

/// The settings key the host takes for itself: `attach = "kprobe"` forces one
/// attach mode for every probe of the plugin.
pub const ATTACH_KEY: &str = "attach";

/// Split a plugin's settings into what the plugin gets (JSON text) and the
/// attach mode forced by the host's own key, if any.
pub fn split_host_settings(settings_json: &str) -> Result<(String, Option<String>), String> {
    let mut v: serde_json::Value = serde_json::from_str(settings_json).map_err(|e| format!("settings are not JSON: {e}"))?;
    use crate::kernel_features::AttachKind;
    let attach = match v.as_object_mut().and_then(|o| o.remove(ATTACH_KEY)) {
        None => None,
        Some(mode) => match mode.as_str().and_then(AttachKind::from_label) {
            Some(kind) => Some(kind.label().to_string()),
            None => {
                let known: Vec<&str> = AttachKind::ALL.iter().map(|k| k.label()).collect();
                return Err(format!("{ATTACH_KEY}: {mode} is not an attach mode (one of: {})", known.join(", ")));
            }
        },
    };
    Ok((v.to_string(), attach))
}

pub struct Session {
    // Declared first: the poller holds the ring fds of the runtimes in `slots`
    // and must be dropped before them.
    poller: Option<Poller>,
    pub slots: Vec<PluginSlot>,
    pub load_failures: Vec<LoadFailure>,
    scratch: RVec<FieldValue>,
    /// Bumped whenever the poller is replaced, so the event loop knows when to
    /// watch other fds without comparing fd lists on every wake-up.
    poller_generation: u64,
}

impl Session {
    /// Load every plugin in `dir` (none is started yet).
    pub fn load(dir: &Path) -> Result<Session, String> {
        crate::libbpf_log::install();
        let (plugins, load_failures) = loader::load_dir(dir)?;
        let slots = plugins.into_iter().map(PluginSlot::new).collect();
        Ok(Session { poller: None, slots, load_failures, scratch: RVec::new(), poller_generation: 0 })
    }

    /// Check and load one plugin file that appeared in `dir` while running.
    /// Returns the new slot's index; the plugin is not started.
    pub fn add_plugin_file(&mut self, dir: &Path, path: &Path) -> Result<usize, LoadFailure> {
        let fail = |reason: String| LoadFailure { path: path.to_path_buf(), reason };
        if let Some(i) = self.slots.iter().position(|s| s.path == path) {
            // The same file seen again (a rename is reported as "to" and as
            // "both"): nothing to do. Another file under the same name cannot
            // replace a loaded library.
            if self.slots[i].file_id.is_some() && self.slots[i].file_id == file_id(path) {
                return Ok(i);
            }
            return Err(fail("already loaded (a library cannot be replaced while the host runs: restart to update it)".into()));
        }
        let dir = crate::safety::check_dir(dir).map_err(fail)?;
        let real = crate::safety::check_file(&dir, path).map_err(fail)?;
        let loaded = loader::load_library(&real).map_err(fail)?;
        if let Some(first) = self.slots.iter().find(|s| s.name() == loaded.name()) {
            return Err(fail(format!("a plugin named {:?} is already loaded from {}", first.name(), first.path.display())));
        }
        // Known by the path it was found under (events name it so).
        self.slots.push(PluginSlot::new(LoadedPlugin { path: path.to_path_buf(), ..loaded }));
        Ok(self.slots.len() - 1)
    }

    /// A plugin file went away: switch its plugin off (the library stays mapped).
    pub fn remove_plugin_file(&mut self, path: &Path) -> Option<usize> {
        let idx = self.slots.iter().position(|s| s.path == path)?;
        self.stop(idx, None);
        self.slots[idx].state = SlotState::Removed;
        Some(idx)
    }

    pub fn slot_index(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.name() == name)
    }

    /// Configure, load and attach plugin `idx`. On failure the slot is `Failed`
    /// with the reason, which is also returned.
    pub fn start(&mut self, idx: usize, settings_json: &str) -> Result<(), StartError> {
        let slot = &mut self.slots[idx];
        let result = split_host_settings(settings_json).map_err(StartError::Settings).and_then(|(plugin_json, attach)| {
            let cfg = slot.configure(&plugin_json).map_err(StartError::Settings)?;
            let cfg_ref = cfg.config.as_ref().map(|(m, b)| (m.as_str(), b.as_slice()));
            let rt = bpf_runtime::start(&slot.desc_for(&cfg.probes), cfg_ref, attach.as_deref()).map_err(StartError::Bpf)?;
            Ok((rt, cfg.probes))
        });
        match result {
            Ok((rt, probes)) => {
                slot.bpf = Some(rt);
                slot.probes = probes;
                slot.state = SlotState::Running;
                slot.settings = settings_json.to_string();
                self.rebuild_poller().map_err(StartError::Bpf)
            }
            Err(e) => {
                slot.state = SlotState::Failed(e.to_string());
                Err(e)
            }
        }
    }

    /// Detach plugin `idx`'s programs; it keeps its aggregates.
    pub fn stop(&mut self, idx: usize, why: Option<String>) {
        // The poller refers to this runtime's ring: rebuild it without.
        self.poller = None;
        let slot = &mut self.slots[idx];
        // Last reading before the maps go: what was lost stays counted.
        slot.read_counters();
        if slot.bpf.is_some() {
            slot.stats.counters_before = slot.stats.counters.iter().map(|(_, v)| *v).collect();
        }
        slot.bpf = None;
        slot.state = match why {
            Some(w) => SlotState::Failed(w),
            None => SlotState::Off,
        };
        if let Err(e) = self.rebuild_poller() {
            tracing::error!("rebuilding the poller: {e}");
        }
    }

    /// Stop everything: every link detached, every BPF object closed.
    pub fn shutdown(&mut self) {
        self.poller = None;
        self.poller_generation += 1;
        for s in &mut self.slots {
            if s.bpf.is_some() {
                s.read_counters();
            }
            s.bpf = None;
            if s.state == SlotState::Running {
                s.state = SlotState::Off;
            }
        }
    }

    fn rebuild_poller(&mut self) -> Result<(), String> {
        self.poller = None;
        self.poller_generation += 1;
        let runtimes = self.slots.iter().enumerate().filter_map(|(i, s)| {
            let rings = s.desc.rings.iter().map(|r| r.map.to_string()).collect();
            s.bpf.as_ref().map(|rt| (i as u32, rt, rings))
        });
        self.poller = Poller::build(runtimes)?;
        Ok(())
    }

    /// Changes whenever [`Session::ring_fds`] may have.
    pub fn poller_generation(&self) -> u64 {
        self.poller_generation
    }

    /// The ring maps' fds to wait on (empty when no running plugin has a ring).
    /// They change whenever a plugin starts or stops.
    pub fn ring_fds(&self) -> Vec<std::os::fd::RawFd> {
        self.poller.as_ref().map(|p| p.ring_fds().to_vec()).unwrap_or_default()
    }

    /// Apply new settings to a running plugin: the kernel filter changes at once.
    pub fn set_settings(&mut self, idx: usize, settings_json: &str) -> Result<(), String> {
        let slot = &mut self.slots[idx];
        // The attach mode is chosen at start; here it is only taken off.
        let (plugin_json, _) = split_host_settings(settings_json)?;
        let cfg = slot.configure(&plugin_json)?;
        if slot.bpf.is_some() && probes_key(&cfg.probes) != probes_key(&slot.probes) {
            // The settings change what is attached: attach anew; the
            // plugin keeps its aggregates.
            self.stop(idx, None);
            return self.start(idx, settings_json).map_err(|e| e.to_string());
        }
        match (&slot.bpf, cfg.config) {
            (Some(rt), Some((map, bytes))) => {
                rt.write_config(&map, &bytes)?;
                slot.settings = settings_json.to_string();
                Ok(())
            }
            (None, _) => Err(format!("plugin {} is not running", slot.name())),
            (_, None) => Err(format!("plugin {} has no kernel-side settings", slot.name())),
        }
    }

    /// Copy out up to [`PUMP_BATCH`] records and hand each to its plugin. With
    /// `sink`, records are decoded and passed on as (slot, ring, fields).
    /// Returns the number of records dispatched.
    pub fn pump(
        &mut self,
        mut sink: Option<&mut dyn FnMut(&PluginSlot, u32, &[FieldValue])>,
    ) -> Result<usize, String> {
        let Some(poller) = &self.poller else { return Ok(0) };
        let n = poller.consume(PUMP_BATCH)?;
        if n == 0 {
            return Ok(0);
        }
        let inbox = poller.inbox().clone();
        let mut faulted: Vec<(usize, String)> = Vec::new();
        let scratch = &mut self.scratch;
        let slots = &mut self.slots;
        inbox.borrow_mut().drain(|slot_idx, ring, data| {
            let slot = &mut slots[slot_idx as usize];
            if slot.state != SlotState::Running {
                return;
            }
            scratch.clear();
            let decode = sink.is_some();
            match slot.tracer.on_record(ring, RSlice::from(data), decode, scratch).into_result() {
                Ok(()) => {
                    slot.stats.records += 1;
                    if let Some(sink) = sink.as_mut() {
                        // None, one or several rows of the ring's fields.
                        let width = slot.fields(ring).len().max(1);
                        for row in scratch.as_slice().chunks(width) {
                            sink(slot, ring, row);
                        }
                    }
                }
                Err(e) => {
                    slot.stats.record_errors += 1;
                    let fatal = e.is_fatal();
                    let e = e.to_string();
                    if fatal && !faulted.iter().any(|(i, _)| *i == slot_idx as usize) {
                        faulted.push((slot_idx as usize, e.clone()));
                        slot.state = SlotState::Failed(e.clone());
                    }
                    slot.stats.last_error = Some(e);
                }
            }
        });
        for (idx, why) in faulted {
            tracing::error!("plugin {}: {why}; its programs were detached", self.slots[idx].name());
            self.stop(idx, Some(why));
        }
        Ok(n)
    }

    /// Read counters and polled maps of every running plugin (once per refresh).
    pub fn refresh(&mut self) {
        let mut faulted = Vec::new();
        for (idx, slot) in self.slots.iter_mut().enumerate() {
            slot.read_counters();
            let Some(rt) = &slot.bpf else { continue };
            let (run_ns, runs) = rt.run_stats();
            let st = &mut slot.stats;
            // Lower than last time: new programs (re-attached) counting from 0.
            let (ns0, n0) = if run_ns < st.bpf_last.0 || runs < st.bpf_last.1 { (0, 0) } else { st.bpf_last };
            st.bpf_run_ns_total = st.bpf_run_ns_total.saturating_add(run_ns - ns0);
            st.bpf_runs_total = st.bpf_runs_total.saturating_add(runs - n0);
            st.bpf_last = (run_ns, runs);
            if run_ns > 0 {
                if let Some((per, cpu)) = slot.stats.cost.update(run_ns, runs) {
                    slot.stats.bpf_ns_per_event = Some(per);
                    slot.stats.bpf_cpu_percent = cpu;
                }
            }
            if let Some(e) = slot.read_polled_maps() {
                faulted.push((idx, e));
            }
        }
        for (idx, why) in faulted {
            self.stop(idx, Some(why));
        }
    }

    /// Forget every plugin's aggregates, and write each running plugin's
    /// kernel filter anew: state the kernel keeps per filter generation (calls
    /// in flight, maxima) then starts again too.
    pub fn reset(&mut self) {
        for idx in 0..self.slots.len() {
            self.reset_plugin(idx);
        }
    }

    /// [`Session::reset`] for plugin `idx` alone.
    ///
    /// The order matters: the filter first (a new generation: calls already
    /// in flight are not counted), then the maps read afresh, then the
    /// plugin's baseline taken from that read. A baseline from the last
    /// refresh instead would miss what the kernel counted since (up to one
    /// refresh of other processes' calls shown after a pivot as if they were
    /// the pivot's).
    pub fn reset_plugin(&mut self, idx: usize) {
        if self.slots[idx].bpf.is_some() && self.slots[idx].desc.config_map.is_some() {
            let settings = self.slots[idx].settings.clone();
            if let Err(e) = self.set_settings(idx, &settings) {
                self.slots[idx].stats.last_error = Some(format!("rewriting the filter after a reset: {e}"));
            }
        }
        if let Some(why) = self.slots[idx].read_polled_maps() {
            self.stop(idx, Some(why));
            return;
        }
        let _ = self.slots[idx].tracer.reset();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shutdown();
    }
}
