//! Sorting and filtering a table for display: pure, so it is tested directly.

use std::cmp::Ordering;
use super::columns::Need;
use tracer_core::format::{self, Clock, Scale};
use tracer_plugin_api::{FieldKind, Table, Value};

/// How the user wants a table shown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableState {
    /// Column to sort by (None: the plugin's order) and whether descending.
    pub sort: Option<(usize, bool)>,
    /// Only rows with a cell containing this text (case-insensitive).
    pub filter: String,
}

impl TableState {
    /// `<` / `>`: sort by the column to the left / right (descending first:
    /// biggest numbers on top), wrapping; `s`: reverse the order.
    pub fn step_sort(&mut self, a: super::keymap::Action, ncols: usize) {
        use super::keymap::Action;
        if ncols == 0 {
            return;
        }
        self.sort = match (a, self.sort) {
            (Action::SortReverse, Some((c, d))) => Some((c, !d)),
            (Action::SortReverse, None) => Some((0, false)),
            (Action::SortNext, None) => Some((0, true)),
            (Action::SortPrev, None) => Some((ncols - 1, true)),
            (Action::SortNext, Some((c, _))) => Some(((c + 1) % ncols, true)),
            (Action::SortPrev, Some((c, _))) => Some(((c + ncols - 1) % ncols, true)),
            (_, s) => s,
        };
    }
}

fn cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::U64(x), Value::U64(y)) => x.cmp(y),
        (Value::I64(x), Value::I64(y)) => x.cmp(y),
        (Value::F64(x), Value::F64(y)) => x.total_cmp(y),
        (Value::Str(x), Value::Str(y)) => x.as_str().cmp(y.as_str()),
        // Phases sort by the whole time they cover.
        (Value::Phases(x), Value::Phases(y)) => {
            let total = |ps: &[tracer_plugin_api::Phase]| ps.iter().map(|p| p.ns).fold(0u64, u64::saturating_add);
            total(x).cmp(&total(y))
        }
        (Value::Missing, Value::Missing) => Ordering::Equal,
        (Value::Missing, _) => Ordering::Less,
        (_, Value::Missing) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// Rows a table shows at most: a plugin that hands over millions must not stall
/// the screen.
pub const MAX_ROWS: usize = 10_000;

/// A table ready to draw: texts filtered and sorted, one unit per column.
#[derive(Debug, Clone, Default)]
pub struct Shown {
    /// `NAME unit`, with the sort marker.
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Numbers are right-aligned.
    pub right: Vec<bool>,
    /// Columns whose cells are coloured by their value (states).
    pub coloured: Vec<bool>,
    /// Per column: widest text over all shown rows (so widths do not jump
    /// while scrolling), priority and flexibility as the plugin declared.
    pub needs: Vec<Need>,
    /// For each row of `rows`, its index in the plugin's table.
    pub source: Vec<usize>,
}

fn numeric(kind: FieldKind) -> bool {
    matches!(
        kind,
        FieldKind::U64 | FieldKind::I64 | FieldKind::F64 | FieldKind::DURATION_NS | FieldKind::BYTES | FieldKind::HEX | FieldKind::ERRNO_RESULT
    )
}

fn cell<'a>(t: &'a Table, row: usize, col: usize) -> Option<&'a Value> {
    t.rows.get(row)?.get(col).and_then(|v| v.as_enum().ok())
}

