//! As root: the memory tracer's OOM kill records against the kernel. A
//! workload of a made-up name allocates 400 MiB inside a memory cgroup the
//! test makes with a 40 MiB limit (cgroup v1's memory controller, else v2's
//! memory.max); the OOM killer must kill it, and the tracer must say so once,
//! with its pid and name, its anonymous RSS near the limit and the limit,
//! while /proc/vmstat's oom_kill grows by exactly one.

mod common;
use common::*;
use serde_json::Value;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A memory cgroup with a limit, removed when dropped.
struct Memcg {
    dir: PathBuf,
    procs: PathBuf,
}

impl Memcg {
    fn new(limit: u64) -> Memcg {
        let name = format!("tracer-oom-test-{}", std::process::id());
        let v1 = Path::new("/sys/fs/cgroup/memory");
        let (dir, limit_file) = if v1.join("memory.limit_in_bytes").exists() {
            (v1.join(&name), "memory.limit_in_bytes")
        } else {
            let v2 = Path::new("/sys/fs/cgroup");
            let controllers = std::fs::read_to_string(v2.join("cgroup.controllers")).unwrap_or_default();
            assert!(controllers.split_whitespace().any(|c| c == "memory"), "no memory cgroup controller here (v1 at /sys/fs/cgroup/memory or v2's memory in /sys/fs/cgroup/cgroup.controllers)");
            (v2.join(&name), "memory.max")
        };
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        std::fs::write(dir.join(limit_file), limit.to_string()).unwrap();
        // No swap to escape into (v1 needs memsw accounting for that; v2 has memory.swap.max).
        let _ = std::fs::write(dir.join("memory.swap.max"), "0");
        let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), limit.to_string());
        Memcg { procs: dir.join("cgroup.procs"), dir }
    }
}

impl Memcg {
    /// How many times a charge hit the limit (each one a reclaim attempt
    /// when the allocation may wait): v1 memory.failcnt, v2 memory.events max.
    fn limit_hits(&self) -> u64 {
        if let Ok(v) = std::fs::read_to_string(self.dir.join("memory.failcnt")) {
            return v.trim().parse().unwrap();
        }
        let events = std::fs::read_to_string(self.dir.join("memory.events")).unwrap();
        events.lines().find_map(|l| l.strip_prefix("max ")).map(|v| v.trim().parse().unwrap()).unwrap()
    }
}

