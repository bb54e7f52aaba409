//! The end-to-end checks run inside a guest kernel (booted by `cargo xtask
//! test` under qemu, this binary as the work of its init). Each tracer runs
//! headless through every attach alternative given on the command line, under
//! a workload with a made-up name whose truth is known (its own counts,
//! getrusage); each check prints one line `GUEST-CHECK <name> PASS|FAIL
//! <detail>` on the console, which the xtask reads back.
//!
//! usage: tracer-guest-checks DIR   (DIR holds tracer-host, tracer-workload,
//! plugins/ and is writable)

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Ctx {
    dir: PathBuf,
    failed: usize,
}

fn say(line: &str) {
    // The console is the only way out of the guest.
    println!("{line}");
}

impl Ctx {
    fn check(&mut self, name: &str, result: Result<String, String>) {
        match result {
            Ok(detail) => say(&format!("GUEST-CHECK {name} PASS {detail}")),
            Err(why) => {
                self.failed += 1;
                // One line: the reason, with newlines folded.
                say(&format!("GUEST-CHECK {name} FAIL {}", why.replace('\n', " | ")));
            }
        }
    }

    fn workload(&self, args: &[&str]) -> Result<(u32, String), String> {
        let c = Command::new(self.dir.join("tracer-workload")).args(args).stdout(Stdio::piped()).spawn().map_err(|e| e.to_string())?;
        let pid = c.id();
        let out = c.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("workload {args:?} failed: {}", out.status));
        }
        Ok((pid, String::from_utf8_lossy(&out.stdout).into_owned()))
    }
}

/// A headless host with stderr collected as it comes.
struct Host {
    child: Child,
    stderr: Arc<Mutex<String>>,
    stdout: std::thread::JoinHandle<String>,
}

