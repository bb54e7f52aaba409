//! The terminal UI: every loaded plugin's panels, arranged by the config's
//! tabs and rows ([`layout`]), driven by the keys of [`keymap`].
//!
//! [`Screen`] holds all state and logic and draws into any ratatui backend, so
//! tests drive it with the same events the terminal sends and render it into a
//! TestBackend; [`Tui`] adds the real terminal.

pub mod keymap;
pub mod layout;
pub mod render;
pub mod columns;
pub mod table_view;
pub mod terminal;
mod fatal_signals;
mod stderr_capture;
#[cfg(test)]
mod tests_render;

use crate::event_loop::{Frontend, StopReason};
use crate::logging::Captured;
use crate::procstat::SelfUsage;
use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind};
use keymap::Action;
use layout::{Layout, PanelRef};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::Frame;
use render::{PanelView, PickerView, View};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use table_view::TableState;
use terminal::TerminalGuard;
use tracer_core::format::{self, Clock};
use tracer_core::session::{Session, SlotState};
use tracer_plugin_api::Panel;

#[derive(Default)]
struct PanelState {
    scroll: usize,
    table: TableState,
    /// Counter values of the refreshes in the rate window, and when.
    samples: std::collections::VecDeque<(Vec<u64>, Instant)>,
    rates: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum PromptKind {
    Filter,
    Search,
}

/// Who gets the keys: one mode at a time, switched explicitly (as bpftop's
/// app modes), not flags whose priority is the order of `if`s. Zoom and
/// pause are not modes: they change what is shown, not where keys go.
#[derive(Debug, Clone, PartialEq)]
enum Mode {
    /// Keys are the keymap's actions.
    Normal,
    /// The key table over the screen; Esc or q closes it, other keys act.
    Help,
    /// The panel picker, its cursor on item `cursor`.
    Picker { cursor: usize },
    /// A one-line prompt being typed.
    Prompt { kind: PromptKind, text: String },
}

/// Per-plugin figures for the status line, updated once a second.
#[derive(Default, Clone)]
struct PluginRates {
    records: u64,
    per_sec: f64,
}

pub struct Screen {
    layout: Layout,
    tab: usize,
    focus: usize,
    zoom: bool,
    paused: bool,
    mode: Mode,
    message: Option<(String, Instant)>,
    off: HashSet<PanelRef>,
    /// Plugins this screen detached because all their panels were switched off.
    detached: HashSet<String>,
    states: HashMap<PanelRef, PanelState>,
    views: Vec<PanelView>,
    refresh: Duration,
    clock: Clock,
    rates: HashMap<String, PluginRates>,
    last_rate_at: Instant,
    /// Settings from the config per plugin; the `f` prompt overrides keys.
    settings: HashMap<String, serde_json::Value>,
    /// Shown in the status line: (cpu %, rss bytes).
    pub host_usage: (f64, u64),
}

/// Refresh rates the `+`/`-` keys step through (Hz).
const RATES: &[f64] = &[0.5, 1.0, 2.0, 4.0, 10.0, 20.0];

impl Screen {
    pub fn new(layout: Layout, refresh: Duration, settings: HashMap<String, serde_json::Value>) -> Screen {
        Screen {
            layout,
            tab: 0,
            focus: 0,
            zoom: false,
            paused: false,
            mode: Mode::Normal,
            message: None,
            off: HashSet::new(),
            detached: HashSet::new(),
            states: HashMap::new(),
            views: Vec::new(),
            refresh,
            clock: Clock::now(),
            rates: HashMap::new(),
            last_rate_at: Instant::now(),
            settings,
            host_usage: (0.0, 0),
        }
    }

    pub fn refresh(&self) -> Duration {
        self.refresh
    }

    fn say(&mut self, msg: String) {
        self.message = Some((msg, Instant::now()));
    }

