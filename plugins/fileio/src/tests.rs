use super::stats::*;
use super::*;
use proptest::prelude::*;
use tracer_plugin_api::{MapEntry, Table};
use tracer_plugin_kit::test_support::snapshot;
use tracer_plugin_kit::{bytes_of, comm_bytes};

#[test]
fn shared_structs_match_the_btf_of_the_embedded_object() {
    tracer_plugin_kit::test_support::assert_layouts_match(BPF_OBJECT, &types::layouts());
}

fn snap(name: &str, per_cpu: u32, entries: Vec<(Vec<u8>, Vec<u8>)>) -> MapSnapshot {
    MapSnapshot { name: name.into(), values_per_key: per_cpu, entries: RVec::from(entries.into_iter().map(|(k, v)| MapEntry { key: k.into(), value: v.into() }).collect::<Vec<_>>()) }
}

fn name_bytes<const N: usize>(s: &str) -> [u8; N] {
    let mut b = [0u8; N];
    b[..s.len()].copy_from_slice(s.as_bytes());
    b
}

/// (tgid, ino, comm, dir, name, reads, read bytes, writes, written bytes)
type FileRow<'a> = (u32, u64, &'a str, &'a str, &'a str, u64, u64, u64, u64);

fn files(rows: &[FileRow]) -> MapSnapshot {
    let entries = rows
        .iter()
        .map(|&(tgid, ino, comm, dir, name, r, rb, w, wb)| {
            let k = fileio_key { tgid, dev: 8, ino };
            let mut v = fileio_file { kind: FILEIO_KIND_REGULAR, comm: comm_bytes(comm), name: name_bytes(name), dir: name_bytes(dir), ..Default::default() };
            v.ops[0] = r;
            v.ops[1] = w;
            v.ns[0] = r * 1000;
            v.bytes[0] = rb;
            v.bytes[1] = wb;
            (bytes_of(&k).to_vec(), bytes_of(&v).to_vec())
        })
        .collect();
    snap("fileio_files", 1, entries)
}

fn cell<'a>(t: &'a Table, row: usize, col: &str) -> &'a FieldValue {
    let i = t.columns.iter().position(|c| c.name.as_str() == col).unwrap_or_else(|| panic!("no column {col}"));
    &t.rows[row][i]
}

fn panel(s: &FileStats, id: &str) -> Panel {
    tracer_plugin_kit::panels::build("fileio", stats::PANELS, s, id).unwrap()
}

fn metric(m: &[tracer_plugin_api::MetricSample], name: &str, labels: &[&str]) -> Option<f64> {
    m.iter().find(|x| x.name.as_str() == name && x.labels.iter().map(|l| l.as_str()).eq(labels.iter().copied())).map(|x| x.value)
}

#[test]
fn paths_are_dir_and_name_with_truncation_marked_and_sockets_named_by_inode() {
    assert_eq!(path_of(b"log\0", b"app.log\0", 0, FILEIO_KIND_REGULAR, 5), "log/app.log");
    assert_eq!(path_of(b"/\0", b"etc\0", 0, FILEIO_KIND_REGULAR, 5), "/etc");
    assert_eq!(path_of(b"d\0", b"longname\0", 1, FILEIO_KIND_REGULAR, 5), "d/longname…");
    assert_eq!(path_of(b"\0", b"\0", 0, FILEIO_KIND_SOCKET, 77), "socket:[77]");
    assert_eq!(path_of(b"/\0", b"pipe:[9]\0", 0, FILEIO_KIND_PIPE, 9), "/pipe:[9]");
}

#[test]
fn files_and_processes_come_from_one_map_and_evicted_bytes_stay_with_the_name() {
    let mut s = FileStats::default();
    s.on_map(&files(&[(10, 1, "db", "data", "a.db", 5, 500, 2, 8192), (10, 2, "db", "data", "b.db", 1, 10, 0, 0), (11, 3, "cat", "etc", "hosts", 1, 100, 0, 0)])).unwrap();
    let t = s.files();
    assert_eq!(cell(&t, 0, "file"), &Value::str("data/a.db"), "most bytes first");
    assert_eq!((cell(&t, 0, "reads"), cell(&t, 0, "written")), (&Value::u64(5), &Value::u64(8192)));
    assert_eq!(cell(&t, 0, "time"), &Value::u64(5000));
    let p = s.processes();
    assert_eq!(cell(&p, 0, "pid"), &Value::u64(10));
    assert_eq!((cell(&p, 0, "reads"), cell(&p, 0, "read"), cell(&p, 0, "files")), (&Value::u64(6), &Value::u64(510), &Value::u64(2)));
    // b.db evicted: its bytes stay with "db" in the metrics.
    s.on_map(&files(&[(10, 1, "db", "data", "a.db", 6, 600, 2, 8192), (11, 3, "cat", "etc", "hosts", 1, 100, 0, 0)])).unwrap();
    let m = s.metrics();
    tracer_plugin_kit::test_support::assert_metrics_declared(&metric_specs(), &m);
    assert_eq!(metric(&m, "process_bytes_total", &["db", "read"]), Some(610.0));
    assert_eq!(metric(&m, "process_bytes_total", &["db", "write"]), Some(8192.0));
    // A reset moves the panels' zero.
    s.reset();
    s.on_map(&files(&[(10, 1, "db", "data", "a.db", 7, 650, 2, 8192)])).unwrap();
    let t = s.files();
    assert_eq!(t.rows.len(), 1);
    assert_eq!((cell(&t, 0, "reads"), cell(&t, 0, "read")), (&Value::u64(1), &Value::u64(50)));
}

