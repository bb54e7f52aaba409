//! As root: `--otlp-endpoint` against a real OpenTelemetry collector, rotel
//! (from its PyPI package, installed by `cargo xtask test` under
//! target/tools). rotel's debug log (`--debug-log metrics --debug-log-verbosity
//! detailed`) prints what it received; the tests read that, not anything the
//! host says about itself.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn rotel_bin() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("target/tools/rotel/rotel/rotel-agent");
    assert!(p.exists(), "{} is missing: run `cargo xtask test` (it installs rotel from PyPI)", p.display());
    p
}

/// A rotel collector taking OTLP/HTTP on `port`, logging what it receives to `log`.
struct Rotel(Child);

impl Rotel {
    fn start(port: u16, log: &Path) -> Rotel {
        let out = std::fs::File::create(log).unwrap();
        let child = Command::new(rotel_bin())
            .args(["start", "--exporter", "blackhole", "--debug-log", "metrics", "--debug-log-verbosity", "detailed"])
            .arg(format!("--otlp-http-endpoint=127.0.0.1:{port}"))
            .arg(format!("--otlp-grpc-endpoint=127.0.0.1:{}", port + 1))
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        // Ready when it listens.
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "rotel did not listen on {port}: {}", std::fs::read_to_string(log).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(50));
        }
        Rotel(child)
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Data points of metric `name` in rotel's log, in the order received:
/// (attributes as `key=value` strings, the `Value:` or `Count:` figure).
fn points(log: &str, name: &str) -> Vec<(Vec<String>, f64)> {
    let mut out = Vec::new();
    let mut in_metric = false;
    let mut attrs: Vec<String> = Vec::new();
    for line in log.lines() {
        let l = line.trim();
        if let Some(n) = l.strip_prefix("-> Name: ") {
            in_metric = n == name;
        } else if l.starts_with("Metric #") || l.starts_with("ResourceMetrics #") {
            in_metric = false;
        } else if in_metric && (l.starts_with("NumberDataPoints #") || l.starts_with("HistogramDataPoints #")) {
            attrs.clear();
        } else if in_metric && l.starts_with("-> ") && l.contains(": Str(") {
            let (k, v) = l[3..].split_once(": Str(").unwrap();
            attrs.push(format!("{k}={}", v.trim_end_matches(')')));
        } else if in_metric {
            if let Some(v) = l.strip_prefix("Value: ").or_else(|| l.strip_prefix("Count: ")) {
                out.push((attrs.clone(), v.parse().unwrap()));
            }
        }
    }
    out
}

/// The `Timestamp:` of each data point of metric `name`, in the order received.
fn points_times(log: &str, name: &str) -> Vec<u64> {
    let mut v = Vec::new();
    let mut in_metric = false;
    for l in log.lines().map(str::trim) {
        if let Some(n) = l.strip_prefix("-> Name: ") {
            in_metric = n == name;
        } else if in_metric {
            if let Some(t) = l.strip_prefix("Timestamp: ") {
                v.push(t.parse().unwrap());
            }
        }
    }
    v
}

/// The last value rotel received for `name` with all of `want` among its attributes.
fn last(log: &str, name: &str, want: &[&str]) -> Option<f64> {
    points(log, name).into_iter().rev().find(|(a, _)| want.iter().all(|w| a.iter().any(|x| x == w))).map(|(_, v)| v)
}

