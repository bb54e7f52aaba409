//! PID reuse and short-lived processes: pid and comm are taken in the kernel at
//! event time, never looked up later in /proc. The host is stopped (SIGSTOP)
//! while the processes run and are reaped, so by the time it reads anything
//! they are gone; their records and per-process rows must still name them.

mod common;
use common::*;
use serde_json::json;
use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

fn run(args: &[&str]) -> u32 {
    let mut c = Command::new(workload_bin()).args(args).stdout(Stdio::null()).spawn().unwrap();
    let pid = c.id();
    assert!(c.wait().unwrap().success());
    assert!(!std::path::Path::new(&format!("/proc/{pid}/comm")).exists() || pid_reused(pid));
    pid
}

/// Another process took the pid already (possible, if unlikely, on a busy box).
fn pid_reused(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| !c.starts_with("gone"))
}

#[test]
fn records_and_rows_of_processes_gone_before_the_host_reads_name_them() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&[staged_plugin("open"), staged_plugin("syscall_latency")]);
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("test.toml");
    fs::write(
        &cfg,
        "plugins_dir = \"unused\"\nenabled = [\"open\", \"syscall_latency\"]\n[plugins.syscall_latency]\nper_process = true\n",
    )
    .unwrap();
    let path = work.path().join("short-lived");
    fs::write(&path, b"x").unwrap();
    let mut host = Host::spawn(
        &["--config", cfg.to_str().unwrap(), "--plugins-dir", dir.path().to_str().unwrap(), "--headless", "--format", "json"],
        &[],
    );
    host.wait_for_stderr("tracer-host: syscall_latency running");
    host.wait_for_stderr("tracer-host: open running");
    host.signal(libc::SIGSTOP);
    let opener = run(&["--comm", "gone-open", "open", path.to_str().unwrap(), "3"]);
    let caller = run(&["--comm", "gone-getppid", "getppid", "777"]);
    host.signal(libc::SIGCONT);
    std::thread::sleep(Duration::from_millis(700));
    host.signal(libc::SIGTERM);
    let (code, out, stderr) = host.finish();
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let run = JsonRun { lines, stderr };

    let opens: Vec<_> = run.records("open").into_iter().filter(|r| r["path"] == path.to_str().unwrap()).collect();
    assert_eq!(opens.len(), 3, "{}", run.stderr);
    for r in opens {
        assert_eq!((r["pid"].as_u64(), r["comm"].as_str()), (Some(opener as u64), Some("gone-open")), "{r}");
    }

    let rows = run.rows_where("syscall_latency", "process_syscalls", "pid", json!(caller));
    let p = run.panel("syscall_latency", "process_syscalls");
    let getppid: Vec<_> = rows.iter().filter(|r| r["syscall"] == "getppid").collect();
    assert_eq!(getppid.len(), 1, "{p}");
    assert_eq!(getppid[0]["comm"], "gone-getppid", "{p}");
    assert_eq!(getppid[0]["count"], 777, "{p}");
}