impl Host {
    fn start(ctx: &Ctx, plugins: &[&str], table: &str) -> Result<Host, String> {
        let cfg = ctx.dir.join("check.toml");
        let enabled: Vec<String> = plugins.iter().map(|p| format!("\"{p}\"")).collect();
        let tables: String = plugins.iter().map(|p| format!("[plugins.{p}]\n{table}\n")).collect();
        std::fs::write(&cfg, format!("plugins_dir = \"{}\"\nenabled = [{}]\n{tables}", ctx.dir.join("plugins").display(), enabled.join(", ")))
            .map_err(|e| e.to_string())?;
        let mut child = Command::new(ctx.dir.join("tracer-host"))
            .args(["--config", cfg.to_str().unwrap(), "--headless", "--format", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting tracer-host: {e}"))?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let (pipe, sink) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&l);
                s.push('\n');
            }
        });
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let mut host = Host { child, stderr, stdout };
        // Loading and verifying is slow under emulation.
        let start = Instant::now();
        while plugins.iter().any(|p| !host.err().contains(&format!("tracer-host: {p} running"))) {
            if let Ok(Some(st)) = host.child.try_wait() {
                return Err(format!("tracer-host exited ({st}): {}", host.err()));
            }
            if start.elapsed() > Duration::from_secs(120) {
                return Err(format!("not running after 120 s: {}", host.err()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(host)
    }

    fn err(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM after a last refresh; the JSON lines and stderr.
    fn stop(mut self) -> Result<(Vec<Value>, String), String> {
        std::thread::sleep(Duration::from_millis(1500));
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let st = self.child.wait().map_err(|e| e.to_string())?;
        let out = self.stdout.join().unwrap_or_default();
        std::thread::sleep(Duration::from_millis(100));
        let err = self.stderr.lock().unwrap().clone();
        if !st.success() {
            return Err(format!("tracer-host: {st}: {err}"));
        }
        let lines = out.lines().map(|l| serde_json::from_str(l).map_err(|e| format!("not JSON ({e}): {l}"))).collect::<Result<_, _>>()?;
        Ok((lines, err))
    }
}

fn panel<'a>(lines: &'a [Value], plugin: &str, id: &str) -> Result<&'a Value, String> {
    lines.iter().find(|v| v["plugin"] == plugin && v["panel"] == id).ok_or_else(|| format!("no panel {plugin}.{id}"))
}

fn rows_where(p: &Value, col: &str, value: &Value) -> Result<Vec<Value>, String> {
    // Rows are objects keyed by each column's JSON key.
    if !p["columns"].as_array().is_some_and(|c| c.iter().any(|c| c["key"] == col)) {
        return Err(format!("no column keyed {col}"));
    }
    Ok(p["rows"].as_array().map(|r| r.iter().filter(|r| r[col] == *value).cloned().collect()).unwrap_or_default())
}

fn attached(err: &str, plugin: &str, mode: &str) -> Result<(), String> {
    if err.contains(&format!("tracer-host: {plugin} running ({mode}")) {
        Ok(())
    } else {
        Err(format!("not attached as {mode}: {err}"))
    }
}

/// process: an exec of a made-up path with known arguments that exits 7, and
/// one killed by SIGKILL; compared with what waitpid says.
fn check_process(ctx: &Ctx, mode: &str) -> Result<String, String> {
    let host = Host::start(ctx, &["process"], &format!("attach = \"{mode}\""))?;
    attached(&host.err(), "process", mode)?;
    let exe = ctx.dir.join(format!("gexec-{mode}"));
    let _ = std::fs::remove_file(&exe);
    std::os::unix::fs::symlink(ctx.dir.join("tracer-workload"), &exe).map_err(|e| e.to_string())?;
    let mut c = Command::new(&exe).args(["exit", "7", "arg-x"]).spawn().map_err(|e| e.to_string())?;
    let seven = c.id();
    let st = c.wait().map_err(|e| e.to_string())?;
    let mut k = Command::new(&exe).args(["spin", "30"]).stdout(Stdio::null()).spawn().map_err(|e| e.to_string())?;
    let killed = k.id();
    std::thread::sleep(Duration::from_millis(300));
    let _ = k.kill();
    let kst = k.wait().map_err(|e| e.to_string())?;
    let (lines, _) = host.stop()?;
    use std::os::unix::process::ExitStatusExt;
    if st.code() != Some(7) || kst.signal() != Some(9) {
        return Err(format!("waitpid says {st} and {kst}"));
    }
    let path = exe.to_str().unwrap();
    let rec = |pid: u32, key: &str| lines.iter().find(|v| v["plugin"] == "process" && v["pid"] == pid && v.get(key).is_some()).cloned();
    let exec = rec(seven, "filename").ok_or("no exec record")?;
    let want_args = format!("{path} exit 7 arg-x");
    if exec["filename"] != path || exec["args"] != want_args.as_str() || exec["ret"] != 0 {
        return Err(format!("exec record {exec}"));
    }
    let exit = rec(seven, "status").ok_or("no exit record of the exit-7 child")?;
    let kill = rec(killed, "status").ok_or("no exit record of the killed child")?;
    if exit["status"] != "exit 7" || kill["status"] != "SIGKILL" {
        return Err(format!("exit records {exit} {kill}"));
    }
    Ok(format!("exec {path} args ok, {} and {}", exit["status"], kill["status"]))
}

fn check_open(ctx: &Ctx, mode: &str) -> Result<String, String> {
    let host = Host::start(ctx, &["open"], &format!("attach = \"{mode}\"\ncomm = \"gopen\""))?;
    let file = ctx.dir.join("gfile");
    std::fs::write(&file, "x").map_err(|e| e.to_string())?;
    let n = 300;
    ctx.workload(&["--comm", "gopen", "open", file.to_str().unwrap(), &n.to_string()])?;
    let (lines, err) = host.stop()?;
    attached(&err, "open", mode)?;
    let mine: Vec<&Value> = lines.iter().filter(|v| v["plugin"] == "open" && v["path"] == file.to_str().unwrap()).collect();
    if mine.len() != n {
        return Err(format!("{} records of {n} opens", mine.len()));
    }
    if let Some(bad) = mine.iter().find(|r| r["ret"].as_i64().unwrap_or(-1) < 0 || r["comm"] != "gopen" || r["syscall"] != "openat") {
        return Err(format!("record {bad}"));
    }
    Ok(format!("{n}/{n} opens, syscall openat"))
}

fn check_syscalls(ctx: &Ctx, mode: &str) -> Result<String, String> {
    let host = Host::start(ctx, &["syscall_latency"], &format!("attach = \"{mode}\"\nper_process = true\ncomm = \"gsys\""))?;
    let (pid, _) = ctx.workload(&["--comm", "gsys", "getppid", "5000"])?;
    let (lines, err) = host.stop()?;
    attached(&err, "syscall_latency", mode)?;
    let rows = rows_where(panel(&lines, "syscall_latency", "process_syscalls")?, "pid", &Value::from(pid))?;
    let g = rows.iter().find(|r| r["syscall"] == "getppid").ok_or_else(|| format!("no getppid row: {rows:?}"))?;
    if g["count"] != 5000 {
        return Err(format!("getppid counted {} times of 5000", g["count"]));
    }
    Ok("5000/5000 getppid".into())
}

fn check_sched(ctx: &Ctx, mode: &str) -> Result<String, String> {
    let host = Host::start(ctx, &["sched"], &format!("attach = \"{mode}\"\ncomm = \"gpp\""))?;
    let (pid, printed) = ctx.workload(&["--comm", "gpp", "pingpong", "1000"])?;
    let (lines, err) = host.stop()?;
    attached(&err, "sched", mode)?;
    // done ELAPSED OPS VOLUNTARY INVOLUNTARY (getrusage)
    let f: Vec<u64> = printed.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let rows = rows_where(panel(&lines, "sched", "totals")?, "pid", &Value::from(pid))?;
    let row = rows.first().ok_or("no totals row for the ping-pong")?;
    let vol = row["voluntary"].as_u64().unwrap_or(0);
    // The few switches after getrusage (exit) and before the rename differ.
    if vol.abs_diff(f[2]) > 10 {
        return Err(format!("voluntary switches {vol}, getrusage {}", f[2]));
    }
    Ok(format!("voluntary {vol} (getrusage {})", f[2]))
}

/// A single-threaded CPU hog: its CPU % in the last interval is at most one
/// CPU (the running slice counts up to each read), and it keeps its name.
fn check_cpu_bound(ctx: &Ctx) -> Result<String, String> {
    let host = Host::start(ctx, &["sched"], "comm = \"ghog\"")?;
    let mut hog = Command::new(ctx.dir.join("tracer-workload"))
        .args(["--comm", "ghog", "spin", "60"])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_secs(3));
    // Stopped while the hog still runs: the last interval is all hog.
    let stopped = host.stop();
    let _ = hog.kill();
    let _ = hog.wait();
    let (lines, _) = stopped?;
    let rows = rows_where(panel(&lines, "sched", "processes")?, "pid", &Value::from(hog.id()))?;
    let row = rows.first().ok_or("no row for the hog in the last interval")?;
    let pct: f64 = row["cpu_pct"].as_f64().ok_or(format!("cpu % {}", row["cpu_pct"]))?;
    if row["comm"] != "ghog" || !(1.0..=103.0).contains(&pct) {
        return Err(format!("row {row}"));
    }
    Ok(format!("cpu {pct}% of one CPU"))
}

fn check_tcp(ctx: &Ctx, mode: &str, port: u16) -> Result<String, String> {
    let closed = port + 1;
    let host = Host::start(ctx, &["tcp"], &format!("attach = \"{mode}\"\nports = [{port}, {closed}]"))?;
    ctx.workload(&["--comm", "gtcp", "tcp4", &port.to_string(), "2", "500"])?;
    ctx.workload(&["--comm", "gtcp", "tcpresets", &closed.to_string(), &(port).to_string()])?;
    let (lines, err) = host.stop()?;
    attached(&err, "tcp", mode)?;
    let closes: Vec<&Value> = lines.iter().filter(|v| v["plugin"] == "tcp" && v.get("dir").is_some()).collect();
    let ends = |end: &str| closes.iter().filter(|r| r["end"] == end).count();
    let got = (ends("fin"), ends("refused"), ends("rst_sent"), ends("rst_received"));
    // 2 connections closed with FIN (both ends), one refused, two reset by the client.
    if got != (4, 1, 2, 2) {
        return Err(format!("ends (fin, refused, rst_sent, rst_received) = {got:?}, expected (4, 1, 2, 2): {closes:?}"));
    }
    Ok("fin 4, refused 1, rst_sent 2, rst_received 2".into())
}

/// The block tracer against the guest kernel's own disk statistics: a loop
/// device (loop.ko from the kernel's package, loaded by init) on a file in
/// tmpfs, O_DIRECT reads and writes of known sizes and fsyncs; the counts
/// and bytes must be the deltas of /sys/block/loop0/stat exactly.
fn check_block(ctx: &Ctx, mode: &str) -> Result<String, String> {
    let img = ctx.dir.join(format!("disk-{mode}.img"));
    std::fs::File::create(&img).and_then(|f| f.set_len(16 << 20)).map_err(|e| format!("{}: {e}", img.display()))?;
    if !std::path::Path::new("/sys/block/loop0").exists() {
        return Err("no loop device: loop.ko was not in the initramfs or did not load".into());
    }
    let _ = Command::new("losetup").args(["-d", "/dev/loop0"]).status();
    let st = Command::new("losetup").args(["/dev/loop0", img.to_str().unwrap()]).status().map_err(|e| e.to_string())?;
    if !st.success() {
        return Err("losetup /dev/loop0 failed".into());
    }
    let stat = || -> Vec<u64> { std::fs::read_to_string("/sys/block/loop0/stat").unwrap_or_default().split_whitespace().filter_map(|v| v.parse().ok()).collect() };
    let majmin = std::fs::read_to_string("/sys/block/loop0/dev").unwrap_or_default().trim().to_string();
    let before = stat();
    let host = Host::start(ctx, &["block"], &format!("attach = \"{mode}\"\ndisk = \"{majmin}\""))?;
    attached(&host.err(), "block", mode)?;
    ctx.workload(&["--comm", "gblk-rd", "dio", "/dev/loop0", "read", "4096", "100"])?;
    ctx.workload(&["--comm", "gblk-wr", "dio", "/dev/loop0", "write", "65536", "50"])?;
    ctx.workload(&["--comm", "gblk-fs", "dio", "/dev/loop0", "fsync", "4096", "10"])?;
    let (lines, _) = host.stop()?;
    let after = stat();
    let _ = Command::new("losetup").args(["-d", "/dev/loop0"]).status();
    if before.len() < 17 || after.len() < 17 {
        return Err(format!("/sys/block/loop0/stat has {} fields", after.len()));
    }
    let d = |i: usize| after[i] - before[i];
    let rows = rows_where(panel(&lines, "block", "disks")?, "disk", &Value::from("loop0"))?;
    let sum = |op: &str, key: &str| rows.iter().filter(|r| r["op"] == op).map(|r| r[key].as_u64().unwrap_or(0)).sum::<u64>();
    let got = [sum("read", "requests"), sum("read", "bytes") / 512, sum("write", "requests"), sum("write", "bytes") / 512, sum("flush", "requests")];
    let want = [d(0), d(2), d(4), d(6), d(15)];
    if got != want || d(0) != 100 {
        return Err(format!("reads, sectors, writes, sectors, flushes: traced {got:?}, /sys/block/loop0/stat {want:?}"));
    }
    // Without block_io_done (before 6.5) a request's time ends at its
    // completion, before the kernel's accounting ends: at most the kernel's
    // (plus 1.5 ms: it shows whole ms, cut), and not under half of it.
    let (ours, ms) = (sum("read", "time_ns") as f64 / 1e6, d(3) as f64);
    if ours > ms + 1.5 || ours < ms * 0.5 - 1.5 {
        return Err(format!("read time: {ours:.3} ms traced, {ms} ms in /sys/block/loop0/stat"));
    }
    Ok(format!("reads {} writes {} flushes {} exact; read time {ours:.2} ms (kernel {ms} ms)", d(0), d(4), d(15)))
}

/// The faults tracer against the guest kernel's /proc/PID/stat: minor and
/// major faults of a workload, as it read them itself at its end. The
/// guest's files live in its initramfs (no page cache to evict), so its
/// file reads are minor faults and majflt is whatever the kernel says.
fn check_faults(ctx: &Ctx) -> Result<String, String> {
    let host = Host::start(ctx, &["faults"], "")?;
    attached(&host.err(), "faults", "perf_event")?;
    let file = ctx.dir.join("faults.dat");
    let (pid, out) = ctx.workload(&["--comm", "gfaults", "faults", "2000", file.to_str().unwrap(), "50"])?;
    let (lines, _) = host.stop()?;
    let f: Vec<u64> = out.lines().find(|l| l.starts_with("faults ")).ok_or(format!("workload printed {out:?}"))?.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let (minflt, majflt) = (f[0], f[1]);
    let rows = rows_where(panel(&lines, "faults", "processes")?, "pid", &Value::from(pid))?;
    let r = rows.first().ok_or(format!("no row for pid {pid}"))?;
    let (minor, major) = (r["minor"].as_u64().unwrap_or(0), r["major"].as_u64().unwrap_or(0));
    // Minor: the faults after the workload read its counters (printing, exit) come on top.
    if !(minflt..=minflt + 16).contains(&minor) || major != majflt || r["comm"] != "gfaults" {
        return Err(format!("traced {r}; /proc/{pid}/stat minflt {minflt} majflt {majflt}"));
    }
    Ok(format!("minor {minor} (stat {minflt}), major {major} (stat {majflt})"))
}

/// The fileio tracer on one attach mode: a workload's known calls under a
/// made-up name, against the kernel's /proc/self/io deltas around them
/// (plus the second read of it: traced, not in the deltas).
fn check_fileio(ctx: &Ctx, mode: &str) -> Result<String, String> {
    let window = "gfio-win";
    let host = Host::start(ctx, &["fileio"], &format!("attach = \"{mode}\"\ncomm = \"{window}\"\nmin_latency_us = 0"))?;
    attached(&host.err(), "fileio", mode)?;
    let file = ctx.dir.join(format!("fileio-{mode}.dat"));
    let (pid, out) = ctx.workload(&["fileio", file.to_str().unwrap(), "50", "4096", window])?;
    let (lines, _) = host.stop()?;
    let f: Vec<u64> = out.lines().find(|l| l.starts_with("fileio ")).ok_or(format!("workload printed {out:?}"))?.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let (rchar, wchar, syscr, syscw, io1) = (f[0], f[1], f[2], f[3], f[4]);
    let rows = rows_where(panel(&lines, "fileio", "processes")?, "pid", &Value::from(pid))?;
    let r = rows.first().ok_or(format!("no row for pid {pid}"))?;
    let g = |k: &str| r[k].as_u64().unwrap_or(u64::MAX);
    let got = [g("reads"), g("read_bytes"), g("writes"), g("written_bytes"), g("fsyncs"), g("fdatasyncs")];
    let want = [syscr + 1, rchar + io1, syscw, wchar, 1, 1];
    if got != want {
        return Err(format!("traced {r}; want reads, bytes, writes, bytes, fsyncs, fdatasyncs {want:?} from /proc/{pid}/io"));
    }
    Ok(format!("reads {} ({} bytes), writes {} ({} bytes) as /proc/PID/io counts", got[0], got[1], got[2], got[3]))
}

/// The pagecache tracer on one attach mode, on the page cache of a loop
/// device (the guest's files are in tmpfs, whose pages are not the file
/// cache's): writing all 4,096 pages of it, fsync + DONTNEED, a cold read.
/// Truth: mincore(2) (or cachestat(2) where the kernel has it) around each
/// step. Kernels before 6.10 have no read hook: the tracer must say so.
fn check_pagecache(ctx: &Ctx, mode: &str) -> Result<String, String> {
    const PAGES: u64 = 4096;
    let img = ctx.dir.join(format!("pc-{mode}.img"));
    std::fs::File::create(&img).and_then(|f| f.set_len(PAGES * 4096)).map_err(|e| format!("{}: {e}", img.display()))?;
    let _ = Command::new("losetup").args(["-d", "/dev/loop0"]).status();
    let st = Command::new("losetup").args(["/dev/loop0", img.to_str().unwrap()]).status().map_err(|e| e.to_string())?;
    if !st.success() {
        return Err("losetup /dev/loop0 failed".into());
    }
    // Held open across the steps: the kernel drops a block device's page
    // cache when its last opener closes it.
    let hold = std::fs::File::open("/dev/loop0").map_err(|e| format!("/dev/loop0: {e}"))?;
    let host = Host::start(ctx, &["pagecache"], &format!("attach = \"{mode}\""))?;
    attached(&host.err(), "pagecache", mode)?;
    let p = PAGES.to_string();
    let mut cs = Vec::new();
    let mut pids = Vec::new();
    for (comm, step) in [("gpc-write", "write"), ("gpc-drop", "drop"), ("gpc-cold", "read")] {
        let (pid, out) = ctx.workload(&["--comm", comm, "pagecache", step, "/dev/loop0", &p])?;
        let v: Vec<u64> = out.lines().find(|l| l.starts_with("pagecache ")).ok_or(format!("workload printed {out:?}"))?.split_whitespace().skip(1).take(4).filter_map(|x| x.parse().ok()).collect();
        cs.push(v);
        pids.push(pid);
    }
    let (lines, err) = host.stop()?;
    drop(hold);
    let _ = Command::new("losetup").args(["-d", "/dev/loop0"]).status();
    // The host names each optional program it left out, with the reason.
    let off = err.lines().find(|l| l.contains("pagecache running") && l.contains("pagecache_reads_")).map(|l| l.to_string());
    let reads_hook = off.is_none();
    let procs = panel(&lines, "pagecache", "processes")?;
    let row = |pid: u32| rows_where(procs, "pid", &Value::from(pid)).ok().and_then(|r| r.first().cloned()).ok_or(format!("no row for {pid}"));
    let g = |r: &Value, k: &str| r[k].as_u64().unwrap_or(u64::MAX);
    let (w, cold) = (row(pids[0])?, row(pids[2])?);
    let files = panel(&lines, "pagecache", "files")?["rows"].as_array().cloned().unwrap_or_default();
    let dev = files.iter().find(|r| g(r, "dirtied") == PAGES).ok_or(format!("no file row with {PAGES} pages dirtied: {files:?}"))?;
    // Every page written was dirtied; added what mincore saw come in.
    let want = [PAGES, cs[0][2] - cs[0][0], cs[1][0] - cs[1][2], cs[2][2] - cs[2][0]];
    let got = [g(&w, "dirtied"), g(&w, "added"), g(dev, "evicted"), g(&cold, "added")];
    if got != want {
        return Err(format!("dirtied, added by the write, evicted, added by the cold read: traced {got:?}, kernel {want:?}; {w} {dev} {cold}"));
    }
    if reads_hook && g(&cold, "misses") != want[3] {
        return Err(format!("cold read: misses {} but {} pages came in: {cold}", g(&cold, "misses"), want[3]));
    }
    if !reads_hook && !cold["hits"].is_null() {
        return Err(format!("no read hook on this kernel, yet hits are shown: {cold}"));
    }
    let reads = match &off {
        None => "reads hooked".to_string(),
        Some(l) => format!("hits absent, as said: {}", l.split("optional parts off here: ").nth(1).unwrap_or(l)),
    };
    Ok(format!("dirtied {}, evicted {}, cold read added {} as the kernel counts; {reads}", got[0], got[2], got[3]))
}

/// The memory tracer's OOM kill record on the guest kernel: a workload
/// allocating 200 MiB in a cgroup v2 group limited to 32 MiB (the check
/// mounts cgroup2 and enables the memory controller) is killed; one record
/// with its pid and the limit, and /proc/vmstat oom_kill +1. An older
/// kernel's tracepoint carries only the pid: comm and sizes are then absent.
fn check_memory(ctx: &Ctx) -> Result<String, String> {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let root = std::path::Path::new("/sys/fs/cgroup");
    if !root.join("cgroup.controllers").exists() {
        let st = Command::new("mount").args(["-t", "cgroup2", "none", "/sys/fs/cgroup"]).status().map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("mount -t cgroup2 failed".into());
        }
    }
    std::fs::write(root.join("cgroup.subtree_control"), "+memory").map_err(|e| format!("enabling the memory controller: {e}"))?;
    let group = root.join("goom");
    let _ = std::fs::create_dir(&group);
    let limit: u64 = 32 << 20;
    std::fs::write(group.join("memory.max"), limit.to_string()).map_err(|e| format!("memory.max: {e}"))?;
    let _ = std::fs::write(group.join("memory.swap.max"), "0");
    let kills = || -> u64 { std::fs::read_to_string("/proc/vmstat").unwrap_or_default().lines().find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok()).unwrap_or(0) };
    let host = Host::start(ctx, &["memory"], "")?;
    let before = kills();
    let procs = group.join("cgroup.procs");
    let mut cmd = Command::new(ctx.dir.join("tracer-workload"));
    cmd.args(["--comm", "goomvictim", "alloc", "200"]).stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: only a write(2) to a file between fork and exec.
    unsafe {
        cmd.pre_exec(move || std::fs::write(&procs, std::process::id().to_string()));
    }
    let child = cmd.spawn().map_err(|e| e.to_string())?;
    let pid = child.id();
    let status = child.wait_with_output().map_err(|e| e.to_string())?.status;
    let after = kills();
    let events = std::fs::read_to_string(group.join("memory.events")).unwrap_or_default();
    let limit_hits: u64 = events.lines().find_map(|l| l.strip_prefix("max ")?.trim().parse().ok()).unwrap_or(0);
    let (lines, _) = host.stop()?;
    let _ = std::fs::remove_dir(&group);
    if status.signal() != Some(libc::SIGKILL) || after - before != 1 {
        return Err(format!("workload ended {status:?}; oom_kill {before} -> {after}"));
    }
    // At least 16 reclaim attempts before the OOM (MAX_RECLAIM_RETRIES),
    // at most one per limit hit the cgroup counted.
    let reclaim = rows_where(panel(&lines, "memory", "reclaim_processes")?, "pid", &Value::from(pid))?;
    let stalls = reclaim.first().and_then(|r| r["stalls"].as_u64()).unwrap_or(0);
    if stalls < 16 || stalls > limit_hits {
        return Err(format!("memcg reclaim stalls {stalls}, memory.events max {limit_hits}: {reclaim:?}"));
    }
    let records: Vec<&Value> = lines.iter().filter(|v| v["plugin"] == "memory" && v.get("panel").is_none()).collect();
    match records.as_slice() {
        [r] if r["pid"] == pid && r["cgroup_limit_bytes"] == limit => Ok(format!("one kill of pid {pid}, limit {limit}, comm {}; {stalls} reclaim stalls (limit hits {limit_hits})", r["comm"])),
        _ => Err(format!("records {records:?} for pid {pid}")),
    }
}