fn wait_for(log: &Path, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if ok(&text) {
            return text;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "rotel never received {what}; its log:\n{}", &text[text.len().saturating_sub(3000)..]);
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn host(port: u16, extra_env: &[(&str, &str)]) -> (Host, tempfile::TempDir) {
    let dir = plugin_dir(&[staged_plugin("open"), staged_plugin("syscall_latency")]);
    let mut env = vec![("TRACER_OTLP__INTERVAL_SECS", "0.5"), ("NODE_NAME", "otlp-node")];
    env.extend_from_slice(extra_env);
    let mut h = Host::spawn(
        &[
            "--plugins-dir", dir.path().to_str().unwrap(),
            "--plugin", "open", "--plugin", "syscall_latency",
            "-c", "otlpw",
            "--headless", "--format", "none",
            "--otlp-endpoint", &format!("http://127.0.0.1:{port}"),
        ],
        &env,
    );
    h.wait_for_stderr("tracer-host: open running");
    (h, dir)
}

fn workload(args: &[&str]) {
    assert!(Command::new(workload_bin()).args(["--comm", "otlpw"]).args(args).stdout(Stdio::null()).status().unwrap().success());
}

#[test]
fn a_real_collector_receives_the_counts_the_workloads_made() {
    let _g = serial();
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("rotel.log");
    let _rotel = Rotel::start(19480, &log);
    let (h, _plugins) = host(19480, &[]);
    let file = tempfile::NamedTempFile::new().unwrap();
    workload(&["open", file.path().to_str().unwrap(), "300"]);
    workload(&["getppid", "2000"]);
    let text = wait_for(&log, "300 opens and 2000 getppid", |t| {
        last(t, "tracer_open_opens", &["result=ok", "syscall=openat"]) == Some(300.0)
            && last(t, "tracer_syscall_latency_syscall_duration_seconds", &["syscall=getppid"]) == Some(2000.0)
    });
    // The resource says which host and service.
    for attr in ["host.name: Str(otlp-node)", "service.name: Str(tracer)", "k8s.node.name: Str(otlp-node)"] {
        assert!(text.contains(attr), "{attr} not in rotel's log");
    }
    assert!(text.contains("AGGREGATION_TEMPORALITY_CUMULATIVE") && text.contains("IsMonotonic: true"));
    h.signal(libc::SIGTERM);
    let (code, _, err) = h.finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains(" 0 dropped, 0 failed attempts"), "{err}");
}

#[test]
fn a_collector_that_goes_away_costs_counted_batches_and_no_counts() {
    let _g = serial();
    let d = tempfile::tempdir().unwrap();
    let (log1, log2) = (d.path().join("rotel1.log"), d.path().join("rotel2.log"));
    let rotel = Rotel::start(19482, &log1);
    // A queue of 3 batches, one made every 0.5 s.
    let (mut h, _plugins) = host(19482, &[("TRACER_OTLP__QUEUE", "3"), ("TRACER_OTLP__TIMEOUT_SECS", "1")]);
    let file = tempfile::NamedTempFile::new().unwrap();
    workload(&["open", file.path().to_str().unwrap(), "100"]);
    wait_for(&log1, "the first 100 opens", |t| last(t, "tracer_open_opens", &["result=ok"]) == Some(100.0));
    // The collector goes away for 5 s (about 10 batches made) while the
    // workload opens 50 more times.
    drop(rotel);
    workload(&["open", file.path().to_str().unwrap(), "50"]);
    h.wait_for_stderr("OTLP: cannot send to http://127.0.0.1:19482");
    std::thread::sleep(Duration::from_secs(5));
    let _rotel = Rotel::start(19482, &log2);
    h.wait_for_stderr("takes batches again");
    // What it missed in figures arrives with the next batch: counts are totals.
    wait_for(&log2, "the 150 opens", |t| last(t, "tracer_open_opens", &["result=ok"]) == Some(150.0));
    std::thread::sleep(Duration::from_millis(700));
    h.signal(libc::SIGTERM);
    let (code, _, err) = h.finish();
    assert_eq!(code, Some(0), "{err}");
    // Every batch made is either sent or counted dropped; the collector's own
    // count of what it received is the host's sent count.
    let line = err.lines().find(|l| l.contains("OTLP: ") && l.contains("batches made")).unwrap_or_else(|| panic!("{err}"));
    let n = |word: &str| -> u64 {
        let i = line.find(word).unwrap_or_else(|| panic!("{line}"));
        line[..i].trim_end().rsplit(' ').next().unwrap().parse().unwrap()
    };
    let (made, sent, dropped, failed) = (n("batches made"), n("sent"), n("dropped"), n("failed attempts"));
    assert_eq!(made, sent + dropped, "{line}");
    assert!(dropped >= 3 && failed >= 2, "a 5 s outage with a queue of 3: {line}");
    let received = |p: &Path| std::fs::read_to_string(p).unwrap().matches("ResourceMetrics #").count() as u64;
    assert_eq!(received(&log1) + received(&log2), sent, "{line}");
    // In order: the batches' times only go up.
    let times: Vec<u64> = points_times(&std::fs::read_to_string(&log2).unwrap(), "tracer_build_info");
    assert!(times.len() >= 2 && times.windows(2).all(|w| w[0] < w[1]), "batches out of order: {times:?}");
    eprintln!("{line}");
}
