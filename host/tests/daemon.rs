//! As root: the host as a daemon. `--format none` with `--report` (the report
//! checked against configs/report.schema.json by Debian's python3-jsonschema),
//! SIGUSR1, SIGHUP reloading the configuration, running as an unprivileged
//! user with capabilities, and the deploy/ files checked by the tools that
//! read them (systemd-analyze, promtool, a YAML parser).

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Validate `doc` against the report schema with Debian's python3-jsonschema
/// (not ours: an independent reading of the schema).
fn assert_valid_report(doc: &Path) {
    let schema = repo().join("configs/report.schema.json");
    let script = "import json,sys,jsonschema\n\
                  s=json.load(open(sys.argv[1])); d=json.load(open(sys.argv[2]))\n\
                  jsonschema.Draft202012Validator.check_schema(s)\n\
                  errs=sorted(jsonschema.Draft202012Validator(s).iter_errors(d), key=str)\n\
                  [print(e.json_path, e.message) for e in errs[:10]]\n\
                  sys.exit(1 if errs else 0)\n";
    let out = Command::new("/usr/bin/python3").args(["-c", script]).arg(&schema).arg(doc).output().expect("Debian's python3 with python3-jsonschema");
    assert!(out.status.success(), "{} does not follow the schema:\n{}{}", doc.display(), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The value of metric `name` of `plugin` with label `key` = `value` in a report.
fn report_metric(doc: &serde_json::Value, plugin: &str, name: &str, key: &str, value: &str) -> Option<f64> {
    let p = doc["plugins"].as_array()?.iter().find(|p| p["name"] == plugin)?;
    p["metrics"].as_array()?.iter().filter(|m| m["name"] == name && m["labels"][key] == value).map(|m| m["value"].as_f64().unwrap_or(0.0)).reduce(|a, b| a + b)
}

fn wait_for_file_change(p: &Path, since: Option<std::time::SystemTime>) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(m) = std::fs::metadata(p).and_then(|m| m.modified()) {
            if since.is_none_or(|s| m > s) {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} was not written", p.display());
}

fn workload(comm: &str, file: &Path, n: u32) {
    assert!(Command::new(workload_bin()).args(["--comm", comm, "open", file.to_str().unwrap(), &n.to_string()]).stdout(Stdio::null()).status().unwrap().success());
}

#[test]
fn a_quiet_daemon_writes_a_report_that_follows_its_schema_on_sigusr1_and_at_exit() {
    let _g = serial();
    let dir = plugin_dir(&ALL_TRACERS.map(staged_plugin));
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("report.json");
    let mut host = Host::spawn(
        &["--plugins-dir", dir.path().to_str().unwrap(), "-c", "reportw", "--headless", "--format", "none", "--report", report.to_str().unwrap()],
        &[],
    );
    host.wait_for_stderr("tracer-host: open running");
    let file = tempfile::NamedTempFile::new().unwrap();
    workload("reportw", file.path(), 200);
    std::thread::sleep(Duration::from_millis(600));
    host.signal(libc::SIGUSR1);
    wait_for_file_change(&report, None);
    assert_valid_report(&report);
    let live = read_json(&report);
    assert_eq!(live["final"], false);
    assert_eq!(report_metric(&live, "open", "opens_total", "result", "ok"), Some(200.0), "the workload's 200 opens: {live}");
    let written = std::fs::metadata(&report).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    workload("reportw", file.path(), 50);
    std::thread::sleep(Duration::from_millis(600));
    host.signal(libc::SIGTERM);
    let (code, stdout, stderr) = host.finish();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "", "--format none writes nothing to stdout");
    wait_for_file_change(&report, Some(written));
    assert_valid_report(&report);
    let last = read_json(&report);
    assert_eq!(last["final"], true);
    assert_eq!(last["stop_reason"], "stopped by SIGTERM");
    assert_eq!(report_metric(&last, "open", "opens_total", "result", "ok"), Some(250.0), "{last}");
    let names: Vec<&str> = last["plugins"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), ALL_TRACERS.len(), "{names:?}");
    let open = last["plugins"].as_array().unwrap().iter().find(|p| p["name"] == "open").unwrap();
    let top = open["panels"].as_array().unwrap().iter().find(|p| p["panel"] == "top_procs").unwrap();
    // Two workload processes: 200 and 50.
    let rows = top["rows"].as_array().unwrap();
    assert_eq!(rows.iter().filter(|r| r["comm"] == "reportw").map(|r| r["opens"].as_u64().unwrap()).sum::<u64>(), 250, "{top}");
}

