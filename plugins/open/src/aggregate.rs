//! Aggregates of open records and the panels built from them. Pure: records in,
//! tables out, so all of it is testable without a kernel.

use crate::record::{flags_text, Comm, OpenRecord};
use std::collections::{HashMap, VecDeque};
use tracer_plugin_api::{FieldKind, FieldValue, Panel, Table, Value};
use tracer_plugin_kit::panels::counters;
use tracer_plugin_kit::table::{column, extra, flex, key, sum, table, Column};

/// How many recent opens and recent failures are kept.
pub const RECENT: usize = 512;
/// Distinct files / processes tracked; past twice this, the least-opened half is
/// dropped (and counted) so memory stays bounded on a box that opens everything.
pub const MAX_KEYS: usize = 4096;
/// Rows a top-N table shows.
pub const TOP_ROWS: usize = 100;

#[derive(Default, Clone, Copy)]
struct Tally {
    opens: u64,
    failures: u64,
}

impl Tally {
    fn add(&mut self, failed: bool) {
        self.opens += 1;
        self.failures += failed as u64;
    }
}

#[derive(Default)]
pub struct OpenStats {
    pub opens: u64,
    pub failures: u64,
    pub evicted: u64,
    recent: VecDeque<OpenRecord>,
    recent_failures: VecDeque<OpenRecord>,
    files: HashMap<String, Tally>,
    procs: HashMap<(u32, Comm), Tally>,
    /// Per errno: failures, and the last path and process that got it.
    errnos: HashMap<i64, ErrnoTally>,
}

#[derive(Default)]
struct ErrnoTally {
    count: u64,
    last_path: String,
    last_pid: u32,
    last_comm: Comm,
}

fn push_bounded(q: &mut VecDeque<OpenRecord>, r: OpenRecord) {
    if q.len() == RECENT {
        q.pop_front();
    }
    q.push_back(r);
}

/// Keep the `MAX_KEYS` most-opened keys once the map has grown to twice that.
fn prune<K: Clone + Eq + std::hash::Hash>(m: &mut HashMap<K, Tally>) -> u64 {
    if m.len() <= 2 * MAX_KEYS {
        return 0;
    }
    let mut counts: Vec<u64> = m.values().map(|t| t.opens).collect();
    let cut = counts.len() - MAX_KEYS;
    let (_, &mut threshold, _) = counts.select_nth_unstable(cut);
    let before = m.len();
    m.retain(|_, t| t.opens > threshold);
    // Ties at the threshold may leave fewer than MAX_KEYS: that is fine.
    (before - m.len()) as u64
}

impl OpenStats {
    /// Takes the record: it ends in the recent list without a copy.
    pub fn add(&mut self, r: OpenRecord) {
        let failed = r.failed();
        self.opens += 1;
        self.failures += failed as u64;
        if failed {
            let e = self.errnos.entry(r.ret).or_default();
            e.count += 1;
            e.last_path = r.display_path().into_owned();
            (e.last_pid, e.last_comm) = (r.pid, r.comm);
        }
        // get_mut first: no key allocation for a file seen before (the common case).
        let shown = r.display_path();
        match self.files.get_mut(shown.as_ref()) {
            Some(t) => t.add(failed),
            None => self.files.entry(shown.into_owned()).or_default().add(failed),
        }
        self.procs.entry((r.pid, r.comm)).or_default().add(failed);
        self.evicted += prune(&mut self.files) + prune(&mut self.procs);
        if failed {
            push_bounded(&mut self.recent_failures, r.clone());
        }
        push_bounded(&mut self.recent, r);
    }

    pub fn reset(&mut self) {
        *self = OpenStats::default();
    }

    /// Newest first.
    pub fn recent(&self) -> Table {
        table(&record_columns(), self.recent.iter().rev())
    }

    pub fn top_files(&self) -> Table {
        let mut v: Vec<_> = self.files.iter().collect();
        v.sort_by(|a, b| b.1.opens.cmp(&a.1.opens).then_with(|| a.0.cmp(b.0)));
        let cols = [
            column::<(&String, &Tally)>("opens", FieldKind::U64, "", |r| Value::u64(r.1.opens)),
            column("failed", FieldKind::U64, "", |r| Value::u64(r.1.failures)),
            flex(12, column("path", FieldKind::STR, "", |r| Value::str(r.0))),
        ];
        table(&cols, v.iter().take(TOP_ROWS))
    }

    pub fn top_procs(&self) -> Table {
        let mut v: Vec<_> = self.procs.iter().collect();
        v.sort_by(|a, b| b.1.opens.cmp(&a.1.opens).then_with(|| a.0.cmp(b.0)));
        let cols = [
            sum(column::<(&(u32, Comm), &Tally)>("opens", FieldKind::U64, "", |r| Value::u64(r.1.opens))),
            sum(column("failed", FieldKind::U64, "", |r| Value::u64(r.1.failures))),
            key(column("pid", FieldKind::U64, "", |r| Value::u64(r.0 .0 as u64))),
            key(column("comm", FieldKind::STR, "", |r| Value::str(&r.0 .1.as_str()))),
        ];
        table(&cols, v.iter().take(TOP_ROWS))
    }

    /// Recent failed opens, newest first.
    pub fn failures(&self) -> Table {
        table(&record_columns(), self.recent_failures.iter().rev())
    }

