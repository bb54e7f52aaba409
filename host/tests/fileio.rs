//! As root: the fileio tracer against the kernel's own I/O accounting. A
//! workload does known reads, writes and syncs of a scratch file under a
//! made-up task name, framed by two reads of /proc/self/io (the kernel's
//! rchar, wchar, syscr, syscw for the process); the tracer, filtered to that
//! name in the kernel, must count exactly what the kernel counted between
//! the two reads, plus the second read itself (traced, but not in the
//! deltas it shows), and exactly the workload's own calls on the file.

mod common;
use common::*;
use serde_json::{json, Value};

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

const N: u64 = 200;
const SIZE: u64 = 8192;

#[test]
fn a_process_s_file_io_is_what_proc_pid_io_counts_on_tracepoints() {
    check_against_proc_io("tracepoint");
}

#[test]
fn a_process_s_file_io_is_what_proc_pid_io_counts_on_raw_tp() {
    check_against_proc_io("raw_tp");
}

fn check_against_proc_io(mode: &str) {
    let _g = serial();
    assert_root();
    let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let file = dir.path().join("fio-scratch.dat");
    let dir_name = dir.path().file_name().unwrap().to_str().unwrap().to_string();
    let window = "fiowin-7q";
    let settings = format!("attach = \"{mode}\"\ncomm = \"{window}\"\nmin_latency_us = 1");
    let (run, pids) = run_with_workloads("fileio", &settings, &[&["fileio", file.to_str().unwrap(), &N.to_string(), &SIZE.to_string(), window]]);
    assert!(run.stderr.contains(&format!("fileio running ({mode})")), "{}", run.stderr);
    let (pid, out) = &pids[0];
    let line = out.lines().find(|l| l.starts_with("fileio ")).unwrap_or_else(|| panic!("{out}"));
    let f: Vec<u64> = line.split_whitespace().skip(1).map(|v| v.parse().unwrap()).collect();
    let (rchar, wchar, syscr, syscw, io1_bytes, elapsed_ns) = (f[0], f[1], f[2], f[3], f[4], f[5]);
    eprintln!("/proc/{pid}/io deltas: rchar {rchar} wchar {wchar} syscr {syscr} syscw {syscw}; second read {io1_bytes} bytes; window {elapsed_ns} ns");

    // The process: all its traced calls against the kernel's deltas.
    let procs = run.rows_where("fileio", "processes", "pid", json!(*pid));
    let p = procs.first().unwrap_or_else(|| panic!("no row for {pid}: {}", run.panel("fileio", "processes")));
    eprintln!("traced: {p}");
    assert_eq!(p["comm"], window);
    assert_eq!(n(&p["reads"]), syscr + 1, "read calls: syscr + the second read of /proc/self/io");
    assert_eq!(n(&p["read_bytes"]), rchar + io1_bytes, "bytes read: rchar + what the second read returned");
    assert_eq!(n(&p["writes"]), syscw, "write calls: syscw");
    assert_eq!(n(&p["written_bytes"]), wchar, "bytes written: wchar");
    assert_eq!((n(&p["fsyncs"]), n(&p["fdatasyncs"]), n(&p["errors"])), (1, 1, 0));
    // Every call lies inside the window the workload timed itself.
    assert!(n(&p["time_ns"]) <= elapsed_ns, "traced time {} > the window's {elapsed_ns} ns", p["time_ns"]);

    // The scratch file: exactly the workload's calls, named dir/name.
    let files = run.rows_where("fileio", "files", "pid", json!(*pid));
    let path = format!("{dir_name}/fio-scratch.dat");
    let d = files.iter().find(|r| r["file"] == path.as_str()).unwrap_or_else(|| panic!("no row for {path}: {files:?}"));
    assert_eq!((n(&d["writes"]), n(&d["written_bytes"])), (N + 2, (N + 3) * SIZE), "N writes, a writev of 2, a pwrite: {d}");
    assert_eq!((n(&d["reads"]), n(&d["read_bytes"])), (N + 2, (N + 2) * SIZE), "N preads, a readv of 2, a read at the end: {d}");
    assert_eq!(n(&d["syncs"]), 2);
    // /proc/self/io is the process's own directory's io.
    let io_path = format!("{pid}/io");
    let io = files.iter().find(|r| r["file"] == io_path.as_str()).unwrap_or_else(|| panic!("no row for {io_path}: {files:?}"));
    assert_eq!(n(&io["reads"]), 2, "{io}");

    // Latency: every call in a histogram; with a 1 µs threshold, every call
    // of the file slower than that is streamed, each no longer than the window.
    let count = |panel: &str| -> u64 { run.panel("fileio", panel)["buckets"].as_array().unwrap().iter().map(|b| n(&b["count"])).sum() };
    assert_eq!(count("read_latency"), syscr + 1);
    assert_eq!(count("write_latency"), syscw);
    assert_eq!(count("sync_latency"), 2);
    let slow: Vec<&Value> = run.records("fileio").into_iter().filter(|r| r["file"] == path.as_str()).collect();
    assert!(!slow.is_empty(), "no slow call streamed");
    assert!(slow.iter().any(|r| r["op"] == "fsync"), "the fsync is slower than 1 µs");
    for r in &slow {
        assert!(n(&r["latency_ns"]) >= 1000 && n(&r["latency_ns"]) <= elapsed_ns, "{r}");
        assert_eq!(r["comm"], window);
    }
}

