#![allow(non_local_definitions)]
//! The ABI-stable contract between `tracer-host` and its tracer plugins.
//!
//! A plugin is a `cdylib` that exports one root module ([`TracerModule`]) whose only
//! field builds a [`TracerBox`]. Everything a plugin offers goes through the
//! [`Tracer`] trait object:
//!
//! * [`Tracer::describe`] hands over the static description: name and version, the
//!   compiled BPF object, the probes with their attach alternatives, ring buffers,
//!   counters, maps to poll, the config map, panels and record fields.
//! * [`Tracer::configure`] turns the plugin's settings (JSON text) into the bytes the
//!   host writes into the plugin's config map: the host never knows the layout.
//! * [`Tracer::on_record`] takes one ring-buffer record as bytes, aggregates it and,
//!   when asked, decodes it into [`FieldValue`]s so the host can print it.
//! * [`Tracer::on_map`] takes the bytes of a polled map.
//! * [`Tracer::panel`] renders one panel's contents as owned values.
//!
//! Evolution rules (see `shared/design-notes.md`): the root module is frozen. New
//! capabilities are appended as new trait methods after the current
//! `last_prefix_field`, with a default body, so older plugins keep loading. Enums that
//! may grow are `NonExhaustive`; small "kind" tags are `u8` newtypes with named
//! constants so an unknown value is data, not undefined behaviour.

pub mod describe;
pub mod error;
pub mod guard;
pub mod panel;
pub mod value;

pub use abi_stable;
pub use describe::*;
pub use error::*;
pub use guard::{into_tracer_box, NativeTracer};
pub use panel::*;
pub use value::*;

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    sabi_trait,
    sabi_types::VersionStrings,
    std_types::{ROption, RResult, RSlice, RStr, RString, RVec},
    StableAbi,
};

/// Bumped whenever the meaning (not just the layout) of the contract changes.
/// abi_stable already rejects layout changes at load time.
/// 2: typed errors, settings and metrics declared, probes chosen at configure
/// time, attach targets, `Value::F64`.
pub const PLUGIN_API_VERSION: u32 = 2;

/// The environment variable in which the host passes its own process id as the
/// kernel numbers it (the initial PID namespace), set before any plugin loads:
/// BPF programs see that number, which differs from `getpid()` when the host
/// runs in a PID namespace. Plugins use it to leave the host out.
pub const HOST_KERNEL_TGID_ENV: &str = "TRACER_HOST_KERNEL_TGID";

/// Names shared by convention between tracers and the host, so the host needs
/// no tracer's knowledge: a **setting** with one of these names takes the
/// host's common filters (`-p`, `-c`, `-u` and the UI's pivot on a process);
/// a table **column** with one of them says which process a row is about.
pub mod common_names {
    /// A process id (tgid): setting kind UINT, column U64.
    pub const PID: &str = "pid";
    /// A task name, at most 15 bytes: setting kind STRING, column STR. Also
    /// the one open-ended metric label (per-process series by name): the
    /// host keeps the top names of a metric with it and folds the rest.
    pub const COMM: &str = "comm";
    /// A user id: setting kind UINT, column U64.
    pub const UID: &str = "uid";
    /// A run-time setting `histogram_<column>` picks, by that column's value,
    /// which row the plugin's histogram panel shows (`histogram_syscall`):
    /// Enter on such a row sets it and shows the histogram.
    pub const HISTOGRAM_PREFIX: &str = "histogram_";
}

/// Name, version and description shown by `--list-plugins` and the UI.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct PluginInfo {
    /// Short identifier used on the command line and in the config (`open`, `tcp`).
    pub name: RString,
    pub version: RString,
    pub description: RString,
    /// The [`PLUGIN_API_VERSION`] the plugin was written for.
    pub api_version: u32,
    #[cfg(feature = "abi-break-fixture")]
    pub fixture_extra: u64,
}

/// One BPF program of the object, as part of an attach alternative.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ProgramRef {
    /// The program's function name in the BPF object.
    pub name: RString,
    /// An optional program may fail to attach (e.g. `sys_enter_open` does not exist
    /// on arm64) without failing the alternative.
    pub optional: bool,
    /// Where to attach when the program's section does not say (`SEC("tracepoint")`,
    /// `SEC("raw_tp")`): `category/name` for a tracepoint, the name for a raw
    /// tracepoint. Empty: as the section says. Lets settings pick the hook.
    pub target: RString,
}

impl ProgramRef {
    pub fn new(name: &str) -> Self {
        ProgramRef { name: name.into(), optional: false, target: RString::new() }
    }
    pub fn optional(name: &str) -> Self {
        ProgramRef { optional: true, ..ProgramRef::new(name) }
    }
    pub fn with_target(mut self, target: &str) -> Self {
        self.target = target.into();
        self
    }
}

impl AttachAlternative {
    /// Required programs, by name.
    pub fn of(names: &[&str]) -> Self {
        AttachAlternative { programs: names.iter().map(|n| ProgramRef::new(n)).collect() }
    }
}

/// One way to implement a probe: a set of programs that together do the job
/// (e.g. one `fexit`, or a `kprobe` + `kretprobe` pair, or enter/exit tracepoints).
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct AttachAlternative {
    pub programs: RVec<ProgramRef>,
}

/// A logical hook of the tracer with its alternatives in order of preference. The
/// host probes the kernel, keeps the first alternative that loads and attaches, and
/// switches every program of the other alternatives off before the final load.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ProbeSpec {
    pub name: RString,
    pub alternatives: RVec<AttachAlternative>,
}

/// A ring buffer the host polls, with the shape of its records.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct RingSpec {
    pub map: RString,
    pub fields: RVec<FieldSpec>,
}

