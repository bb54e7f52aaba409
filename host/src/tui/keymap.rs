//! Actions apart from keys: this one table drives input handling, the help
//! overlay and the footer, so they cannot disagree.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Help,
    Pause,
    /// Reset the focused panel's plugin.
    Reset,
    ResetAll,
    FocusNext,
    FocusPrev,
    /// Show tab n (0-based).
    Tab(usize),
    NextTab,
    PrevTab,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    /// On the selected row: pivot on its process, or open its histogram.
    Enter,
    /// Back out of the last thing: search, zoom, pivot, selection.
    Back,
    SortPrev,
    SortNext,
    SortReverse,
    Search,
    Faster,
    Slower,
    Filter,
    Zoom,
    Picker,
    Log,
    Dump,
    Group,
}

pub struct Binding {
    pub keys: &'static [KeyCode],
    pub label: &'static str,
    pub action: Action,
    /// One word for the footer; empty: not in the footer.
    pub short: &'static str,
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
    KeyCode::Char('0'),
];

macro_rules! b {
    ($keys:expr, $label:expr, $action:expr, $short:expr, $help:expr) => {
        Binding { keys: $keys, label: $label, action: $action, short: $short, help: $help }
    };
}

/// Every key of the normal mode, in the order the help lists them. Keys follow
/// htop, k9s and below where they agree: digits and ←/→ switch tabs, Esc goes
/// back, `<`/`>` pick the sort column, `/` searches.
pub const BINDINGS: &[Binding] = &[
    b!(&[KeyCode::Char('q')], "q", Action::Quit, "quit", "quit (also Ctrl-C); in an overlay (help, log, panels) q closes it"),
    b!(&[KeyCode::Char('h'), KeyCode::Char('?'), KeyCode::F(1)], "h ? F1", Action::Help, "help", "show or hide this help (↑↓ scroll it)"),
    b!(DIGITS, "1-9 0", Action::Tab(0), "", "show tab 1 to 9, 0 the tenth"),
    b!(&[KeyCode::Right, KeyCode::Char(']')], "→ ]", Action::NextTab, "tabs", "next tab"),
    b!(&[KeyCode::Left, KeyCode::Char('[')], "← [", Action::PrevTab, "", "previous tab"),
    b!(&[KeyCode::Tab], "Tab", Action::FocusNext, "focus", "focus the next panel (a mouse click focuses one too)"),
    b!(&[KeyCode::BackTab], "Shift-Tab", Action::FocusPrev, "", "focus the previous panel"),
    b!(&[KeyCode::Up, KeyCode::Char('k')], "↑ k", Action::Up, "", "select the row above (text and histograms: scroll); the wheel scrolls"),
    b!(&[KeyCode::Down, KeyCode::Char('j')], "↓ j", Action::Down, "", "select the row below"),
    b!(&[KeyCode::PageUp], "PgUp", Action::PageUp, "", "a page up"),
    b!(&[KeyCode::PageDown], "PgDn", Action::PageDown, "", "a page down"),
    b!(&[KeyCode::Home], "Home", Action::Top, "", "first row"),
    b!(&[KeyCode::End], "End", Action::Bottom, "", "last row"),
    b!(&[KeyCode::Enter], "Enter", Action::Enter, "pivot", "on a row naming a process (pid or comm): show only that process in every tracer (kernel filters), a breadcrumb says so; on a syscall row: its histogram"),
    b!(&[KeyCode::Esc], "Esc", Action::Back, "back", "back: clear the search, leave zoom, undo the last pivot (filters restored), drop the selection"),
    b!(&[KeyCode::Char('<')], "< >", Action::SortPrev, "sort", "sort the focused table by the column to the left / right"),
    b!(&[KeyCode::Char('>')], ">", Action::SortNext, "", "sort by the column to the right"),
    b!(&[KeyCode::Char('s')], "s", Action::SortReverse, "", "reverse the sort order"),
    b!(&[KeyCode::Char('/')], "/", Action::Search, "search", "show only rows of the focused table containing a text"),
    b!(&[KeyCode::Char('f')], "f", Action::Filter, "filter", "set the focused plugin's kernel filter (its keys are listed below)"),
    b!(&[KeyCode::Char('g')], "g", Action::Group, "group", "group rows by process name (one row per name, PIDS counts them; sums and maxima as each tracer declares), again: per pid"),
    b!(&[KeyCode::Char('z')], "z", Action::Zoom, "zoom", "zoom the focused panel (again or Esc: back)"),
    b!(&[KeyCode::Char('c')], "c", Action::Picker, "panels", "choose panels; a plugin with none on is detached"),
    b!(&[KeyCode::Char('l')], "l", Action::Log, "log", "the log: every message of this run"),
    b!(&[KeyCode::Char('d')], "d", Action::Dump, "dump", "write every panel of this tab as JSON to a file (the path is said)"),
    b!(&[KeyCode::Char('+'), KeyCode::Char('=')], "+ -", Action::Faster, "rate", "refresh faster / slower"),
    b!(&[KeyCode::Char('-')], "-", Action::Slower, "", "refresh slower"),
    b!(&[KeyCode::Char('p'), KeyCode::Char(' ')], "p Space", Action::Pause, "pause", "freeze the data (tracing goes on; scrolling and search still work)"),
    b!(&[KeyCode::Char('r')], "r", Action::Reset, "reset", "reset the focused panel's plugin"),
    b!(&[KeyCode::Char('R')], "R", Action::ResetAll, "", "reset every plugin"),
];