    /// The current tab's visible panels, in drawing order.
    fn tab_panels(&self) -> Vec<PanelRef> {
        self.layout.visible(self.tab, &self.off).into_iter().flat_map(|r| r.cells.into_iter().map(|c| c.panel)).collect()
    }

    fn focused(&self) -> Option<PanelRef> {
        self.tab_panels().get(self.focus).cloned()
    }

    /// New plugins (hot-plugged) get their panels placed.
    pub fn plugins_changed(&mut self, session: &Session) {
        self.layout.place_unplaced(session);
    }

    /// Fetch the current tab's panels from their plugins and update rates.
    pub fn collect(&mut self, session: &Session) {
        let now = Instant::now();
        let dt = now.duration_since(self.last_rate_at).as_secs_f64();
        if dt >= 1.0 {
            for s in &session.slots {
                let r = self.rates.entry(s.name().to_string()).or_default();
                r.per_sec = s.stats.records.saturating_sub(r.records) as f64 / dt;
                r.records = s.stats.records;
            }
            self.last_rate_at = now;
        }
        if self.paused && !self.views.is_empty() {
            return;
        }
        let panels = self.tab_panels();
        self.views = panels
            .iter()
            .map(|r| {
                let slot = session.slot_index(&r.plugin).map(|i| &session.slots[i]);
                let (title, content) = match slot {
                    None => (r.id(), Err(format!("no loaded plugin offers panel {}", r.id()))),
                    Some(s) => match s.desc.panels.iter().find(|p| p.id.as_str() == r.panel) {
                        None => (r.id(), Err(format!("plugin {} has no panel {:?}", r.plugin, r.panel))),
                        Some(p) => {
                            let title = format!("{} · {}", s.name(), p.title);
                            let content = match &s.state {
                                SlotState::Failed(why) => Err(format!("plugin stopped: {}", why.lines().next().unwrap_or(""))),
                                SlotState::Off => Err("plugin off (c: choose panels)".into()),
                                SlotState::Removed => Err(format!("plugin removed: its file {} left the plugins directory", s.path.display())),
                                SlotState::Running => s.panel(&r.panel),
                            };
                            (title, content)
                        }
                    },
                };
                let st = self.states.entry(r.clone()).or_default();
                if let Ok(c) = &content {
                    if let Ok(Panel::Counters(cs)) = c.as_enum() {
                        let values: Vec<u64> = cs.iter().map(|c| c.value).collect();
                        st.rates = window_rates(&mut st.samples, values, now);
                    }
                }
                PanelView { title, content, scroll: st.scroll, table: st.table.clone(), rates: st.rates.clone() }
            })
            .collect();
        if self.focus >= self.views.len() {
            self.focus = self.views.len().saturating_sub(1);
        }
    }

