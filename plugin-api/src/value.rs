//! Typed values of record fields and table cells.

use abi_stable::{
    std_types::{RString, RVec},
    StableAbi,
};

/// How a field's value is to be shown. A `u8` newtype rather than an enum so a host
/// that meets a kind it does not know shows the raw value instead of misbehaving.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldKind(pub u8);

impl FieldKind {
    /// Unsigned integer.
    pub const U64: FieldKind = FieldKind(0);
    /// Signed integer.
    pub const I64: FieldKind = FieldKind(1);
    /// Text.
    pub const STR: FieldKind = FieldKind(2);
    /// `CLOCK_MONOTONIC` nanoseconds (`bpf_ktime_get_ns`): the host shows wall time.
    pub const MONO_TIME_NS: FieldKind = FieldKind(3);
    /// A duration in nanoseconds: the host picks ns/µs/ms/s.
    pub const DURATION_NS: FieldKind = FieldKind(4);
    /// A syscall-style result: >= 0 is a value, < 0 is `-errno` (shown as `ENOENT`).
    pub const ERRNO_RESULT: FieldKind = FieldKind(5);
    /// An unsigned integer best read in hexadecimal (flags, addresses).
    pub const HEX: FieldKind = FieldKind(6);
    /// A byte count: the host picks B/KiB/MiB.
    pub const BYTES: FieldKind = FieldKind(7);
    /// A floating-point number (`Value::F64`), e.g. a percentage.
    pub const F64: FieldKind = FieldKind(8);
    /// Named durations in order (`Value::Phases`): the time a connection spent
    /// in each state, a request in each step. Shown as `SYN_SENT 12µs,
    /// ESTABLISHED 4.7ms`; in JSON an array of `{"name", "ns"}` objects.
    pub const PHASES: FieldKind = FieldKind(9);
}

/// How a column's values combine when the host groups a table's rows by
/// process name (the `g` key): one row per name instead of one per pid.
/// A table is grouped only when it has `pid` and `comm` columns and at least
/// one column that sums or takes a maximum or minimum; lists of events
/// (every column `SAME`) are never grouped.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Merge(pub u8);

impl Merge {
    /// Kept when every merged row has it; shown as `*` when they differ.
    pub const SAME: Merge = Merge(0);
    /// Added up (counts, totals, CPU %).
    pub const SUM: Merge = Merge(1);
    /// The largest (a maximum latency, the latest time).
    pub const MAX: Merge = Merge(2);
    /// The smallest.
    pub const MIN: Merge = Merge(3);
}

/// Name, kind and unit of one field of a record or one column of a table.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FieldSpec {
    pub name: RString,
    pub kind: FieldKind,
    /// Free text shown beside the name (e.g. `ns`, `bytes`); may be empty.
    pub unit: RString,
    /// When a table is too narrow for every column, columns are hidden (never
    /// cut) highest priority number first, the rightmost first among equals.
    /// 0: hidden last (the columns that say what a row is: pid, name, key).
    pub priority: u8,
    /// 0: the column is shown whole or not at all. N > 0: a wide text column
    /// (a path, a command line) that takes the spare width, at least N cells;
    /// a longer value is shortened in the middle with a visible `…`.
    pub flex_min: u16,
    /// How rows are combined when grouped by process name.
    pub merge: Merge,
    /// How the UI colours the cells: [`STYLE_PLAIN`] or
    /// [`STYLE_COLOUR_BY_VALUE`].
    pub style: u8,
}

/// Cells in the terminal's colour.
pub const STYLE_PLAIN: u8 = 0;
/// Each distinct value in a colour of its own, the same wherever it shows (a
/// state: `ESTABLISHED` always looks the same). Text output is not coloured.
pub const STYLE_COLOUR_BY_VALUE: u8 = 1;

/// Priority of a column that does not say otherwise.
pub const DEFAULT_PRIORITY: u8 = 1;

impl FieldSpec {
    pub fn new(name: &str, kind: FieldKind, unit: &str) -> Self {
        FieldSpec { name: name.into(), kind, unit: unit.into(), priority: DEFAULT_PRIORITY, flex_min: 0, merge: Merge::SAME, style: STYLE_PLAIN }
    }
    pub fn style(mut self, s: u8) -> Self {
        self.style = s;
        self
    }
    pub fn merge(mut self, m: Merge) -> Self {
        self.merge = m;
        self
    }
    pub fn priority(mut self, p: u8) -> Self {
        self.priority = p;
        self
    }
    pub fn flex(mut self, min: u16) -> Self {
        self.flex_min = min;
        self
    }
}

/// One value. New variants may be added: the host treats unknown ones as missing.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
#[sabi(kind(WithNonExhaustive(size = [usize; 8], traits(Debug, Clone, PartialEq))))]
#[non_exhaustive]
pub enum Value {
    U64(u64),
    I64(i64),
    Str(RString),
    /// No value (e.g. a column that does not apply to this row).
    Missing,
    /// A ratio or percentage: sorts as a number; shown with one decimal.
    F64(f64),
    /// Named durations in order (see [`FieldKind::PHASES`]).
    Phases(RVec<Phase>),
}

/// One named duration of a [`Value::Phases`].
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: RString,
    pub ns: u64,
}

/// The ABI-stable, forward-compatible form of [`Value`] that crosses the boundary.
pub type FieldValue = Value_NE;

impl Value {
    pub fn u64(v: u64) -> FieldValue {
        Value_NE::new(Value::U64(v))
    }
    pub fn i64(v: i64) -> FieldValue {
        Value_NE::new(Value::I64(v))
    }
    pub fn str(v: &str) -> FieldValue {
        Value_NE::new(Value::Str(v.into()))
    }
    pub fn missing() -> FieldValue {
        Value_NE::new(Value::Missing)
    }
    pub fn f64(v: f64) -> FieldValue {
        Value_NE::new(Value::F64(v))
    }
    pub fn phases<'a>(v: impl IntoIterator<Item = (&'a str, u64)>) -> FieldValue {
        Value_NE::new(Value::Phases(v.into_iter().map(|(name, ns)| Phase { name: name.into(), ns }).collect()))
    }
}