/// The memory tracer's kernel allocations: a workload holding 300 of 400
/// pipes (within the guest's fd limit), a byte written into each;
/// alloc_pipe_info's two allocations per pipe held, and a page per pipe
/// at the pipe's write function (6.1: pipe_write).
fn check_kernel_allocs(ctx: &Ctx) -> Result<String, String> {
    use std::io::Write;
    let host = Host::start(ctx, &["memory"], "comm = \"gkleak\"\nkernel_allocations = true\npage_allocations = true")?;
    // Output to a file: a line written into a pipe would take a page too.
    let out_path = std::env::temp_dir().join("gkleak.out");
    let mut w = Command::new(ctx.dir.join("tracer-workload"))
        .args(["--comm", "gkleak", "pipes", "400", "100", "1"])
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&out_path).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdin = w.stdin.take().unwrap();
    let t = Instant::now();
    let mut line = String::new();
    while !line.ends_with('\n') && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
        line = std::fs::read_to_string(&out_path).unwrap_or_default();
    }
    std::thread::sleep(Duration::from_millis(700));
    let (lines, _) = host.stop()?;
    let _ = stdin.write_all(b"done\n");
    let _ = w.wait();
    let rows = panel(&lines, "memory", "kernel_leaks")?["rows"].as_array().cloned().unwrap_or_default();
    let at = |f: &str| -> Vec<u64> { rows.iter().filter(|r| r["site"].as_str().is_some_and(|s| s.starts_with(f))).filter_map(|r| r["blocks"].as_u64()).collect() };
    let (held, pages) = (at("alloc_pipe_info+"), at("pipe_write+"));
    if line.trim() != "pipes 300" || held != [300, 300] || pages != [300] {
        return Err(format!("workload said {line:?}; alloc_pipe_info sites hold {held:?}, pipe_write pages {pages:?}: {rows:?}"));
    }
    Ok("alloc_pipe_info: 300 + 300 held for 300 pipes; pipe_write: 300 pages".into())
}