    /// Per-plugin chunks, and the host's line.
    fn status(&self, session: &Session) -> (Vec<Span<'static>>, Line<'static>) {
        let mut spans =
            vec![Span::styled(" tracer ", Style::new().fg(Color::Black).bg(Color::Cyan).add_modifier(Modifier::BOLD))];
        for s in &session.slots {
            let rate = self.rates.get(s.name()).map(|r| r.per_sec).unwrap_or(0.0);
            let (text, style) = match &s.state {
                SlotState::Running => {
                    let mode = s
                        .runtime()
                        .map(|rt| {
                            let m = rt.choices.iter().map(|c| c.mode.clone()).collect::<Vec<_>>().join("+");
                            // Details in --list-plugins and the final report.
                            match rt.optional_off().count() {
                                0 => m,
                                n => format!("{m}; {n} optional off"),
                            }
                        })
                        .unwrap_or_default();
                    let cost = s
                        .stats
                        .bpf_ns_per_event
                        .map(|ns| format!(" {}/ev {:.2}%cpu", format::duration_ns(ns as u64), s.stats.bpf_cpu_percent))
                        .unwrap_or_default();
                    let filter = self
                        .settings
                        .get(s.name())
                        .map(|v| crate::plugin_settings::shown(&s.desc.settings, v))
                        .filter(|f| !f.is_empty())
                        .map(|f| format!(" {{{f}}}"))
                        .unwrap_or_default();
                    (
                        {
                            let drop = match &s.stats.counter_error {
                                None => s.stats.drops.to_string(),
                                Some(_) => format!("{}+? (unreadable)", s.stats.drops),
                            };
                            format!(" {} {}/s drop {drop} [{mode}]{cost}{filter} ", s.name(), render::human_rate(rate))
                        },
                        if s.stats.drops > 0 || s.stats.counter_error.is_some() { Style::new().fg(Color::Red) } else { Style::new() },
                    )
                }
                SlotState::Off => (format!(" {} off ", s.name()), Style::new().fg(Color::DarkGray)),
                SlotState::Removed => (format!(" {} removed ", s.name()), Style::new().fg(Color::DarkGray)),
                SlotState::Failed(_) => (format!(" {} FAILED ", s.name()), Style::new().fg(Color::Red)),
            };
            spans.push(Span::styled(text, style));
        }
        let mut second = vec![Span::raw(format!(
            "host {:.1}% cpu {} │ {} Hz{}",
            self.host_usage.0,
            format::bytes(self.host_usage.1),
            format_hz(1.0 / self.refresh.as_secs_f64()),
            if self.paused { " │ PAUSED" } else { "" }
        ))];
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
            second.push(Span::styled(format!(" │ {p}{more}"), Style::new().fg(Color::Yellow)));
        }
        (spans, Line::from(second))
    }

    pub fn render(&self, f: &mut Frame, session: &Session, log_line: Option<String>) {
        let rows = self.layout.visible(self.tab, &self.off);
        let picker = match self.mode {
            Mode::Picker { cursor } => Some(PickerView { items: self.picker_items(session), cursor }),
            _ => None,
        };
        let msg = self
            .message
            .as_ref()
            .filter(|(_, t)| t.elapsed() < Duration::from_secs(5))
            .map(|(m, _)| m.clone())
            .or(log_line);
        let filter_label = self.filter_label(session);
        let prompt = match &self.mode {
            Mode::Prompt { kind, text } => Some((if *kind == PromptKind::Filter { filter_label.as_str() } else { "search" }, text.as_str())),
            _ => None,
        };
        let (status, host_line) = self.status(session);
        let view = View {
            status,
            host_line,
            tabs: self.layout.tabs.iter().map(|t| t.name.clone()).collect(),
            tab: self.tab,
            rows: &rows,
            panels: &self.views,
            focus: self.focus,
            zoom: self.zoom,
            help: self.mode == Mode::Help,
            picker: picker.as_ref(),
            prompt,
            message: msg.as_deref(),
            clock: &self.clock,
        };
        render::draw(f, &view);
    }

    /// Every panel of every loaded plugin: (id, title, on).
    fn picker_items(&self, session: &Session) -> Vec<(String, String, bool)> {
        session
            .slots
            .iter()
            .flat_map(|s| {
                s.desc.panels.iter().map(move |p| {
                    let r = PanelRef { plugin: s.name().to_string(), panel: p.id.to_string() };
                    (r, p.title.to_string())
                })
            })
            .map(|(r, title)| {
                let on = self.is_on(session, &r);
                (r.id(), title, on)
            })
            .collect()
    }

    /// Switch a panel on or off; a plugin with no panel left on is detached (it
    /// then costs nothing), and attached again when one comes back.
    /// A panel is on when it was not switched off and its plugin runs: the
    /// panels of a plugin that was not started show as off.
    fn is_on(&self, session: &Session, r: &PanelRef) -> bool {
        !self.off.contains(r) && session.slot_index(&r.plugin).is_some_and(|i| session.slots[i].state == SlotState::Running)
    }