/// One slot of a per-CPU `u64` array that the host sums across CPUs and shows.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct CounterSpec {
    pub map: RString,
    pub index: u32,
    pub name: RString,
    /// Counts events that were lost (ring buffer full, state map full): the host
    /// adds these to the plugin's "drops" figure.
    pub is_drop: bool,
}

/// Everything static about a plugin.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct PluginDescriptor {
    pub info: PluginInfo,
    /// The compiled BPF ELF object (built by libbpf-cargo, embedded in the plugin).
    pub bpf_object: RVec<u8>,
    pub probes: RVec<ProbeSpec>,
    pub rings: RVec<RingSpec>,
    pub counters: RVec<CounterSpec>,
    /// Maps the host reads at every refresh and hands to [`Tracer::on_map`].
    pub polled_maps: RVec<RString>,
    /// An array map with one entry (key 0) holding the plugin's kernel-side filter.
    pub config_map: ROption<RString>,
    pub panels: RVec<PanelSpec>,
    /// The keys of `[plugins.NAME]`: the host validates, prompts and documents
    /// them from this list and knows no setting of any tracer.
    pub settings: RVec<SettingSpec>,
    pub metrics: RVec<MetricSpec>,
}

/// The contents of one map, read by the host.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct MapSnapshot {
    pub name: RString,
    /// Number of values per key: the number of possible CPUs for per-CPU maps, else 1.
    pub values_per_key: u32,
    pub entries: RVec<MapEntry>,
}

#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct MapEntry {
    pub key: RVec<u8>,
    /// `values_per_key` values of the map's value size, back to back.
    pub value: RVec<u8>,
}

/// The plugin's side of the contract. Implement [`NativeTracer`] instead of this
/// trait: [`into_tracer_box`] wraps it so every call catches panics.
#[sabi_trait]
pub trait Tracer {
    fn describe(&self) -> RResult<PluginDescriptor, PluginError>;

    /// Validate settings (a JSON object) and return the bytes for key 0 of the
    /// config map, and the probes if the settings change them. An error
    /// ([`ErrorKind::SETTINGS`]) names the offending key.
    fn configure(&mut self, settings_json: RStr<'_>) -> RResult<Configuration, PluginError>;

    /// One record from ring `ring` (index into `PluginDescriptor::rings`). When
    /// `decode` is true, the record's fields are pushed onto `out`, in the order of
    /// the ring's `fields`: one row, or none (a record that only feeds the
    /// plugin's aggregates), or several one after the other (a record that
    /// completes several things); the host cuts `out` into rows of the
    /// ring's field count.
    fn on_record(
        &mut self,
        ring: u32,
        data: RSlice<'_, u8>,
        decode: bool,
        out: &mut RVec<FieldValue>,
    ) -> RResult<(), PluginError>;

    fn on_map(&mut self, snapshot: &MapSnapshot) -> RResult<(), PluginError>;

    /// Current contents of panel `id`.
    fn panel(&self, id: RStr<'_>) -> RResult<PanelContent, PluginError>;

    /// Forget all aggregates (the UI's "reset counters").
    fn reset(&mut self) -> RResult<(), PluginError>;

    /// The current value of every declared metric.
    #[sabi(last_prefix_field)]
    fn metrics(&self) -> RResult<RVec<MetricSample>, PluginError>;
}

/// The owned, ABI-stable trait object a plugin hands to the host.
pub type TracerBox = Tracer_TO<'static, abi_stable::std_types::RBox<()>>;

/// The root module every plugin exports. Frozen: never add a field.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = TracerModuleRef)))]
#[sabi(missing_field(panic))]
pub struct TracerModule {
    #[sabi(last_prefix_field)]
    pub new: extern "C" fn() -> RResult<TracerBox, PluginError>,
}

impl RootModule for TracerModuleRef {
    declare_root_module_statics! {TracerModuleRef}
    const BASE_NAME: &'static str = "tracer_plugin";
    const NAME: &'static str = "tracer_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// Export a plugin: `export_tracer!(MyTracer::default);` in the plugin's lib.rs.
/// The constructor runs under `catch_unwind`; a panic becomes an error for the host.
///
/// This writes out what abi_stable's `#[export_root_module]` would, with paths
/// through this crate, so a plugin needs no dependency of its own on
/// abi_stable (the attribute names `::abi_stable`). The symbol's name is
/// abi_stable's `ROOT_MODULE_LOADER_NAME` (a test checks it).
#[macro_export]
macro_rules! export_tracer {
    ($ctor:expr) => {
        pub fn tracer_root_module() -> $crate::TracerModuleRef {
            use $crate::abi_stable::prefix_type::PrefixTypeTrait;
            extern "C" fn new_tracer() -> $crate::abi_stable::std_types::RResult<$crate::TracerBox, $crate::PluginError> {
                $crate::guard::construct($ctor)
            }
            $crate::TracerModule { new: new_tracer }.leak_into_prefix()
        }

        #[no_mangle]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::abi_stable::library::LibHeader = {
            pub extern "C" fn erased_root_module() -> $crate::abi_stable::library::RootModuleResult {
                $crate::abi_stable::library::__call_root_module_loader(tracer_root_module)
            }
            unsafe {
                $crate::abi_stable::library::LibHeader::from_constructor::<$crate::TracerModuleRef>(
                    erased_root_module,
                    $crate::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_exported_symbol_is_the_one_abi_stable_looks_up() {
        assert_eq!(abi_stable::library::ROOT_MODULE_LOADER_NAME, "_1as_0lib_1header_0root_bmodule_bloader");
    }
}