/// The table as the user asked to see it: filtered (on the texts shown), sorted
/// (on the values), each duration or size column in one unit.
pub fn shown(t: &Table, st: &TableState, clock: &Clock) -> Shown {
    let n = t.rows.len().min(MAX_ROWS);
    let scales: Vec<Option<Scale>> = t
        .columns
        .iter()
        .enumerate()
        .map(|(c, spec)| {
            let values: Vec<u64> = (0..n)
                .filter_map(|r| match cell(t, r, c) {
                    Some(Value::U64(v)) => Some(*v),
                    _ => None,
                })
                .collect();
            Scale::for_column(spec.kind, &values)
        })
        .collect();
    let text = |r: usize, c: usize| -> String {
        match (cell(t, r, c), scales[c]) {
            (Some(Value::U64(v)), Some(s)) => s.text(*v),
            _ => t.rows[r].get(c).map(|v| format::value_text(v, t.columns[c].kind, clock)).unwrap_or_else(|| "-".into()),
        }
    };
    let texts: Vec<Vec<String>> = (0..n).map(|r| (0..t.columns.len()).map(|c| text(r, c)).collect()).collect();
    let needle = st.filter.to_lowercase();
    let mut idx: Vec<usize> = (0..n).collect();
    if !needle.is_empty() {
        idx.retain(|&i| texts[i].iter().any(|c| c.to_lowercase().contains(&needle)));
    }
    if let Some((col, desc)) = st.sort {
        idx.sort_by(|&a, &b| {
            let va = cell(t, a, col).cloned().unwrap_or(Value::Missing);
            let vb = cell(t, b, col).cloned().unwrap_or(Value::Missing);
            let o = cmp(&va, &vb);
            if desc {
                o.reverse()
            } else {
                o
            }
        });
    }
    let headers: Vec<String> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            // The name in capitals, its unit as written (`CPU %`, `MAX ms`).
            let unit = match scales[i] {
                Some(s) => format!(" {}", s.unit),
                None => format::column_label(c)[c.name.len()..].to_string(),
            };
            let mut h = format!("{}{unit}", c.name.to_uppercase());
            if let Some((col, desc)) = st.sort {
                if col == i {
                    h.push(if desc { '▼' } else { '▲' });
                }
            }
            h
        })
        .collect();
    let needs = t
        .columns
        .iter()
        .enumerate()
        .map(|(c, spec)| Need {
            natural: idx.iter().map(|&r| texts[r][c].chars().count()).max().unwrap_or(0).max(headers[c].chars().count()),
            priority: spec.priority,
            flex_min: spec.flex_min,
        })
        .collect();
    Shown {
        headers,
        right: t.columns.iter().map(|c| numeric(c.kind)).collect(),
        coloured: t.columns.iter().map(|c| c.style == tracer_plugin_api::STYLE_COLOUR_BY_VALUE).collect(),
        rows: idx.iter().map(|&i| texts[i].clone()).collect(),
        needs,
        source: idx,
    }
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
        use crate::tui::keymap::Action;
        let rows = |st: &TableState| shown(&table(), st, &c).rows;
        let mut st = TableState::default();
        st.step_sort(Action::SortNext, 2);
        assert_eq!(rows(&st).iter().map(|r| r[0].as_str()).collect::<Vec<_>>(), ["40", "7", "5"]);
        st.step_sort(Action::SortReverse, 2);
        assert_eq!(rows(&st)[0][0], "5");
        st.step_sort(Action::SortNext, 2);
        assert_eq!(st.sort, Some((1, true)));
        assert_eq!(rows(&st)[0][1], "cat");
        st.filter = "BASH".into();
        assert_eq!(rows(&st).len(), 2);
        assert_eq!(shown(&table(), &st, &c).headers[1], "NAME▼");
        st.step_sort(Action::SortNext, 2);
        assert_eq!(st.sort, Some((0, true)), "wraps");
        st.step_sort(Action::SortPrev, 2);
        assert_eq!(st.sort, Some((1, true)));
    }

    #[test]
    fn a_duration_column_reads_in_one_unit_and_numbers_align_right() {
        let t = Table {
            columns: vec![FieldSpec::new("max", FieldKind::DURATION_NS, "ns"), FieldSpec::new("cpu", FieldKind::F64, "%")].into(),
            rows: vec![vec![Value::u64(21_200), Value::f64(3.0)].into(), vec![Value::u64(50_370_000), Value::missing()].into()].into(),
        };
        let s = shown(&t, &TableState::default(), &Clock::now());
        assert_eq!(s.headers, ["MAX ms", "CPU %"]);
        let rate = Table { columns: vec![FieldSpec::new("error rate", FieldKind::F64, "%")].into(), rows: vec![].into() };
        assert_eq!(shown(&rate, &TableState::default(), &Clock::now()).headers, ["ERROR RATE %"], "a name with a space stays whole");
        // Two values: the typical one is the larger (50 ms), so 0.1 decimal.
        assert_eq!(s.rows, [["0.0", "3.0"], ["50.4", "-"]]);
        assert_eq!(s.right, [true, true]);
        assert_eq!(s.needs[0].natural, 6, "the header is the widest");
    }
}