/// The tab a digit key shows: 1-9 the first nine, 0 the tenth (as on a
/// keyboard's row of digits).
pub fn tab_of_digit(d: char) -> usize {
    if d == '0' {
        9
    } else {
        d as usize - '1' as usize
    }
}

/// The digit key of tab `i`, if it has one.
pub fn digit_of_tab(i: usize) -> Option<char> {
    match i {
        0..=8 => Some((b'1' + i as u8) as char),
        9 => Some('0'),
        _ => None,
    }
}

pub fn action_for(key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return (key.code == KeyCode::Char('c')).then_some(Action::Quit);
    }
    let b = BINDINGS.iter().find(|b| b.keys.contains(&key.code))?;
    Some(match (b.action, key.code) {
        (Action::Tab(_), KeyCode::Char(d)) => Action::Tab(tab_of_digit(d)),
        (a, _) => a,
    })
}

/// Readline basics for one-line prompts: what a key does to `text`.
/// Returns false for keys that are not editing keys.
pub fn edit_line(text: &mut String, key: KeyEvent) -> bool {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('u') if ctrl => text.clear(),
        KeyCode::Char('w') if ctrl => {
            let kept = text.trim_end().rfind(' ').map(|i| i + 1).unwrap_or(0);
            text.truncate(kept);
        }
        // The cursor stays at the end; Ctrl-A/E are accepted and change nothing.
        KeyCode::Char('a') | KeyCode::Char('e') if ctrl => {}
        KeyCode::Char(_) if ctrl => return false,
        KeyCode::Char(c) => text.push(c),
        KeyCode::Backspace => {
            text.pop();
        }
        _ => return false,
    }
    true
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
        assert_eq!(key(KeyCode::Char('3')), Some(Action::Tab(2)));
        assert_eq!(key(KeyCode::Char('0')), Some(Action::Tab(9)), "0 is the tenth");
        assert_eq!(key(KeyCode::Right), Some(Action::NextTab));
        assert_eq!(key(KeyCode::Esc), Some(Action::Back));
        assert_eq!(key(KeyCode::Char('x')), None);
        assert_eq!(action_for(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)), None, "Ctrl-U is no key of its own");
    }

    #[test]
    fn prompts_take_readline_basics() {
        let ctrl = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);
        let mut t = String::from("pid=42 comm=cat");
        assert!(edit_line(&mut t, ctrl('w')));
        assert_eq!(t, "pid=42 ");
        assert!(edit_line(&mut t, ctrl('w')));
        assert_eq!(t, "");
        t.push_str("abc");
        assert!(edit_line(&mut t, ctrl('u')));
        assert_eq!(t, "");
        assert!(edit_line(&mut t, KeyEvent::new(KeyCode::Char('u'), KeyModifiers::NONE)));
        assert_eq!(t, "u", "a plain u is typed");
        assert!(edit_line(&mut t, ctrl('a')) && edit_line(&mut t, ctrl('e')));
        assert!(!edit_line(&mut t, ctrl('x')));
        assert_eq!(t, "u");
    }
}