/// The http tracer on one attach mode, against busybox's httpd and wget
/// (a connection per request): 5 fetches of a file and one of a missing
/// path; both ends of each exchange seen with the status wget's exit says.
fn check_http(ctx: &Ctx, mode: &str, port: u16) -> Result<String, String> {
    let www = std::env::temp_dir().join("www");
    std::fs::create_dir_all(&www).map_err(|e| e.to_string())?;
    std::fs::write(www.join("hello.txt"), "hello, guest\n".repeat(50)).map_err(|e| e.to_string())?;
    let host = Host::start(ctx, &["http"], &format!("attach = \"{mode}\"\nports = [{port}]"))?;
    attached(&host.err(), "http", mode)?;
    let mut httpd = Command::new("/bin/busybox")
        .args(["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h", www.to_str().unwrap()])
        .spawn()
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut codes = Vec::new();
    for path in ["/hello.txt", "/hello.txt", "/hello.txt", "/missing", "/hello.txt", "/hello.txt"] {
        let st = Command::new("/bin/busybox").args(["wget", "-q", "-O", "/dev/null", &format!("http://127.0.0.1:{port}{path}")]).status().map_err(|e| e.to_string())?;
        codes.push((path, st.success()));
    }
    std::thread::sleep(Duration::from_millis(300));
    let (lines, _) = host.stop()?;
    let _ = httpd.kill();
    let _ = httpd.wait();
    let rows: Vec<(String, String, u64)> = lines
        .iter()
        .filter(|v| v["plugin"] == "http" && v.get("panel").is_none())
        .map(|r| (r["side"].as_str().unwrap_or("").to_string(), r["path"].as_str().unwrap_or("").to_string(), r["status"].as_u64().unwrap_or(0)))
        .collect();
    let want_ok = codes.iter().filter(|c| c.1 && c.0 == "/hello.txt").count();
    let count = |side: &str, path: &str, status: u64| rows.iter().filter(|r| r.0 == side && r.1 == path && r.2 == status).count();
    let got = [count("server", "/hello.txt", 200), count("client", "/hello.txt", 200), count("server", "/missing", 404), count("client", "/missing", 404)];
    if want_ok != 5 || got != [5, 5, 1, 1] {
        // What the plugin gave up, left unanswered or could not match says why.
        let summary = panel(&lines, "http", "summary").map(|p| p["counters"].to_string()).unwrap_or_else(|e| e);
        return Err(format!("wget: {codes:?}; traced (server 200, client 200, server 404, client 404) {got:?}: {rows:?}; summary {summary}"));
    }
    Ok("busybox httpd and wget: 5 x 200 and 1 x 404, both ends".into())
}

