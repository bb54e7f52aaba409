//! While the TUI owns the terminal, nothing may write to it but the TUI: a
//! line from libbpf, a plugin's own `eprintln!` or a C library would be drawn
//! over the screen and stay there. File descriptor 2 is pointed at a pipe for
//! that time; each line read from it becomes a log line (status line and
//! `--log`, printed after exit). Put back on exit, on the host's panics and on
//! fatal signals (async-signal-safe: dup2 only), so a crash message is seen.

use std::io::{BufRead, BufReader};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicI32, Ordering};

/// The real stderr while fd 2 is the pipe; -1 otherwise.
static SAVED: AtomicI32 = AtomicI32::new(-1);

/// Point fd 2 at a pipe read by a thread that logs each line.
pub fn start() -> std::io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: plain fd calls on descriptors we own.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let saved = libc::fcntl(libc::STDERR_FILENO, libc::F_DUPFD_CLOEXEC, 3);
        if saved < 0 || libc::dup2(fds[1], libc::STDERR_FILENO) < 0 {
            let e = std::io::Error::last_os_error();
            libc::close(fds[0]);
            libc::close(fds[1]);
            if saved >= 0 {
                libc::close(saved);
            }
            return Err(e);
        }
        libc::close(fds[1]);
        SAVED.store(saved, Ordering::SeqCst);
    }
    // SAFETY: fds[0] is ours; the File owns it from here.
    let reader = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    std::thread::Builder::new().name("stderr".into()).spawn(move || {
        for line in BufReader::new(reader).split(b'\n').map_while(Result::ok) {
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end();
            if !text.is_empty() {
                tracing::warn!("{}", tracer_core::text::escape_untrusted(text));
            }
        }
    })?;
    Ok(())
}

/// Put the real stderr back (idempotent; safe in a signal handler).
pub fn stop() {
    let saved = SAVED.swap(-1, Ordering::SeqCst);
    if saved >= 0 {
        // SAFETY: dup2 and close are async-signal-safe; saved is our fd.
        unsafe {
            libc::dup2(saved, libc::STDERR_FILENO);
            libc::close(saved);
        }
    }
}