#[test]
fn sighup_reloads_the_configuration_and_counters_carry_on() {
    let _g = serial();
    let dir = plugin_dir(&[staged_plugin("open")]);
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("tracer.toml");
    let report = work.path().join("report.json");
    std::fs::write(&cfg, "enabled = [\"open\"]\n[plugins.open]\ncomm = \"reloada\"\n").unwrap();
    let mut host = Host::spawn(
        &["--config", cfg.to_str().unwrap(), "--plugins-dir", dir.path().to_str().unwrap(), "--headless", "--format", "none", "--report", report.to_str().unwrap()],
        &[],
    );
    host.wait_for_stderr("tracer-host: open running");
    let file = tempfile::NamedTempFile::new().unwrap();
    workload("reloada", file.path(), 100);
    workload("reloadb", file.path(), 7);
    // The filter moves to reloadb: its opens count from now, reloada's no more.
    std::fs::write(&cfg, "enabled = [\"open\"]\n[plugins.open]\ncomm = \"reloadb\"\n").unwrap();
    host.signal(libc::SIGHUP);
    host.wait_for_stderr("SIGHUP: configuration read again: open settings");
    workload("reloadb", file.path(), 50);
    workload("reloada", file.path(), 30);
    // A broken file changes nothing and says why.
    std::fs::write(&cfg, "enabled = 3\n").unwrap();
    host.signal(libc::SIGHUP);
    host.wait_for_stderr("nothing changed");
    assert!(host.stderr().contains(&format!("SIGHUP: {}: invalid type", cfg.display())), "{}", host.stderr());
    workload("reloadb", file.path(), 5);
    std::thread::sleep(Duration::from_millis(600));
    host.signal(libc::SIGTERM);
    let (code, _, stderr) = host.finish();
    assert_eq!(code, Some(0), "{stderr}");
    let last = read_json(&report);
    // 100 of reloada before, 50 + 5 of reloadb after; none of the others.
    assert_eq!(report_metric(&last, "open", "opens_total", "result", "ok"), Some(155.0), "{last}");
}

