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

impl Log2Histogram {
    /// The upper bound (inclusive, in `unit`) of the bucket that holds
    /// quantile `q` (0 < q <= 1) of the counted values; `None` when empty.
    /// A log2 histogram knows no more than that: p50 of 300 µs reads `511`.
    pub fn quantile_upper(buckets: &[u64], q: f64) -> Option<u64> {
        let total = buckets.iter().fold(0u64, |a, b| a.saturating_add(*b));
        if total == 0 {
            return None;
        }
        let want = ((total as f64 * q).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, c) in buckets.iter().enumerate() {
            seen = seen.saturating_add(*c);
            if seen >= want {
                return Some(if i >= 63 { u64::MAX } else { (1u64 << (i + 1)) - 1 });
            }
        }
        None
    }
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

#[cfg(test)]
mod tests {
    use super::Log2Histogram;

    #[test]
    fn quantiles_are_bucket_upper_bounds() {
        // 10 values in [1,2), 80 in [4,8), 10 in [512,1024).
        let b = [0, 10, 80, 0, 0, 0, 0, 0, 0, 10];
        assert_eq!(Log2Histogram::quantile_upper(&b, 0.05), Some(3));
        assert_eq!(Log2Histogram::quantile_upper(&b, 0.5), Some(7));
        assert_eq!(Log2Histogram::quantile_upper(&b, 0.9), Some(7));
        assert_eq!(Log2Histogram::quantile_upper(&b, 0.99), Some(1023));
        assert_eq!(Log2Histogram::quantile_upper(&[0, 0], 0.5), None);
        assert_eq!(Log2Histogram::quantile_upper(&[u64::MAX, u64::MAX], 1.0), Some(1), "no overflow on hostile counts");
    }
}