    /// Failures by errno, most frequent first, with the last path and the
    /// process that got it (Enter on the row pivots onto that process).
    pub fn errors(&self) -> Table {
        let mut by_errno: Vec<_> = self.errnos.iter().collect();
        by_errno.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
        let cols = [
            key(column::<(&i64, &ErrnoTally)>("error", FieldKind::ERRNO_RESULT, "", |r| Value::i64(*r.0))),
            column("count", FieldKind::U64, "", |r| Value::u64(r.1.count)),
            extra(column("pid", FieldKind::U64, "", |r| Value::u64(r.1.last_pid as u64))),
            column("comm", FieldKind::STR, "", |r| Value::str(&r.1.last_comm.as_str())),
            flex(12, column("last path", FieldKind::STR, "", |r| Value::str(&r.1.last_path))),
        ];
        table(&cols, by_errno.iter())
    }

    pub fn summary(&self) -> Panel {
        counters(&[
            ("opens", self.opens, "events"),
            ("failed", self.failures, "events"),
            ("files", self.files.len() as u64, "distinct"),
            ("processes", self.procs.len() as u64, "distinct"),
            ("evicted", self.evicted, "keys"),
        ])
    }
}

/// The columns of the recent and failed panels.
fn record_columns() -> [Column<OpenRecord>; 7] {
    [
        extra(column("time", FieldKind::MONO_TIME_NS, "ns", |r| Value::u64(r.ts_ns))),
        key(column("pid", FieldKind::U64, "", |r| Value::u64(r.pid as u64))),
        key(column("comm", FieldKind::STR, "", |r| Value::str(&r.comm.as_str()))),
        // The user whose open it was (the real uid; euid is in the records).
        extra(column("uid", FieldKind::U64, "", |r| Value::u64(r.uid as u64))),
        column("result", FieldKind::ERRNO_RESULT, "", |r| Value::i64(r.ret)),
        extra(column("flags", FieldKind::STR, "", |r| Value::str(&flags_text(r.flags)))),
        flex(12, column("path", FieldKind::STR, "", |r| Value::str(&r.display_path()))),
    ]
}

/// The values of a table cell as Rust values, for tests.
pub fn cell(v: &FieldValue) -> Value {
    v.as_enum().cloned().unwrap_or(Value::Missing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Syscall;

    fn rec(pid: u32, comm: &str, path: &str, ret: i64) -> OpenRecord {
        OpenRecord {
            ts_ns: 1,
            flags: 0,
            ret,
            pid,
            tid: pid,
            uid: 0,
            mode: 0,
            syscall: Syscall::Openat,
            comm: comm.into(),
            path: path.into(),
            ..Default::default()
        }
    }

    #[test]
    fn counts_top_files_and_processes() {
        let mut s = OpenStats::default();
        for _ in 0..3 {
            s.add(rec(10, "cat", "/etc/hosts", 3));
        }
        s.add(rec(11, "ls", "/missing", -2));
        assert_eq!((s.opens, s.failures), (4, 1));
        let t = s.top_files();
        assert_eq!(cell(&t.rows[0][0]), Value::U64(3));
        assert_eq!(cell(&t.rows[0][2]), Value::Str("/etc/hosts".into()));
        assert_eq!(cell(&t.rows[1][1]), Value::U64(1));
        let p = s.top_procs();
        assert_eq!(cell(&p.rows[0][2]), Value::U64(10));
        assert_eq!(cell(&p.rows[1][3]), Value::Str("ls".into()));
    }

    #[test]
    fn failures_list_recent_and_errors_group_by_errno() {
        let mut s = OpenStats::default();
        s.add(rec(1, "a", "/x", -2));
        s.add(rec(1, "a", "/y", -2));
        s.add(rec(1, "a", "/ok", 3));
        s.add(rec(2, "b", "/root/z", -13));
        let e = s.errors();
        assert_eq!(e.rows.len(), 2);
        assert_eq!(cell(&e.rows[0][0]), Value::I64(-2));
        assert_eq!(cell(&e.rows[0][1]), Value::U64(2));
        assert_eq!(cell(&e.rows[0][4]), Value::Str("/y".into()));
        assert_eq!((cell(&e.rows[1][2]), cell(&e.rows[1][3])), (Value::U64(2), Value::Str("b".into())), "the process that got it");
        assert_eq!(cell(&e.rows[1][0]), Value::I64(-13));
        let f = s.failures();
        assert_eq!(f.rows.len(), 3, "successful opens are not failures");
        assert_eq!(cell(&f.rows[0][6]), Value::Str("/root/z".into()));
        assert_eq!(cell(&f.rows[0][4]), Value::I64(-13));
    }

    #[test]
    fn recent_is_bounded_and_newest_first() {
        let mut s = OpenStats::default();
        for i in 0..(RECENT + 10) {
            s.add(rec(1, "a", &format!("/f{i}"), 3));
        }
        let t = s.recent();
        assert_eq!(t.rows.len(), RECENT);
        assert_eq!(cell(&t.rows[0][6]), Value::Str(format!("/f{}", RECENT + 9).as_str().into()));
    }

    #[test]
    fn distinct_files_are_bounded_and_eviction_counted() {
        let mut s = OpenStats::default();
        s.add(rec(1, "a", "/hot", 3));
        s.add(rec(1, "a", "/hot", 3));
        for i in 0..(2 * MAX_KEYS + 1) {
            s.add(rec(1, "a", &format!("/cold{i}"), 3));
        }
        assert!(s.files.len() <= 2 * MAX_KEYS);
        assert!(s.evicted > 0);
        assert!(s.files.contains_key("/hot"), "the most-opened file survives pruning");
    }

    #[test]
    fn reset_forgets_everything() {
        let mut s = OpenStats::default();
        s.add(rec(1, "a", "/x", -2));
        s.reset();
        assert_eq!(s.opens, 0);
        assert!(s.recent().rows.is_empty() && s.failures().rows.is_empty() && s.errors().rows.is_empty());
    }

}
