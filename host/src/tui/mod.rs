//! The terminal UI: panels named in the config's `[ui] panels`, a status line
//! with per-plugin rates and drops, and keys from [`keymap`].

pub mod keymap;
pub mod render;
pub mod terminal;

use crate::event_loop::{Frontend, StopReason};
use crate::logging::Captured;
use crate::procstat::SelfUsage;
use crossterm::event::{Event, KeyCode, KeyEventKind};
use keymap::Action;
use ratatui::text::{Line, Span};
use ratatui::style::{Color, Modifier, Style};
use render::{PanelView, View};
use std::time::{Duration, Instant};
use terminal::TerminalGuard;
use tracer_core::format::Clock;
use tracer_core::session::{Session, SlotState};

/// A panel slot of the screen: `plugin.panel` as the config names it.
struct PanelRef {
    plugin: String,
    panel: String,
}

pub struct Tui {
    guard: TerminalGuard,
    panels: Vec<PanelRef>,
    views: Vec<PanelView>,
    focus: usize,
    paused: bool,
    help: bool,
    prompt: Option<String>,
    message: Option<(String, Instant)>,
    refresh: Duration,
    clock: Clock,
    usage: SelfUsage,
    /// records per plugin at the last rate sample, and when.
    last_records: Vec<u64>,
    rates: Vec<f64>,
    last_rate_at: Instant,
    /// Settings from the config, per plugin; the `f` prompt overrides keys.
    base_settings: Vec<serde_json::Value>,
    log: Option<Captured>,
}

impl Tui {
    pub fn new(
        session: &Session,
        panel_ids: &[String],
        refresh: Duration,
        base_settings: Vec<serde_json::Value>,
        log: Option<Captured>,
    ) -> std::io::Result<Tui> {
        let mut panels: Vec<PanelRef> = panel_ids
            .iter()
            .filter_map(|p| p.split_once('.'))
            .map(|(a, b)| PanelRef { plugin: a.into(), panel: b.into() })
            .collect();
        if panels.is_empty() {
            // No layout given: every panel of every running plugin.
            for s in session.slots.iter().filter(|s| s.state == SlotState::Running) {
                for p in s.desc.panels.iter() {
                    panels.push(PanelRef { plugin: s.name().into(), panel: p.id.to_string() });
                }
            }
        }
        let n = session.slots.len();
        Ok(Tui {
            guard: TerminalGuard::enter()?,
            views: Vec::new(),
            panels,
            focus: 0,
            paused: false,
            help: false,
            prompt: None,
            message: None,
            refresh,
            clock: Clock::now(),
            usage: SelfUsage::new(),
            last_records: vec![0; n],
            rates: vec![0.0; n],
            last_rate_at: Instant::now(),
            base_settings,
            log,
        })
    }

    fn say(&mut self, msg: String) {
        self.message = Some((msg, Instant::now()));
    }

