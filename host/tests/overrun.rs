//! Load: a burst that overruns a ring buffer while the host cannot read (it is
//! stopped with SIGSTOP, as a host starved of CPU would be) is counted as lost
//! events, said in the JSON stream and on stderr while running and in the final
//! report, and the host keeps up again afterwards.

mod common;
use common::*;
use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

const BURST: u64 = 100_000;
const AFTER: u64 = 2_000;

fn opens(comm: &str, path: &std::path::Path, n: u64) {
    let st = Command::new(workload_bin())
        .args(["--comm", comm, "open", path.to_str().unwrap(), &n.to_string()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn an_overrun_ring_is_counted_reported_and_recovered_from() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&[staged_plugin("open")]);
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("test.toml");
    fs::write(&cfg, "plugins_dir = \"unused\"\nenabled = [\"open\"]\n[plugins.open]\ncomm = \"overrun\"\n").unwrap();
    let (burst_path, after_path) = (work.path().join("burst"), work.path().join("after"));
    fs::write(&burst_path, b"x").unwrap();
    fs::write(&after_path, b"x").unwrap();

    let mut host = Host::spawn(
        &["--config", cfg.to_str().unwrap(), "--plugins-dir", dir.path().to_str().unwrap(), "--headless", "--format", "json"],
        &[],
    );
    host.wait_for_stderr("tracer-host: open running");
    // The host cannot read while stopped: 100,000 records (about 30 MB) meet a 4 MiB ring.
    host.signal(libc::SIGSTOP);
    opens("overrun", &burst_path, BURST);
    host.signal(libc::SIGCONT);
    host.wait_for_stderr("events lost in the kernel");
    opens("overrun", &after_path, AFTER);
    std::thread::sleep(Duration::from_millis(600));
    host.signal(libc::SIGTERM);
    let (code, out, stderr) = host.finish();
    assert_eq!(code, Some(0), "{stderr}");

    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let path_of = |v: &serde_json::Value| v["path"].as_str().map(str::to_string);
    let is = |v: &serde_json::Value, p: &std::path::Path| path_of(v).as_deref() == p.to_str();
    let delivered = lines.iter().filter(|v| is(v, &burst_path)).count() as u64;
    let lost_lines: Vec<(usize, &serde_json::Value)> =
        lines.iter().enumerate().filter(|(_, v)| v.get("lost").is_some()).collect();
    let lost: u64 = lost_lines.iter().map(|(_, v)| v["lost"].as_u64().unwrap()).sum();
    assert!(lost > 0, "a 30 MB burst into a 4 MiB ring lost nothing?\n{stderr}");
    assert_eq!(lost_lines.last().unwrap().1["lost_total"].as_u64(), Some(lost), "lost_total is the running sum");
    eprintln!("burst of {BURST}: {delivered} delivered, {lost} lost in {} lost lines", lost_lines.len());
    // Every open of the burst is either delivered or counted as lost.
    assert_eq!(delivered + lost, BURST, "delivered {delivered} + lost {lost}\n{stderr}");
    assert!(stderr.contains(&format!("open: {lost} events lost in the kernel")) || lost_lines.len() > 1, "{stderr}");
    assert!(stderr.contains(&format!(" dropped (ring buffer full {lost}")), "final report:\n{stderr}");

    // Caught up: every open after the burst arrives, and nothing more is lost.
    let after: Vec<usize> = lines.iter().enumerate().filter(|(_, v)| is(v, &after_path)).map(|(i, _)| i).collect();
    assert_eq!(after.len() as u64, AFTER, "{stderr}");
    assert!(lost_lines.last().unwrap().0 < after[0], "events lost after the host caught up");
}
