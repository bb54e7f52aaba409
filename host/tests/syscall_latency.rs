//! As root: the syscall_latency tracer counts a known burst of syscalls from a
//! child with a known comm, exactly, with its errors and its histogram.

mod common;
use common::*;
use serde_json::json;

#[test]
fn a_getppid_burst_and_failing_opens_are_counted_exactly() {
    let _g = serial();
    let (run, pids) = run_with_workloads(
        "syscall_latency",
        "histogram_syscall = \"getppid\"\nper_process = true",
        &[
            &["--comm", "sysburst", "getppid", "50000"],
            &["--comm", "sysfail", "open", "/nonexistent/tracer-test", "700"],
        ],
    );
    let burst = pids[0].0 as u64;
    let fail = pids[1].0 as u64;

    // (process, syscall) pairs: exactly the calls the workloads made.
    let rows = run.rows_where("syscall_latency", "process_syscalls", "pid", json!(burst));
    let getppid = rows.iter().find(|r| r["syscall"] == "getppid").unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(getppid["comm"], "sysburst", "comm captured in the kernel");
    assert_eq!(getppid["count"], 50000, "{getppid}");
    assert_eq!(getppid["errors"], 0);

    let rows = run.rows_where("syscall_latency", "process_syscalls", "pid", json!(fail));
    let openat = rows.iter().find(|r| r["syscall"] == "openat").unwrap_or_else(|| panic!("{rows:?}"));
    // The dynamic loader's own opens come first (a few dozen, some failing).
    let (n, errors) = (openat["count"].as_u64().unwrap(), openat["errors"].as_u64().unwrap());
    assert!((700..800).contains(&n), "{openat}");
    assert!((700..=n).contains(&errors), "the 700 opens of a missing path failed: {openat}");

    // Per syscall, over every process: at least the workload's calls.
    let top = run.rows_where("syscall_latency", "top_count", "syscall", json!("getppid"));
    let count = top[0]["count"].as_u64().unwrap();
    assert!(count >= 50000, "{top:?}");
    let (total, avg, max) = (top[0]["total_ns"].as_u64().unwrap(), top[0]["avg_ns"].as_u64().unwrap(), top[0]["max_ns"].as_u64().unwrap());
    assert!(total > 0 && avg == total / count && max >= avg, "{top:?}");

    // The histogram of getppid holds every call.
    let h = run.panel("syscall_latency", "histogram");
    assert_eq!(h["unit"], "usecs (getppid)");
    let in_buckets: u64 = h["buckets"].as_array().unwrap().iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(in_buckets, count);

    let errs = run.rows_where("syscall_latency", "errors", "syscall", json!("openat"));
    assert!(errs[0]["errors"].as_u64().unwrap() >= 700, "{errs:?}");
    // The errors panel names the process that failed it most: the 700 opens
    // of a missing path (the loader's own failed opens are a few dozen).
    assert_eq!((errs[0]["pid"].as_u64(), errs[0]["comm"].as_str()), (Some(fail), Some("sysfail")), "{errs:?}");

    let procs = run.rows_where("syscall_latency", "by_process", "pid", json!(burst));
    assert_eq!(procs[0]["comm"], "sysburst");
    assert_eq!(procs[0]["top_syscall"], "getppid", "top syscall of the burst");
}

#[test]
fn kernel_filters_limit_what_is_counted() {
    let _g = serial();
    let (run, pids) = run_with_workloads(
        "syscall_latency",
        "comm = \"sysonly\"\nsyscalls = [\"getppid\"]\nper_process = true",
        &[&["--comm", "sysonly", "getppid", "3000"], &["--comm", "sysother", "getppid", "3000"]],
    );
    let only = run.rows_where("syscall_latency", "process_syscalls", "pid", json!(pids[0].0 as u64));
    assert_eq!(only.len(), 1, "only getppid is traced: {only:?}");
    assert_eq!(only[0]["count"], 3000);
    assert!(run.rows_where("syscall_latency", "process_syscalls", "pid", json!(pids[1].0 as u64)).is_empty());
    let top = run.panel("syscall_latency", "top_count");
    assert_eq!(top["rows"].as_array().unwrap().len(), 1, "{top}");
}

#[test]
fn per_process_counting_is_off_unless_asked() {
    let _g = serial();
    let (run, _) = run_with_workloads("syscall_latency", "", &[&["--comm", "sysquiet", "getppid", "1000"]]);
    let p = run.panel("syscall_latency", "by_process");
    assert_eq!(p["kind"], "text", "{p}");
    assert!(p["text"].as_str().unwrap().contains("per_process = true"));
    let top = run.rows_where("syscall_latency", "top_count", "syscall", json!("getppid"));
    assert!(top[0]["count"].as_u64().unwrap() >= 1000, "per-syscall figures still counted");
}

#[test]
fn a_latency_threshold_counts_slow_calls_only() {
    let _g = serial();
    // 20 sleeps of 10 ms, each followed by a getppid (well under 5 ms, even
    // on a slow VM); the threshold is 5 ms. The workload's own counts are the
    // truth: exactly 20 slow calls, no getppid.
    let (run, pids) = run_with_workloads(
        "syscall_latency",
        "comm = \"syslow\"\nper_process = true\nmin_latency_us = 5000",
        &[&["--comm", "syslow", "sleeps", "20", "10"]],
    );
    let rows = run.rows_where("syscall_latency", "process_syscalls", "pid", json!(pids[0].0 as u64));
    let sleeps = rows.iter().find(|r| r["syscall"] == "nanosleep").unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(sleeps["count"], 20, "{rows:?}");
    // Each at least the 10 ms asked for (the kernel may add, never take away).
    assert!(sleeps["total_ns"].as_u64().unwrap() >= 20 * 10_000_000, "{sleeps}");
    assert!(rows.iter().all(|r| r["syscall"] != "getppid"), "fast calls left out: {rows:?}");
    let top = run.rows_where("syscall_latency", "top_count", "syscall", json!("nanosleep"));
    assert_eq!(top[0]["count"], 20);
    assert!(run.rows_where("syscall_latency", "top_count", "syscall", json!("getppid")).is_empty());
}

#[test]
fn histograms_side_by_side_show_the_syscalls_picked_then_the_busiest() {
    let _g = serial();
    // 10 sleeps of 5 ms, each followed by a getppid: under the comm filter
    // the workload's own calls, counted exactly in each histogram.
    let (run, _) = run_with_workloads(
        "syscall_latency",
        "comm = \"syshist\"\nhistogram_syscall = [\"getppid\"]",
        &[&["--comm", "syshist", "sleeps", "10", "5"]],
    );
    let total = |h: &serde_json::Value| h["buckets"].as_array().unwrap().iter().map(|b| b["count"].as_u64().unwrap()).sum::<u64>();
    let first = run.panel("syscall_latency", "histogram");
    assert_eq!((first["unit"].as_str(), total(first)), (Some("usecs (getppid)"), 10), "picked: {first}");
    // Not picked: the syscall with the most time, the sleeps, every one of
    // them in the 4096-8191 µs bucket or above.
    let second = run.panel("syscall_latency", "histogram_2");
    assert_eq!((second["unit"].as_str(), total(second)), (Some("usecs (nanosleep)"), 10), "{second}");
    let slow: u64 = second["buckets"].as_array().unwrap().iter().filter(|b| b["low"].as_u64().unwrap() >= 4096).map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(slow, 10, "5 ms sleeps: {second}");
}
