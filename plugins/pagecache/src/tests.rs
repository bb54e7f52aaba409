use super::stats::*;
use super::*;
use proptest::prelude::*;
use tracer_plugin_api::{MapEntry, Table, Value};
use tracer_plugin_kit::test_support::snapshot;
use tracer_plugin_kit::{bytes_of, comm_bytes};

#[test]
fn shared_structs_match_the_btf_of_the_embedded_object() {
    tracer_plugin_kit::test_support::assert_layouts_match(BPF_OBJECT, &types::layouts());
}

fn snap(name: &str, per_cpu: u32, entries: Vec<(Vec<u8>, Vec<u8>)>) -> MapSnapshot {
    MapSnapshot { name: name.into(), values_per_key: per_cpu, entries: RVec::from(entries.into_iter().map(|(k, v)| MapEntry { key: k.into(), value: v.into() }).collect::<Vec<_>>()) }
}

/// pagecache_procs over two CPUs: the figures split between them.
fn procs(rows: &[(u32, Figures)]) -> MapSnapshot {
    let entries = rows
        .iter()
        .map(|(pid, f)| {
            let a = pagecache_proc { pages: f.map(|v| v / 2) };
            let b = pagecache_proc { pages: f.map(|v| v - v / 2) };
            (pid.to_ne_bytes().to_vec(), [bytes_of(&a), bytes_of(&b)].concat())
        })
        .collect();
    snap("pagecache_procs", 2, entries)
}

fn comms(rows: &[(u32, &str)]) -> MapSnapshot {
    snap("pagecache_comms", 1, rows.iter().map(|(pid, c)| (pid.to_ne_bytes().to_vec(), comm_bytes(c).to_vec())).collect())
}

fn name_bytes<const N: usize>(s: &str) -> [u8; N] {
    let mut b = [0u8; N];
    b[..s.len()].copy_from_slice(s.as_bytes());
    b
}

fn files(rows: &[(u64, &str, &str, Figures)]) -> MapSnapshot {
    let entries = rows
        .iter()
        .map(|&(ino, dir, name, f)| {
            let k = pagecache_file_key { dev: (254 << 20) | 1, ino, ..Default::default() };
            let v = pagecache_file { pages: f, name: name_bytes(name), dir: name_bytes(dir), ..Default::default() };
            (bytes_of(&k).to_vec(), bytes_of(&v).to_vec())
        })
        .collect();
    snap("pagecache_files", 1, entries)
}

fn cell<'a>(t: &'a Table, row: usize, col: &str) -> &'a FieldValue {
    let i = t.columns.iter().position(|c| c.name.as_str() == col).unwrap_or_else(|| panic!("no column {col}"));
    &t.rows[row][i]
}

#[test]
fn hits_and_misses_are_derived_as_cachestat_does() {
    // A cold read of 100 pages: all misses.
    assert_eq!(hits_misses(&[100, 100, 0, 0, 0]), (0, 100));
    // A warm read: all hits.
    assert_eq!(hits_misses(&[100, 0, 0, 0, 0]), (100, 0));
    // Writing 50 new pages: added and dirtied, no miss.
    assert_eq!(hits_misses(&[0, 50, 50, 0, 0]), (0, 0));
    // Overwriting cached pages dirties more than it adds: clamped.
    assert_eq!(hits_misses(&[10, 0, 40, 0, 0]), (10, 0));
}

#[test]
fn processes_files_and_totals_with_reset_and_names_kept_after_exit() {
    let mut s = CacheStats::default();
    s.on_map(&procs(&[(10, [1000, 1000, 0, 0, 0]), (11, [1000, 0, 0, 0, 0]), (12, [0, 200, 200, 0, 0])])).unwrap();
    s.on_map(&comms(&[(10, "cold"), (11, "warm"), (12, "writer")])).unwrap();
    let t = s.processes();
    let row = |pid: u64| (0..t.rows.len()).find(|&i| cell(&t, i, "pid") == &Value::u64(pid)).unwrap();
    assert_eq!((cell(&t, row(10), "hits"), cell(&t, row(10), "misses")), (&Value::u64(0), &Value::u64(1000)));
    assert_eq!((cell(&t, row(11), "hits"), cell(&t, row(11), "hit")), (&Value::u64(1000), &Value::f64(100.0)));
    assert_eq!(cell(&t, row(12), "hits"), &Value::missing(), "no reads: no hit figure");
    assert_eq!(cell(&t, row(12), "dirtied"), &Value::u64(200));
    s.on_map(&files(&[(5, "data", "big.db", [2000, 1000, 0, 1000, 0]), (6, "", "", [0, 200, 200, 0, 200])])).unwrap();
    let f = s.files();
    assert_eq!(cell(&f, 0, "file"), &Value::str("data/big.db"));
    assert_eq!((cell(&f, 0, "hits"), cell(&f, 0, "evicted")), (&Value::u64(1000), &Value::u64(1000)));
    assert_eq!(cell(&f, 1, "file"), &Value::str("dev 254:1 ino 6"), "no dentry: device and inode");
    let tot = pagecache_totals { pages: [2000, 1200, 200, 1000, 200] };
    s.on_map(&snap("pagecache_totals", 1, vec![(0u32.to_ne_bytes().to_vec(), bytes_of(&tot).to_vec())])).unwrap();
    let Panel::Counters(c) = s.summary() else { panic!() };
    let get = |n: &str| c.iter().find(|x| x.name.as_str() == n).unwrap().value;
    assert_eq!((get("hits"), get("misses"), get("hit ratio")), (1000, 1000, 50));
    // All exit: the names keep their hits and misses in the metrics.
    s.on_map(&procs(&[])).unwrap();
    s.on_map(&comms(&[])).unwrap();
    let m = s.metrics();
    tracer_plugin_kit::test_support::assert_metrics_declared(&metric_specs(), &m);
    let get = |name: &str, labels: &[&str]| m.iter().find(|x| x.name.as_str() == name && x.labels.iter().map(|l| l.as_str()).eq(labels.iter().copied())).map(|x| x.value);
    assert_eq!(get("process_hits_total", &["warm"]), Some(1000.0));
    assert_eq!(get("process_misses_total", &["cold"]), Some(1000.0));
    assert_eq!(get("pages_total", &["evicted"]), Some(1000.0));
    // A reset moves the panels' zero, not the metrics'.
    s.reset();
    let Panel::Counters(c) = s.summary() else { panic!() };
    assert!(c.iter().take(8).all(|x| x.value == 0), "{c:?}");
    assert!(s.files().rows.is_empty());
    assert_eq!(s.metrics().iter().find(|x| x.name.as_str() == "hits_total").map(|x| x.value), Some(1000.0));
}

proptest! {
    #[test]
    fn arbitrary_snapshots_never_panic(snaps in proptest::collection::vec(snapshot(&["pagecache_procs", "pagecache_comms", "pagecache_files", "pagecache_totals", "pagecache_counters", "other"]), 1..5)) {
        let mut s = CacheStats::default();
        for snap in &snaps {
            let _ = s.on_map(snap);
        }
        for p in PANELS {
            let _ = (p.build)(&s);
        }
        tracer_plugin_kit::test_support::assert_metrics_declared(&metric_specs(), &s.metrics());
    }
}
