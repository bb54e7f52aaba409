//! Panels: what a plugin offers to show, and their contents as owned values.

use crate::value::{FieldSpec, FieldValue};
use abi_stable::{
    std_types::{RString, RVec},
    StableAbi,
};

/// The kind of a panel, so the host can pick a widget before any content exists.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PanelKind(pub u8);

impl PanelKind {
    pub const TABLE: PanelKind = PanelKind(0);
    pub const LOG2_HISTOGRAM: PanelKind = PanelKind(1);
    pub const COUNTERS: PanelKind = PanelKind(2);
    pub const TIME_SERIES: PanelKind = PanelKind(3);
    pub const TEXT: PanelKind = PanelKind(4);

    pub fn label(self) -> &'static str {
        match self {
            PanelKind::TABLE => "table",
            PanelKind::LOG2_HISTOGRAM => "log2-histogram",
            PanelKind::COUNTERS => "counters",
            PanelKind::TIME_SERIES => "time-series",
            PanelKind::TEXT => "text",
            _ => "unknown",
        }
    }
}

/// A panel a plugin offers: `id` is unique within the plugin; the layout names it
/// as `plugin.id`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct PanelSpec {
    pub id: RString,
    pub title: RString,
    pub kind: PanelKind,
}

impl PanelSpec {
    pub fn new(id: &str, title: &str, kind: PanelKind) -> Self {
        PanelSpec { id: id.into(), title: title.into(), kind }
    }
}

/// Rows of typed cells under typed columns (so the host can sort numerically).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: RVec<FieldSpec>,
    pub rows: RVec<RVec<FieldValue>>,
}

impl PartialEq for FieldSpec {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.kind == o.kind && self.unit == o.unit
    }
}

/// A power-of-two histogram: bucket `i` counts values in `[2^i, 2^(i+1))`, bucket 0
/// also counts 0 (the libbpf-tools convention).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Log2Histogram {
    /// Unit of the bucketed values, e.g. `usecs`.
    pub unit: RString,
    pub buckets: RVec<u64>,
}

#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Counter {
    pub name: RString,
    pub value: u64,
    /// Unit of the value, e.g. `events`, `bytes`; may be empty.
    pub unit: RString,
}

/// Samples of one quantity at a fixed interval, oldest first.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct TimeSeries {
    pub name: RString,
    pub unit: RString,
    pub interval_ms: u64,
    pub points: RVec<u64>,
}

/// Contents of one panel. New kinds may be added: a host that does not know one
/// says so in the panel's slot.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
#[sabi(kind(WithNonExhaustive(size = [usize; 24], traits(Debug, Clone, PartialEq))))]
#[non_exhaustive]
pub enum Panel {
    Table(Table),
    Log2Histogram(Log2Histogram),
    Counters(RVec<Counter>),
    TimeSeries(RVec<TimeSeries>),
    Text(RString),
}

/// The ABI-stable, forward-compatible form of [`Panel`] that crosses the boundary.
pub type PanelContent = Panel_NE;

impl Panel {
    pub fn boxed(self) -> PanelContent {
        Panel_NE::new(self)
    }
}
