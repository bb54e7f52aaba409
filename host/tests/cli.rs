//! The command line: no config file needed, libbpf-tools-like filters for every
//! tracer (`-p`, `-c`, `-u`), `--set`, `--check-config`, `--print-config`, the
//! environment's `TRACER_*` keys, and a clear word when there is no terminal.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn all_plugins() -> tempfile::TempDir {
    plugin_dir(&ALL_TRACERS.map(staged_plugin))
}

#[test]
fn print_config_merges_file_environment_and_command_line_with_plugin_defaults() {
    let _g = serial();
    let dir = all_plugins();
    let d = dir.path().to_str().unwrap();
    // No --config: the built-in one.
    let (code, out, err) = run_host(
        &["--plugins-dir", d, "--print-config", "-p", "4242", "-u", "1000", "--set", "tcp.port=80", "--set", "open.failed_only=true"],
        &[("TRACER_UI__REFRESH_HZ", "2"), ("TRACER_PLUGINS__SCHED__MODE", "interval")],
    );
    assert_eq!(code, Some(0), "{err}");
    let cfg: toml::Table = out.parse().unwrap_or_else(|e| panic!("not TOML ({e}):\n{out}"));
    assert_eq!(cfg["ui"]["refresh_hz"].as_float(), Some(2.0), "environment over the built-in file");
    let shipped = std::fs::read_to_string(default_config()).unwrap().matches("[[ui.tabs]]").count();
    assert_eq!(cfg["ui"]["tabs"].as_array().map(|t| t.len()), Some(shipped), "the shipped layout");
    let p = &cfg["plugins"];
    for name in ALL_TRACERS {
        assert_eq!(p[name]["pid"].as_integer(), Some(4242), "-p reaches {name}:\n{out}");
    }
    for name in ["open", "block", "fileio", "pagecache", "faults", "memory", "http"] {
        assert_eq!(p[name]["uid"].as_integer(), Some(1000), "-u reaches {name}");
    }
    assert_eq!(p["open"]["failed_only"].as_bool(), Some(true), "--set over the file's false");
    assert_eq!(p["tcp"]["ports"].as_array().unwrap()[0].as_integer(), Some(80), "alias renamed, value listed");
    assert_eq!(p["sched"]["mode"].as_str(), Some("interval"));
    assert_eq!(p["syscall_latency"]["mode"].as_str(), Some("cumulative"), "a plugin default filled in");
    // -u does not reach the tracers without a uid setting, and that is said.
    for name in ["syscall_latency", "sched", "tcp", "process"] {
        assert!(err.contains(&format!("{name} has no uid setting: -u/--uid does not filter it")), "{name}:\n{err}");
    }
}