/// The uid filter runs in the kernel: two workloads read the same file,
/// one as root and one as a made-up uid; filtered to that uid, the tracer
/// shows the second one's calls alone, all of them.
#[test]
fn the_uid_filter_keeps_only_that_user_s_calls() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let _g = serial();
    assert_root();
    let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let uid = 47_321u32;
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("uid.toml");
    std::fs::write(&cfg, format!("plugins_dir = \"unused\"\nenabled = [\"fileio\"]\n[plugins.fileio]\nuid = {uid}\n")).unwrap();
    let plugins = plugin_dir(&[staged_plugin("fileio")]);
    let mut host = Host::spawn(&["--config", cfg.to_str().unwrap(), "--plugins-dir", plugins.path().to_str().unwrap(), "--headless", "--format", "json"], &[]);
    host.wait_for_stderr("tracer-host: fileio running");
    let run = |as_uid: Option<u32>, name: &str| -> u32 {
        let mut c = std::process::Command::new(workload_bin());
        c.args(["--comm", name, "preads", dir.path().join(name).to_str().unwrap(), "4096", "500"]).stdout(std::process::Stdio::null());
        if let Some(u) = as_uid {
            c.uid(u).gid(u);
        }
        let mut child = c.spawn().unwrap();
        let pid = child.id();
        assert!(child.wait().unwrap().success(), "{name}");
        pid
    };
    let root_pid = run(None, "fiouid-root");
    let user_pid = run(Some(uid), "fiouid-user");
    std::thread::sleep(std::time::Duration::from_millis(600));
    host.signal(libc::SIGTERM);
    let (code, out, err) = host.finish();
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let procs = lines.iter().rev().find(|v| v["plugin"] == "fileio" && v["panel"] == "processes").unwrap();
    let rows = procs["rows"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["pid"] != json!(root_pid)), "root's calls filtered out: {rows:?}");
    assert!(rows.iter().any(|r| r["pid"] == json!(user_pid)), "no row for the uid's workload: {rows:?}");
    let files = lines.iter().rev().find(|v| v["plugin"] == "fileio" && v["panel"] == "files").unwrap();
    let name = format!("{}/fiouid-user", dir.path().file_name().unwrap().to_str().unwrap());
    let f = files["rows"].as_array().unwrap().iter().find(|r| r["file"] == name.as_str()).unwrap_or_else(|| panic!("no row for {name}: {files}"));
    assert_eq!((n(&f["reads"]), n(&f["read_bytes"]), n(&f["writes"])), (500, 500 * 4096, 1), "its write of the file and 500 preads of 4 KiB: {f}");
}
