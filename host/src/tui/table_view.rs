//! Sorting and filtering a table for display: pure, so it is tested directly.

use std::cmp::Ordering;
use tracer_core::format::{self, Clock};
use tracer_plugin_api::{Table, Value};

/// How the user wants a table shown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableState {
    /// Column to sort by (None: the plugin's order) and whether descending.
    pub sort: Option<(usize, bool)>,
    /// Only rows with a cell containing this text (case-insensitive).
    pub filter: String,
}

impl TableState {
    /// `s`: next column; each column sorts descending first (numbers: biggest
    /// first), then ascending, then the next column; after the last, unsorted.
    pub fn cycle_sort(&mut self, ncols: usize) {
        self.sort = match self.sort {
            None if ncols > 0 => Some((0, true)),
            Some((c, true)) => Some((c, false)),
            Some((c, false)) if c + 1 < ncols => Some((c + 1, true)),
            _ => None,
        };
    }
}

fn cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::U64(x), Value::U64(y)) => x.cmp(y),
        (Value::I64(x), Value::I64(y)) => x.cmp(y),
        (Value::F64(x), Value::F64(y)) => x.total_cmp(y),
        (Value::Str(x), Value::Str(y)) => x.as_str().cmp(y.as_str()),
        (Value::Missing, Value::Missing) => Ordering::Equal,
        (Value::Missing, _) => Ordering::Less,
        (_, Value::Missing) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// Rows a table shows at most: a plugin that hands over millions must not stall
/// the screen.
pub const MAX_ROWS: usize = 10_000;

/// The rows as text, filtered then sorted.
pub fn rows(t: &Table, st: &TableState, clock: &Clock) -> Vec<Vec<String>> {
    let needle = st.filter.to_lowercase();
    let mut idx: Vec<usize> = (0..t.rows.len().min(MAX_ROWS)).collect();
    let texts: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| r.iter().zip(t.columns.iter()).map(|(v, c)| format::value_text(v, c.kind, clock)).collect())
        .collect();
    if !needle.is_empty() {
        idx.retain(|&i| texts[i].iter().any(|c| c.to_lowercase().contains(&needle)));
    }
    if let Some((col, desc)) = st.sort {
        idx.sort_by(|&a, &b| {
            let va = t.rows[a].get(col).and_then(|v| v.as_enum().ok()).cloned().unwrap_or(Value::Missing);
            let vb = t.rows[b].get(col).and_then(|v| v.as_enum().ok()).cloned().unwrap_or(Value::Missing);
            let o = cmp(&va, &vb);
            if desc {
                o.reverse()
            } else {
                o
            }
        });
    }
    idx.into_iter().map(|i| texts[i].clone()).collect()
}

/// Header labels with the sort marker.
pub fn headers(t: &Table, st: &TableState) -> Vec<String> {
    t.columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut h = tracer_core::format::column_label(c).to_uppercase();
            if let Some((col, desc)) = st.sort {
                if col == i {
                    h.push(if desc { '▼' } else { '▲' });
                }
            }
            h
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_plugin_api::{FieldKind, FieldSpec};

    fn table() -> Table {
        Table {
            columns: vec![FieldSpec::new("n", FieldKind::U64, ""), FieldSpec::new("name", FieldKind::STR, "")].into(),
            rows: vec![
                vec![Value::u64(5), Value::str("bash")].into(),
                vec![Value::u64(40), Value::str("cat")].into(),
                vec![Value::u64(7), Value::str("bashful")].into(),
            ]
            .into(),
        }
    }

    #[test]
    fn sorts_numerically_and_filters() {
        let c = Clock::now();
        let mut st = TableState::default();
        st.cycle_sort(2);
        assert_eq!(rows(&table(), &st, &c).iter().map(|r| r[0].as_str()).collect::<Vec<_>>(), ["40", "7", "5"]);
        st.cycle_sort(2);
        assert_eq!(rows(&table(), &st, &c)[0][0], "5");
        st.cycle_sort(2);
        assert_eq!(st.sort, Some((1, true)));
        assert_eq!(rows(&table(), &st, &c)[0][1], "cat");
        st.filter = "BASH".into();
        assert_eq!(rows(&table(), &st, &c).len(), 2);
        assert_eq!(headers(&table(), &st)[1], "NAME▼");
        st.cycle_sort(2);
        st.cycle_sort(2);
        assert_eq!(st.sort, None);
    }
}