#[test]
fn check_config_says_fine_or_names_what_to_fix() {
    let _g = serial();
    let dir = all_plugins();
    let d = dir.path().to_str().unwrap();
    let (code, out, err) = run_host(&["--plugins-dir", d, "--check-config"], &[]);
    assert_eq!(code, Some(0), "{err}");
    let (n, tabs) = (ALL_TRACERS.len(), std::fs::read_to_string(default_config()).unwrap().matches("[[ui.tabs]]").count());
    assert!(out.starts_with(&format!("(built-in configs/default.toml): fine ({n} plugins found, {n} selected, {tabs} tabs)")), "{out}");

    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("mine.toml");
    std::fs::write(&cfg, "enabled = [\"open\", \"sched\"]\n[plugins.sched]\nmode = \"sometimes\"\n").unwrap();
    let (code, _, err) = run_host(&["--config", cfg.to_str().unwrap(), "--plugins-dir", d, "--check-config"], &[]);
    assert_eq!(code, Some(1));
    let first = err.lines().next().unwrap();
    assert!(first.starts_with(&format!("{}: key `plugins.sched`: ", cfg.display())) && first.contains("sometimes"), "{err}");

    let (code, _, err) = run_host(&["--plugins-dir", d, "--check-config", "--set", "tcp.prots=80"], &[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--set \"tcp.prots=80\": tcp has no setting \"prots\"; did you mean ports?"), "{err}");
    let (code, _, err) = run_host(&["--plugins-dir", d, "--check-config", "-p", "0"], &[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("-p/--pid: ") && err.contains("0 is outside"), "{err}");
    let (code, _, err) = run_host(&["--plugins-dir", d, "--check-config"], &[("TRACER_UI__REFRESH_HZ", "0")]);
    assert_eq!(code, Some(1));
    assert!(err.contains("`ui.refresh_hz`") && err.contains("(environment: TRACER_UI__REFRESH_HZ)"), "{err}");
}

#[test]
fn without_a_terminal_the_ui_says_to_use_headless() {
    let _g = serial();
    let dir = all_plugins();
    let out = Command::new(host_bin())
        .args(["--plugins-dir", dir.path().to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.lines().next().unwrap().contains("no terminal") && err.contains("--headless"), "{err}");
}

#[test]
fn a_comm_given_on_the_command_line_filters_every_tracer_in_the_kernel() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&[staged_plugin("open"), staged_plugin("syscall_latency")]);
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_str().unwrap();
    let mut host = Host::spawn(
        &["--plugins-dir", dir.path().to_str().unwrap(), "--plugin", "open", "--plugin", "syscall_latency", "-c", "cli-picked", "--set", "syscall_latency.per_process=true", "--headless", "--format", "json"],
        &[],
    );
    host.wait_for_stderr("tracer-host: open running");
    host.wait_for_stderr("tracer-host: syscall_latency running");
    for comm in ["cli-picked", "cli-other"] {
        let st = Command::new(workload_bin()).args(["--comm", comm, "open", path, "3"]).stdout(Stdio::null()).status().unwrap();
        assert!(st.success());
    }
    std::thread::sleep(Duration::from_millis(700));
    host.signal(libc::SIGTERM);
    let (code, out, stderr) = host.finish();
    assert_eq!(code, Some(0), "{stderr}");
    let lines = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let run = JsonRun { lines, stderr };
    let opens: Vec<_> = run.records("open").into_iter().filter(|r| r["path"] == path).collect();
    assert_eq!(opens.len(), 3, "{}", run.stderr);
    assert!(opens.iter().all(|r| r["comm"] == "cli-picked"), "{opens:?}");
    let p = run.panel("syscall_latency", "by_process");
    let comms: Vec<&str> = p["rows"].as_array().unwrap().iter().filter_map(|r| r["comm"].as_str()).collect();
    assert!(!comms.is_empty() && comms.iter().all(|c| *c == "cli-picked"), "{comms:?}");
}