/// The memory tracer following one process's allocations (uprobes on its
/// libc): the workload's known blocks held at each of its three sites.
fn check_leaks(ctx: &Ctx) -> Result<String, String> {
    use std::io::Write;
    let mut w = Command::new(ctx.dir.join("tracer-workload"))
        .args(["leaks", "1000", "400"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let pid = w.id();
    let mut stdin = w.stdin.take().unwrap();
    let mut out = BufReader::new(w.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).map_err(|e| e.to_string())?;
    let host = Host::start(ctx, &["memory"], &format!("leaks_pid = {pid}"));
    let host = match host {
        Ok(h) => h,
        Err(e) => {
            let _ = w.kill();
            return Err(e);
        }
    };
    attached(&host.err(), "memory", "tracepoint, tp_btf, uprobe")?;
    let _ = stdin.write_all(b"go\n");
    line.clear();
    out.read_line(&mut line).map_err(|e| e.to_string())?;
    let want: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    std::thread::sleep(Duration::from_millis(700));
    let (lines, _) = host.stop()?;
    let _ = stdin.write_all(b"done\n");
    let _ = w.wait();
    let rows = panel(&lines, "memory", "leaks")?["rows"].as_array().cloned().unwrap_or_default();
    let mut got = Vec::new();
    for name in ["leak_site", "calloc_site", "realloc_site"] {
        let r = rows.iter().find(|r| r["stack"].as_str().and_then(|s| s.split(" ← ").next()).is_some_and(|f| f.contains(name))).ok_or(format!("no stack at {name}: {rows:?}"))?;
        got.push(r["blocks"].as_u64().unwrap_or(0));
        got.push(r["bytes"].as_u64().unwrap_or(0));
    }
    if got != want {
        return Err(format!("held (blocks, bytes) per site: traced {got:?}, the workload's {want:?}"));
    }
    Ok(format!("leak_site {} blocks {} bytes, calloc_site {}/{}, realloc_site {}/{}", got[0], got[1], got[2], got[3], got[4], got[5]))
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "/tracer".into()));
    let mut ctx = Ctx { dir, failed: 0 };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    say(&format!("GUEST-INFO kernel {}", kernel.trim()));

    // What each plugin would do here, for the README's table.
    let cfg = ctx.dir.join("list.toml");
    let _ = std::fs::write(&cfg, format!("plugins_dir = \"{}\"\n", ctx.dir.join("plugins").display()));
    let list = Command::new(ctx.dir.join("tracer-host")).args(["--config", cfg.to_str().unwrap(), "--list-plugins"]).output();
    match list {
        Ok(o) => {
            for l in String::from_utf8_lossy(&o.stdout).lines().chain(String::from_utf8_lossy(&o.stderr).lines()) {
                say(&format!("GUEST-INFO {l}"));
            }
        }
        Err(e) => say(&format!("GUEST-INFO --list-plugins: {e}")),
    }

    // All together, each on the best mode this kernel allows.
    let all = ["open", "syscall_latency", "sched", "tcp", "process", "block", "fileio", "pagecache", "faults", "memory", "http"];
    let r = Host::start(&ctx, &all, "").and_then(|h| h.stop()).map(|(_, err)| {
        err.lines().filter(|l| l.starts_with("tracer-host:") && l.contains(" running (")).collect::<Vec<_>>().join("; ")
    });
    ctx.check("all-attached", r);

    let modes = |var: &str, default: &str| std::env::var(var).unwrap_or_else(|_| default.into());
    for mode in modes("GUEST_OPEN_MODES", "fentry,kprobe,tracepoint").split(',').filter(|m| !m.is_empty()) {
        let r = check_open(&ctx, mode);
        ctx.check(&format!("open/{mode}"), r);
    }
    for mode in modes("GUEST_SYSCALL_MODES", "tp_btf,raw_tp,tracepoint").split(',').filter(|m| !m.is_empty()) {
        let r = check_syscalls(&ctx, mode);
        ctx.check(&format!("syscall_latency/{mode}"), r);
    }
    for mode in modes("GUEST_SCHED_MODES", "tp_btf,raw_tp,tracepoint").split(',').filter(|m| !m.is_empty()) {
        let r = check_sched(&ctx, mode);
        ctx.check(&format!("sched/{mode}"), r);
    }
    let r = check_cpu_bound(&ctx);
    ctx.check("sched/cpu-percent-bound", r);
    for (i, mode) in modes("GUEST_TCP_MODES", "tp_btf,tracepoint").split(',').filter(|m| !m.is_empty()).enumerate() {
        let r = check_tcp(&ctx, mode, 47400 + 10 * i as u16);
        ctx.check(&format!("tcp/{mode}"), r);
    }
    for mode in modes("GUEST_PROCESS_MODES", "tracepoint,tp_btf").split(',').filter(|m| !m.is_empty()) {
        let r = check_process(&ctx, mode);
        ctx.check(&format!("process/{mode}"), r);
    }
    for mode in modes("GUEST_BLOCK_MODES", "tp_btf,raw_tp").split(',').filter(|m| !m.is_empty()) {
        let r = check_block(&ctx, mode);
        ctx.check(&format!("block/{mode}"), r);
    }
    for mode in modes("GUEST_FILEIO_MODES", "tracepoint,raw_tp").split(',').filter(|m| !m.is_empty()) {
        let r = check_fileio(&ctx, mode);
        ctx.check(&format!("fileio/{mode}"), r);
    }
    for mode in modes("GUEST_PAGECACHE_MODES", "tp_btf,raw_tp").split(',').filter(|m| !m.is_empty()) {
        let r = check_pagecache(&ctx, mode);
        ctx.check(&format!("pagecache/{mode}"), r);
    }
    let r = check_faults(&ctx);
    ctx.check("faults/perf_event", r);
    let r = check_memory(&ctx);
    ctx.check("memory/tracepoint", r);
    let r = check_leaks(&ctx);
    ctx.check("memory/uprobe-leaks", r);
    let r = check_kernel_allocs(&ctx);
    ctx.check("memory/kernel-allocations", r);
    for (i, mode) in modes("GUEST_HTTP_MODES", "tracepoint,raw_tp").split(',').filter(|m| !m.is_empty()).enumerate() {
        let r = check_http(&ctx, mode, 47600 + 10 * i as u16);
        ctx.check(&format!("http/{mode}"), r);
    }
    say(&format!("GUEST-DONE failed={}", ctx.failed));
}