/// A directory nobody can read into by default (/root, a 0700 temp dir) is no
/// place for a binary run as another user: the host and its plugins are
/// copied to a 0755 directory, owned by root as the plugin check wants.
fn world_readable_copy() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let d = tempfile::Builder::new().prefix("tracer-caps").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = d.path().join("tracer-host");
    std::fs::copy(host_bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let plugins = d.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::set_permissions(&plugins, std::fs::Permissions::from_mode(0o755)).unwrap();
    for p in ["open", "sched"] {
        let src = staged_plugin(p);
        let dst = plugins.join(src.file_name().unwrap());
        std::fs::copy(&src, &dst).unwrap();
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    (d, bin, plugins)
}

/// tracer-host as user nobody holding exactly `caps` (setpriv, util-linux).
fn as_nobody(caps: &str, bin: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
    c.arg(format!("--inh-caps=-all,{caps}")).arg(format!("--ambient-caps=-all,{caps}"));
    c.arg(bin).args(args);
    c
}

#[test]
fn runs_as_an_unprivileged_user_with_the_capabilities_it_names() {
    let _g = serial();
    assert_root();
    let (_keep, bin, plugins) = world_readable_copy();
    let pd = plugins.to_str().unwrap();
    // Only CAP_BPF: refused at once, naming the one missing.
    let out = as_nobody("+bpf", &bin, &["--plugins-dir", pd, "--headless"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("needs CAP_BPF and CAP_PERFMON") && err.contains("missing: CAP_PERFMON") && !err.contains("missing: CAP_BPF"), "{err}");

    // CAP_BPF and CAP_PERFMON: sched (tp_btf) runs; open needs tracefs for its
    // classic tracepoints, which is root-only: it says what to grant.
    let mut host = Host::from_command(as_nobody("+bpf,+perfmon", &bin, &["--plugins-dir", pd, "--plugin", "open", "--plugin", "sched", "--headless", "--duration", "1"]));
    host.wait_for_stderr("tracer-host: sched running");
    let (code, _, err) = host.finish();
    assert_eq!(code, Some(1), "a plugin asked for did not start: {err}");
    assert!(err.contains("tracefs at /sys/kernel/tracing is not readable by this user") && err.contains("CAP_DAC_READ_SEARCH"), "{err}");

    // With CAP_DAC_READ_SEARCH too: everything runs, records and metrics flow.
    let mut host = Host::from_command(as_nobody(
        "+bpf,+perfmon,+dac_read_search",
        &bin,
        &["--plugins-dir", pd, "--plugin", "open", "--plugin", "sched", "-c", "capsw", "--headless", "--format", "json", "--metrics-addr", "127.0.0.1:19475"],
    ));
    host.wait_for_stderr("tracer-host: open running (tracepoint)");
    host.wait_for_stderr("tracer-host: sched running");
    let file = tempfile::NamedTempFile::new().unwrap();
    workload("capsw", file.path(), 40);
    std::thread::sleep(Duration::from_millis(600));
    let scrape = Command::new("curl").args(["-sf", "--max-time", "10", "http://127.0.0.1:19475/metrics"]).output().unwrap();
    let text = String::from_utf8_lossy(&scrape.stdout).to_string();
    let opens = text.lines().find(|l| l.starts_with("tracer_open_opens_total{syscall=\"openat\",result=\"ok\"")).and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert_eq!(opens, Some(40.0), "{text}");
    host.signal(libc::SIGTERM);
    let (code, out, err) = host.finish();
    assert_eq!(code, Some(0), "{err}");
    let opens = out.lines().filter(|l| l.contains("\"type\":\"open_events\"") && l.contains("\"comm\":\"capsw\"")).count();
    assert_eq!(opens, 40, "{err}");
    // Without CAP_SYS_ADMIN the BPF statistics stay off, and it says so.
    assert!(err.contains("no CAP_SYS_ADMIN"), "{err}");
}

#[test]
fn the_deploy_files_are_read_by_the_tools_that_use_them() {
    let _g = serial();
    let deploy = repo().join("deploy");
    let plugins = staged_plugin("open").parent().unwrap().to_path_buf();

    // systemd: the unit as shipped, with ExecStart pointed at this build.
    let unit = std::fs::read_to_string(deploy.join("tracer.service")).unwrap();
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
    let (binary, args) = exec.split_once(' ').unwrap();
    assert_eq!(binary, "/usr/local/bin/tracer-host");
    let d = tempfile::tempdir().unwrap();
    let here = d.path().join("tracer.service");
    std::fs::write(&here, unit.replace(binary, host_bin().to_str().unwrap())).unwrap();
    let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&here).output().expect("systemd-analyze (Debian's systemd)");
    let said = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "systemd-analyze verify: {said}");
    assert!(!said.contains("Unknown key") && !said.contains("Unknown section"), "{said}");
    for cap in ["CAP_BPF", "CAP_PERFMON", "CAP_DAC_READ_SEARCH"] {
        assert!(unit.contains(&format!("AmbientCapabilities=")) && unit.lines().any(|l| l.starts_with("AmbientCapabilities=") && l.contains(cap)), "{cap}");
    }
    // Its options are this host's: checked with --check-config (config file and
    // plugins directory made local).
    let cfg = d.path().join("config.toml");
    std::fs::copy(repo().join("configs/default.toml"), &cfg).unwrap();
    let args: Vec<String> = args.replace("/etc/tracer/config.toml", cfg.to_str().unwrap()).replace("/usr/local/lib/tracer/plugins", plugins.to_str().unwrap()).replace("/var/lib/tracer/report.json", d.path().join("r.json").to_str().unwrap()).split(' ').map(String::from).collect();
    let out = Command::new(host_bin()).args(&args).arg("--check-config").output().unwrap();
    assert!(out.status.success(), "the unit's ExecStart options: {}", String::from_utf8_lossy(&out.stderr));

    // Prometheus: promtool checks the scrape configuration.
    let out = Command::new("promtool").args(["check", "config"]).arg(deploy.join("prometheus.yml")).output().unwrap();
    assert!(out.status.success(), "promtool check config: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    // Kubernetes: Debian's python3-yaml reads the DaemonSet; the fields the
    // host depends on are there, and its args are this host's.
    let script = "import json,sys,yaml\nprint(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))";
    let out = Command::new("/usr/bin/python3").args(["-c", script]).arg(deploy.join("daemonset.yaml")).output().expect("Debian's python3-yaml");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let docs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ds = &docs[0];
    assert_eq!((ds["apiVersion"].as_str(), ds["kind"].as_str()), (Some("apps/v1"), Some("DaemonSet")));
    // The headless Service Prometheus finds the pods through (prometheus.yml's DNS name).
    let svc = &docs[1];
    assert_eq!((svc["kind"].as_str(), svc["spec"]["clusterIP"].as_str()), (Some("Service"), Some("None")));
    assert_eq!(svc["spec"]["selector"], ds["spec"]["selector"]["matchLabels"]);
    let prom = std::fs::read_to_string(deploy.join("prometheus.yml")).unwrap();
    let dns = format!("{}.{}.svc.cluster.local", svc["metadata"]["name"].as_str().unwrap(), svc["metadata"]["namespace"].as_str().unwrap());
    assert!(prom.contains(&dns), "prometheus.yml names {dns}");
    assert_eq!(ds["spec"]["selector"]["matchLabels"], ds["spec"]["template"]["metadata"]["labels"], "the selector matches the pods");
    let c = &ds["spec"]["template"]["spec"]["containers"][0];
    let env = c["env"].as_array().unwrap();
    assert!(env.iter().any(|e| e["name"] == "NODE_NAME" && e["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"), "{env:?}");
    let add: Vec<&str> = c["securityContext"]["capabilities"]["add"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(add, ["BPF", "PERFMON", "DAC_READ_SEARCH"]);
    assert_eq!(c["ports"][0]["containerPort"], 9464);
    let args: Vec<String> = c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().replace("/usr/local/lib/tracer/plugins", plugins.to_str().unwrap())).collect();
    let out = Command::new(host_bin()).args(&args).arg("--check-config").output().unwrap();
    assert!(out.status.success(), "the DaemonSet's args: {}", String::from_utf8_lossy(&out.stderr));
}
