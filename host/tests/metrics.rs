//! As root: `--metrics-addr` against real Prometheus tools. The workloads'
//! own counts are the truth; Debian's `promtool` checks the exposition and
//! Debian's `prometheus` server scrapes it.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(url: &str, accept: Option<&str>) -> String {
    let mut c = Command::new("curl");
    c.args(["-sf", "--max-time", "10"]);
    if let Some(a) = accept {
        c.args(["-H", &format!("Accept: {a}")]);
    }
    let out = c.arg(url).output().unwrap();
    assert!(out.status.success(), "GET {url}: curl exit {:?}", out.status.code());
    String::from_utf8(out.stdout).unwrap()
}

/// The value of the one sample of `series` (name and labels as printed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(series) && l[series.len()..].starts_with(' ')).map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn prometheus_scrapes_the_counts_the_workloads_made() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&[staged_plugin("open"), staged_plugin("syscall_latency")]);
    let (port, prom_port) = (19471u16, 19472u16);
    let mut host = Host::spawn(
        &[
            "--plugins-dir", dir.path().to_str().unwrap(),
            "--plugin", "open", "--plugin", "syscall_latency",
            "-c", "metricsw",
            "--metrics-addr", &format!("127.0.0.1:{port}"),
            "--node-name", "node-under-test",
            "--headless", "--format", "json",
        ],
        &[],
    );
    host.wait_for_stderr("tracer-host: syscall_latency running");
    host.wait_for_stderr("tracer-host: open running");
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(get(&format!("{base}/healthz"), None), "ok\n");
    let file = tempfile::NamedTempFile::new().unwrap();
    for w in [&["--comm", "metricsw", "open", file.path().to_str().unwrap(), "500"][..], &["--comm", "metricsw", "getppid", "3000"]] {
        assert!(Command::new(workload_bin()).args(w).stdout(Stdio::null()).status().unwrap().success());
    }
    // Two refreshes: the maps are read after the work.
    std::thread::sleep(Duration::from_millis(600));
    let text = get(&format!("{base}/metrics"), None);
    let opens = r#"tracer_open_opens_total{syscall="openat",result="ok",node="node-under-test"}"#;
    assert_eq!(sample(&text, opens), Some(500.0), "the workload's 500 opens:\n{text}");
    let count = r#"tracer_syscall_latency_syscall_duration_seconds_count{syscall="getppid",node="node-under-test"}"#;
    assert_eq!(sample(&text, count), Some(3000.0), "{text}");
    let inf = r#"tracer_syscall_latency_syscall_duration_seconds_bucket{le="+Inf",syscall="getppid",node="node-under-test"}"#;
    assert_eq!(sample(&text, inf), Some(3000.0), "{text}");
    assert!(text.contains("tracer_build_info{version=") && text.contains("tracer_plugin_events_lost_total{plugin=\"open\",node=\"node-under-test\"} 0"), "{text}");
    // Its own cost: every syscall runs syscall_latency's entry and exit
    // programs (the comm filter is checked in them), so at least 2 x 3000 runs.
    let runs = sample(&text, r#"tracer_plugin_bpf_runs_total{plugin="syscall_latency",node="node-under-test"}"#).unwrap_or(0.0);
    let secs = sample(&text, r#"tracer_plugin_bpf_seconds_total{plugin="syscall_latency",node="node-under-test"}"#).unwrap_or(0.0);
    assert!(runs >= 6000.0 && secs > 0.0, "bpf runs {runs}, seconds {secs}:\n{text}");

    // promtool (Debian's prometheus package) accepts the exposition.
    let mut check = Command::new("promtool").args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(check.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(out.status.success(), "promtool: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // OpenMetrics when asked for.
    let om = get(&format!("{base}/metrics"), Some("application/openmetrics-text; version=1.0.0"));
    assert!(om.ends_with("# EOF\n") && om.contains("# TYPE tracer_open_opens counter"), "{om}");

    // A real Prometheus server scrapes it and answers queries with the same figures.
    let data = tempfile::tempdir().unwrap();
    let cfg = data.path().join("prometheus.yml");
    std::fs::write(&cfg, format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tracer\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n")).unwrap();
    let _prom = Child(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", data.path().join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian's package) is needed for this test"),
    );
    let query = |q: &str| -> Option<f64> {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "5", "-G", &format!("http://127.0.0.1:{prom_port}/api/v1/query"), "--data-urlencode", &format!("query={q}")])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    };
    let start = Instant::now();
    loop {
        let got = (
            query(r#"tracer_open_opens_total{result="ok",node="node-under-test",job="tracer"}"#),
            query(r#"tracer_syscall_latency_syscall_duration_seconds_count{syscall="getppid"}"#),
        );
        if got == (Some(500.0), Some(3000.0)) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "Prometheus answered {got:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    host.signal(libc::SIGTERM);
    let (code, _, stderr) = host.finish();
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn an_address_that_cannot_be_listened_on_is_named() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&[staged_plugin("open")]);
    let (code, _, err) = run_host(&["--plugins-dir", dir.path().to_str().unwrap(), "--plugin", "open", "--metrics-addr", "256.0.0.1:80", "--headless"], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--metrics-addr 256.0.0.1:80: cannot listen"), "{err}");
}

/// sched's histograms carry the kernel-side sum of what they count: their
/// `_sum` is the processes' run time and run-queue wait as the kernel's own
/// schedstat tells them.
#[test]
fn sched_histogram_sums_are_the_run_and_wait_time_schedstat_counts() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&[staged_plugin("sched")]);
    let port = 19473u16;
    let mut host = Host::spawn(
        &["--plugins-dir", dir.path().to_str().unwrap(), "--plugin", "sched", "-c", "metricss", "--metrics-addr", &format!("127.0.0.1:{port}"), "--headless"],
        &[],
    );
    host.wait_for_stderr("tracer-host: sched running");
    // Two CPU hogs pinned to one CPU for 1 s each: each runs about half the
    // time and waits in the run queue the other half.
    let spinners: Vec<_> = (0..2)
        .map(|_| Command::new("taskset").args(["-c", "0"]).arg(workload_bin()).args(["--comm", "metricss", "spin", "1"]).stdout(Stdio::piped()).spawn().unwrap())
        .collect();
    let (mut run, mut wait, mut switches) = (0f64, 0f64, 0f64);
    for s in spinners {
        let out = s.wait_with_output().unwrap();
        assert!(out.status.success());
        let f: Vec<f64> = String::from_utf8_lossy(&out.stdout).split_whitespace().skip(1).map(|x| x.parse().unwrap()).collect();
        switches += f[2] + f[3];
        run += f[4] / 1e9;
        wait += f[5] / 1e9;
    }
    std::thread::sleep(Duration::from_millis(600));
    let text = get(&format!("http://127.0.0.1:{port}/metrics"), None);
    let node = format!("node=\"{}\"", tracer_host_node());
    let get_s = |name: &str| sample(&text, &format!("tracer_sched_{name}{{{node}}}")).unwrap_or_else(|| panic!("{name} missing:\n{text}"));
    // Tolerance 20 ms + 2 %: the few ms each hog runs before it takes its
    // name (not traced: -c) and after it reads its schedstat (traced).
    let close = |got: f64, truth: f64| (got - truth).abs() <= 0.02 + truth * 0.02;
    let (oncpu, runq) = (get_s("oncpu_slice_seconds_sum"), get_s("runqueue_latency_seconds_sum"));
    eprintln!("on-CPU sum {oncpu} s / schedstat run {run} s; run-queue sum {runq} s / schedstat wait {wait} s");
    assert!(wait > 0.5, "the hogs shared a CPU: schedstat wait {wait}");
    assert!(close(oncpu, run), "on-CPU sum {oncpu} s, schedstat run time {run} s");
    assert!(close(runq, wait), "run-queue sum {runq} s, schedstat wait {wait} s");
    // Each slice is one switch out: getrusage's count, give or take the
    // switches before the name was set and the final one at exit (6), and
    // less the switches sched_switch never reports on this machine (see the
    // README's sched section: up to 8 % were measured missing; 10 %).
    let count = get_s("oncpu_slice_seconds_count");
    assert!(count <= switches + 6.0 && count >= switches * 0.9 - 6.0, "{count} slices, getrusage {switches} switches");
    host.signal(libc::SIGTERM);
    let (code, _, stderr) = host.finish();
    assert_eq!(code, Some(0), "{stderr}");
}

/// The node label the host picks with no --node-name: $NODE_NAME or the hostname.
fn tracer_host_node() -> String {
    std::env::var("NODE_NAME").ok().filter(|n| !n.is_empty()).unwrap_or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string())
}

/// Per-process series: the top N names by value, the rest summed into
/// `other`, and the fold said in `tracer_metric_series_folded`.
#[test]
fn per_process_series_keep_the_top_names_and_sum_the_rest_into_other() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&[staged_plugin("sched")]);
    let port = 19474u16;
    let mut host = Host::spawn(
        &["--plugins-dir", dir.path().to_str().unwrap(), "--plugin", "sched", "--metrics-addr", &format!("127.0.0.1:{port}"), "--node-name", "n1", "--headless"],
        &[("TRACER_METRICS__TOP_N", "2")],
    );
    host.wait_for_stderr("tracer-host: sched running");
    // Two hogs of made-up names, 2 s and 1 s of CPU: on an otherwise quiet
    // machine the two largest consumers while the test runs.
    let hogs: Vec<_> = [("topn-hog-a", "2"), ("topn-hog-b", "1")]
        .iter()
        .map(|(name, secs)| Command::new(workload_bin()).args(["--comm", name, "spin", secs]).stdout(Stdio::piped()).spawn().unwrap())
        .collect();
    let runs: Vec<f64> = hogs
        .into_iter()
        .map(|h| {
            let out = h.wait_with_output().unwrap();
            String::from_utf8_lossy(&out.stdout).split_whitespace().nth(5).unwrap().parse::<f64>().unwrap() / 1e9
        })
        .collect();
    std::thread::sleep(Duration::from_millis(600));
    let text = get(&format!("http://127.0.0.1:{port}/metrics"), None);
    let series: Vec<&str> = text.lines().filter(|l| l.starts_with("tracer_sched_process_cpu_seconds_total{")).collect();
    assert_eq!(series.len(), 3, "two names and other:\n{}", series.join("\n"));
    for (name, truth) in [("topn-hog-a", runs[0]), ("topn-hog-b", runs[1])] {
        eprintln!("{}", series.join("\n"));
        let got = sample(&text, &format!("tracer_sched_process_cpu_seconds_total{{comm=\"{name}\",node=\"n1\"}}")).unwrap_or_else(|| panic!("{name} not in the top 2:\n{}", series.join("\n")));
        // As in the sums test: the ms before the name is set are not counted.
        assert!((got - truth).abs() <= 0.02 + truth * 0.02, "{name}: {got} s, schedstat {truth} s");
    }
    assert!(sample(&text, r#"tracer_sched_process_cpu_seconds_total{comm="other",node="n1"}"#).is_some_and(|v| v > 0.0), "{}", series.join("\n"));
    let folded = sample(&text, r#"tracer_metric_series_folded{metric="tracer_sched_process_cpu_seconds_total",node="n1"}"#);
    assert!(folded.is_some_and(|n| n >= 1.0), "the fold is said: {folded:?}");
    host.signal(libc::SIGTERM);
    let (code, _, stderr) = host.finish();
    assert_eq!(code, Some(0), "{stderr}");
}
