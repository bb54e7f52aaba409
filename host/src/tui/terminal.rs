//! Raw mode and the alternate screen, undone on drop, on panic, on fatal
//! signals and before exit.

use ratatui::{backend::CrosstermBackend, Terminal};
use std::io::{stdout, Stdout};

pub type Term = Terminal<CrosstermBackend<Stdout>>;

fn restore() {
    super::stderr_capture::stop();
    super::fatal_signals::disarm();
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(
        stdout(),
        crossterm::event::DisableMouseCapture,
        crossterm::terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// Owns the terminal while the TUI runs.
pub struct TerminalGuard {
    pub term: Term,
}

impl TerminalGuard {
    /// `mouse`: report clicks and the wheel (the terminal's own selection
    /// then needs Shift held, in most terminals).
    pub fn enter(mouse: bool) -> std::io::Result<TerminalGuard> {
        // The host's own panics restore the terminal before the message prints
        // (plugin panics never reach here: plugins catch their own).
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            prev(info);
        }));
        // Aborts and faults (no unwinding, no Drop) restore it too.
        super::fatal_signals::arm();
        crossterm::terminal::enable_raw_mode()?;
        crossterm::execute!(stdout(), crossterm::terminal::EnterAlternateScreen, crossterm::cursor::Hide)?;
        if mouse {
            crossterm::execute!(stdout(), crossterm::event::EnableMouseCapture)?;
        }
        let term = Terminal::new(CrosstermBackend::new(stdout()))?;
        let guard = TerminalGuard { term };
        // Last: a failure above leaves stderr as it was for the error message.
        super::stderr_capture::start()?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}