#[test]
fn every_json_line_has_a_type_and_numeric_fields_are_numbers() {
    use tracer_plugin_api::FieldKind as K;
    let _g = serial();
    assert_root();
    let dir = all_plugins();
    // What each ring's records hold, as the plugins declare it.
    let session = tracer_core::session::Session::load(dir.path()).unwrap();
    let mut types = std::collections::HashMap::new();
    for s in &session.slots {
        for r in s.desc.rings.iter() {
            types.insert(r.map.to_string(), r.fields.iter().map(|f| (tracer_core::format::json_key(f), f.kind)).collect::<Vec<_>>());
        }
    }
    drop(session);
    let mut host = Host::spawn(&["--plugins-dir", dir.path().to_str().unwrap(), "--headless", "--format", "json"], &[]);
    host.wait_for_stderr("tracer-host: tcp running");
    host.wait_for_stderr("tracer-host: process running");
    let file = tempfile::NamedTempFile::new().unwrap();
    for w in [&["open", file.path().to_str().unwrap(), "20"][..], &["execs", "3"], &["tcp4", "18493", "3", "100"]] {
        assert!(Command::new(workload_bin()).args(w).stdout(Stdio::null()).status().unwrap().success(), "{w:?}");
    }
    std::thread::sleep(Duration::from_millis(700));
    host.signal(libc::SIGTERM);
    let (code, out, stderr) = host.finish();
    assert_eq!(code, Some(0), "{stderr}");
    let mut seen = std::collections::BTreeMap::new();
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let ty = v["type"].as_str().unwrap_or_else(|| panic!("no type: {line}")).to_string();
        *seen.entry(ty.clone()).or_insert(0) += 1;
        let numeric = |k: &str| matches!(k, "u64" | "i64" | "f64" | "duration_ns" | "bytes" | "hex" | "errno_result" | "mono_time_ns");
        match ty.as_str() {
            "lost" => continue,
            // Rows are objects keyed by the columns' keys; numbers are numbers
            // and the columns say their unit.
            "panel" if v["kind"] == "table" => {
                let cols = v["columns"].as_array().unwrap();
                for c in cols {
                    let key = c["key"].as_str().unwrap();
                    let kind = c["kind"].as_str().unwrap();
                    if kind == "duration_ns" {
                        assert!(key.ends_with("_ns") && c["unit"] == "ns", "{c} in {line}");
                    }
                    if kind == "bytes" {
                        assert!(key.contains("bytes") && c["unit"] == "bytes", "{c} in {line}");
                    }
                    for r in v["rows"].as_array().unwrap() {
                        let x = r.get(key).unwrap_or_else(|| panic!("row without {key}: {r}"));
                        assert!(!numeric(kind) || x.is_number() || x.is_null(), "{key} is not a number: {r}");
                    }
                }
                for r in v["rows"].as_array().unwrap() {
                    assert_eq!(r.as_object().unwrap().len(), cols.len(), "a key per column: {r}");
                }
                continue;
            }
            "panel" => continue,
            _ => {}
        }
        let fields = types.get(&ty).unwrap_or_else(|| panic!("type {ty:?} is no ring of any plugin: {line}"));
        for (key, kind) in fields {
            let x = v.get(key.as_str()).unwrap_or_else(|| panic!("{ty} has no {key}: {line}"));
            match *kind {
                K::U64 | K::I64 | K::F64 | K::HEX | K::ERRNO_RESULT => assert!(x.is_number() || x.is_null(), "{ty}.{key} is not a number: {line}"),
                K::DURATION_NS | K::MONO_TIME_NS => assert!(key.ends_with("_ns") && (x.is_number() || x.is_null()), "{ty}.{key}: {line}"),
                K::BYTES => assert!(key.contains("bytes") && x.is_number(), "{ty}.{key}: {line}"),
                K::PHASES => assert!(
                    x.as_array().is_some_and(|a| a.iter().all(|p| p["name"].is_string() && p["ns"].is_u64())),
                    "{ty}.{key} is an array of {{name, ns}}: {line}"
                ),
                _ => {}
            }
        }
    }
    for ty in ["open_events", "process_execs", "process_exits", "tcp_closed", "tcp_transitions", "panel"] {
        assert!(seen.get(ty).is_some_and(|n| *n > 0), "no {ty} line; seen {seen:?}");
    }
}

