//! Diagnostics go to stderr (or --log FILE), never into the data stream. While the
//! TUI owns the terminal they are kept in memory and shown in the status line,
//! then printed once the terminal is restored.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tracing_subscriber::{fmt::MakeWriter, EnvFilter};

/// Lines logged while the TUI runs.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<String>>>);

impl Captured {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub struct CapturedWriter(Captured);

impl Write for CapturedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut v = (self.0).0.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() >= 1000 {
            v.remove(0);
        }
        v.push(String::from_utf8_lossy(buf).trim_end().to_string());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = CapturedWriter;
    fn make_writer(&'a self) -> Self::Writer {
        CapturedWriter(self.clone())
    }
}

/// stderr for log lines, where a failed write is dropped: tracing-subscriber
/// reports a failing writer with `eprintln!`, which panics when stderr itself
/// is what fails (a closed pipe, /dev/full).
pub struct LossyStderr;

impl Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

fn filter() -> EnvFilter {
    // libbpf's info chatter is for --log / RUST_LOG=debug, not for every run.
    EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("warn,libbpf=error"))
}

/// Log to `file`, or capture (TUI), or stderr.
pub fn init(file: Option<&Path>, capture: bool) -> anyhow::Result<Option<Captured>> {
    let builder = tracing_subscriber::fmt().with_env_filter(filter()).with_target(false).without_time();
    if let Some(path) = file {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        builder.with_ansi(false).with_writer(Mutex::new(f)).init();
        Ok(None)
    } else if capture {
        let c = Captured::default();
        builder.with_ansi(false).with_writer(c.clone()).init();
        Ok(Some(c))
    } else {
        use std::io::IsTerminal;
        builder.with_ansi(std::io::stderr().is_terminal()).with_writer(|| LossyStderr).init();
        Ok(None)
    }
}
