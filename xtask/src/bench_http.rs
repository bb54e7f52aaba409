//! The http tracer's bench row: wrk against nginx on loopback for a fixed
//! time, with no tracing, with empty programs on the same tracepoints (the
//! floor fixture, `TRACER_FLOOR=http`) and with the tracer, interleaved and
//! repeated: requests per second, p99 latency (wrk's own figures), the
//! host's CPU and RSS, and what the tracer counted against what wrk
//! completed (every request seen, or every loss counted). Last, the tracer
//! on nginx's side alone (`comm = "nginx"`): on loopback both ends are
//! traced, where a server's users are on other machines.

use crate::bench::{median, start_host_to, stop_host};
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// wrk's connections: enough to keep one nginx worker busy on 2 cores.
const CONNECTIONS: u32 = 8;

/// nginx with one worker serving a 1.1 KB file on a port the kernel picked
/// (for the bench and the soak); stopped on drop.
pub(crate) struct Nginx {
    child: std::process::Child,
    dir: std::path::PathBuf,
    pub port: u16,
}

impl Nginx {
    pub fn start() -> Result<Nginx> {
        let dir = std::env::temp_dir().join(format!("tracer-bench-nginx-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("www"))?;
        std::fs::write(dir.join("www/hello.txt"), "hello, wrk\n".repeat(100))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let d = dir.display();
        let conf = format!(
            "daemon off;\nuser root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  keepalive_requests 100000000;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             server {{\n    listen 127.0.0.1:{port};\n    root {d}/www;\n  }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf)?;
        let child = Command::new("nginx").arg("-c").arg(dir.join("nginx.conf")).arg("-p").arg(&dir).stderr(Stdio::null()).spawn().context("starting nginx (apt-get install nginx)")?;
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(10) {
                bail!("nginx did not listen on {port}: {}", std::fs::read_to_string(dir.join("error.log")).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Nginx { child, dir, port })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGQUIT) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// wrk's figures for one run: (requests completed, requests/s, p99 µs).
fn wrk(port: u16, secs: Duration) -> Result<(u64, f64, f64)> {
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{CONNECTIONS}"), &format!("-d{}s", secs.as_secs().max(1)), "--latency", &format!("http://127.0.0.1:{port}/hello.txt")])
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let num = |key: &str| -> Option<&str> { text.lines().find(|l| l.trim_start().starts_with(key)).and_then(|l| l.split_whitespace().nth(1)) };
    let rps: f64 = num("Requests/sec:").and_then(|v| v.parse().ok()).with_context(|| format!("wrk said {text}"))?;
    let p99 = num("99%").map(wrk_duration_us).with_context(|| format!("wrk said {text}"))?;
    let total: u64 = text.lines().find(|l| l.contains("requests in")).and_then(|l| l.split_whitespace().next()).and_then(|v| v.parse().ok()).with_context(|| format!("wrk said {text}"))?;
    Ok((total, rps, p99))
}

/// wrk's `1.23ms`, `456.00us`, `1.50s` in µs.
fn wrk_duration_us(v: &str) -> f64 {
    let (num, mul) = if let Some(x) = v.strip_suffix("us") {
        (x, 1.0)
    } else if let Some(x) = v.strip_suffix("ms") {
        (x, 1e3)
    } else if let Some(x) = v.strip_suffix('s') {
        (x, 1e6)
    } else {
        (v, 1.0)
    };
    num.parse::<f64>().map(|n| n * mul).unwrap_or(f64::NAN)
}

/// The requests the tracer counted on nginx's side (its `processes` panel),
/// read line by line: the file holds every request as a record (hundreds
/// of MB), and memory this process holds is counted in the next host's
/// peak RSS (a child's maxrss starts from its parent's at fork).
fn nginx_requests(path: &Path) -> u64 {
    use std::io::BufRead;
    let Ok(f) = std::fs::File::open(path) else { return 0 };
    std::io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter(|l| l.contains("\"panel\":\"processes\""))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .filter(|v| v["plugin"] == "http" && v["panel"] == "processes")
        .flat_map(|v| v["rows"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["comm"] == "nginx")
        .filter_map(|r| r["requests"].as_u64())
        .sum()
}

pub fn bench_http(host: &Path, dir: &Path, reps: usize, secs: Duration) -> Result<(String, String)> {
    let nginx = Nginx::start()?;
    let cfg = dir.join("bench-http.toml");
    std::fs::write(&cfg, format!("plugins_dir = \"unused\"\n[plugins.http]\nports = [{}]\n", nginx.port))?;
    let server_cfg = dir.join("bench-http-server.toml");
    std::fs::write(&server_cfg, format!("plugins_dir = \"unused\"\n[plugins.http]\nports = [{}]\ncomm = \"nginx\"\n", nginx.port))?;
    let (mut none, mut floor, mut tracer, mut server) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut p99s, mut cpu, mut rss, mut seen) = ([Vec::new(), Vec::new(), Vec::new(), Vec::new()], Vec::new(), 0u64, Vec::new());
    let mut drops = 0u64;
    for rep in 0..reps.max(1) {
        eprintln!("bench: http rep {}/{}", rep + 1, reps.max(1));
        let (_, rps, p99) = wrk(nginx.port, secs)?;
        none.push(rps);
        p99s[0].push(p99);
        let h = start_host_to(host, &cfg, dir, "floor", &[("TRACER_FLOOR", "http")], Stdio::null())?;
        let (_, rps, p99) = wrk(nginx.port, secs)?;
        stop_host(h)?;
        floor.push(rps);
        p99s[1].push(p99);
        let out = dir.join("http.json");
        let h = start_host_to(host, &cfg, dir, "http", &[], Stdio::from(std::fs::File::create(&out)?))?;
        // The host's CPU while wrk runs: loading the programs before (the
        // verifier, about 1.2 s here) is no cost of the requests.
        let c0 = h.cpu_seconds()?;
        let (total, rps, p99) = wrk(nginx.port, secs)?;
        let c1 = h.cpu_seconds()?;
        let (_, r, err) = stop_host(h)?;
        tracer.push(rps);
        p99s[2].push(p99);
        cpu.push(c1 - c0);
        rss = rss.max(r);
        let counted = nginx_requests(&out);
        let _ = std::fs::remove_file(&out);
        seen.push((total, counted));
        // "transfers not streamed (ring full) N"
        drops += ring_full(&err);
        let h = start_host_to(host, &server_cfg, dir, "http", &[], Stdio::null())?;
        let (_, rps, p99) = wrk(nginx.port, secs)?;
        let (_, _, err) = stop_host(h)?;
        server.push(rps);
        p99s[3].push(p99);
        drops += ring_full(&err);
    }
    let (n, f, t, s) = (median(&mut none), median(&mut floor), median(&mut tracer), median(&mut server));
    let loss = |x: f64| 100.0 * (n - x) / n;
    let p = |i: usize| median(&mut p99s[i].clone());
    let mut table = String::new();
    let _ = writeln!(table, "{:<8} {:>11} {:>11} {:>11} {:>12} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>7} {:>20} {:>10}", "http", "none req/s", "floor req/s", "tracer req/s", "server req/s", "floor %", "tracer %", "server %", "p99 none", "p99 floor", "p99 trcr", "p99 srvr", "cpu in run", "rss MiB", "wrk done/nginx seen", "ring full");
    let last = seen.last().copied().unwrap_or((0, 0));
    let _ = writeln!(
        table,
        "{:<8} {:>11.0} {:>11.0} {:>11.0} {:>12.0} {:>8.1} {:>8.1} {:>8.1} {:>7.0}us {:>7.0}us {:>7.0}us {:>7.0}us {:>10.2} {:>7.1} {:>20} {:>10}",
        "wrk",
        n,
        f,
        t,
        s,
        loss(f),
        loss(t),
        loss(s),
        p(0),
        p(1),
        p(2),
        p(3),
        median(&mut cpu),
        rss as f64 / 1024.0,
        format!("{}/{}", last.0, last.1),
        drops
    );
    let json = format!(
        "{{\"none_rps\":{n:.0},\"floor_rps\":{f:.0},\"tracer_rps\":{t:.0},\"server_only_rps\":{s:.0},\"floor_loss_pct\":{:.2},\"tracer_loss_pct\":{:.2},\"server_only_loss_pct\":{:.2},\"p99_us\":[{:.0},{:.0},{:.0},{:.0}],\"host_cpu_s\":{:.3},\"rss_kib\":{rss},\"wrk_done_nginx_seen\":[{}],\"ring_full\":{drops}}}",
        loss(f),
        loss(t),
        loss(s),
        p(0),
        p(1),
        p(2),
        p(3),
        median(&mut cpu),
        // Pairs as JSON arrays (Debug would print Rust tuples).
        seen.iter().map(|(w, n)| format!("[{w},{n}]")).collect::<Vec<_>>().join(",")
    );
    Ok((table, json))
}

/// The host's "transfers not streamed (ring full) N" on stderr.
fn ring_full(err: &str) -> u64 {
    err.split("ring full) ").nth(1).and_then(|x| x.split(|c: char| !c.is_ascii_digit()).next()).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0)
}