    fn toggle_panel(&mut self, session: &mut Session, r: PanelRef) {
        if self.is_on(session, &r) {
            self.off.insert(r.clone());
        } else {
            self.off.remove(&r);
        }
        let Some(idx) = session.slot_index(&r.plugin) else { return };
        let any_on = session.slots[idx]
            .desc
            .panels
            .iter()
            .any(|p| !self.off.contains(&PanelRef { plugin: r.plugin.clone(), panel: p.id.to_string() }));
        let state = session.slots[idx].state.clone();
        if !any_on && state == SlotState::Running {
            session.stop(idx, None);
            self.detached.insert(r.plugin.clone());
            self.say(format!("{}: all panels off, programs detached", r.plugin));
        } else if any_on && state == SlotState::Off {
            // Detached here before, or never started (not enabled at start).
            let again = self.detached.remove(&r.plugin);
            let settings = self.settings.get(&r.plugin).map(|v| v.to_string()).unwrap_or_else(|| "{}".into());
            match session.start(idx, &settings) {
                Ok(()) => self.say(format!("{}: {}", r.plugin, if again { "attached again" } else { "started" })),
                Err(e) => self.say(format!("{}: {e}", r.plugin)),
            }
        }
    }

    /// `filter open (pid comm include_self uid failed_only)`: whose settings the
    /// prompt changes, and which keys it takes (from the plugin's declaration).
    fn filter_label(&self, session: &Session) -> String {
        let Some(r) = self.focused() else { return "filter".into() };
        let keys: Vec<&str> = session
            .slot_index(&r.plugin)
            .map(|i| session.slots[i].desc.settings.iter().filter(|s| s.runtime).map(|s| s.name.as_str()).collect())
            .unwrap_or_default();
        format!("filter {} ({})", r.plugin, keys.join(" "))
    }

    /// Apply `key=value ...` on top of the plugin's settings.
    fn apply_filter(&mut self, session: &mut Session, text: &str) {
        let Some(r) = self.focused() else { return };
        let Some(idx) = session.slot_index(&r.plugin) else {
            return self.say(format!("plugin {} is not loaded", r.plugin));
        };
        let mut settings = self.settings.get(&r.plugin).cloned().unwrap_or_else(|| serde_json::json!({}));
        match crate::plugin_settings::parse_assignments(&r.plugin, &session.slots[idx].desc.settings, text) {
            Err(e) => self.say(e),
            Ok(pairs) => {
                for (k, v) in pairs {
                    settings[k] = v;
                }
                match session.set_settings(idx, &settings.to_string()) {
                    Ok(()) => {
                        self.say(format!("{}: filter set: {text}", r.plugin));
                        self.settings.insert(r.plugin.clone(), settings);
                    }
                    Err(e) => self.say(format!("{}: {e}", r.plugin)),
                }
            }
        }
    }

    fn focused_state(&mut self) -> Option<&mut PanelState> {
        let r = self.focused()?;
        Some(self.states.entry(r).or_default())
    }