#[test]
fn tsv_gives_each_record_type_its_header_and_plain_numbers() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&[staged_plugin("open"), staged_plugin("tcp")]);
    let mut host = Host::spawn(&["--plugins-dir", dir.path().to_str().unwrap(), "--plugin", "open", "--plugin", "tcp", "--headless", "--format", "tsv"], &[]);
    host.wait_for_stderr("tracer-host: tcp running");
    host.wait_for_stderr("tracer-host: open running");
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_str().unwrap();
    for w in [&["open", path, "3"][..], &["tcp4", "18517", "2", "100"]] {
        assert!(Command::new(workload_bin()).args(w).stdout(Stdio::null()).status().unwrap().success(), "{w:?}");
    }
    std::thread::sleep(Duration::from_millis(700));
    host.signal(libc::SIGTERM);
    let (code, out, stderr) = host.finish();
    assert_eq!(code, Some(0), "{stderr}");
    // Records come first, then the final panels (`== plugin.panel ==`).
    let records: Vec<Vec<&str>> = out.lines().take_while(|l| !l.is_empty() && !l.starts_with("== ")).map(|l| l.split('\t').collect()).collect();
    let mut headers: std::collections::HashMap<&str, Vec<&str>> = std::collections::HashMap::new();
    let mut seen = std::collections::HashMap::<&str, usize>::new();
    for line in &records {
        if let Some(ty) = line[0].strip_prefix('#') {
            assert!(headers.insert(ty, line[1..].to_vec()).is_none(), "one header per type: {ty}");
            continue;
        }
        let header = headers.get(line[0]).unwrap_or_else(|| panic!("a record before its header: {line:?}"));
        assert_eq!(header.len(), line.len() - 1, "{header:?} vs {line:?}");
        *seen.entry(line[0]).or_default() += 1;
        // Every column whose header names a unit holds plain numbers.
        for (h, v) in header.iter().zip(&line[1..]) {
            if h.ends_with("(ms)") && !h.starts_with("STATES") || h.ends_with("BYTES") {
                assert!(*v == "-" || v.parse::<f64>().is_ok(), "{h} = {v:?}: {line:?}");
            }
        }
    }
    // The workload's three opens (the test's own creation of the file is not counted).
    let opens: Vec<&Vec<&str>> = records.iter().filter(|l| l[0] == "open_events" && l.last() == Some(&path) && l.contains(&"tracer-workload")).collect();
    assert_eq!(opens.len(), 3, "{out}");
    let closed = &headers["tcp_closed"];
    for h in ["PID", "COMM", "TX_BYTES", "RX_BYTES", "LIFETIME(ms)", "STATES(ms)"] {
        assert!(closed.contains(&h), "{h} in {closed:?}");
    }
    let col = |h: &str| closed.iter().position(|c| *c == h).unwrap() + 1;
    let mine: Vec<&Vec<&str>> = records.iter().filter(|l| l[0] == "tcp_closed" && l[col("RPORT")] == "18517").collect();
    assert_eq!(mine.len(), 2, "the two active ends: {out}");
    for l in mine {
        // The client sends 100 bytes and gets 50 back; the kernel's counts
        // include SYN and FIN (tolerance 2, as in tcp.rs).
        let (tx, rx): (u64, u64) = (l[col("TX_BYTES")].parse().unwrap(), l[col("RX_BYTES")].parse().unwrap());
        assert!((100..=102).contains(&tx) && (50..=52).contains(&rx), "{l:?}");
        assert!(l[col("LIFETIME(ms)")].parse::<f64>().unwrap() > 0.0, "{l:?}");
        assert!(l[col("STATES(ms)")].contains("ESTABLISHED:"), "{l:?}");
    }
}

/// The README's metric table is what `--list-metrics` prints for the shipped
/// plugins: a metric added, renamed or explained anew shows up there too.
#[test]
fn the_readme_lists_every_metric() {
    let dir = all_plugins();
    let out = Command::new(host_bin()).args(["--plugins-dir", dir.path().to_str().unwrap(), "--list-metrics"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let (start, end) = ("<!-- metrics-table -->\n", "<!-- /metrics-table -->");
    let a = readme.find(start).expect("the README's metrics-table marker") + start.len();
    let b = readme.find(end).expect("the README's /metrics-table marker");
    assert_eq!(
        &readme[a..b],
        table,
        "README.md's metric table differs from `tracer-host --list-metrics`: paste its output between the markers"
    );
    assert!(table.lines().count() > 20 && table.contains("`tracer_open_opens_total` | counter | syscall, result, node |"), "{table}");
}