impl Drop for Memcg {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn oom_kills() -> u64 {
    std::fs::read_to_string("/proc/vmstat").unwrap().lines().find_map(|l| l.strip_prefix("oom_kill ")).map(|v| v.trim().parse().unwrap()).expect("oom_kill in /proc/vmstat")
}

#[test]
fn an_oom_kill_in_a_memory_cgroup_is_recorded_once_with_its_victim() {
    let _g = serial();
    assert_root();
    let limit = 40u64 << 20;
    let cg = Memcg::new(limit);
    let dir = plugin_dir(&[staged_plugin("memory")]);
    let mut host = Host::spawn(&["--plugins-dir", dir.path().to_str().unwrap(), "--plugin", "memory", "--headless", "--format", "json"], &[]);
    host.wait_for_stderr("tracer-host: memory running");
    let before = oom_kills();
    let procs = cg.procs.clone();
    let mut cmd = Command::new(workload_bin());
    cmd.args(["--comm", "oomvictimw", "alloc", "400"]).stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: only a write(2) to a file between fork and exec.
    unsafe {
        cmd.pre_exec(move || std::fs::write(&procs, std::process::id().to_string()));
    }
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let status = child.wait_with_output().unwrap().status;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "the workload was OOM-killed: {status:?}");
    let after = oom_kills();
    let limit_hits = cg.limit_hits();
    std::thread::sleep(Duration::from_millis(600));
    host.signal(libc::SIGTERM);
    let (code, out, err) = host.finish();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(after - before, 1, "/proc/vmstat oom_kill: one kill");
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let records: Vec<&Value> = lines.iter().filter(|v| v["plugin"] == "memory" && v.get("panel").is_none()).collect();
    assert_eq!(records.len(), 1, "one record per kill: {records:?}");
    let r = records[0];
    eprintln!("record: {r}");
    assert_eq!(r["pid"], pid, "{r}");
    assert_eq!(r["comm"], "oomvictimw", "{r}");
    assert_eq!(r["cgroup_limit_bytes"], limit, "the limit it hit: {r}");
    // The victim held about the limit in anonymous memory when it was
    // chosen: between 3/4 of it (the rest is page tables, stack, files)
    // and the limit.
    let anon = r["anon_rss_bytes"].as_u64().unwrap();
    assert!(anon >= limit * 3 / 4 && anon <= limit, "anon_rss {anon}: {r}");
    assert_eq!(r["killer_pid"], pid, "a cgroup OOM is raised by the allocating task itself: {r}");
    let summary = lines.iter().find(|v| v["plugin"] == "memory" && v["panel"] == "summary").unwrap();
    assert_eq!(summary["counters"][0]["value"], 1, "{summary}");
    // Before the kill, the victim reclaimed in its cgroup each time it hit
    // the limit, and the kernel declares an OOM only after 16 reclaim
    // attempts that freed nothing (MAX_RECLAIM_RETRIES in mm/memcontrol.c):
    // at least 16 memcg reclaim stalls, and at most the cgroup's own count
    // of limit hits where it keeps one (v2 memory.events max; v1's failcnt
    // stays 0 on this kernel). Measured here: 35.
    let reclaim = lines.iter().find(|v| v["plugin"] == "memory" && v["panel"] == "reclaim_processes").unwrap();
    let row = reclaim["rows"].as_array().unwrap().iter().find(|r| r["pid"] == pid).unwrap_or_else(|| panic!("no reclaim row for {pid}: {reclaim}"));
    eprintln!("reclaim: {row}; the cgroup's limit hits: {limit_hits}");
    let stalls = row["stalls"].as_u64().unwrap();
    assert!(stalls >= 16, "stalls {stalls}: {row}");
    assert!(limit_hits == 0 || stalls <= limit_hits, "stalls {stalls}, limit hits {limit_hits}: {row}");
}