    /// Fetch every panel's contents from its plugin.
    fn collect(&mut self, session: &Session) {
        let scrolls: Vec<usize> = self.views.iter().map(|v| v.scroll).collect();
        self.views = self
            .panels
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let slot = session.slot_index(&r.plugin).map(|x| &session.slots[x]);
                let (title, content) = match slot {
                    None => (format!("{}.{}", r.plugin, r.panel), Err(format!("no plugin named {:?} is loaded", r.plugin))),
                    Some(s) => {
                        let title = s
                            .desc
                            .panels
                            .iter()
                            .find(|p| p.id.as_str() == r.panel)
                            .map(|p| format!("{} · {}", s.name(), p.title))
                            .unwrap_or_else(|| format!("{}.{}", r.plugin, r.panel));
                        let content = match &s.state {
                            SlotState::Failed(why) => Err(format!("plugin stopped: {why}")),
                            _ => s.panel(&r.panel),
                        };
                        (title, content)
                    }
                };
                PanelView { title, content, scroll: scrolls.get(i).copied().unwrap_or(0) }
            })
            .collect();
    }

    fn status_lines(&self, session: &Session) -> Vec<Line<'static>> {
        let mut spans = vec![Span::styled(" tracer ", Style::new().fg(Color::Black).bg(Color::Cyan).add_modifier(Modifier::BOLD))];
        for (i, s) in session.slots.iter().enumerate() {
            let mode = s
                .runtime()
                .map(|rt| rt.choices.iter().map(|c| c.mode.clone()).collect::<Vec<_>>().join("+"))
                .unwrap_or_default();
            let (text, style) = match &s.state {
                SlotState::Running => (
                    format!(" {} {:.0}/s drops {} [{}] ", s.name(), self.rates.get(i).copied().unwrap_or(0.0), s.stats.drops, mode),
                    if s.stats.drops > 0 { Style::new().fg(Color::Red) } else { Style::new() },
                ),
                SlotState::Off => (format!(" {} off ", s.name()), Style::new().fg(Color::DarkGray)),
                SlotState::Failed(_) => (format!(" {} FAILED ", s.name()), Style::new().fg(Color::Red)),
            };
            spans.push(Span::styled(text, style));
        }
        spans.push(Span::raw(format!(
            "│ host {:.1}% {} │ {:.0} Hz{}",
            self.usage.cpu_percent,
            tracer_core::format::bytes(self.usage.rss_bytes),
            1.0 / self.refresh.as_secs_f64(),
            if self.paused { " │ PAUSED" } else { "" }
        )));
        let mut lines = vec![Line::from(spans)];
        let mut problems: Vec<String> = session
            .slots
            .iter()
            .filter_map(|s| match &s.state {
                SlotState::Failed(w) => Some(format!("{}: {}", s.name(), w.lines().next().unwrap_or(""))),
                _ => None,
            })
            .collect();
        problems.extend(session.load_failures.iter().map(|f| f.to_string()));
        if let Some(p) = problems.first() {
            let more = if problems.len() > 1 { format!(" (+{} more)", problems.len() - 1) } else { String::new() };
            lines.push(Line::styled(format!("{p}{more}"), Style::new().fg(Color::Yellow)));
        }
        lines
    }

    fn draw(&mut self, session: &Session) -> Result<(), StopReason> {
        let status = self.status_lines(session);
        let msg = self.message.as_ref().filter(|(_, t)| t.elapsed() < Duration::from_secs(5)).map(|(m, _)| m.clone());
        let msg = msg.or_else(|| self.log.as_ref().and_then(|l| l.last()));
        let view = View {
            status,
            panels: &self.views,
            focus: self.focus,
            help: self.help,
            prompt: self.prompt.as_deref(),
            message: msg.as_deref(),
            clock: &self.clock,
        };
        self.guard
            .term
            .draw(|f| render::draw(f, &view))
            .map(|_| ())
            .map_err(|e| StopReason::Error(format!("drawing: {e}")))
    }

    fn focused_plugin(&self, session: &Session) -> Option<usize> {
        self.panels.get(self.focus).and_then(|p| session.slot_index(&p.plugin))
    }

    /// Apply `key=value ...` on top of the plugin's configured settings.
    fn apply_filter(&mut self, session: &mut Session, text: &str) {
        let Some(idx) = self.focused_plugin(session) else {
            return self.say("the focused panel's plugin is not loaded".into());
        };
        let mut settings = self.base_settings.get(idx).cloned().unwrap_or_else(|| serde_json::json!({}));
        match parse_assignments(text) {
            Err(e) => self.say(e),
            Ok(pairs) => {
                for (k, v) in pairs {
                    settings[k] = v;
                }
                match session.set_settings(idx, &settings.to_string()) {
                    Ok(()) => {
                        self.say(format!("{}: filter set: {text}", session.slots[idx].name()));
                        if let Some(s) = self.base_settings.get_mut(idx) {
                            *s = settings;
                        }
                    }
                    Err(e) => self.say(format!("{}: {e}", session.slots[idx].name())),
                }
            }
        }
    }

    fn act(&mut self, a: Action, session: &mut Session) -> Result<(), StopReason> {
        let page = 10;
        let n = self.views.len().max(1);
        match a {
            Action::Quit => return Err(StopReason::Quit),
            Action::Help => self.help = !self.help,
            Action::Pause => self.paused = !self.paused,
            Action::Reset => {
                session.reset();
                self.say("counters reset".into());
            }
            Action::FocusNext => self.focus = (self.focus + 1) % n,
            Action::FocusPrev => self.focus = (self.focus + n - 1) % n,
            Action::ScrollUp | Action::PageUp | Action::ScrollDown | Action::PageDown => {
                if let Some(v) = self.views.get_mut(self.focus) {
                    v.scroll = match a {
                        Action::ScrollUp => v.scroll.saturating_sub(1),
                        Action::PageUp => v.scroll.saturating_sub(page),
                        Action::ScrollDown => v.scroll + 1,
                        _ => v.scroll + page,
                    };
                }
            }
            Action::Filter => self.prompt = Some(String::new()),
        }
        Ok(())
    }
}

