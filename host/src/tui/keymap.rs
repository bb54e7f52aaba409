//! Actions apart from keys: this one table drives input handling, the help
//! overlay and the footer, so they cannot disagree.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Help,
    Pause,
    Reset,
    FocusNext,
    FocusPrev,
    /// Focus panel n (0-based) of the tab.
    Focus(usize),
    NextTab,
    PrevTab,
    ScrollUp,
    ScrollDown,
    PageUp,
    PageDown,
    Sort,
    Search,
    Faster,
    Slower,
    Filter,
    Zoom,
    Picker,
}

pub struct Binding {
    pub keys: &'static [KeyCode],
    pub label: &'static str,
    pub action: Action,
    /// One word for the footer.
    pub short: &'static str,
    pub footer: bool,
    pub help: &'static str,
}

const DIGITS: &[KeyCode] = &[
    KeyCode::Char('1'),
    KeyCode::Char('2'),
    KeyCode::Char('3'),
    KeyCode::Char('4'),
    KeyCode::Char('5'),
    KeyCode::Char('6'),
    KeyCode::Char('7'),
    KeyCode::Char('8'),
    KeyCode::Char('9'),
];

macro_rules! b {
    ($keys:expr, $label:expr, $action:expr, $short:expr, $footer:expr, $help:expr) => {
        Binding { keys: $keys, label: $label, action: $action, short: $short, footer: $footer, help: $help }
    };
}

pub const BINDINGS: &[Binding] = &[
    b!(&[KeyCode::Char('q')], "q", Action::Quit, "quit", true, "quit (also Ctrl-C): every program detached, terminal restored"),
    b!(&[KeyCode::Char('h'), KeyCode::Char('?')], "h ?", Action::Help, "help", true, "show or hide this help"),
    b!(&[KeyCode::Tab], "Tab", Action::FocusNext, "focus", true, "focus the next panel"),
    b!(&[KeyCode::BackTab], "Shift-Tab", Action::FocusPrev, "", false, "focus the previous panel"),
    b!(DIGITS, "1-9", Action::Focus(0), "", false, "focus panel 1 to 9 of the tab"),
    b!(&[KeyCode::Char(']')], "] [", Action::NextTab, "tabs", true, "next / previous tab"),
    b!(&[KeyCode::Char('[')], "[", Action::PrevTab, "", false, "previous tab"),
    b!(&[KeyCode::Up, KeyCode::Char('k')], "↑ k", Action::ScrollUp, "", false, "scroll up"),
    b!(&[KeyCode::Down, KeyCode::Char('j')], "↓ j", Action::ScrollDown, "", false, "scroll down"),
    b!(&[KeyCode::PageUp], "PgUp", Action::PageUp, "", false, "scroll a page up"),
    b!(&[KeyCode::PageDown], "PgDn", Action::PageDown, "", false, "scroll a page down"),
    b!(&[KeyCode::Char('s')], "s", Action::Sort, "sort", true, "sort the focused table by the next column"),
    b!(&[KeyCode::Char('/')], "/", Action::Search, "search", true, "show only rows of the focused table containing a text"),
    b!(&[KeyCode::Char('f')], "f", Action::Filter, "filter", true, "kernel filter of the focused plugin: pid=42 comm=cat port=80 (key=- unsets)"),
    b!(&[KeyCode::Char('z')], "z", Action::Zoom, "zoom", true, "zoom the focused panel (again: back)"),
    b!(&[KeyCode::Char('c')], "c", Action::Picker, "panels", true, "choose panels; a plugin with none on is detached"),
    b!(&[KeyCode::Char('+'), KeyCode::Char('=')], "+ -", Action::Faster, "rate", true, "refresh faster / slower"),
    b!(&[KeyCode::Char('-')], "-", Action::Slower, "", false, "refresh slower"),
    b!(&[KeyCode::Char('p')], "p", Action::Pause, "pause", true, "pause the display (tracing and counting go on)"),
    b!(&[KeyCode::Char('r')], "r", Action::Reset, "reset", true, "reset every plugin's counters"),
];

pub fn action_for(key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    let b = BINDINGS.iter().find(|b| b.keys.contains(&key.code))?;
    Some(match (b.action, key.code) {
        (Action::Focus(_), KeyCode::Char(d)) => Action::Focus(d as usize - '1' as usize),
        (a, _) => a,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> Option<Action> {
        action_for(KeyEvent::new(c, KeyModifiers::NONE))
    }

    #[test]
    fn keys_are_unique_and_map_to_actions() {
        let mut seen = Vec::new();
        for b in BINDINGS {
            for k in b.keys {
                assert!(!seen.contains(k), "{k:?} bound twice");
                seen.push(*k);
            }
        }
        assert_eq!(action_for(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)), Some(Action::Quit));
        assert_eq!(key(KeyCode::Char('?')), Some(Action::Help));
        assert_eq!(key(KeyCode::Char('3')), Some(Action::Focus(2)));
        assert_eq!(key(KeyCode::Char('x')), None);
    }
}
