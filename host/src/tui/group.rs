//! Rows grouped by process name (the `g` key): `find` run four times is one
//! row, not four. How each column combines is the plugin's declaration
//! ([`Merge`]); the host knows no tracer's columns.

use tracer_plugin_api::common_names::{COMM, PID};
use tracer_plugin_api::{FieldKind, FieldSpec, FieldValue, Merge, Table, Value};

/// The header of the pid column once grouped: how many pids a row stands for.
pub const PIDS: &str = "pids";

/// `t` with one row per process name (and per value of every other key
/// column, e.g. the syscall of a (process, syscall) table), or `None` when
/// the table is not one to group: no `pid` and `comm` columns, or nothing
/// that adds up (a list of events).
pub fn by_comm(t: &Table) -> Option<Table> {
    let col = |n: &str| t.columns.iter().position(|c| c.name.as_str() == n);
    let (pid, comm) = (col(PID)?, col(COMM)?);
    if !t.columns.iter().any(|c| matches!(c.merge, Merge::SUM | Merge::MAX | Merge::MIN)) {
        return None;
    }
    // Rows merge when their name and every other key column agree.
    let keys: Vec<usize> = (0..t.columns.len()).filter(|&i| i == comm || (i != pid && t.columns[i].priority == 0 && t.columns[i].merge == Merge::SAME)).collect();
    let mut groups: Vec<(Vec<Value>, Vec<usize>)> = Vec::new();
    let mut index: std::collections::HashMap<Vec<String>, usize> = std::collections::HashMap::new();
    for (r, row) in t.rows.iter().enumerate() {
        let key: Vec<String> = keys.iter().map(|&k| format!("{:?}", row.get(k).and_then(|v| v.as_enum().ok()))).collect();
        match index.get(&key) {
            Some(&g) => groups[g].1.push(r),
            None => {
                index.insert(key, groups.len());
                groups.push((Vec::new(), vec![r]));
            }
        }
    }
    let columns: Vec<FieldSpec> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| if i == pid { FieldSpec::new(PIDS, FieldKind::U64, "").priority(0).merge(Merge::SUM) } else { c.clone() })
        .collect();
    let rows = groups
        .iter()
        .map(|(_, members)| {
            (0..t.columns.len())
                .map(|c| if c == pid { Value::u64(members.len() as u64) } else { merge(t.columns[c].merge, members.iter().filter_map(|&r| t.rows[r].get(c))) })
                .collect::<Vec<FieldValue>>()
                .into()
        })
        .collect::<Vec<_>>();
    Some(Table { columns: columns.into(), rows: rows.into() })
}

/// One value from many, by `how`. Missing values are left out; none left is
/// missing; values of a kind that cannot combine that way differ (`*`).
fn merge<'a>(how: Merge, values: impl Iterator<Item = &'a FieldValue>) -> FieldValue {
    let vals: Vec<Value> = values.filter_map(|v| v.as_enum().ok().cloned()).filter(|v| *v != Value::Missing).collect();
    let Some(first) = vals.first().cloned() else { return Value::missing() };
    let nums = |f: fn(u64, u64) -> u64| vals.iter().map(|v| if let Value::U64(n) = v { Some(*n) } else { None }).try_fold(None, |acc: Option<u64>, n| n.map(|n| Some(acc.map_or(n, |a| f(a, n)))));
    let floats = |f: fn(f64, f64) -> f64| vals.iter().map(|v| if let Value::F64(x) = v { Some(*x) } else { None }).try_fold(None, |acc: Option<f64>, x| x.map(|x| Some(acc.map_or(x, |a| f(a, x)))));
    let combined = match (how, &first) {
        (Merge::SUM, Value::U64(_)) => nums(u64::saturating_add).flatten().map(Value::u64),
        (Merge::MAX, Value::U64(_)) => nums(u64::max).flatten().map(Value::u64),
        (Merge::MIN, Value::U64(_)) => nums(u64::min).flatten().map(Value::u64),
        (Merge::SUM, Value::F64(_)) => floats(|a, b| a + b).flatten().map(Value::f64),
        (Merge::MAX, Value::F64(_)) => floats(f64::max).flatten().map(Value::f64),
        (Merge::MIN, Value::F64(_)) => floats(f64::min).flatten().map(Value::f64),
        _ if vals.iter().all(|v| *v == first) => Some(tracer_plugin_api::Value_NE::new(first.clone())),
        _ => None,
    };
    combined.unwrap_or_else(|| Value::str("*"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<FieldSpec> {
        vec![
            FieldSpec::new("pid", FieldKind::U64, "").priority(0),
            FieldSpec::new("comm", FieldKind::STR, "").priority(0),
            FieldSpec::new("syscall", FieldKind::STR, "").priority(0),
            FieldSpec::new("count", FieldKind::U64, "").merge(Merge::SUM),
            FieldSpec::new("max", FieldKind::DURATION_NS, "ns").merge(Merge::MAX),
            FieldSpec::new("cpu", FieldKind::F64, "%").merge(Merge::SUM),
            FieldSpec::new("avg", FieldKind::DURATION_NS, "ns"),
        ]
    }

    fn row(pid: u64, comm: &str, sc: &str, count: u64, max: u64, cpu: f64, avg: u64) -> Vec<FieldValue> {
        vec![Value::u64(pid), Value::str(comm), Value::str(sc), Value::u64(count), Value::u64(max), Value::f64(cpu), Value::u64(avg)]
    }

    #[test]
    fn rows_of_one_name_and_key_become_one_by_each_columns_rule() {
        let t = Table {
            columns: cols().into(),
            rows: vec![
                row(1, "find", "read", 10, 500, 20.0, 7).into(),
                row(2, "find", "read", 5, 900, 30.0, 7).into(),
                row(3, "find", "write", 1, 100, 1.0, 9).into(),
                row(4, "bash", "read", 2, 50, 1.5, 8).into(),
                row(5, "find", "read", 1, 200, 0.5, 6).into(),
            ]
            .into(),
        };
        let g = by_comm(&t).unwrap();
        assert_eq!(g.columns[0].name.as_str(), PIDS);
        let rows: Vec<Vec<Value>> = g.rows.iter().map(|r| r.iter().map(|v| v.as_enum().unwrap().clone()).collect()).collect();
        assert_eq!(rows.len(), 3, "find/read, find/write, bash/read");
        assert_eq!(rows[0], [Value::U64(3), Value::Str("find".into()), Value::Str("read".into()), Value::U64(16), Value::U64(900), Value::F64(50.5), Value::Str("*".into())]);
        assert_eq!(rows[1][0], Value::U64(1));
        assert_eq!(rows[1][6], Value::U64(9), "one row: its own average");
        assert_eq!(rows[2][1], Value::Str("bash".into()));
    }

    #[test]
    fn event_lists_and_tables_without_a_process_are_left_alone() {
        let list = Table { columns: vec![FieldSpec::new("pid", FieldKind::U64, ""), FieldSpec::new("comm", FieldKind::STR, ""), FieldSpec::new("path", FieldKind::STR, "")].into(), rows: vec![].into() };
        assert!(by_comm(&list).is_none(), "nothing adds up");
        let nopid = Table { columns: vec![FieldSpec::new("syscall", FieldKind::STR, ""), FieldSpec::new("count", FieldKind::U64, "").merge(Merge::SUM)].into(), rows: vec![].into() };
        assert!(by_comm(&nopid).is_none());
    }
}
