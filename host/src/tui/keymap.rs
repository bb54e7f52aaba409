//! Actions apart from keys: the key table below drives input handling and the
//! help overlay alike, so they cannot disagree.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Help,
    Pause,
    Reset,
    FocusNext,
    FocusPrev,
    ScrollUp,
    ScrollDown,
    PageUp,
    PageDown,
    Filter,
}

pub struct Binding {
    pub keys: &'static [KeyCode],
    pub label: &'static str,
    pub action: Action,
    pub help: &'static str,
}

pub const BINDINGS: &[Binding] = &[
    Binding { keys: &[KeyCode::Char('q')], label: "q", action: Action::Quit, help: "quit (also Ctrl-C)" },
    Binding { keys: &[KeyCode::Char('h'), KeyCode::Char('?')], label: "h ?", action: Action::Help, help: "show or hide this help" },
    Binding { keys: &[KeyCode::Char('p')], label: "p", action: Action::Pause, help: "pause or resume the display (tracing goes on)" },
    Binding { keys: &[KeyCode::Char('r')], label: "r", action: Action::Reset, help: "reset every plugin's counters" },
    Binding { keys: &[KeyCode::Tab], label: "Tab", action: Action::FocusNext, help: "focus the next panel" },
    Binding { keys: &[KeyCode::BackTab], label: "Shift-Tab", action: Action::FocusPrev, help: "focus the previous panel" },
    Binding { keys: &[KeyCode::Up, KeyCode::Char('k')], label: "↑ k", action: Action::ScrollUp, help: "scroll up" },
    Binding { keys: &[KeyCode::Down, KeyCode::Char('j')], label: "↓ j", action: Action::ScrollDown, help: "scroll down" },
    Binding { keys: &[KeyCode::PageUp], label: "PgUp", action: Action::PageUp, help: "scroll a page up" },
    Binding { keys: &[KeyCode::PageDown], label: "PgDn", action: Action::PageDown, help: "scroll a page down" },
    Binding { keys: &[KeyCode::Char('f')], label: "f", action: Action::Filter, help: "set the focused plugin's kernel filter (e.g. pid=42 comm=cat)" },
];

pub fn action_for(key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    BINDINGS.iter().find(|b| b.keys.contains(&key.code)).map(|b| b.action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_a_key_and_keys_are_unique() {
        let mut seen = Vec::new();
        for b in BINDINGS {
            for k in b.keys {
                assert!(!seen.contains(k), "{k:?} bound twice");
                seen.push(*k);
            }
        }
        assert_eq!(action_for(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)), Some(Action::Quit));
        assert_eq!(action_for(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE)), Some(Action::Help));
        assert_eq!(action_for(KeyEvent::new(KeyCode::Char('x'), KeyModifiers::NONE)), None);
    }
}
