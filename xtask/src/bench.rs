//! `cargo xtask bench`: what each tracer costs per traced operation, measured
//! against no tracing and against EMPTY BPF programs on the same hooks (the
//! floor plugin), interleaved and repeated; medians and spread. Also records
//! delivered vs generated for the streaming open tracer, and the host's own CPU
//! time and peak RSS. Prints a table and writes target/bench/bench.json.

use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Scenario {
    tracer: &'static str,
    /// TRACER_FLOOR for the floor plugin: empty programs on the hooks the
    /// targets are stated against.
    floor: &'static str,
    /// An equivalent bpftrace program, run when bpftrace is installed.
    bpftrace: &'static str,
    /// tracer-workload arguments (after --comm).
    workload: Vec<String>,
    /// Settings for the tracer, as TOML lines.
    settings: String,
    /// Its BPF programs' names start so (the kernel keeps 15 characters).
    prefixes: &'static [&'static str],
    label: &'static str,
}

#[derive(Default, Clone)]
struct Sample {
    ns_per_op: f64,
    host_cpu_s: f64,
    host_rss_kib: u64,
    records: u64,
    drops: u64,
}

pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

/// A number for JSON: NaN (no bpftrace) is null.
fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "null".into()
    }
}

fn spread(v: &[f64]) -> f64 {
    let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    hi - lo
}

