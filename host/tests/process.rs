//! The process tracer against what the parent's wait4(2) and the kernel's
//! /proc say: children exec made-up paths with known arguments and end with
//! exit code 7, SIGKILL and SIGSEGV; their records must agree with waitpid's
//! status, rusage (CPU time, peak RSS) and /proc/PID/stat (nice, priority,
//! policy) read while they ran.

mod common;
use common::*;
use std::fs;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

/// Wait for `pid` as its parent: (raw status, user + system CPU ns, maxrss KiB).
fn wait4(pid: u32) -> (i32, u64, u64) {
    let mut status = 0;
    // SAFETY: plain wait4 with valid pointers; rusage is plain data.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut ru) };
    assert_eq!(r, pid as i32, "wait4: {}", std::io::Error::last_os_error());
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    (status, tv(ru.ru_utime) + tv(ru.ru_stime), ru.ru_maxrss as u64)
}

/// Fields 18 (priority), 19 (nice) and 41 (policy) of /proc/PID/stat.
fn proc_sched(pid: u32) -> (i64, i64, u64) {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    (f[15].parse().unwrap(), f[16].parse().unwrap(), f[38].parse().unwrap())
}

/// A made-up program name: a symlink to `target` in `dir`.
fn program(dir: &std::path::Path, name: &str, target: &str) -> String {
    let p = dir.join(name);
    std::os::unix::fs::symlink(target, &p).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn execs_and_exits_agree_with_waitpid_and_proc() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&[staged_plugin("process")]);
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("test.toml");
    fs::write(&cfg, "plugins_dir = \"unused\"\nenabled = [\"process\"]\n").unwrap();
    let tag = std::process::id() % 10000;
    let mut host = Host::spawn(
        &["--config", cfg.to_str().unwrap(), "--plugins-dir", dir.path().to_str().unwrap(), "--headless", "--format", "json"],
        &[],
    );
    host.wait_for_stderr("tracer-host: process running");

    // exit 7, with arguments to find again (one with a space in it).
    let seven = program(work.path(), &format!("trc-seven-{tag}"), "/bin/sh");
    let c = Command::new(&seven).args(["-c", "exit 7", "arg-one", "two words"]).spawn().unwrap();
    let seven_pid = c.id();
    let seven_wait = wait4(seven_pid);

    // CPU time and peak RSS: a child that spins 1 s (no children of its own,
    // so wait4's maxrss is its own).
    let spin = Command::new(workload_bin()).args(["--comm", &format!("trc-spin-{tag}"), "spin", "1"]).stdout(std::process::Stdio::null()).spawn().unwrap();
    let spin_pid = spin.id();
    let spin_wait = wait4(spin_pid);

    // SIGKILL, at nice 5, read from /proc while it runs.
    let sleeper = program(work.path(), &format!("trc-kill-{tag}"), "/bin/sleep");
    let start = Instant::now();
    // SAFETY: setpriority is async-signal-safe.
    let k = unsafe { Command::new(&sleeper).arg("30").pre_exec(|| { libc::setpriority(libc::PRIO_PROCESS, 0, 5); Ok(()) }) }.spawn().unwrap();
    let kill_pid = k.id();
    std::thread::sleep(Duration::from_millis(300));
    let sched = proc_sched(kill_pid);
    unsafe { libc::kill(kill_pid as i32, libc::SIGKILL) };
    let kill_wait = wait4(kill_pid);
    let kill_elapsed = start.elapsed().as_nanos() as u64;

    // SIGSEGV, with core dumps off (RLIMIT_CORE 0): whatever waitpid says.
    let segv = program(work.path(), &format!("trc-segv-{tag}"), "/bin/sh");
    let s = unsafe {
        Command::new(&segv).args(["-c", "kill -SEGV $$"]).pre_exec(|| {
            let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            Ok(())
        })
    }
    .spawn()
    .unwrap();
    let segv_pid = s.id();
    let segv_wait = wait4(segv_pid);

    // An exec that fails: no such file.
    let missing = work.path().join(format!("trc-missing-{tag}"));
    assert!(Command::new(&missing).spawn().is_err());

    std::thread::sleep(Duration::from_millis(600));
    host.signal(libc::SIGTERM);
    let (code, out, stderr) = host.finish();
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let run = JsonRun { lines, stderr };
    let records = run.records("process");
    let exec_of = |pid: u32| records.iter().find(|r| r["pid"] == pid && r.get("filename").is_some()).unwrap_or_else(|| panic!("no exec record of {pid}: {records:?}"));
    let exit_of = |pid: u32| records.iter().find(|r| r["pid"] == pid && r.get("status").is_some()).unwrap_or_else(|| panic!("no exit record of {pid}: {records:?}"));

    // The exec: path, arguments, result, who.
    let e = exec_of(seven_pid);
    assert_eq!(e["filename"], seven.as_str(), "{e}");
    assert_eq!(e["args"], format!("{seven} -c exit 7 arg-one two words"), "{e}");
    assert_eq!((e["ret"].as_i64(), e["ppid"].as_u64(), e["uid"].as_u64()), (Some(0), Some(std::process::id() as u64), Some(0)), "{e}");
    assert_eq!(e["comm"], format!("trc-seven-{tag}").chars().take(15).collect::<String>(), "{e}");

    // Exit statuses exactly as waitpid decoded them.
    let status = |(st, _, _): (i32, u64, u64)| -> String {
        if libc::WIFEXITED(st) {
            format!("exit {}", libc::WEXITSTATUS(st))
        } else {
            let name = match libc::WTERMSIG(st) { 9 => "SIGKILL", 11 => "SIGSEGV", n => panic!("signal {n}") };
            if libc::WCOREDUMP(st) { format!("{name} (core dumped)") } else { name.to_string() }
        }
    };
    assert_eq!(status(seven_wait), "exit 7");
    assert_eq!(exit_of(seven_pid)["status"], status(seven_wait));
    assert_eq!(exit_of(kill_pid)["status"], status(kill_wait));
    assert_eq!(exit_of(kill_pid)["status"], "SIGKILL");
    assert_eq!(exit_of(segv_pid)["status"], status(segv_wait));
    assert!(exit_of(segv_pid)["status"].as_str().unwrap().starts_with("SIGSEGV"));

    // CPU time: wait4's user + system is the scheduler's runtime at reap; ours
    // is taken at exit, a few µs earlier. Tolerance 2 ms + 2 % (rusage is in µs,
    // and the exit path after the tracepoint runs on).
    let x = exit_of(spin_pid);
    let cpu = x["cpu_ns"].as_u64().unwrap();
    assert!(spin_wait.1 >= 900_000_000, "the spinner used its second: {}", spin_wait.1);
    assert!(cpu.abs_diff(spin_wait.1) <= 2_000_000 + spin_wait.1 / 50, "cpu {cpu} ns vs wait4 {} ns", spin_wait.1);
    // Peak RSS: the same kernel figure (pages) wait4 reports in KiB: exact.
    assert_eq!(x["maxrss_bytes"].as_u64(), Some(spin_wait.2 * 1024), "{x}");

    // Lifetime: at least the 300 ms it slept, at most spawn to reap.
    let k = exit_of(kill_pid);
    let life = k["lifetime_ns"].as_u64().unwrap();
    assert!((300_000_000..=kill_elapsed).contains(&life), "lifetime {life} ns, parent saw {kill_elapsed} ns");
    // Scheduling at exit, as /proc showed it while it ran.
    assert_eq!((k["prio"].as_i64(), k["nice"].as_i64(), k["policy"].as_u64()), (Some(sched.0), Some(sched.1), Some(sched.2)), "{k}");
    assert_eq!(sched.1, 5);

    // The failed exec: its path and ENOENT.
    let failed = records.iter().find(|r| r["filename"] == missing.to_str().unwrap()).unwrap_or_else(|| panic!("no record of the failed exec"));
    assert_eq!(failed["ret"].as_i64(), Some(-libc::ENOENT as i64), "{failed}");

    // Panels agree with the records.
    let by = run.rows_where("process", "by_status", "status", serde_json::json!("exit 7"));
    assert!(!by.is_empty() && by[0]["exits"].as_u64() >= Some(1));
    assert!(!run.rows_where("process", "short_lived", "pid", serde_json::json!(seven_pid)).is_empty());
    assert!(run.rows_where("process", "short_lived", "pid", serde_json::json!(spin_pid)).is_empty(), "lived over 1 s");
}
