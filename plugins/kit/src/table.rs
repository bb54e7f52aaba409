//! Columns declared once: a name, a kind, a unit and how to get the value from
//! a row. The same list gives a ring's record fields, the values `on_record`
//! pushes, and a table panel, so they cannot drift apart.

use abi_stable::std_types::RVec;
use std::collections::VecDeque;
use tracer_plugin_api::{FieldKind, FieldSpec, FieldValue, Merge, Table};

/// Names and units are `&'static str`, so a column list costs no allocation
/// to build: `on_record` builds one per record (a `FieldSpec` per column
/// there once cost more than decoding the record).
pub struct Column<T> {
    pub name: &'static str,
    pub kind: FieldKind,
    pub unit: &'static str,
    pub get: fn(&T) -> FieldValue,
    /// See [`FieldSpec::priority`]: 0 keeps a column longest.
    pub priority: u8,
    /// See [`FieldSpec::flex_min`].
    pub flex_min: u16,
    /// See [`FieldSpec::merge`].
    pub merge: Merge,
    /// See [`FieldSpec::style`].
    pub style: u8,
}

/// A column of `T`; `unit` is data (`ns`, `bytes`, `%`), never part of the name.
pub const fn column<T>(name: &'static str, kind: FieldKind, unit: &'static str, get: fn(&T) -> FieldValue) -> Column<T> {
    Column { name, kind, unit, get, priority: tracer_plugin_api::DEFAULT_PRIORITY, flex_min: 0, merge: Merge::SAME, style: tracer_plugin_api::STYLE_PLAIN }
}

/// Says what a row is (pid, name, key): hidden last on a narrow screen.
/// (Functions rather than methods: the column's row type is then inferred
/// from the list it is in.)
pub const fn key<T>(mut c: Column<T>) -> Column<T> {
    c.priority = 0;
    c
}

/// Detail worth the space only on a wide screen: hidden first.
pub const fn extra<T>(mut c: Column<T>) -> Column<T> {
    c.priority = 2;
    c
}

/// A wide text column (path, command line): takes the spare width, at least
/// `min` cells, shortened in the middle with `…` when longer.
pub const fn flex<T>(min: u16, mut c: Column<T>) -> Column<T> {
    c.flex_min = min;
    c
}

/// A count or total: rows grouped by process name add it up.
pub const fn sum<T>(mut c: Column<T>) -> Column<T> {
    c.merge = Merge::SUM;
    c
}

/// A maximum: rows grouped by process name keep the largest.
pub const fn max<T>(mut c: Column<T>) -> Column<T> {
    c.merge = Merge::MAX;
    c
}

/// A state or a kind: each value shown in a colour of its own in the UI.
pub const fn coloured<T>(mut c: Column<T>) -> Column<T> {
    c.style = tracer_plugin_api::STYLE_COLOUR_BY_VALUE;
    c
}

/// The columns' specs, for a `RingSpec` or a table.
pub fn fields<T>(cols: &[Column<T>]) -> Vec<FieldSpec> {
    cols.iter().map(|c| FieldSpec::new(c.name, c.kind, c.unit).priority(c.priority).flex(c.flex_min).merge(c.merge).style(c.style)).collect()
}

/// One row's values, in column order.
pub fn push_row<T>(cols: &[Column<T>], row: &T, out: &mut RVec<FieldValue>) {
    out.extend(cols.iter().map(|c| (c.get)(row)));
}

/// A table of `rows` under `cols`.
pub fn table<'a, T: 'a>(cols: &[Column<T>], rows: impl IntoIterator<Item = &'a T>) -> Table {
    Table {
        columns: fields(cols).into(),
        rows: rows
            .into_iter()
            .map(|r| {
                let mut v = RVec::new();
                push_row(cols, r, &mut v);
                v
            })
            .collect(),
    }
}

/// The last `cap` items, newest first when iterated with `newest()`.
#[derive(Debug, Clone)]
pub struct Recent<T> {
    items: VecDeque<T>,
    cap: usize,
}

/// How many records a "recent" panel keeps unless told otherwise.
pub const RECENT: usize = 200;

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Recent::new(RECENT)
    }
}

impl<T> Recent<T> {
    pub fn new(cap: usize) -> Self {
        Recent { items: VecDeque::with_capacity(cap.min(1024)), cap: cap.max(1) }
    }
    pub fn push(&mut self, v: T) {
        if self.items.len() == self.cap {
            self.items.pop_front();
        }
        self.items.push_back(v);
    }
    pub fn newest(&self) -> impl Iterator<Item = &T> {
        self.items.iter().rev()
    }
    pub fn clear(&mut self) {
        self.items.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_plugin_api::Value;

    #[test]
    fn one_column_list_gives_fields_rows_and_tables() {
        let cols = [column::<(u64, &str)>("n", FieldKind::U64, "", |r| Value::u64(r.0)), column("name", FieldKind::STR, "", |r| Value::str(r.1))];
        let mut recent = Recent::new(2);
        for r in [(1, "a"), (2, "b"), (3, "c")] {
            recent.push(r);
        }
        let t = table(&cols, recent.newest());
        assert_eq!(t.columns.len(), 2);
        assert_eq!(t.rows.len(), 2, "only the last two kept");
        assert_eq!(t.rows[0][0], Value::u64(3), "newest first");
        let mut out = RVec::new();
        push_row(&cols, &(7, "x"), &mut out);
        assert_eq!(out.as_slice(), &[Value::u64(7), Value::str("x")]);
    }
}
