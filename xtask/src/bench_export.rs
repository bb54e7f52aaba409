//! `cargo xtask bench`'s export row: what the Prometheus endpoint and the
//! OTLP push cost the host with every tracer loaded, on a machine doing
//! nothing in particular (the target: under 1 % of a core with the
//! TUI off).
//!
//! Per round, in turns and for the same time: the host with all tracers and
//! `--format none` and no export, then the same with `--metrics-addr`
//! scraped once a second and `--otlp-endpoint` sending every 10 s to a real
//! collector (rotel, blackhole exporter). Host CPU is read from
//! `/proc/PID/stat` (all threads), so the difference is the export's share.
//! Then a burst of back-to-back scrapes gives the time and host CPU of one
//! scrape.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TRACERS: &[&str] = &["open", "syscall_latency", "sched", "tcp", "process", "block", "fileio", "pagecache", "faults", "memory", "http"];
const METRICS_PORT: u16 = 19492;
const OTLP_PORT: u16 = 19494;
const BURST: usize = 50;

struct Host {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Host {
    fn start(bin: &Path, dir: &Path, export: bool) -> Result<Host> {
        let mut cmd = Command::new(bin);
        cmd.arg("--plugins-dir").arg(dir).args(["--headless", "--format", "none"]);
        for t in TRACERS {
            cmd.args(["--plugin", t]);
        }
        if export {
            cmd.args(["--metrics-addr", &format!("127.0.0.1:{METRICS_PORT}")]);
            cmd.args(["--otlp-endpoint", &format!("http://127.0.0.1:{OTLP_PORT}")]);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::piped()).stdin(Stdio::null());
        let mut child = cmd.spawn().context("starting tracer-host")?;
        let stderr = crate::bench::collect_stderr(&mut child);
        let start = Instant::now();
        while !TRACERS.iter().all(|t| stderr.lock().unwrap().contains(&format!("{t} running"))) {
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                bail!("the host did not start every tracer: {}", stderr.lock().unwrap());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Host { child, stderr })
    }

    /// CPU seconds so far, all threads.
    fn cpu(&self) -> Result<f64> {
        crate::bench::cpu_seconds(self.child.id())
    }

    fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:").and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse().ok()))
            .unwrap_or(0)
    }

    /// SIGTERM and wait; its stderr.
    fn stop(mut self) -> Result<String> {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let st = self.child.wait()?;
        std::thread::sleep(Duration::from_millis(100));
        let err = self.stderr.lock().unwrap().clone();
        if !st.success() {
            bail!("the host exited with {st}: {err}");
        }
        Ok(err)
    }
}

/// One GET /metrics: (seconds, body bytes).
fn scrape() -> Result<(f64, usize)> {
    let t = Instant::now();
    let mut c = TcpStream::connect(("127.0.0.1", METRICS_PORT))?;
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
    let mut got = Vec::new();
    c.read_to_end(&mut got)?;
    let secs = t.elapsed().as_secs_f64();
    if !got.starts_with(b"HTTP/1.1 200") {
        bail!("scrape answered {}", String::from_utf8_lossy(&got[..got.len().min(200)]));
    }
    let body = got.windows(4).position(|w| w == b"\r\n\r\n").map(|p| got.len() - p - 4).unwrap_or(0);
    Ok((secs, body))
}

/// The rotel collector on loopback, exporting to nowhere.
struct Rotel(Child);

impl Rotel {
    fn start(bin: &Path) -> Result<Rotel> {
        let child = Command::new(bin)
            .args(["start", "--otlp-http-endpoint", &format!("127.0.0.1:{OTLP_PORT}")])
            .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{}", OTLP_PORT + 1), "--exporter", "blackhole"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", OTLP_PORT)).is_err() {
            if start.elapsed() > Duration::from_secs(10) {
                bail!("rotel did not listen on {OTLP_PORT}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Rotel(child))
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// Runs the rounds; returns (table lines, JSON object).
pub fn bench_export(rel: &Path, rotel: &Path, dir: &Path, rounds: usize, window: Duration) -> Result<(String, String)> {
    let host = rel.join("tracer-host");
    let _rotel = Rotel::start(rotel)?;
    let (mut idle, mut exported, mut scrape_ms, mut scrape_cpu_ms) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut body, mut rss, mut otlp_line) = (0, 0, String::new());
    for round in 0..rounds {
        eprintln!("bench: export round {}/{rounds} ({} s without export, then {} s with)", round + 1, window.as_secs(), window.as_secs());
        // Without export.
        let h = Host::start(&host, dir, false)?;
        std::thread::sleep(Duration::from_secs(2));
        let c0 = h.cpu()?;
        std::thread::sleep(window);
        idle.push((h.cpu()? - c0) / window.as_secs_f64() * 100.0);
        h.stop()?;
        // With a scrape a second and the push every 10 s.
        let h = Host::start(&host, dir, true)?;
        std::thread::sleep(Duration::from_secs(2));
        let (c0, t0) = (h.cpu()?, Instant::now());
        let mut next = t0;
        while t0.elapsed() < window {
            scrape()?;
            next += Duration::from_secs(1);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        exported.push((h.cpu()? - c0) / t0.elapsed().as_secs_f64() * 100.0);
        // One scrape's time and CPU: a burst, back to back.
        let c0 = h.cpu()?;
        for _ in 0..BURST {
            let (s, b) = scrape()?;
            scrape_ms.push(s * 1e3);
            body = b;
        }
        scrape_cpu_ms.push((h.cpu()? - c0) / BURST as f64 * 1e3);
        rss = rss.max(h.rss_kib());
        let err = h.stop()?;
        otlp_line = err.lines().find(|l| l.contains("OTLP:")).unwrap_or("no OTLP line").to_string();
        if !otlp_line.contains(" 0 dropped") {
            bail!("the push lost batches to a collector that was up: {otlp_line}");
        }
    }
    let (idle_m, exp_m, ms_m, cpu_m) = (median(idle.clone()), median(exported.clone()), median(scrape_ms.clone()), median(scrape_cpu_ms.clone()));
    let ms_max = scrape_ms.iter().cloned().fold(0.0, f64::max);
    let table = format!(
        "export (all {} tracers, --format none, median of {rounds} rounds of {} s):\n  host cpu idle {idle_m:.2}% of a core; with a scrape/s + OTLP/10 s {exp_m:.2}% ({:+.2}); one scrape {ms_m:.1} ms (max {ms_max:.1}), {cpu_m:.1} ms host cpu, {:.0} KiB; rss {:.1} MiB; last run {}\n",
        TRACERS.len(),
        window.as_secs(),
        exp_m - idle_m,
        body as f64 / 1024.0,
        rss as f64 / 1024.0,
        otlp_line.trim_start_matches("tracer-host: ")
    );
    let json = format!(
        "{{\"tracers\":{},\"rounds\":{rounds},\"window_s\":{},\"idle_cpu_pct\":{idle:?},\"exported_cpu_pct\":{exported:?},\"scrape_ms_median\":{ms_m:.2},\"scrape_ms_max\":{ms_max:.2},\"scrape_host_cpu_ms\":{scrape_cpu_ms:?},\"scrape_bytes\":{body},\"host_rss_kib\":{rss}}}",
        TRACERS.len(),
        window.as_secs()
    );
    Ok((table, json))
}

pub fn rotel_bin(target: &Path) -> PathBuf {
    target.join("tools/rotel/rotel/rotel-agent")
}