#[test]
fn totals_and_histograms_come_from_the_never_evicted_map_and_survive_a_new_one() {
    let mut s = FileStats::default();
    let hist = |reads: u64, fsyncs: u64| {
        let mut h = fileio_hist::default();
        h.slots[0][3] = reads;
        h.slots[2][10] = fsyncs;
        h.sum_ns[0] = reads * 10_000;
        h.sum_ns[2] = fsyncs * 1_500_000;
        h.bytes[0] = reads * 4096;
        snap("fileio_hist", 2, vec![(0u32.to_ne_bytes().to_vec(), [bytes_of(&h), bytes_of(&fileio_hist::default())].concat())])
    };
    s.on_map(&hist(100, 3)).unwrap();
    s.reset();
    s.on_map(&hist(10, 1)).unwrap(); // a new map (re-attached): 10 and 1 more
    let Panel::Log2Histogram(h) = panel(&s, "read_latency") else { panic!() };
    assert_eq!(h.buckets[3], 10, "since the reset");
    let Panel::Log2Histogram(h) = panel(&s, "sync_latency") else { panic!() };
    assert_eq!(h.buckets[10], 1);
    let m = s.metrics();
    assert_eq!(metric(&m, "calls_total", &["read"]), Some(110.0), "since start, across the new map");
    assert_eq!(metric(&m, "calls_total", &["fsync"]), Some(4.0));
    assert_eq!(metric(&m, "io_bytes_total", &["read"]), Some(110.0 * 4096.0));
    let Panel::Counters(c) = s.summary() else { panic!() };
    let get = |n: &str| c.iter().find(|x| x.name.as_str() == n).unwrap().value;
    assert_eq!((get("reads"), get("fsyncs"), get("read")), (10, 1, 40960));
}

#[test]
fn a_slow_call_becomes_a_record_and_a_row() {
    let mut t = FileIo::default();
    let e = fileio_slow { ts_ns: 1, ns: 12_000_000, ret: 4096, tgid: 9, tid: 10, op: FILEIO_FSYNC, kind: FILEIO_KIND_REGULAR, comm: comm_bytes("pg"), name: name_bytes("wal\x1b[2J"), dir: name_bytes("pg_wal"), ..Default::default() };
    let mut out = RVec::new();
    t.on_record(0, bytes_of(&e), Some(&mut out)).unwrap();
    let names: Vec<&str> = slow_columns().iter().map(|c| c.name).collect();
    let at = |n: &str| out[names.iter().position(|x| *x == n).unwrap()].clone();
    assert_eq!(at("op"), Value::str("fsync"));
    assert_eq!(at("latency"), Value::u64(12_000_000));
    // Raw here: the host escapes every string before a terminal sees it.
    assert_eq!(at("file"), Value::str("pg_wal/wal\x1b[2J"));
    let Panel::Table(p) = t.panel("slow").unwrap() else { panic!() };
    assert_eq!(p.rows.len(), 1);
    t.reset();
    let Panel::Table(p) = t.panel("slow").unwrap() else { panic!() };
    assert!(p.rows.is_empty());
    assert!(t.on_record(0, &[1, 2, 3], None).is_err(), "a short record is an error, not a panic");
    assert!(t.panel("nope").unwrap_err().contains("files"));
}

proptest! {
    #[test]
    fn arbitrary_snapshots_never_panic(snaps in proptest::collection::vec(snapshot(&["fileio_files", "fileio_hist", "fileio_counters", "other"]), 1..5)) {
        let mut s = FileStats::default();
        for snap in &snaps {
            let _ = s.on_map(snap);
        }
        for p in stats::PANELS {
            let _ = (p.build)(&s);
        }
        tracer_plugin_kit::test_support::assert_metrics_declared(&metric_specs(), &s.metrics());
    }
}
