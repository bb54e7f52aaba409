//! The terminal UI in a real terminal (tmux): it shows the open tracer's panels,
//! a filter typed with `f` reaches the kernel, and `q` or SIGTERM restore the
//! terminal and leave no link attached.

mod common;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(cmd: &str) -> Tmux {
        let session = format!("tracer-test-{}", std::process::id());
        let st = Command::new("tmux")
            .args(["new-session", "-d", "-s", &session, "-x", "120", "-y", "40", cmd])
            .status()
            .expect("tmux is needed for this test (cargo xtask setup installs it)");
        assert!(st.success());
        Tmux { session }
    }
    fn capture(&self) -> String {
        let o = Command::new("tmux").args(["capture-pane", "-p", "-t", &self.session]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    fn alternate_screen_on(&self) -> bool {
        let o = Command::new("tmux")
            .args(["display-message", "-p", "-t", &self.session, "#{alternate_on}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim() == "1"
    }
    fn keys(&self, keys: &[&str]) {
        Command::new("tmux").args(["send-keys", "-t", &self.session]).args(keys).status().unwrap();
    }
    fn literal(&self, text: &str) {
        Command::new("tmux").args(["send-keys", "-t", &self.session, "-l", text]).status().unwrap();
    }
    fn wait_for(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.capture();
            if screen.contains(text) {
                return screen;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "screen never showed {text:?}:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.session]).status();
    }
}

fn host_cmd(dir: &std::path::Path) -> String {
    format!(
        "{} --config {} --plugins-dir {}; echo EXITED rc=$?; sleep 60",
        host_bin().display(),
        default_config().display(),
        dir.display()
    )
}

#[test]
fn panels_show_keys_work_and_q_restores_the_terminal() {
    let _g = serial();
    assert_root();
    let all: Vec<_> = ["open", "syscall_latency", "sched", "tcp"].iter().map(|p| staged_plugin(p)).collect();
    let dir = plugin_dir(&all);
    let t = Tmux::start(&host_cmd(dir.path()));
    t.wait_for("open · Recent opens");
    let screen = t.wait_for("[tracepoint]");
    // The default config's screen: one panel of each tracer.
    for title in ["syscall_latency · Syscalls by total time", "sched · Processes (last interval)", "tcp · Closed connections"] {
        assert!(screen.contains(title), "{screen}");
    }
    for status in ["syscall_latency", "sched", "tcp"] {
        assert!(screen.contains(&format!(" {status} ")), "status line names {status}:\n{screen}");
    }
    assert!(t.alternate_screen_on());

    t.keys(&["?"]);
    t.wait_for("show or hide this help");
    t.keys(&["?"]);

    // A kernel filter set from the UI: only `cat` from now on. (tmux itself
    // opens files all the time; the filter also keeps it off the screen.)
    t.keys(&["f"]);
    t.literal("comm=cat");
    t.keys(&["Enter"]);
    t.wait_for("open: filter set: comm=cat");
    t.keys(&["r"]);
    let work = tempfile::tempdir().unwrap();
    let other = work.path().join("tui-not-cat");
    let _ = std::fs::read(&other);
    let by_cat = work.path().join("tui-by-cat");
    let _ = Command::new("cat").arg(&by_cat).stderr(std::process::Stdio::null()).status();
    let screen = t.wait_for(by_cat.to_str().unwrap());
    assert!(screen.contains("ENOENT"), "{screen}");
    assert!(!screen.contains(other.to_str().unwrap()), "filtered out in the kernel:\n{screen}");

    assert!(!links_of_programs("open_tp_").is_empty());
    assert!(!links_of_programs("sched_").is_empty());
    t.keys(&["q"]);
    let screen = t.wait_for("EXITED rc=0");
    assert!(!t.alternate_screen_on(), "terminal left in the alternate screen:\n{screen}");
    for prefix in ["open_tp_", "sc_", "sched_", "tcp_"] {
        assert_eq!(links_of_programs(prefix), Vec::<u32>::new(), "{prefix}* left attached");
    }
}

#[test]
fn sigterm_in_the_tui_restores_the_terminal() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&[open_plugin()]);
    let t = Tmux::start(&host_cmd(dir.path()));
    t.wait_for("[tracepoint]");
    // The newest tracer-host is ours (tests in this binary run one at a time).
    let pid = Command::new("pgrep").args(["-n", "-x", "tracer-host"]).output().unwrap();
    let pid: i32 = String::from_utf8_lossy(&pid.stdout).lines().next().expect("host pid").trim().parse().unwrap();
    unsafe { libc::kill(pid, libc::SIGTERM) };
    t.wait_for("EXITED rc=0");
    assert!(!t.alternate_screen_on());
    assert_eq!(links_of_programs("open_tp_"), Vec::<u32>::new());
}
