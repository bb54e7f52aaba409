//! Helpers for the host's integration tests. These run the real `tracer-host`
//! binary as root against the real kernel; `cargo xtask test` builds and stages
//! the plugins and fixtures they use. Nothing here skips: a missing prerequisite
//! fails the test with what to run.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Tests in one binary share the kernel's link list: run them one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join("target"))
}

pub fn host_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tracer-host"))
}

fn must_exist(p: PathBuf) -> PathBuf {
    assert!(p.exists(), "{} is missing: run the tests with `cargo xtask test`", p.display());
    p
}

pub fn open_plugin() -> PathBuf {
    must_exist(target().join("debug/plugins/libtracer_open.so"))
}
pub fn misbehaving_plugin() -> PathBuf {
    must_exist(target().join("debug/libtracer_fixture_misbehaving.so"))
}
pub fn incompatible_plugin() -> PathBuf {
    must_exist(target().join("fixtures/debug/libtracer_fixture_incompatible.so"))
}

pub fn default_config() -> PathBuf {
    repo().join("configs/default.toml")
}

pub fn assert_root() {
    assert_eq!(unsafe { libc::geteuid() }, 0, "these tests load BPF programs and must run as root");
}

/// A fresh plugins directory (mode 0755) holding copies of `files`.
pub fn plugin_dir(files: &[PathBuf]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for f in files {
        let dst = d.path().join(f.file_name().unwrap());
        fs::copy(f, &dst).unwrap();
        fs::set_permissions(&dst, fs::Permissions::from_mode(0o644)).unwrap();
    }
    d
}

/// IDs of BPF links whose program's name starts with `prefix` (names are cut
/// at 15 characters by the kernel).
pub fn links_of_programs(prefix: &str) -> Vec<u32> {
    let progs: Vec<(u32, String)> = libbpf_rs::query::ProgInfoIter::default().map(|p| (p.id, p.name.to_string_lossy().into_owned())).collect();
    libbpf_rs::query::LinkInfoIter::default().filter(|l| progs.iter().any(|(id, name)| *id == l.prog_id && name.starts_with(prefix))).map(|l| l.id).collect()
}

/// A running tracer-host with its stderr collected as it comes.
pub struct Host {
    pub child: Child,
    stderr: Arc<Mutex<String>>,
    stdout_reader: Option<std::thread::JoinHandle<String>>,
}

impl Host {
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Host {
        let mut cmd = Command::new(host_bin());
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Host::from_command(cmd)
    }

    /// A host started by `cmd` (another binary, or through setpriv).
    pub fn from_command(mut cmd: Command) -> Host {
        assert_root();
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting tracer-host");
        let stderr = Arc::new(Mutex::new(String::new()));
        let err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut out_pipe = child.stdout.take().unwrap();
        let stdout_reader = Some(std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out_pipe.read_to_string(&mut s);
            s
        }));
        Host { child, stderr, stdout_reader }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait until stderr contains `text` (or the host exits, or 30 s pass).
    pub fn wait_for_stderr(&mut self, text: &str) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if self.stderr().contains(text) {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("tracer-host exited ({st}) before printing {text:?}; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("tracer-host did not print {text:?} within 30 s; stderr:\n{}", self.stderr());
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Wait for exit (at most 30 s); returns (exit code, stdout, stderr).
    pub fn finish(mut self) -> (Option<i32>, String, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!("tracer-host did not exit within 30 s; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = self.stdout_reader.take().unwrap().join().unwrap();
        // Let the stderr thread see EOF.
        std::thread::sleep(Duration::from_millis(50));
        (status.code(), out, self.stderr())
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run tracer-host to completion (for --list-plugins and quick failures).
pub fn run_host(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    Host::spawn(args, env).finish()
}

/// tracer-host running only the open plugin from `dir`, headless, attached.
pub fn start_open_headless(dir: &Path, format: &str) -> Host {
    let cfg = default_config();
    let mut host = Host::spawn(&["--config", cfg.to_str().unwrap(), "--plugins-dir", dir.to_str().unwrap(), "--plugin", "open", "--headless", "--format", format], &[]);
    host.wait_for_stderr("tracer-host: open running (tracepoint)");
    host
}

pub fn workload_bin() -> PathBuf {
    must_exist(target().join("debug/tracer-workload"))
}

/// Every tracer the repository ships, as the default config enables them.
pub const ALL_TRACERS: [&str; 11] = ["open", "syscall_latency", "sched", "tcp", "process", "block", "fileio", "pagecache", "faults", "memory", "http"];

pub fn staged_plugin(name: &str) -> PathBuf {
    must_exist(target().join(format!("debug/plugins/libtracer_{name}.so")))
}

/// What a headless JSON run printed: records and final panels.
pub struct JsonRun {
    pub lines: Vec<serde_json::Value>,
    pub stderr: String,
}

impl JsonRun {
    /// The final contents of panel `plugin.id`.
    pub fn panel(&self, plugin: &str, id: &str) -> &serde_json::Value {
        self.lines.iter().find(|v| v["plugin"] == plugin && v["panel"] == id).unwrap_or_else(|| panic!("no panel {plugin}.{id}; stderr:\n{}", self.stderr))
    }

    /// Rows of a table panel whose column keyed `key` equals `value` (rows
    /// are objects keyed by each column's JSON key, e.g. `wait_ns`).
    pub fn rows_where(&self, plugin: &str, id: &str, key: &str, value: serde_json::Value) -> Vec<serde_json::Value> {
        let p = self.panel(plugin, id);
        assert!(p["columns"].as_array().unwrap().iter().any(|c| c["key"] == key), "{plugin}.{id} has no column keyed {key}: {p}");
        p["rows"].as_array().unwrap().iter().filter(|r| r[key] == value).cloned().collect()
    }

    pub fn records(&self, plugin: &str) -> Vec<&serde_json::Value> {
        self.lines.iter().filter(|v| v["plugin"] == plugin && v.get("panel").is_none()).collect()
    }
}

/// Run `plugin` headless (JSON) with `settings` (TOML lines for its table), run
/// each workload (args to tracer-workload) to completion, then stop the host.
/// Returns the output and, per workload, its pid and what it printed.
pub fn run_with_workloads(plugin: &str, settings: &str, workloads: &[&[&str]]) -> (JsonRun, Vec<(u32, String)>) {
    let dir = plugin_dir(&[staged_plugin(plugin)]);
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("test.toml");
    fs::write(&cfg, format!("plugins_dir = \"unused\"\nenabled = [\"{plugin}\"]\n[plugins.{plugin}]\n{settings}\n")).unwrap();
    let mut host = Host::spawn(&["--config", cfg.to_str().unwrap(), "--plugins-dir", dir.path().to_str().unwrap(), "--headless", "--format", "json"], &[]);
    host.wait_for_stderr(&format!("tracer-host: {plugin} running"));
    let mut pids = Vec::new();
    for w in workloads {
        let c = Command::new(workload_bin()).args(*w).stdout(Stdio::piped()).spawn().unwrap();
        let pid = c.id();
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success() || w.first() == Some(&"exit"), "workload {w:?} failed");
        pids.push((pid, String::from_utf8_lossy(&out.stdout).into_owned()));
    }
    // Two refreshes (4 Hz) so the maps are read after the work is done.
    std::thread::sleep(Duration::from_millis(600));
    host.signal(libc::SIGTERM);
    let (code, out, stderr) = host.finish();
    assert_eq!(code, Some(0), "stderr:\n{stderr}");
    let lines = out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    (JsonRun { lines, stderr }, pids)
}
