//! As root: the pagecache tracer against the kernel's own page cache
//! accounting. Five workloads of made-up names take a scratch file on the
//! root file system (ext4, not tmpfs: a page cache that writes back and
//! evicts) through writing 1,000 pages, syncfs, fsync + DONTNEED, a cold
//! read and a warm read; each prints cachestat(2)'s cached and dirty pages
//! for the file before and after its step. The tracer's pages must be the
//! deltas cachestat shows, and hits and misses what the reads did.

mod common;
use common::*;
use serde_json::{json, Value};

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

const PAGES: u64 = 1000;

fn pgpgin() -> u64 {
    std::fs::read_to_string("/proc/vmstat").unwrap().lines().find_map(|l| l.strip_prefix("pgpgin ")?.trim().parse().ok()).unwrap()
}

#[test]
fn the_page_cache_is_what_cachestat_counts_on_tp_btf() {
    check_against_cachestat("tp_btf");
}

#[test]
fn the_page_cache_is_what_cachestat_counts_on_raw_tp() {
    check_against_cachestat("raw_tp");
}

fn check_against_cachestat(mode: &str) {
    let _g = serial();
    assert_root();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let file = dir.path().join("pc-scratch.dat");
    let f = file.to_str().unwrap();
    let p = PAGES.to_string();
    // Warm-up, untraced: the same steps on another file, so the pages of
    // the workload's own program are in the cache (on a fresh build they
    // are not, and faulting them in is each process's own misses).
    let warm = dir.path().join("warm-up.dat");
    for step in ["write", "sync", "drop", "read"] {
        let st = std::process::Command::new(workload_bin()).args(["pagecache", step, warm.to_str().unwrap(), &p]).stdout(std::process::Stdio::null()).status().unwrap();
        assert!(st.success(), "warm-up {step}");
    }
    let pgpgin_before = pgpgin();
    let (run, pids) = run_with_workloads(
        "pagecache",
        &format!("attach = \"{mode}\""),
        &[
            &["--comm", "pcw-write", "pagecache", "write", f, &p],
            &["--comm", "pcw-sync", "pagecache", "sync", f, &p],
            &["--comm", "pcw-drop", "pagecache", "drop", f, &p],
            &["--comm", "pcw-cold", "pagecache", "read", f, &p],
            &["--comm", "pcw-warm", "pagecache", "read", f, &p],
        ],
    );
    let read_kib = pgpgin() - pgpgin_before;
    // What the cache held of the file when the tracer stopped, untraced (a
    // syncfs evicts nothing): pages reclaim took after the warm read, while
    // the tracer still ran, are evictions too (seen in CI: 2).
    let after = std::process::Command::new(workload_bin()).args(["pagecache", "sync", f, &p]).output().unwrap();
    let after = String::from_utf8_lossy(&after.stdout).into_owned();
    let cached_at_stop: u64 = after.lines().find(|l| l.starts_with("pagecache ")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or_else(|| panic!("{after}"));
    assert!(run.stderr.contains(&format!("pagecache running ({mode})")), "{}", run.stderr);
    // cachestat's (cached, dirty) before and after each step.
    let cs: Vec<[u64; 4]> = pids
        .iter()
        .map(|(_, out)| {
            let l = out.lines().find(|l| l.starts_with("pagecache ")).unwrap_or_else(|| panic!("{out}"));
            assert!(l.ends_with("cachestat"), "cachestat(2) is on this kernel: {l}");
            let v: Vec<u64> = l.split_whitespace().skip(1).take(4).map(|x| x.parse().unwrap()).collect();
            [v[0], v[1], v[2], v[3]]
        })
        .collect();
    eprintln!("cachestat (cached, dirty) before/after: write {:?} sync {:?} drop {:?} cold {:?} warm {:?}; pgpgin +{read_kib} KiB", cs[0], cs[1], cs[2], cs[3], cs[4]);
    assert_eq!(cs[0], [0, 0, PAGES, PAGES], "a new file, all of it cached and dirty");
    assert_eq!(cs[1][2..], [PAGES, 0], "syncfs wrote it all back");
    assert_eq!(cs[2][2], 0, "DONTNEED evicted it all");
    assert_eq!(cs[3][..3], [0, 0, PAGES], "the cold read brought it all in");
    assert_eq!(cs[4][2], PAGES);
    // The cold read came from the disk: at least its 4,000 KiB (the
    // machine's other reads add to this counter too).
    assert!(read_kib >= PAGES * 4, "pgpgin +{read_kib} KiB");

    // The file, over all five steps: exactly the kernel's deltas.
    let rows = run.panel("pagecache", "files")["rows"].as_array().unwrap().clone();
    let name = format!("{}/pc-scratch.dat", dir.path().file_name().unwrap().to_str().unwrap());
    let r = rows.iter().find(|r| r["file"] == name.as_str()).unwrap_or_else(|| panic!("no row for {name}: {rows:?}"));
    eprintln!("file: {r}");
    assert_eq!(n(&r["dirtied"]), cs[0][3] - cs[0][1], "dirtied: cachestat's dirty pages after the write");
    assert_eq!(n(&r["written"]), cs[1][1] - cs[1][3], "written back: the dirty pages syncfs cleaned");
    assert_eq!(n(&r["evicted"]), (cs[2][0] - cs[2][2]) + (cs[4][2] - cached_at_stop), "evicted: the cached pages DONTNEED dropped, and any reclaim took after");
    assert_eq!(n(&r["read_pages"]), 2 * PAGES, "two reads of every page");
    assert_eq!(n(&r["added"]), cs[0][2] + (cs[3][2] - cs[3][0]), "added: by the write and by the cold read");
    assert_eq!((n(&r["hits"]), n(&r["misses"])), (PAGES, PAGES), "the cold read missed every page, the warm one hit every page");

    // Per process: each step's own figures, give or take what a process
    // does besides: it reads a page or two of its libraries (ld.so reads
    // each one's ELF header: allowed 16 pages read, hits), it may fault in
    // pages of its program not cached (a fresh build, memory pressure):
    // real misses of its own (allowed 32; seen: 0-17), and it may dirty a
    // page it did not add (file system metadata in the disk's own page
    // cache, e.g. an atime update), which lowers its misses by one each,
    // the error of cachestat's "added - dirtied" (allowed 4, seen 1). The
    // file's row above has none of these: it is exact.
    let procs = run.panel("pagecache", "processes")["rows"].as_array().unwrap().clone();
    let of = |i: usize| procs.iter().find(|r| r["pid"] == json!(pids[i].0)).cloned().unwrap_or_else(|| panic!("no row for step {i}: {procs:?}"));
    let within = |v: &Value, key: &str, lo: u64, hi: u64| assert!((lo..=hi).contains(&n(&v[key])), "{key} not in {lo}..={hi}: {v}");
    let w = of(0);
    assert_eq!(w["comm"], "pcw-write");
    within(&w, "dirtied", PAGES, PAGES + 4);
    within(&w, "misses", 0, 32);
    let cold = of(3);
    assert_eq!(cold["comm"], "pcw-cold");
    within(&cold, "added", PAGES, PAGES + 32);
    within(&cold, "misses", PAGES - 4, PAGES + 32);
    within(&cold, "read_pages", PAGES, PAGES + 16);
    let warm = of(4);
    assert_eq!(warm["comm"], "pcw-warm");
    within(&warm, "misses", 0, 32);
    within(&warm, "hits", PAGES - 32, PAGES + 16);
}