/// A workload holds known allocations at known functions: 1,000 blocks
/// malloced at `leak_site` (100-149 bytes each) of which it freed the first
/// 400, 10 callocs of 100 bytes at `calloc_site` of which 5 were realloced
/// to 300 bytes at `realloc_site`. Followed by pid (uprobes on its own libc),
/// the tracer must show each site with exactly what the workload says it
/// holds, named by the function in its stack.
#[test]
fn a_process_s_held_allocations_are_what_it_malloced_and_did_not_free() {
    use std::io::{BufRead, BufReader, Write};
    let _g = serial();
    assert_root();
    let mut w = Command::new(workload_bin()).args(["--comm", "leakyw", "leaks", "1000", "400"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let pid = w.id();
    let mut stdin = w.stdin.take().unwrap();
    let mut out = BufReader::new(w.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("leaks.toml");
    std::fs::write(&cfg, format!("plugins_dir = \"unused\"\nenabled = [\"memory\"]\n[plugins.memory]\nleaks_pid = {pid}\n")).unwrap();
    let dir = plugin_dir(&[staged_plugin("memory")]);
    let mut host = Host::spawn(&["--config", cfg.to_str().unwrap(), "--plugins-dir", dir.path().to_str().unwrap(), "--headless", "--format", "json"], &[]);
    host.wait_for_stderr("tracer-host: memory running");
    stdin.write_all(b"go\n").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    let f: Vec<u64> = line.split_whitespace().skip(1).map(|v| v.parse().unwrap()).collect();
    assert_eq!(f.len(), 6, "{line}");
    // Two refreshes, the workload still there (its stacks are named from its maps).
    std::thread::sleep(Duration::from_millis(700));
    host.signal(libc::SIGTERM);
    let (code, text, err) = host.finish();
    stdin.write_all(b"done\n").unwrap();
    let _ = w.wait();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("memory running (tracepoint, tp_btf, uprobe)"), "the uprobes attached: {err}");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let panel = lines.iter().rev().find(|v| v["plugin"] == "memory" && v["panel"] == "leaks").unwrap_or_else(|| panic!("no leaks panel: {err}"));
    let rows = panel["rows"].as_array().unwrap();
    let site = |name: &str| -> &Value {
        let found: Vec<&Value> = rows.iter().filter(|r| r["stack"].as_str().unwrap().split(" ← ").next().is_some_and(|f| f.contains(name))).collect();
        // A uretprobe sees the allocator's caller as the first frame.
        assert_eq!(found.len(), 1, "one stack whose first frame is {name}: {rows:#?}");
        found[0]
    };
    for (name, blocks, bytes) in [("leak_site", f[0], f[1]), ("calloc_site", f[2], f[3]), ("realloc_site", f[4], f[5])] {
        let r = site(name);
        eprintln!("{name}: {r}");
        assert_eq!((r["blocks"].as_u64(), r["bytes"].as_u64()), (Some(blocks), Some(bytes)), "{name}: {r}");
        assert!(r["oldest_ns"].as_u64().unwrap() > 0, "{r}");
    }
}

/// Pages of data the pipes `inodes` of process `pid` hold, as the kernel
/// counts their bytes (FIONREAD on each, opened through /proc/PID/fd).
fn held_pipe_pages(pid: u32, inodes: &std::collections::HashSet<&String>, page: u64) -> u64 {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let mut seen = std::collections::HashSet::new();
    let mut pages = 0;
    for e in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let path = e.unwrap().path();
        let Ok(link) = std::fs::read_link(&path) else { continue };
        let link = link.to_string_lossy().into_owned();
        if !inodes.contains(&link) || !seen.insert(link) {
            continue;
        }
        let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&path).unwrap();
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes an int.
        assert_eq!(unsafe { libc::ioctl(f.as_raw_fd(), libc::FIONREAD, &mut n) }, 0);
        pages += (n as u64).div_ceil(page);
    }
    pages
}

