//! End to end, as root: the host runs the open tracer headless, a child process
//! opens a unique path and a missing one, and both records come out with the
//! child's pid, comm, path and result. Then: every panel's final contents, and
//! no link left attached.

mod common;
use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Run `cat present missing` and return its pid.
fn cat_two_paths(present: &std::path::Path, missing: &std::path::Path) -> u32 {
    let mut c = Command::new("cat")
        .arg(present)
        .arg(missing)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

fn paths(tag: &str) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let present = work.path().join(format!("tracer-{tag}-{}-present", std::process::id()));
    std::fs::write(&present, "x").unwrap();
    let missing = work.path().join(format!("tracer-{tag}-{}-missing", std::process::id()));
    (work, present, missing)
}

#[test]
fn json_records_carry_pid_comm_path_and_result_and_panels_follow() {
    let _g = serial();
    let dir = plugin_dir(&[open_plugin()]);
    let (_work, present, missing) = paths("json");
    let host = start_open_headless(dir.path(), "json");
    let attached = links_of_programs("open_tp_");
    assert!(attached.len() >= 4, "expected the open tracepoints attached, found links {attached:?}");

    let pid = cat_two_paths(&present, &missing);
    std::thread::sleep(Duration::from_millis(500));
    host.signal(libc::SIGTERM);
    let (code, out, err) = host.finish();
    assert_eq!(code, Some(0), "stderr:\n{err}");

    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let find = |p: &std::path::Path| {
        lines
            .iter()
            .find(|v| v["path"] == p.to_str().unwrap())
            .unwrap_or_else(|| panic!("no record for {}; stdout:\n{out}", p.display()))
            .clone()
    };
    let ok = find(&present);
    assert_eq!(ok["plugin"], "open");
    assert_eq!(ok["pid"], pid);
    assert_eq!(ok["tid"], pid);
    assert_eq!(ok["comm"], "cat");
    assert_eq!(ok["syscall"], "openat");
    assert!(ok["ret"].as_i64().unwrap() >= 0, "{ok}");
    assert!(ok.get("ret_errno").is_none());
    assert!(ok["time"].as_str().unwrap().ends_with('Z'));

    let bad = find(&missing);
    assert_eq!(bad["pid"], pid);
    assert_eq!(bad["comm"], "cat");
    assert_eq!(bad["ret"], -2);
    assert_eq!(bad["ret_errno"], "ENOENT");

    // One object per panel, after the records.
    let panels: Vec<&Value> = lines.iter().filter(|v| v.get("panel").is_some()).collect();
    let ids: Vec<&str> = panels.iter().map(|v| v["panel"].as_str().unwrap()).collect();
    assert_eq!(ids, ["recent", "top_files", "top_procs", "failures", "errors", "summary"]);
    let top_files = panels.iter().find(|v| v["panel"] == "top_files").unwrap();
    assert!(
        top_files["rows"].as_array().unwrap().iter().any(|r| r["path"] == present.to_str().unwrap()),
        "{top_files}"
    );
    let failures = panels.iter().find(|v| v["panel"] == "failures").unwrap();
    assert!(failures["rows"].as_array().unwrap().iter().any(|r| r["path"] == missing.to_str().unwrap()));

    assert!(err.contains("open: ") && err.contains(" records, 0 dropped"), "{err}");
    assert_eq!(links_of_programs("open_tp_"), Vec::<u32>::new(), "links left attached after exit");
}

#[test]
fn text_records_are_aligned_lines_like_opensnoop() {
    let _g = serial();
    let dir = plugin_dir(&[open_plugin()]);
    let (_work, present, missing) = paths("text");
    let host = start_open_headless(dir.path(), "text");
    let pid = cat_two_paths(&present, &missing);
    std::thread::sleep(Duration::from_millis(500));
    host.signal(libc::SIGINT);
    let (code, out, err) = host.finish();
    assert_eq!(code, Some(0), "stderr:\n{err}");
    // One record type: opensnoop's layout, no type column, one header.
    let header = out.lines().next().unwrap();
    assert!(header.starts_with("TS                 PID    TID    UID   EUID COMM            SYSCALL     RET FLAGS"), "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("TS ")).count(), 1, "{out}");
    let line = out
        .lines()
        .find(|l| l.ends_with(missing.to_str().unwrap()) && l.contains(" cat "))
        .unwrap_or_else(|| panic!("no line for the missing path:\n{out}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    // TS PID TID UID EUID COMM SYSCALL RET ...
    assert_eq!(cols[1], pid.to_string(), "{line}");
    assert_eq!(cols[5], "cat", "{line}");
    assert_eq!(cols[7], "ENOENT", "{line}");
    // Numbers end where their header ends (right-aligned).
    assert_eq!(line.find(" ENOENT").map(|i| i + 7), header.find(" RET").map(|i| i + 4), "{out}");
    assert!(out.contains("== open.top_files: Top files =="), "{out}");
    assert_eq!(links_of_programs("open_tp_"), Vec::<u32>::new());
}

#[test]
fn list_plugins_names_the_attach_mode_and_why_others_were_not_used() {
    let _g = serial();
    let dir = plugin_dir(&[open_plugin()]);
    let cfg = default_config();
    let (code, out, err) = run_host(
        &["--config", cfg.to_str().unwrap(), "--plugins-dir", dir.path().to_str().unwrap(), "--list-plugins"],
        &[],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("open 0.1.0"), "{out}");
    assert!(out.contains("probe opens: tracepoint [open_tp_enter_openat"), "{out}");
    // On this kernel fentry is refused and kprobes are compiled out; each says so.
    assert!(out.contains("not fentry: "), "{out}");
    assert!(out.contains("not kprobe: "), "{out}");
    assert!(out.contains("panels: open.recent"), "{out}");
    assert_eq!(links_of_programs("open_tp_"), Vec::<u32>::new(), "--list-plugins must detach what it probed");
}
