//! As root: the sched tracer's figures for a two-thread pipe ping-pong agree
//! with the kernel's own context-switch counts (getrusage).

mod common;
use common::*;
use serde_json::json;

#[test]
fn pingpong_switches_match_getrusage_and_histograms_hold_every_wait() {
    let _g = serial();
    let n = 20000u64;
    // Filtered to the workload's comm, so `runq_process` (the longest waiter)
    // is the ping-pong whatever else the machine does.
    let (run, w) = run_with_workloads("sched", "comm = \"pingpong\"", &[&["--comm", "pingpong", "pingpong", &n.to_string()]]);
    let (pid, printed) = &w[0];
    // done ELAPSED OPS VOLUNTARY INVOLUNTARY
    let f: Vec<u64> = printed.split_whitespace().skip(1).map(|x| x.parse().unwrap()).collect();
    let (vol_kernel, invol_kernel) = (f[2], f[3]);
    assert!(vol_kernel >= n, "each round trip blocks at least once: {printed}");

    let rows = run.rows_where("sched", "totals", "pid", json!(*pid as u64));
    let row = rows.first().unwrap_or_else(|| panic!("no totals row for the ping-pong; stderr:\n{}", run.stderr));
    assert_eq!(row["comm"], "pingpong", "comm captured in the kernel");
    let (run_ns, wait_ns, slices, waits, vol, invol) = (
        row["run_ns"].as_u64().unwrap(),
        row["wait_ns"].as_u64().unwrap(),
        row["slices"].as_u64().unwrap(),
        row["waits"].as_u64().unwrap(),
        row["voluntary"].as_u64().unwrap(),
        row["involuntary"].as_u64().unwrap(),
    );
    // The only differences: the few switches after getrusage (exit), and those
    // before the workload renamed itself (the comm filter did not match yet).
    assert!(vol.abs_diff(vol_kernel) <= 10, "voluntary {vol} vs kernel {vol_kernel}");
    assert!(invol.abs_diff(invol_kernel) <= 10, "involuntary {invol} vs kernel {invol_kernel}");
    // A slice needs its switch-in seen too (not so for a thread's very first run).
    let switches = vol + invol;
    assert!(slices <= switches && slices >= switches - switches / 100, "{row}");
    assert!(waits >= n && run_ns > 0 && wait_ns > 0, "{row}");

    // Every wait of the process is in its histogram, and in the overall one.
    let h = run.panel("sched", "runq_process");
    assert!(h["unit"].as_str().unwrap().contains(&format!("pid {pid} pingpong")), "{h}");
    let sum = |p: &serde_json::Value| p["buckets"].as_array().unwrap().iter().map(|b| b["count"].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum(h), waits);
    assert!(sum(run.panel("sched", "runq")) >= waits);
    assert!(sum(run.panel("sched", "oncpu")) >= slices);
}

#[test]
fn pid_filter_counts_only_that_process() {
    let _g = serial();
    // The filter is set before the workload exists: filter on a comm instead.
    let (run, w) = run_with_workloads(
        "sched",
        "comm = \"ppfiltered\"",
        &[&["--comm", "ppfiltered", "pingpong", "2000"], &["--comm", "ppother", "pingpong", "2000"]],
    );
    assert_eq!(run.rows_where("sched", "totals", "pid", json!(w[0].0 as u64)).len(), 1);
    assert!(run.rows_where("sched", "totals", "pid", json!(w[1].0 as u64)).is_empty());
    let all = run.panel("sched", "totals")["rows"].as_array().unwrap().len();
    assert_eq!(all, 1, "only the filtered comm is accounted");
}