/// With kernel_allocations and page_allocations, a workload of a made-up
/// name makes 1,000 pipes, writes a byte into each and closes 400 (the
/// kernel frees those), holding 600. The kernel allocations its pipe(2)
/// calls made and nobody freed, by call site, must be what it holds as the
/// kernel's own fd table shows it (/proc/PID/fd): a pipe_inode_info and a
/// buffer array per pipe at alloc_pipe_info, an inode per pipe (distinct
/// pipe inodes in the fd table), a struct file per end (pipe fds in the fd
/// table); and the pages its writes took at the pipe's write function, one
/// per page of data each held pipe holds as the kernel counts it
/// (FIONREAD on the pipe, opened through /proc/PID/fd).
#[test]
fn kernel_allocations_held_by_call_site_are_the_pipes_and_pages_a_process_holds() {
    use std::io::Write;
    let _g = serial();
    assert_root();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("kmem.toml");
    std::fs::write(&cfg, "plugins_dir = \"unused\"\nenabled = [\"memory\"]\n[plugins.memory]\ncomm = \"kleakw\"\nkernel_allocations = true\npage_allocations = true\n").unwrap();
    let dir = plugin_dir(&[staged_plugin("memory")]);
    let mut host = Host::spawn(&["--config", cfg.to_str().unwrap(), "--plugins-dir", dir.path().to_str().unwrap(), "--headless", "--format", "json"], &[]);
    host.wait_for_stderr("tracer-host: memory running");
    let spawned = std::time::Instant::now();
    // Its output goes to a file, not a pipe: a line written into a pipe
    // takes a page there too (kept by the pipe for its next write once read).
    let out_path = cfg_dir.path().join("out");
    let mut w = Command::new(workload_bin())
        .args(["--comm", "kleakw", "pipes", "1000", "400", "1"])
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .spawn()
        .unwrap();
    let pid = w.id();
    let mut stdin = w.stdin.take().unwrap();
    let said = std::time::Instant::now();
    while !std::fs::read_to_string(&out_path).unwrap().contains('\n') {
        assert!(said.elapsed() < Duration::from_secs(30), "the workload said nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(std::fs::read_to_string(&out_path).unwrap().trim(), "pipes 600");
    let made = std::time::Instant::now();
    // The kernel's own view of what it holds: the pipes in its fd table,
    // less those it inherited (its stdin and stdout, cargo's jobserver):
    // pipes this test process has in its own fd table too.
    let pipes_of = |pid: &str| -> Vec<String> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| p.starts_with("pipe:"))
            .collect()
    };
    let inherited = pipes_of("self");
    let links: Vec<String> = pipes_of(&pid.to_string()).into_iter().filter(|p| !inherited.contains(p)).collect();
    let inodes: std::collections::HashSet<&String> = links.iter().collect();
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    let pages_held = held_pipe_pages(pid, &inodes, page);
    std::thread::sleep(Duration::from_millis(700));
    let stopping = std::time::Instant::now();
    host.signal(libc::SIGTERM);
    let (code, text, err) = host.finish();
    let stopped = std::time::Instant::now();
    stdin.write_all(b"done\n").unwrap();
    let _ = w.wait();
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let panel = lines.iter().rev().find(|v| v["plugin"] == "memory" && v["panel"] == "kernel_leaks").unwrap();
    let rows = panel["rows"].as_array().unwrap();
    let at = |f: &str| -> Vec<u64> { rows.iter().filter(|r| r["site"].as_str().unwrap().starts_with(&format!("{f}+"))).map(|r| r["blocks"].as_u64().unwrap()).collect() };
    eprintln!("fd table: {} pipe fds, {} pipe inodes; alloc_pipe_info {:?}, alloc_inode {:?}, alloc_empty_file {:?}", links.len(), inodes.len(), at("alloc_pipe_info"), at("alloc_inode"), at("alloc_empty_file"));
    assert_eq!((links.len(), inodes.len()), (1200, 600), "what the workload says it holds, as its fd table shows");
    assert_eq!(at("alloc_pipe_info"), vec![inodes.len() as u64; 2], "two allocations per pipe held: {rows:#?}");
    assert_eq!(at("alloc_inode").iter().sum::<u64>(), inodes.len() as u64, "{rows:#?}");
    assert_eq!(at("alloc_empty_file").iter().sum::<u64>(), links.len() as u64, "{rows:#?}");
    let pipe_pages: Vec<&Value> = rows.iter().filter(|r| r["allocator"] == "pages" && ["anon_pipe_write+", "pipe_write+"].iter().any(|f| r["site"].as_str().unwrap().starts_with(f))).collect();
    eprintln!("pages held by the pipes (FIONREAD): {pages_held}; at the pipe write site: {pipe_pages:?}");
    assert_eq!(pages_held, inodes.len() as u64, "a byte in each pipe held, a page each");
    assert_eq!(pipe_pages.iter().map(|r| r["blocks"].as_u64().unwrap()).sum::<u64>(), pages_held, "{rows:#?}");
    assert_eq!(pipe_pages.iter().map(|r| r["bytes"].as_u64().unwrap()).sum::<u64>(), pages_held * page, "{rows:#?}");
    assert!(rows.iter().all(|r| r["holding_for_ns"].as_u64().unwrap() > 0));
    // The oldest block of each pipe site was made after the workload
    // started and before it said so; read between SIGTERM and the host's
    // exit: its age lies between those spans, by the test's own clock.
    let (lo, hi) = ((stopping - made).as_nanos() as u64, (stopped - spawned).as_nanos() as u64);
    for r in rows.iter().filter(|r| r["site"].as_str().unwrap().starts_with("alloc_pipe_info+")) {
        let age = r["oldest_ns"].as_u64().unwrap_or_else(|| panic!("no oldest age: {r}"));
        assert!((lo..=hi).contains(&age), "oldest {age} ns not within {lo}..={hi}: {r}");
    }
}
