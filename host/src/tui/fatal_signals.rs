//! Terminal restore on fatal signals.
//!
//! A plugin that aborts (its own std, its own panic=abort, a double panic) or
//! faults (a bad pointer in its code) ends the process without unwinding, so no
//! Drop runs and our panic hook never sees it. The kernel still detaches every
//! link when the process's fds close (nothing is pinned), but the terminal would
//! stay raw and on the alternate screen. These handlers put it back using only
//! async-signal-safe calls (write, tcsetattr, sigaction), then let the signal do
//! what it would have done: the previous handler or the default action runs.

use std::sync::atomic::{AtomicBool, Ordering};

const SIGNALS: [libc::c_int; 5] = [libc::SIGABRT, libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE];

/// Whether the terminal is ours (raw, alternate screen) right now.
static ARMED: AtomicBool = AtomicBool::new(false);
/// The terminal's settings before raw mode and the fd they belong to, and the
/// handlers we replaced. Written once before ARMED is set, read only after.
static mut SAVED: Option<(libc::c_int, libc::termios)> = None;
static mut PREVIOUS: [Option<libc::sigaction>; 5] = [None; 5];

extern "C" fn on_fatal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: only async-signal-safe calls; the statics were written before
    // ARMED was set and are not written again while it is.
    unsafe {
        if ARMED.swap(false, Ordering::SeqCst) {
            // Mouse reporting off (every mode crossterm turns on), cursor
            // shown, main screen back.
            const SEQ: &[u8] = b"\x1b[?1006l\x1b[?1015l\x1b[?1003l\x1b[?1002l\x1b[?1000l\x1b[?25h\x1b[?1049l\r\n";
            super::stderr_capture::stop();
            libc::write(libc::STDOUT_FILENO, SEQ.as_ptr().cast(), SEQ.len());
            if let Some((fd, t)) = *std::ptr::addr_of!(SAVED) {
                libc::tcsetattr(fd, libc::TCSANOW, &t);
            }
        }
        let prev = &*std::ptr::addr_of!(PREVIOUS);
        if let Some(i) = SIGNALS.iter().position(|&s| s == sig) {
            if let Some(old) = prev[i] {
                libc::sigaction(sig, &old, std::ptr::null_mut());
            }
        }
        // A fault re-runs the faulting instruction on return and meets the
        // previous handler; a sent signal (kill, raise, abort) must be raised again.
        if info.is_null() || (*info).si_code <= 0 {
            libc::raise(sig);
        }
    }
}

/// Install the handlers (once) and remember the terminal's current settings.
/// Call before entering raw mode.
pub fn arm() {
    // SAFETY: called on the main thread before the handlers can run with
    // ARMED set; sigaction/tcgetattr are plain syscalls.
    unsafe {
        let fd = if libc::isatty(libc::STDIN_FILENO) == 1 { libc::STDIN_FILENO } else { libc::STDOUT_FILENO };
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut t) == 0 {
            *std::ptr::addr_of_mut!(SAVED) = Some((fd, t));
        }
        let prev = &mut *std::ptr::addr_of_mut!(PREVIOUS);
        for (i, &sig) in SIGNALS.iter().enumerate() {
            if prev[i].is_some() {
                continue;
            }
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_fatal as *const () as usize;
            // On the alternate stack when there is one (Rust sets one up to
            // report stack overflows), so an overflow still gets here.
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, &sa, &mut old) == 0 {
                prev[i] = Some(old);
            }
        }
    }
    ARMED.store(true, Ordering::SeqCst);
}

/// The terminal was restored the ordinary way: signals no longer touch it.
pub fn disarm() {
    ARMED.store(false, Ordering::SeqCst);
}
