//! `cargo xtask soak [--minutes N]` (root): the long run. open,
//! syscall_latency, sched, tcp, block, fileio, pagecache, faults, memory and http run headless while a steady mix of
//! work goes on (syscalls, opens, TCP connections, context switches,
//! short-lived processes, O_DIRECT I/O on a loop device, file reads and
//! writes, page faults, wrk against nginx: keep-alive and a connection per request). The warm-up first
//! fills every bounded table (20,000 short-lived children, each a new pid that
//! opens a new path): the host's tables then stay at their bounds, evicting,
//! for the rest of the run. The host's RSS is sampled every 10 s; after a
//! one-minute warm-up it must not grow by 4 MiB or more, and no record may be
//! dropped. Prints the figures and writes target/bench/soak.json; exits non-zero
//! when a bound is broken. Not part of the default test command (it takes
//! minutes).

use anyhow::{bail, Result};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

pub fn soak(target: &Path, minutes: f64) -> Result<()> {
    let rel = target.join("release");
    let plugins: Vec<_> =
        ["open", "syscall_latency", "sched", "tcp", "block", "fileio", "pagecache", "faults", "memory", "http"].iter().map(|p| rel.join(format!("plugins/libtracer_{p}.so"))).collect();
    let lo = crate::bench::LoopDev::new(&std::env::temp_dir(), 64)?;
    let nginx = crate::bench_http::Nginx::start()?;
    let dir = crate::bench::plugin_dir("soak", &plugins)?;
    let cfg = dir.join("soak.toml");
    std::fs::write(
        &cfg,
        format!(
            "plugins_dir = \"unused\"\nenabled = [\"open\", \"syscall_latency\", \"sched\", \"tcp\", \"block\", \"fileio\", \"pagecache\", \"faults\", \"memory\", \"http\"]\n\
             [plugins.syscall_latency]\nper_process = true\n[plugins.tcp]\nports = [27900]\n[plugins.http]\nports = [{}]\n",
            nginx.port
        ),
    )?;
    let http_port = nginx.port;
    let err_path = dir.join("host.err");
    let mut host = Command::new(rel.join("tracer-host"))
        .arg("--config")
        .arg(&cfg)
        .arg("--plugins-dir")
        .arg(&dir)
        .args(["--headless", "--format", "json"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path)?)
        .spawn()?;
    let pid = host.id();
    std::thread::sleep(Duration::from_secs(3));
    let stop = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    let wl = rel.join("tracer-workload");
    let churn_dir = "/nonexistent/tracer-soak";
    let _ = Command::new(&wl).args(["--comm", "soakchurn", "churn", churn_dir, "20000"]).stdout(Stdio::null()).status();
    let disk = lo.path.clone();
    let cold = std::env::temp_dir().join(format!("tracer-soak-faults-{}", std::process::id())).to_string_lossy().into_owned();
    let cold_file = cold.clone();
    let scratch = std::env::temp_dir().join(format!("tracer-soak-fileio-{}", std::process::id())).to_string_lossy().into_owned();
    let scratch_file = scratch.clone();
    let work = std::thread::spawn(move || {
        let mut rounds = 0u64;
        while Instant::now() < stop {
            for args in [
                vec!["getppid", "200000"],
                vec!["open", "/etc/hostname", "20000"],
                vec!["tcp4", "27900", "200", "100"],
                vec!["pingpong", "20000"],
                vec!["churn", churn_dir, "300"],
                vec!["dio", &disk, "write", "65536", "500"],
                vec!["dio", &disk, "read", "4096", "5000"],
                vec!["faults", "20000", &cold, "200"],
                vec!["fileio", &scratch, "2000", "4096", "soakfileio"],
            ] {
                let _ = Command::new(&wl).args(["--comm", "soakwork"]).args(&args).stdout(Stdio::null()).status();
            }
            // HTTP: keep-alive connections, then a new connection per
            // request (the connection tables churn).
            let url = format!("http://127.0.0.1:{http_port}/hello.txt");
            for extra in [&[][..], &["-H", "Connection: close"][..]] {
                let _ = Command::new("wrk").args(["-t1", "-c4", "-d2s"]).args(extra).arg(&url).stdout(Stdio::null()).status();
            }
            rounds += 1;
        }
        rounds
    });
    let started = Instant::now();
    let mut samples: Vec<(u64, u64)> = Vec::new();
    while Instant::now() < stop {
        std::thread::sleep(Duration::from_secs(10));
        if let Some(r) = rss_kib(pid) {
            let t = started.elapsed().as_secs();
            eprintln!("soak: {t:>4} s  host RSS {r} KiB");
            samples.push((t, r));
        } else {
            bail!("the host exited during the soak: {}", std::fs::read_to_string(&err_path)?);
        }
    }
    let rounds = work.join().unwrap_or(0);
    let _ = std::fs::remove_file(&cold_file);
    let _ = std::fs::remove_file(&scratch_file);
    std::thread::sleep(Duration::from_secs(1));
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    host.wait()?;
    let err = std::fs::read_to_string(&err_path)?;
    let report: Vec<&str> = err.lines().filter(|l| l.contains(" records, ")).collect();
    let drops: u64 = report
        .iter()
        .filter_map(|l| l.split(" records, ").nth(1)?.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    let after_warmup: Vec<&(u64, u64)> = samples.iter().filter(|(t, _)| *t >= 60).collect();
    let (first, last) = match (after_warmup.first(), after_warmup.last()) {
        (Some(f), Some(l)) => (f.1, l.1),
        _ => (samples.first().map_or(0, |s| s.1), samples.last().map_or(0, |s| s.1)),
    };
    let max = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let growth = last as i64 - first as i64;
    println!("soak: {minutes} min, {rounds} workload rounds");
    for l in &report {
        println!("  {l}");
    }
    println!("  host RSS after warm-up: {first} KiB -> {last} KiB ({growth:+} KiB), peak {max} KiB; drops {drops}");
    let out = target.join("bench");
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("soak.json"),
        format!(
            "{{\"minutes\":{minutes},\"rounds\":{rounds},\"rss_after_warmup_kib\":{first},\"rss_end_kib\":{last},\"rss_growth_kib\":{growth},\"rss_peak_kib\":{max},\"drops\":{drops},\"samples\":[{}]}}\n",
            samples.iter().map(|(t, r)| format!("[{t},{r}]")).collect::<Vec<_>>().join(",")
        ),
    )?;
    let _ = std::fs::remove_dir_all(&dir);
    if growth >= 4096 {
        bail!("host RSS grew by {growth} KiB after warm-up (bound: 4 MiB)");
    }
    if drops > 0 {
        bail!("{drops} records dropped");
    }
    Ok(())
}
