//! Every attach alternative this kernel allows, forced with `attach = "..."`
//! in the plugin's table, gives the same figures (truth: the workloads' own
//! counts and getrusage); an alternative it does not allow is refused in one
//! line naming what is missing; an optional program this kernel cannot load
//! leaves its plugin running and is said.

mod common;
use common::*;
use serde_json::json;
use std::fs;

#[test]
fn syscall_latency_counts_the_same_on_every_alternative() {
    let _g = serial();
    for mode in ["tp_btf", "raw_tp", "tracepoint"] {
        let (run, w) = run_with_workloads(
            "syscall_latency",
            &format!("attach = \"{mode}\"\nper_process = true"),
            &[&["--comm", "sysmode", "getppid", "20000"]],
        );
        assert!(run.stderr.contains(&format!("syscall_latency running ({mode})")), "{mode}: {}", run.stderr);
        let rows = run.rows_where("syscall_latency", "process_syscalls", "pid", json!(w[0].0 as u64));
        let getppid = rows.iter().find(|r| r["syscall"] == "getppid").unwrap_or_else(|| panic!("{mode}: {rows:?}"));
        assert_eq!(getppid["count"], 20000, "{mode}: {getppid}");
    }
}

#[test]
fn sched_counts_the_same_on_every_alternative() {
    let _g = serial();
    let n = 5000u64;
    for mode in ["tp_btf", "raw_tp", "tracepoint"] {
        let (run, w) = run_with_workloads(
            "sched",
            &format!("attach = \"{mode}\"\ncomm = \"ppmode\""),
            &[&["--comm", "ppmode", "pingpong", &n.to_string()]],
        );
        assert!(run.stderr.contains(&format!("sched running ({mode})")), "{mode}: {}", run.stderr);
        let (pid, printed) = &w[0];
        let f: Vec<u64> = printed.split_whitespace().skip(1).map(|x| x.parse().unwrap()).collect();
        let rows = run.rows_where("sched", "totals", "pid", json!(*pid as u64));
        let row = rows.first().unwrap_or_else(|| panic!("{mode}: no row; {}", run.stderr));
        // getrusage's voluntary switches; the few after it (exit) and before the
        // rename (comm filter) differ.
        let vol = row["voluntary"].as_u64().unwrap();
        assert!(vol.abs_diff(f[2]) <= 10, "{mode}: voluntary {vol} vs getrusage {}", f[2]);
    }
}

#[test]
fn tcp_reports_the_same_connections_on_every_alternative() {
    let _g = serial();
    for (mode, port) in [("tp_btf", 27321u64), ("tracepoint", 27322)] {
        let (run, w) = run_with_workloads(
            "tcp",
            &format!("attach = \"{mode}\"\nports = [{port}]"),
            &[&["--comm", "tcpmode", "tcp4", &port.to_string(), "3", "1000"]],
        );
        assert!(run.stderr.contains(&format!("tcp running ({mode})")), "{mode}: {}", run.stderr);
        let closes: Vec<_> = run.records("tcp").into_iter().filter(|r| r.get("dir").is_some()).collect();
        for dir in ["active", "passive"] {
            let ends: Vec<_> = closes.iter().filter(|r| r["dir"] == dir).collect();
            assert_eq!(ends.len(), 3, "{mode} {dir}: {closes:#?}");
            for r in ends {
                assert_eq!((r["end"].as_str(), r["pid"].as_u64()), (Some("fin"), Some(w[0].0 as u64)), "{mode}: {r}");
            }
        }
    }
}

#[test]
fn process_reports_the_same_exec_and_exit_on_every_alternative() {
    let _g = serial();
    for mode in ["tracepoint", "tp_btf"] {
        let (run, w) = run_with_workloads("process", &format!("attach = \"{mode}\""), &[&["exit", "7", "procmode"]]);
        assert!(run.stderr.contains(&format!("process running ({mode}, {mode})")), "{mode}: {}", run.stderr);
        let pid = w[0].0;
        let recs = run.records("process");
        let exec = recs.iter().find(|r| r["pid"] == pid && r.get("filename").is_some()).unwrap_or_else(|| panic!("{mode}: no exec of {pid}"));
        assert_eq!(exec["args"], format!("{} exit 7 procmode", workload_bin().display()), "{mode}: {exec}");
        assert_eq!(exec["ret"], 0, "{mode}: {exec}");
        let exit = recs.iter().find(|r| r["pid"] == pid && r.get("status").is_some()).unwrap_or_else(|| panic!("{mode}: no exit of {pid}"));
        assert_eq!(exit["status"], "exit 7", "{mode}: {exit}");
    }
}

fn run_with_table(plugin: &str, table: &str, extra_env: &[(&str, &str)], files: &[std::path::PathBuf]) -> (Option<i32>, String, String) {
    let dir = plugin_dir(files);
    let cdir = tempfile::tempdir().unwrap();
    let cfg = cdir.path().join("t.toml");
    fs::write(&cfg, format!("plugins_dir = \"{}\"\nenabled = [\"{plugin}\"]\n[plugins.{plugin}]\n{table}\n", dir.path().display())).unwrap();
    run_host(&["--config", cfg.to_str().unwrap(), "--headless", "--format", "json", "--duration", "0.5"], extra_env)
}

#[test]
fn an_alternative_this_kernel_does_not_allow_is_refused_in_one_line() {
    let _g = serial();
    let open = [open_plugin()];
    let (code, _, err) = run_with_table("open", "attach = \"kprobe\"", &[], &open);
    assert_eq!(code, Some(1), "{err}");
    let line = err.lines().find(|l| l.contains("attach = \"kprobe\"")).unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("does not work on this kernel") && line.contains("kprobes are not available"), "{line}");

    let (code, _, err) = run_with_table("open", "attach = \"uprobe\"", &[], &open);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("probe opens has no uprobe alternative (it has: fentry, kprobe, tracepoint)"), "{err}");

    let (code, _, err) = run_with_table("open", "attach = \"often\"", &[], &open);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("key `plugins.open`: attach: \"often\" is not an attach mode"), "{err}");
    assert_eq!(links_of_programs("open_tp_"), Vec::<u32>::new());
}

#[test]
fn an_optional_program_this_kernel_cannot_load_leaves_its_plugin_running() {
    let _g = serial();
    let mode = [("TRACER_FIXTURE_MODE", "optional_missing")];
    let dir = plugin_dir(&[misbehaving_plugin()]);
    let cfg = default_config();
    let (code, out, err) = run_host(&["--config", cfg.to_str().unwrap(), "--plugins-dir", dir.path().to_str().unwrap(), "--list-plugins"], &mode);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("probe opens: tracepoint [open_tp_enter_openat, open_tp_exit_openat]"), "{out}");
    assert!(
        out.contains("optional, off: optional_nosuch_tp: not loaded here: program optional_nosuch_tp reads a kernel field this kernel does not have"),
        "{out}"
    );

    let (code, out, err) = run_with_table("misbehaving", "", &mode, &[misbehaving_plugin()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("misbehaving running (tracepoint); optional parts off here: optional_nosuch_tp"), "{err}");
    assert!(err.contains("misbehaving: optional optional_nosuch_tp was off on this kernel"), "in the report: {err}");
    assert!(out.contains("\"panel\":\"count\""), "{out}");
}