/// `pid=42 comm=cat failed_only=true` as JSON values: numbers and booleans as
/// such, `-` unsets a key, anything else is a string.
pub fn parse_assignments(text: &str) -> Result<Vec<(String, serde_json::Value)>, String> {
    text.split_whitespace()
        .map(|item| {
            let (k, v) = item.split_once('=').ok_or_else(|| format!("{item:?}: expected key=value"))?;
            let value = if v == "-" {
                serde_json::Value::Null
            } else if let Ok(n) = v.parse::<u64>() {
                n.into()
            } else if let Ok(b) = v.parse::<bool>() {
                b.into()
            } else {
                v.into()
            };
            Ok((k.to_string(), value))
        })
        .collect()
}

impl Frontend for Tui {
    fn wants_records(&self) -> bool {
        false
    }

    fn tick(&mut self, session: &mut Session) -> Result<(), StopReason> {
        self.usage.sample();
        let dt = self.last_rate_at.elapsed().as_secs_f64();
        if dt >= 1.0 {
            for (i, s) in session.slots.iter().enumerate() {
                let prev = self.last_records.get(i).copied().unwrap_or(0);
                if let Some(r) = self.rates.get_mut(i) {
                    *r = (s.stats.records.saturating_sub(prev)) as f64 / dt;
                }
                if let Some(l) = self.last_records.get_mut(i) {
                    *l = s.stats.records;
                }
            }
            self.last_rate_at = Instant::now();
        }
        if !self.paused || self.views.is_empty() {
            self.collect(session);
        }
        self.draw(session)
    }

    fn terminal_event(&mut self, ev: Event, session: &mut Session) -> Result<(), StopReason> {
        match ev {
            Event::Key(k) if k.kind == KeyEventKind::Press => {
                if let Some(p) = self.prompt.as_mut() {
                    match k.code {
                        KeyCode::Enter => {
                            let text = self.prompt.take().unwrap_or_default();
                            self.apply_filter(session, &text);
                        }
                        KeyCode::Esc => self.prompt = None,
                        KeyCode::Backspace => {
                            p.pop();
                        }
                        KeyCode::Char(c) => p.push(c),
                        _ => {}
                    }
                } else if let Some(a) = keymap::action_for(k) {
                    self.act(a, session)?;
                }
                self.draw(session)
            }
            Event::Resize(_, _) => self.draw(session),
            _ => Ok(()),
        }
    }

    fn refresh(&self) -> Duration {
        self.refresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_parse_to_typed_json() {
        let v = parse_assignments("pid=42 comm=cat failed_only=true uid=-").unwrap();
        assert_eq!(v[0], ("pid".to_string(), serde_json::json!(42)));
        assert_eq!(v[1], ("comm".to_string(), serde_json::json!("cat")));
        assert_eq!(v[2], ("failed_only".to_string(), serde_json::json!(true)));
        assert_eq!(v[3], ("uid".to_string(), serde_json::Value::Null));
        assert!(parse_assignments("pid").is_err());
    }
}