    fn act(&mut self, a: Action, session: &mut Session) -> Result<(), StopReason> {
        let n = self.tab_panels().len().max(1);
        match a {
            Action::Quit => return Err(StopReason::Quit),
            Action::Help => self.mode = if self.mode == Mode::Help { Mode::Normal } else { Mode::Help },
            Action::Pause => self.paused = !self.paused,
            Action::Reset => {
                session.reset();
                self.say("counters reset".into());
            }
            Action::FocusNext => self.focus = (self.focus + 1) % n,
            Action::FocusPrev => self.focus = (self.focus + n - 1) % n,
            Action::Focus(i) => {
                if i < n {
                    self.focus = i;
                }
            }
            Action::NextTab | Action::PrevTab => {
                let t = self.layout.tabs.len().max(1);
                self.tab = if a == Action::NextTab { (self.tab + 1) % t } else { (self.tab + t - 1) % t };
                self.focus = 0;
                self.zoom = false;
            }
            Action::ScrollUp | Action::PageUp | Action::ScrollDown | Action::PageDown => {
                if let Some(st) = self.focused_state() {
                    st.scroll = match a {
                        Action::ScrollUp => st.scroll.saturating_sub(1),
                        Action::PageUp => st.scroll.saturating_sub(10),
                        Action::ScrollDown => st.scroll + 1,
                        _ => st.scroll + 10,
                    };
                }
            }
            Action::Sort => {
                let ncols = self.views.get(self.focus).and_then(|v| match &v.content {
                    Ok(c) => match c.as_enum() {
                        Ok(Panel::Table(t)) => Some(t.columns.len()),
                        _ => None,
                    },
                    Err(_) => None,
                });
                if let (Some(ncols), Some(st)) = (ncols, self.focused_state()) {
                    st.table.cycle_sort(ncols);
                }
            }
            Action::Search => {
                let current = self.focused_state().map(|s| s.table.filter.clone()).unwrap_or_default();
                self.mode = Mode::Prompt { kind: PromptKind::Search, text: current };
            }
            Action::Filter => self.mode = Mode::Prompt { kind: PromptKind::Filter, text: String::new() },
            Action::Faster | Action::Slower => {
                let hz = 1.0 / self.refresh.as_secs_f64();
                let next = if a == Action::Faster {
                    RATES.iter().copied().find(|r| *r > hz + 1e-9).unwrap_or(*RATES.last().unwrap())
                } else {
                    RATES.iter().rev().copied().find(|r| *r < hz - 1e-9).unwrap_or(RATES[0])
                };
                self.refresh = Duration::from_secs_f64(1.0 / next);
                self.say(format!("refresh {} Hz", format_hz(next)));
            }
            Action::Zoom => self.zoom = !self.zoom,
            Action::Picker => self.mode = Mode::Picker { cursor: 0 },
        }
        Ok(())
    }

    fn picker_key(&mut self, cur: usize, k: KeyEvent, session: &mut Session) {
        let items = self.picker_items(session);
        match k.code {
            KeyCode::Esc | KeyCode::Char('c') | KeyCode::Char('q') => self.mode = Mode::Normal,
            KeyCode::Up | KeyCode::Char('k') => self.mode = Mode::Picker { cursor: cur.saturating_sub(1) },
            KeyCode::Down | KeyCode::Char('j') => self.mode = Mode::Picker { cursor: (cur + 1).min(items.len().saturating_sub(1)) },
            KeyCode::Char(' ') | KeyCode::Enter => {
                if let Some(r) = items.get(cur).and_then(|(id, _, _)| PanelRef::parse(id)) {
                    self.toggle_panel(session, r);
                }
            }
            _ => {}
        }
    }

    fn prompt_key(&mut self, k: KeyEvent, session: &mut Session) {
        let Mode::Prompt { text, .. } = &mut self.mode else { return };
        match k.code {
            KeyCode::Enter => {
                let Mode::Prompt { kind, text } = std::mem::replace(&mut self.mode, Mode::Normal) else { return };
                match kind {
                    PromptKind::Filter => self.apply_filter(session, &text),
                    PromptKind::Search => {
                        if let Some(st) = self.focused_state() {
                            st.table.filter = text;
                            st.scroll = 0;
                        }
                    }
                }
            }
            KeyCode::Esc => self.mode = Mode::Normal,
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char(c) => text.push(c),
            _ => {}
        }
    }

    /// One terminal event, exactly as the terminal delivers it.
    pub fn on_event(&mut self, ev: Event, session: &mut Session) -> Result<(), StopReason> {
        if let Event::Key(k) = ev {
            if k.kind != KeyEventKind::Press {
                return Ok(());
            }
            match self.mode {
                Mode::Prompt { .. } => self.prompt_key(k, session),
                Mode::Picker { cursor } => self.picker_key(cursor, k, session),
                Mode::Help if matches!(k.code, KeyCode::Esc | KeyCode::Char('q')) => self.mode = Mode::Normal,
                Mode::Help | Mode::Normal => {
                    if let Some(a) = keymap::action_for(k) {
                        self.act(a, session)?;
                    }
                }
            }
            // What the key changed is shown at once, not at the next refresh.
            self.collect(session);
        }
        Ok(())
    }
}

