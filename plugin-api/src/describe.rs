//! What a plugin declares beyond its programs: its settings (so the host can
//! validate, prompt and document them without knowing any tracer) and its
//! metrics (so exporters need no per-tracer code).

use abi_stable::{
    std_types::{ROption, RString, RVec},
    StableAbi,
};

/// The type of a setting's value (a `u8` newtype: unknown kinds are data).
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SettingKind(pub u8);

impl SettingKind {
    pub const BOOL: SettingKind = SettingKind(0);
    /// An unsigned integer within `min..=max`.
    pub const UINT: SettingKind = SettingKind(1);
    pub const STRING: SettingKind = SettingKind(2);
    /// One of `choices`.
    pub const CHOICE: SettingKind = SettingKind(3);
    /// A list of unsigned integers, each within `min..=max` (`ports=80,443`).
    pub const UINT_LIST: SettingKind = SettingKind(4);
    /// A list of strings (`syscalls=read,write`).
    pub const STRING_LIST: SettingKind = SettingKind(5);

    pub fn label(self) -> &'static str {
        match self {
            SettingKind::BOOL => "bool",
            SettingKind::UINT => "uint",
            SettingKind::STRING => "string",
            SettingKind::CHOICE => "choice",
            SettingKind::UINT_LIST => "uint list",
            SettingKind::STRING_LIST => "string list",
            _ => "value",
        }
    }

    pub fn is_list(self) -> bool {
        self == SettingKind::UINT_LIST || self == SettingKind::STRING_LIST
    }
}

/// One key of `[plugins.NAME]`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct SettingSpec {
    pub name: RString,
    pub kind: SettingKind,
    /// One line: what it does.
    pub help: RString,
    /// The default as the user would write it (`false`, `cumulative`); empty: unset.
    pub default: RString,
    /// For [`SettingKind::CHOICE`].
    pub choices: RVec<RString>,
    /// Bounds, inclusive: of the value for integer kinds (each element for
    /// lists), of the length in bytes for [`SettingKind::STRING`].
    pub min: u64,
    pub max: u64,
    /// Whether it can change while the plugin runs (the UI's filter prompt
    /// offers it and the status line shows it when set).
    pub runtime: bool,
    /// Other names people type for it (`port` for `ports`): the host renames
    /// them, and wraps a single value in a list for list kinds.
    pub aliases: RVec<RString>,
}

impl SettingSpec {
    pub fn new(name: &str, kind: SettingKind, help: &str) -> Self {
        SettingSpec {
            name: name.into(),
            kind,
            help: help.into(),
            default: RString::new(),
            choices: RVec::new(),
            min: 0,
            max: u64::MAX,
            runtime: true,
            aliases: RVec::new(),
        }
    }
    pub fn default_value(mut self, v: &str) -> Self {
        self.default = v.into();
        self
    }
    pub fn range(mut self, min: u64, max: u64) -> Self {
        self.min = min;
        self.max = max;
        self
    }
    pub fn choices(mut self, c: &[&str]) -> Self {
        self.choices = c.iter().map(|s| RString::from(*s)).collect();
        self
    }
    pub fn alias(mut self, a: &str) -> Self {
        self.aliases.push(a.into());
        self
    }
    /// Only read when the plugin starts.
    pub fn at_start_only(mut self) -> Self {
        self.runtime = false;
        self
    }
}

/// The type of a metric, as exporters know them.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetricKind(pub u8);

impl MetricKind {
    /// Only goes up (resets when the plugin restarts).
    pub const COUNTER: MetricKind = MetricKind(0);
    pub const GAUGE: MetricKind = MetricKind(1);
    /// log2 buckets: bucket i counts values in [2^i, 2^(i+1)) of the unit.
    pub const LOG2_HISTOGRAM: MetricKind = MetricKind(2);

    pub fn label(self) -> &'static str {
        match self {
            MetricKind::COUNTER => "counter",
            MetricKind::GAUGE => "gauge",
            MetricKind::LOG2_HISTOGRAM => "histogram",
            _ => "unknown",
        }
    }
}

/// A metric a plugin offers. Names are stable, snake_case and end in their
/// unit (`_seconds`, `_bytes`, `_total` for counts); the host prefixes them
/// with `tracer_` and the plugin name. Labels are a small, bounded set: never a
/// pid, a path or an address.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct MetricSpec {
    pub name: RString,
    pub kind: MetricKind,
    /// The base unit (`seconds`, `bytes`, `1` for counts).
    pub unit: RString,
    pub help: RString,
    pub labels: RVec<RString>,
}

impl MetricSpec {
    pub fn new(name: &str, kind: MetricKind, unit: &str, help: &str, labels: &[&str]) -> Self {
        MetricSpec { name: name.into(), kind, unit: unit.into(), help: help.into(), labels: labels.iter().map(|s| RString::from(*s)).collect() }
    }
}

/// One value of a metric: `labels` are the values of the spec's labels, in order.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct MetricSample {
    pub name: RString,
    pub labels: RVec<RString>,
    /// Counter or gauge value; for a histogram, the sum of observed values (in
    /// the unit) if known, else NaN.
    pub value: f64,
    /// Histogram buckets (log2, in `bucket_unit`), else empty.
    pub buckets: RVec<u64>,
    /// The unit of the bucket bounds (`usecs`): exporters convert to `unit`.
    pub bucket_unit: RString,
}

/// What `configure` hands back: the config map's bytes and, when the settings
/// change what is attached, the probes to use instead of the descriptor's.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct Configuration {
    pub config: RVec<u8>,
    pub probes: ROption<RVec<crate::ProbeSpec>>,
}