/// Run the workload; returns ns per operation.
fn run_workload(bin: &Path, comm: &str, args: &[String]) -> Result<f64> {
    let out = Command::new(bin).arg("--comm").arg(comm).args(args).output()?;
    if !out.status.success() {
        bail!("workload {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text.split_whitespace().skip(1).take(2).filter_map(|x| x.parse().ok()).collect();
    if f.len() < 2 {
        bail!("workload printed {text:?}");
    }
    Ok(f[0] / f[1])
}

/// Operations a workload makes: its count argument (the last number, but
/// for those whose count comes earlier).
fn ops_of(tracer: &str, workload: &[String]) -> u64 {
    let at = |i: usize| workload.get(i).and_then(|x| x.parse().ok()).unwrap_or(0);
    match (tracer, workload.first().map(String::as_str)) {
        ("tcp", _) => at(2),
        ("faults", _) | (_, Some("pipes")) => at(1),
        _ => workload.iter().rev().find_map(|x| x.parse().ok()).unwrap_or(0),
    }
}

/// Total run time (ns) of the loaded BPF programs whose names start with
/// one of `prefixes`, as `bpftool prog show` reports it (with
/// kernel.bpf_stats_enabled on).
fn bpf_run_ns(prefixes: &[&str]) -> Result<u64> {
    let out = Command::new("bpftool").args(["prog", "show"]).output().context("running bpftool")?;
    let mut ns = 0;
    // One line per program, then indented detail lines.
    for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with(char::is_whitespace)) {
        let w: Vec<&str> = line.split_whitespace().collect();
        let after = |k: &str| w.iter().position(|x| *x == k).and_then(|i| w.get(i + 1)).copied();
        if prefixes.iter().any(|p| after("name").is_some_and(|n| n.starts_with(p))) {
            ns += after("run_time_ns").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    Ok(ns)
}

/// kernel.bpf_stats_enabled on while this lives, as it was after.
struct BpfStats(String);

impl BpfStats {
    fn on() -> Result<BpfStats> {
        let path = "/proc/sys/kernel/bpf_stats_enabled";
        let old = std::fs::read_to_string(path)?.trim().to_string();
        std::fs::write(path, "1")?;
        Ok(BpfStats(old))
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = std::fs::write("/proc/sys/kernel/bpf_stats_enabled", &self.0);
    }
}

/// The child's stderr (piped), gathered by a thread as it comes.
pub fn collect_stderr(child: &mut std::process::Child) -> std::sync::Arc<std::sync::Mutex<String>> {
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = text.clone();
    if let Some(pipe) = child.stderr.take() {
        std::thread::spawn(move || {
            for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&l);
                s.push('\n');
            }
        });
    }
    text
}

pub(crate) struct Host {
    pid: i32,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

fn start_host(host: &Path, config: &Path, dir: &Path, plugin: &str, env: &[(&str, &str)]) -> Result<Host> {
    start_host_to(host, config, dir, plugin, env, Stdio::null())
}

/// CPU seconds process `pid` has used so far, all its threads (utime +
/// stime of /proc/PID/stat, in clock ticks).
pub(crate) fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which may hold spaces: ") S ppid ...".
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    Ok(ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64)
}

impl Host {
    pub(crate) fn cpu_seconds(&self) -> Result<f64> {
        cpu_seconds(self.pid as u32)
    }
}

/// The host headless (JSON to `stdout`) with one plugin, once it runs.
pub(crate) fn start_host_to(host: &Path, config: &Path, dir: &Path, plugin: &str, env: &[(&str, &str)], stdout: Stdio) -> Result<Host> {
    let mut cmd = Command::new(host);
    cmd.args(["--config"]).arg(config).arg("--plugins-dir").arg(dir);
    cmd.args(["--plugin", plugin, "--headless", "--format", "json"]);
    cmd.stdout(stdout).stderr(Stdio::piped()).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn()?;
    let pid = child.id() as i32;
    let stderr = collect_stderr(&mut child);
    // The Child is not waited through std: wait4 below reaps it with rusage.
    std::mem::forget(child);
    let start = Instant::now();
    while !stderr.lock().unwrap().contains(&format!("{plugin} running")) {
        if start.elapsed() > Duration::from_secs(30) {
            bail!("host did not start: {}", stderr.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Host { pid, stderr })
}

/// SIGTERM, reap with rusage: (cpu seconds, max rss KiB, stderr).
pub(crate) fn stop_host(h: Host) -> Result<(f64, u64, String)> {
    // Let the last refresh drain the rings.
    std::thread::sleep(Duration::from_millis(600));
    unsafe { libc::kill(h.pid, libc::SIGTERM) };
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(h.pid, &mut status, 0, &mut ru) };
    if r != h.pid {
        bail!("wait4 failed");
    }
    std::thread::sleep(Duration::from_millis(50));
    let cpu = ru.ru_utime.tv_sec as f64 + ru.ru_utime.tv_usec as f64 / 1e6 + ru.ru_stime.tv_sec as f64 + ru.ru_stime.tv_usec as f64 / 1e6;
    let err = h.stderr.lock().unwrap().clone();
    Ok((cpu, ru.ru_maxrss as u64, err))
}

/// bpftrace with `prog`, all output to `out`; returns once its probes are attached.
fn start_bpftrace(prog: &str, out: &Path) -> Result<std::process::Child> {
    let f = std::fs::File::create(out)?;
    let child = Command::new("bpftrace").arg("-e").arg(prog).stdout(f.try_clone()?).stderr(f).stdin(Stdio::null()).spawn()?;
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(out).unwrap_or_default();
        if text.contains("Attaching") {
            return Ok(child);
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("bpftrace did not attach: {text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGINT (bpftrace prints its maps and exits), then: (lines with `needle`, events it says it lost).
fn stop_bpftrace(mut child: std::process::Child, out: &Path, needle: &str) -> Result<(u64, u64)> {
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    // bpftrace 0.17 was seen to ignore a SIGINT now and then: escalate.
    let start = Instant::now();
    while child.try_wait()?.is_none() {
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            child.wait()?;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let lines = text.lines().filter(|l| l.contains(needle)).count() as u64;
    let lost = text
        .lines()
        .filter_map(|l| l.strip_prefix("Lost ").and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse::<u64>().ok()))
        .sum();
    Ok((lines, lost))
}

/// "open: 300000 records, 0 dropped (...)" from the host's report.
fn records_and_drops(stderr: &str, plugin: &str) -> (u64, u64) {
    for l in stderr.lines() {
        if let Some(rest) = l.strip_prefix(&format!("{plugin}: ")) {
            let w: Vec<&str> = rest.split_whitespace().collect();
            if w.len() >= 4 && w[1] == "records," {
                return (w[0].parse().unwrap_or(0), w[2].parse().unwrap_or(0));
            }
        }
    }
    (0, 0)
}

/// A plugins directory the host accepts (root-owned, not group/other
/// writable) under /tmp, named for `what`, holding copies of `files`.
/// A loop device on a scratch file, detached when dropped.
pub struct LoopDev {
    pub path: String,
    pub majmin: String,
    file: PathBuf,
}

impl LoopDev {
    pub fn new(dir: &Path, mib: u64) -> Result<LoopDev> {
        let file = dir.join(format!("tracer-bench-disk-{}.img", std::process::id()));
        std::fs::File::create(&file)?.set_len(mib << 20)?;
        let out = Command::new("losetup").args(["--find", "--show"]).arg(&file).output().context("losetup (util-linux)")?;
        if !out.status.success() {
            bail!("losetup: {}", String::from_utf8_lossy(&out.stderr));
        }
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let name = path.trim_start_matches("/dev/");
        let majmin = std::fs::read_to_string(format!("/sys/block/{name}/dev"))?.trim().to_string();
        Ok(LoopDev { path, majmin, file })
    }
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.path).status();
        let _ = std::fs::remove_file(&self.file);
    }
}

pub fn plugin_dir(what: &str, files: &[PathBuf]) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tracer-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    for f in files {
        let dst = dir.join(f.file_name().unwrap());
        std::fs::copy(f, &dst).with_context(|| format!("copying {}", f.display()))?;
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(dir)
}

pub fn bench(target: &Path, reps: usize, scale: f64, only: Option<&str>) -> Result<()> {
    let rel = target.join("release");
    let host = rel.join("tracer-host");
    let workload = rel.join("tracer-workload");
    let n = |x: f64| ((x * scale) as u64).max(1).to_string();
    let scenarios = vec![
        Scenario {
            tracer: "syscall_latency",
            floor: "syscall_latency_raw",
            bpftrace: "tracepoint:raw_syscalls:sys_enter { @s[tid] = nsecs; } \
                       tracepoint:raw_syscalls:sys_exit /@s[tid]/ { @us[args->id] = hist((nsecs - @s[tid]) / 1000); delete(@s[tid]); }",
            workload: vec!["getppid".into(), n(2_000_000.0)],
            settings: "".into(),
            prefixes: &["sc_"],
            label: "getppid",
        },
        Scenario {
            tracer: "open",
            floor: "open",
            bpftrace: "tracepoint:syscalls:sys_enter_openat { @f[tid] = args->filename; } \
                       tracepoint:syscalls:sys_exit_openat /@f[tid]/ { printf(\"%d %d %s %d %s\\n\", pid, tid, comm, args->ret, str(@f[tid])); delete(@f[tid]); }",
            workload: vec!["open".into(), "/etc/hostname".into(), n(300_000.0)],
            settings: "comm = \"benchwork\"".into(),
            prefixes: &["open_"],
            label: "open+close",
        },
        Scenario {
            tracer: "sched",
            floor: "sched",
            bpftrace: "tracepoint:sched:sched_wakeup, tracepoint:sched:sched_wakeup_new { @q[args->pid] = nsecs; } \
                       tracepoint:sched:sched_switch { if (args->prev_state == 0) { @q[args->prev_pid] = nsecs; } \
                       $ns = @q[args->next_pid]; if ($ns) { @usecs = hist((nsecs - $ns) / 1000); } delete(@q[args->next_pid]); }",
            workload: vec!["pingpong".into(), n(100_000.0)],
            settings: "".into(),
            prefixes: &["sched_"],
            label: "pipe ping-pong",
        },
        Scenario {
            tracer: "tcp",
            floor: "tcp",
            bpftrace: "tracepoint:sock:inet_sock_set_state { printf(\"%d %s %d %d %d %d\\n\", pid, comm, args->sport, args->dport, args->oldstate, args->newstate); }",
            workload: vec!["tcp4".into(), "47555".into(), n(3000.0), "100".into()],
            settings: "ports = [47555]".into(),
            prefixes: &["tcp_"],
            label: "tcp connect+close",
        },
        Scenario {
            tracer: "process",
            floor: "process",
            bpftrace: "tracepoint:syscalls:sys_enter_execve { @a[tid] = str(args->filename); } \
                       tracepoint:syscalls:sys_exit_execve /@a[tid] != \"\"/ { printf(\"%d %d %s %s\\n\", pid, args->ret, comm, @a[tid]); delete(@a[tid]); } \
                       tracepoint:sched:sched_process_exit { printf(\"%d %s exit\\n\", pid, comm); }",
            workload: vec!["execs".into(), n(2000.0)],
            settings: "".into(),
            prefixes: &["exec", "exit_"],
            label: "fork+exec+exit",
        },
    ];
    // The block row reads a loop device of its own (on a file in the temp
    // directory), so the disk is quiet but for the workload.
    let lo = if only.is_none_or(|o| o == "block") { Some(LoopDev::new(&std::env::temp_dir(), 128)?) } else { None };
    let mut scenarios = scenarios;
    if let Some(lo) = &lo {
        scenarios.push(Scenario {
            tracer: "block",
            floor: "block",
            bpftrace: "tracepoint:block:block_rq_issue { @s[args->dev, args->sector] = nsecs; } \
                       tracepoint:block:block_rq_complete /@s[args->dev, args->sector]/ { @us = hist((nsecs - @s[args->dev, args->sector]) / 1000); delete(@s[args->dev, args->sector]); }",
            workload: vec!["dio".into(), lo.path.clone(), "read".into(), "4096".into(), n(20_000.0)],
            settings: format!("disk = \"{}\"", lo.majmin),
            prefixes: &["block_"],
            label: "4K O_DIRECT read",
        });
    }
    // File calls: preads of one page in the page cache (the cheapest traced call).
    scenarios.push(Scenario {
        tracer: "fileio",
        floor: "fileio",
        bpftrace: "tracepoint:syscalls:sys_enter_pread64 { @s[tid] = nsecs; } \
                   tracepoint:syscalls:sys_exit_pread64 /@s[tid]/ { @us[comm] = hist((nsecs - @s[tid]) / 1000); @b[comm] = sum(args->ret); delete(@s[tid]); }",
        workload: vec!["preads".into(), std::env::temp_dir().join(format!("tracer-bench-fileio-{}", std::process::id())).to_string_lossy().into_owned(), "4096".into(), n(200_000.0)],
        settings: "".into(),
        prefixes: &["fileio_"],
        label: "4K pread, cached",
    });
    // Page cache: the same cached preads, each one read of one page.
    scenarios.push(Scenario {
        tracer: "pagecache",
        floor: "pagecache",
        bpftrace: "tracepoint:filemap:mm_filemap_get_pages { @pages[comm] = sum(args->last_index - args->index + 1); }",
        workload: vec!["preads".into(), std::env::temp_dir().join(format!("tracer-bench-pagecache-{}", std::process::id())).to_string_lossy().into_owned(), "4096".into(), n(200_000.0)],
        settings: "".into(),
        prefixes: &["pagecache_"],
        label: "4K pread, cached",
    });
    // Kernel allocations followed to their frees: pipes made and closed
    // (each a few kmalloc and kmem_cache allocations and their frees).
    scenarios.push(Scenario {
        tracer: "memory",
        floor: "memory",
        bpftrace: "tracepoint:kmem:kmalloc /comm == \"benchwork\"/ { @a[args->ptr] = args->call_site; @s[args->call_site] = count(); } \
                   tracepoint:kmem:kfree /@a[args->ptr]/ { @s[@a[args->ptr]] = count(); delete(@a[args->ptr]); }",
        workload: vec!["pipes".into(), n(20_000.0), n(20_000.0)],
        settings: "kernel_allocations = true\ncomm = \"benchwork\"".into(),
        prefixes: &["memory_k", "memory_cache"],
        label: "pipe made+closed",
    });
    // Page allocations followed to their frees: pipes made, a byte written
    // (a page taken for it) and closed (the page freed).
    scenarios.push(Scenario {
        tracer: "memory",
        floor: "memory_pages",
        bpftrace: "tracepoint:kmem:mm_page_alloc /comm == \"benchwork\"/ { @a[args->pfn] = kstack(6); @s[kstack(6)] = count(); } \
                   tracepoint:kmem:mm_page_free /@a[args->pfn]/ { delete(@a[args->pfn]); }",
        workload: vec!["pipes".into(), n(20_000.0), n(20_000.0), "1".into()],
        settings: "page_allocations = true\ncomm = \"benchwork\"".into(),
        prefixes: &["memory_page"],
        label: "pipe+write+close",
    });
    // Minor faults: first touches of fresh anonymous pages (no file part).
    scenarios.push(Scenario {
        tracer: "faults",
        floor: "faults",
        bpftrace: "software:page-faults:1 { @[comm] = count(); }",
        workload: vec!["faults".into(), n(200_000.0), std::env::temp_dir().join(format!("tracer-bench-faults-{}", std::process::id())).to_string_lossy().into_owned(), "0".into()],
        settings: "".into(),
        prefixes: &["faults_"],
        label: "anon page fault",
    });
    let scenarios: Vec<Scenario> = scenarios.into_iter().filter(|s| only.is_none_or(|o| o == s.tracer)).collect();
    let mut files: Vec<PathBuf> = scenarios.iter().map(|s| rel.join(format!("plugins/libtracer_{}.so", s.tracer))).collect();
    files.push(rel.join("libtracer_fixture_floor.so"));
    let dir = plugin_dir("bench", &files)?;
    let cfg = dir.join("bench.toml");
    let mut json_rows = Vec::new();
    let mut table = String::new();
    let have_bpftrace = Command::new("bpftrace").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    if !have_bpftrace {
        eprintln!("bench: bpftrace is not installed: its column stays empty (apt-get install bpftrace)");
    }
    let bt_out = dir.join("bpftrace.out");
    let _ = writeln!(
        table,
        "{:<16} {:<15} {:>8} {:>8} {:>9} {:>8} {:>8} {:>9} {:>14} {:>14} {:>8} {:>7} {:>9} {:>9} {:>6}",
        "tracer", "workload", "none ns", "+floor", "+tracer", "x floor", "+bpftr", "tr/bpftr", "delivered", "bpftrace got", "host cpu", "rss MiB", "bpf floor", "bpf ns", "x bpf"
    );
    for s in &scenarios {
        let mut cfg_text = format!("plugins_dir = \"unused\"\n[plugins.{}]\n{}\n", s.tracer, s.settings);
        cfg_text.push_str("[plugins.floor]\n");
        std::fs::write(&cfg, cfg_text)?;
        let mut none = Vec::new();
        let mut floor = Vec::new();
        let mut tracer: Vec<Sample> = Vec::new();
        let mut bt: Vec<f64> = Vec::new();
        let mut bt_lines = u64::MAX;
        let mut bt_lost = 0;
        for rep in 0..reps {
            eprintln!("bench: {} rep {}/{reps}", s.tracer, rep + 1);
            // Interleaved: none, floor, tracer each repetition.
            none.push(run_workload(&workload, "benchwork", &s.workload)?);
            let h = start_host(&host, &cfg, &dir, "floor", &[("TRACER_FLOOR", s.floor)])?;
            floor.push(run_workload(&workload, "benchwork", &s.workload)?);
            stop_host(h)?;
            let h = start_host(&host, &cfg, &dir, s.tracer, &[])?;
            let ns = run_workload(&workload, "benchwork", &s.workload)?;
            let (cpu, rss, err) = stop_host(h)?;
            let (records, drops) = records_and_drops(&err, s.tracer);
            tracer.push(Sample { ns_per_op: ns, host_cpu_s: cpu, host_rss_kib: rss, records, drops });
            if have_bpftrace {
                let child = start_bpftrace(s.bpftrace, &bt_out)?;
                bt.push(run_workload(&workload, "benchwork", &s.workload)?);
                let (lines, lost) = stop_bpftrace(child, &bt_out, "benchwork")?;
                bt_lines = bt_lines.min(lines);
                bt_lost += lost;
            }
        }
        // The kernel's own account of the programs' run time per operation,
        // empty programs and the tracer's: free of the wall clock's noise
        // (each run includes the ~40 ns the statistics themselves add).
        let ops = ops_of(s.tracer, &s.workload);
        let (bpf_floor, bpf_tracer) = {
            let _stats = BpfStats::on()?;
            // The programs' run time over one workload, per operation.
            let per_op = |plugin: &str, env: &[(&str, &str)], prefixes: &[&str]| -> Result<f64> {
                let h = start_host(&host, &cfg, &dir, plugin, env)?;
                let before = bpf_run_ns(prefixes)?;
                run_workload(&workload, "benchwork", &s.workload)?;
                let ns = bpf_run_ns(prefixes)?.saturating_sub(before);
                stop_host(h)?;
                Ok(ns as f64 / ops.max(1) as f64)
            };
            (per_op("floor", &[("TRACER_FLOOR", s.floor)], &["floor_"])?, per_op(s.tracer, &[], s.prefixes)?)
        };
        let tn: Vec<f64> = tracer.iter().map(|x| x.ns_per_op).collect();
        let (m_none, m_floor, m_tracer) = (median(&mut none.clone()), median(&mut floor.clone()), median(&mut tn.clone()));
        let extra_floor = m_floor - m_none;
        let extra_tracer = m_tracer - m_none;
        let ratio = extra_tracer / extra_floor;
        let delivered = if s.tracer == "open" || s.tracer == "process" {
            // process: an exec and an exit record per operation (and the
            // workload's own exit, and its children's from other runs: at least).
            let min = tracer.iter().map(|x| x.records).min().unwrap_or(0);
            format!("{min}/{}", if s.tracer == "process" { 2 * ops } else { ops })
        } else {
            "-".into()
        };
        let cpu = median(&mut tracer.iter().map(|x| x.host_cpu_s).collect::<Vec<_>>());
        let rss = tracer.iter().map(|x| x.host_rss_kib).max().unwrap_or(0);
        let drops: u64 = tracer.iter().map(|x| x.drops).sum();
        let m_bt = median(&mut bt.clone());
        let extra_bt = m_bt - m_none;
        let bt_ratio = extra_tracer / extra_bt;
        let bt_got = if s.tracer == "open" && have_bpftrace { format!("{bt_lines}/{ops}") } else { "-".into() };
        let _ = writeln!(
            table,
            "{:<16} {:<15} {:>8.0} {:>8.0} {:>9.0} {:>8.2} {:>8.0} {:>9.3} {:>14} {:>14} {:>8.2} {:>7.1} {:>9.0} {:>9.0} {:>6.2}",
            s.tracer, s.label, m_none, extra_floor, extra_tracer, ratio, extra_bt, bt_ratio, delivered, bt_got, cpu, rss as f64 / 1024.0, bpf_floor, bpf_tracer, bpf_tracer / bpf_floor
        );
        json_rows.push(format!(
            "{{\"tracer\":\"{}\",\"workload\":\"{}\",\"ops\":{ops},\"reps\":{reps},\"none_ns\":{m_none:.1},\"floor_ns\":{m_floor:.1},\"tracer_ns\":{m_tracer:.1},\"none_spread_ns\":{:.1},\"floor_spread_ns\":{:.1},\"tracer_spread_ns\":{:.1},\"extra_floor_ns\":{extra_floor:.1},\"extra_tracer_ns\":{extra_tracer:.1},\"ratio_to_floor\":{ratio:.3},\"records_min\":{},\"drops\":{drops},\"host_cpu_s\":{cpu:.3},\"host_max_rss_kib\":{rss},\"floor\":\"{}\",\"bpftrace_ns\":{},\"extra_bpftrace_ns\":{},\"ratio_to_bpftrace\":{},\"bpftrace_lines_min\":{},\"bpftrace_lost\":{bt_lost},\"bpf_floor_ns_per_op\":{},\"bpf_tracer_ns_per_op\":{}}}",
            s.tracer,
            s.label,
            spread(&none),
            spread(&floor),
            spread(&tn),
            tracer.iter().map(|x| x.records).min().unwrap_or(0),
            s.floor,
            json_num(m_bt),
            json_num(extra_bt),
            json_num(bt_ratio),
            if have_bpftrace { bt_lines } else { 0 },
            json_num(bpf_floor),
            json_num(bpf_tracer),
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    if !scenarios.is_empty() {
        print!("{table}");
    }
    let mut http_json = String::new();
    if only.is_none_or(|o| o == "http") {
        let files = [rel.join("plugins/libtracer_http.so"), rel.join("libtracer_fixture_floor.so")];
        let dir = plugin_dir("bench-http", &files)?;
        let r = crate::bench_http::bench_http(&host, &dir, reps, Duration::from_secs_f64((10.0 * scale).max(3.0)));
        let _ = std::fs::remove_dir_all(&dir);
        let (t, j) = r?;
        print!("{t}");
        http_json = format!(",\"http\":{j}");
    }
    let mut export_json = String::new();
    if only.is_none_or(|o| o == "export") {
        let files: Vec<PathBuf> = crate::bench_export::TRACERS.iter().map(|t| rel.join(format!("plugins/libtracer_{t}.so"))).collect();
        let dir = plugin_dir("bench-export", &files)?;
        let window = Duration::from_secs_f64((30.0 * scale).max(10.0));
        let r = crate::bench_export::bench_export(&rel, &crate::bench_export::rotel_bin(target), &dir, reps.clamp(1, 3), window);
        let _ = std::fs::remove_dir_all(&dir);
        let (t, j) = r?;
        print!("{t}");
        export_json = format!(",\"export\":{j}");
    }
    let out = target.join("bench");
    std::fs::create_dir_all(&out)?;
    let machine = format!(
        "{} cores, kernel {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim()
    );
    std::fs::write(out.join("bench.json"), format!("{{\"machine\":\"{machine}\",\"results\":[\n{}\n]{http_json}{export_json}}}\n", json_rows.join(",\n")))?;
    println!("machine: {machine}; medians of {reps}; written to {}", out.join("bench.json").display());
    Ok(())
}