/// Counter rates over the last [`RATE_WINDOW`] rather than the last refresh:
/// at 4 Hz a counter that moves every few seconds would read 0/s nearly always.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// Add a sample of counter values and return each counter's rate per second
/// since the oldest sample still in the window (None until there are two).
/// Counters are matched by name order, so a counter list that changes length
/// starts again.
fn window_rates(samples: &mut std::collections::VecDeque<(Vec<u64>, Instant)>, values: Vec<u64>, now: Instant) -> Vec<Option<f64>> {
    if samples.back().is_some_and(|(v, _)| v.len() != values.len()) {
        samples.clear();
    }
    while samples.len() > 1 && samples.get(1).is_some_and(|(_, t)| now.duration_since(*t) >= RATE_WINDOW) {
        samples.pop_front();
    }
    let rates = match samples.front() {
        Some((old, at)) => {
            let secs = now.duration_since(*at).as_secs_f64().max(1e-3);
            values.iter().zip(old).map(|(v, o)| Some(v.saturating_sub(*o) as f64 / secs)).collect()
        }
        None => vec![None; values.len()],
    };
    samples.push_back((values, now));
    rates
}

fn format_hz(hz: f64) -> String {
    if hz < 1.0 {
        format!("{hz:.1}")
    } else {
        format!("{hz:.0}")
    }
}

/// The real terminal around a [`Screen`].
pub struct Tui {
    pub screen: Screen,
    guard: TerminalGuard,
    usage: SelfUsage,
    log: Option<Captured>,
}

impl Tui {
    pub fn new(screen: Screen, log: Option<Captured>) -> std::io::Result<Tui> {
        Ok(Tui { screen, guard: TerminalGuard::enter()?, usage: SelfUsage::new(), log })
    }

    fn draw(&mut self, session: &Session) -> Result<(), StopReason> {
        let log_line = self.log.as_ref().and_then(|l| l.last());
        let screen = &self.screen;
        self.guard
            .term
            .draw(|f| screen.render(f, session, log_line))
            .map(|_| ())
            .map_err(|e| StopReason::Error(format!("drawing: {e}")))
    }
}

impl Frontend for Tui {
    fn wants_records(&self) -> bool {
        false
    }

    fn tick(&mut self, session: &mut Session) -> Result<(), StopReason> {
        self.usage.sample();
        self.screen.host_usage = (self.usage.cpu_percent, self.usage.rss_bytes);
        self.screen.collect(session);
        self.draw(session)
    }

    fn terminal_event(&mut self, ev: Event, session: &mut Session) -> Result<(), StopReason> {
        let resize = matches!(ev, Event::Resize(_, _));
        self.screen.on_event(ev, session)?;
        if resize {
            let _ = self.guard.term.autoresize();
        }
        self.draw(session)
    }

    fn plugins_changed(&mut self, session: &mut Session) {
        self.screen.plugins_changed(session);
    }

    fn refresh(&self) -> Duration {
        self.screen.refresh()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_rates_cover_the_window_not_one_refresh() {
        // A counter that moves once every 2 s, read at 4 Hz: never 0/s once
        // a move is in the window.
        let mut samples = std::collections::VecDeque::new();
        let t0 = Instant::now();
        let mut v = 0;
        let mut rates = Vec::new();
        for i in 0..40u64 {
            if i % 8 == 4 {
                v += 1;
            }
            rates.push(window_rates(&mut samples, vec![v], t0 + Duration::from_millis(250 * i))[0]);
        }
        assert_eq!(rates[0], None);
        for r in &rates[24..] {
            let r = r.unwrap();
            assert!((0.35..=0.65).contains(&r), "{r} per second for one event every 2 s");
        }
    }
}
