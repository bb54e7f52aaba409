//! The terminal UI: every loaded plugin's panels, arranged by the config's
//! tabs and rows ([`layout`]), driven by the keys of [`keymap`].
//!
//! [`Screen`] holds all state and logic and draws into any ratatui backend, so
//! tests drive it with the same events the terminal sends and render it into a
//! TestBackend; [`Tui`] adds the real terminal.

pub mod keymap;
pub mod mouse;
pub mod group;
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
use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, MouseButton, MouseEvent, MouseEventKind};
use keymap::{Action, BINDINGS};
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
use tracer_plugin_api::{Panel, PanelContent};

#[derive(Default)]
struct PanelState {
    scroll: usize,
    /// The selected row of a table, as an index into the rows shown.
    selected: Option<usize>,
    /// What the selected row is (its key columns' texts), so the selection
    /// follows the row when a refresh re-sorts the table.
    selected_key: Option<Vec<String>>,
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
    /// The key table over the screen, scrolled by `scroll` lines; Esc or q
    /// closes it, other keys act.
    Help { scroll: u16 },
    /// Every log message of the run, scrolled `scroll` lines up from the end.
    Log { scroll: u16 },
    /// The panel picker, its cursor on item `cursor`.
    Picker { cursor: usize },
    /// A one-line prompt being typed.
    Prompt { kind: PromptKind, text: String },
}

/// One pivot: the filters it replaced and where the user was, for Esc.
struct Pivot {
    label: String,
    saved: Vec<(String, serde_json::Value)>,
    tab: usize,
    focus: usize,
    zoom: bool,
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
    /// The OTLP push's figures, with --otlp-endpoint.
    pub otlp: Option<std::sync::Arc<std::sync::Mutex<crate::otlp::Status>>>,
    /// Pivots in force, the latest last.
    pivots: Vec<Pivot>,
    /// Every log message so far (the log view), newest last.
    pub log: Vec<String>,
    /// While `group` is on: the panels as their plugins gave them (`views`
    /// shows them grouped), so `g` can give them back even while paused.
    /// Empty while off: `views` then holds the plugins' panels themselves.
    raw: Vec<(String, Result<PanelContent, String>)>,
    /// Tables with pid and comm columns show one row per process name.
    group: bool,
    /// Where the last draw put tabs, panels and rows (for clicks).
    hits: std::cell::RefCell<mouse::Hits>,
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
            otlp: None,
            pivots: Vec::new(),
            log: Vec::new(),
            hits: Default::default(),
            raw: Vec::new(),
            group: false,
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
            // Frozen data, live view: scrolling, selection and search still show.
            let panels = self.tab_panels();
            for (v, r) in self.views.iter_mut().zip(&panels) {
                if let Some(st) = self.states.get(r) {
                    v.scroll = st.scroll;
                    v.selected = st.selected;
                    v.table = st.table.clone();
                }
            }
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
                PanelView { title, content, scroll: st.scroll, selected: st.selected, table: st.table.clone(), rates: st.rates.clone() }
            })
            .collect();
        if self.group {
            self.group_views();
        }
        self.follow_selections();
        if self.focus >= self.views.len() {
            self.focus = self.views.len().saturating_sub(1);
        }
    }

    /// Keep the plugins' panels in `raw` and show the groupable tables one
    /// row per process name; the title says so.
    fn group_views(&mut self) {
        self.raw = self.views.iter().map(|v| (v.title.clone(), v.content.clone())).collect();
        for v in &mut self.views {
            let Ok(content) = &v.content else { continue };
            let Ok(Panel::Table(t)) = content.as_enum() else { continue };
            if let Some(g) = group::by_comm(t) {
                v.title = format!("{} · by name", v.title);
                v.content = Ok(Panel::Table(g).boxed());
            }
        }
    }

    /// The plugins' panels back, one row per pid.
    fn ungroup_views(&mut self) {
        for (v, (title, content)) in self.views.iter_mut().zip(std::mem::take(&mut self.raw)) {
            (v.title, v.content) = (title, content);
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
        if let Some(st) = &self.otlp {
            let (text, bad) = st.lock().unwrap_or_else(|e| e.into_inner()).summary();
            second.push(Span::styled(format!(" │ {}", tracer_core::text::escape_untrusted(&text)), if bad { Style::new().fg(Color::Red) } else { Style::new() }));
        }
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

    pub fn render(&self, f: &mut Frame, session: &Session) {
        let log_line = self.log.last().cloned();
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
            overlay: match self.mode {
                Mode::Help { scroll } => Some(("keys (Esc or q closes, ↑↓ scroll)", self.help_lines(session), scroll)),
                Mode::Log { scroll } => Some(("log (Esc or q closes, ↑↓ scroll)", self.log_lines(), scroll)),
                _ => None,
            },
            crumb: self.pivots.iter().map(|p| p.label.as_str()).collect::<Vec<_>>().join(" › "),
            clock_text: self.clock.hms_micros(Clock::monotonic_now_ns())[..8].to_string(),
            picker: picker.as_ref(),
            prompt,
            message: msg.as_deref(),
            clock: &self.clock,
        };
        *self.hits.borrow_mut() = render::draw(f, &view);
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

    /// Apply `key=value ...` on top of the focused plugin's settings.
    fn apply_filter(&mut self, session: &mut Session, text: &str) {
        let Some(r) = self.focused() else { return };
        self.apply_filter_to(session, &r.plugin, text);
    }

    fn apply_filter_to(&mut self, session: &mut Session, plugin: &str, text: &str) {
        let Some(idx) = session.slot_index(plugin) else {
            return self.say(format!("plugin {plugin} is not loaded"));
        };
        let result = crate::plugin_settings::parse_assignments(plugin, &session.slots[idx].desc.settings, text)
            .and_then(|pairs| self.set_keys(session, idx, pairs).map_err(|e| format!("{plugin}: {e}")));
        match result {
            Ok(_) => self.say(format!("{plugin}: filter set: {text}")),
            Err(e) => self.say(e),
        }
    }

    /// Write `pairs` over plugin `idx`'s settings, into its kernel filter;
    /// returns the settings they replaced.
    fn set_keys(&mut self, session: &mut Session, idx: usize, pairs: Vec<(String, serde_json::Value)>) -> Result<serde_json::Value, String> {
        let name = session.slots[idx].name().to_string();
        let old = self.settings.get(&name).cloned().unwrap_or_else(|| serde_json::json!({}));
        let mut new = old.clone();
        for (k, v) in pairs {
            new[k] = v;
        }
        session.set_settings(idx, &new.to_string())?;
        self.settings.insert(name, new);
        Ok(old)
    }

    fn focused_state(&mut self) -> Option<&mut PanelState> {
        let r = self.focused()?;
        Some(self.states.entry(r).or_default())
    }

    /// Note what the focused table's selected row is, to find it again after
    /// the next refresh.
    fn remember_selection(&mut self) {
        let key = self.focused_table().and_then(|(t, shown)| {
            let sel = self.focused().and_then(|r| self.states.get(&r)).and_then(|st| st.selected)?;
            row_identity(t, &shown, sel)
        });
        if let Some(st) = self.focused_state() {
            st.selected_key = key;
        }
    }

    /// After a refresh: each selection moves to where its row now is (a
    /// row that is gone leaves the selection at its place, within the table).
    fn follow_selections(&mut self) {
        let panels = self.tab_panels();
        for (v, r) in self.views.iter_mut().zip(&panels) {
            let Some(st) = self.states.get_mut(r) else { continue };
            let (Some(_), Some(key)) = (st.selected, &st.selected_key) else { continue };
            let Ok(content) = &v.content else { continue };
            let Ok(Panel::Table(t)) = content.as_enum() else { continue };
            let shown = table_view::shown(t, &st.table, &self.clock);
            let n = shown.rows.len();
            st.selected = match (0..n).find(|&j| row_identity(t, &shown, j).as_ref() == Some(key)) {
                Some(j) => Some(j),
                None if n == 0 => None,
                None => st.selected.map(|i| i.min(n - 1)),
            };
            v.selected = st.selected;
        }
    }

    /// The focused panel's table as shown (filtered, sorted), if it is one.
    fn focused_table(&self) -> Option<(&tracer_plugin_api::Table, table_view::Shown)> {
        let v = self.views.get(self.focus)?;
        let Ok(Panel::Table(t)) = v.content.as_ref().ok()?.as_enum() else { return None };
        Some((t, table_view::shown(t, &v.table, &self.clock)))
    }

    /// Move the selection (tables) or the scroll (other panels) by `delta`
    /// rows, or to an end.
    fn move_cursor(&mut self, delta: i64, to_end: Option<bool>) {
        let rows = self.focused_table().map(|(_, s)| s.rows.len());
        let Some(st) = self.focused_state() else { return };
        match rows {
            Some(n) if n > 0 => {
                let cur = st.selected.map(|c| c as i64).unwrap_or(if delta > 0 { -1 } else { 0 });
                let next = match to_end {
                    Some(true) => n as i64 - 1,
                    Some(false) => 0,
                    None => cur + delta,
                };
                st.selected = Some(next.clamp(0, n as i64 - 1) as usize);
                self.remember_selection();
            }
            Some(_) => st.selected = None,
            None => {
                // As far as the last draw showed it can go (unknown before
                // the first draw: unbounded, the draw clamps what it shows).
                let max = self.hits.borrow().scroll_max.iter().find(|(i, _)| *i == self.focus).map(|(_, m)| *m).unwrap_or(usize::MAX / 2);
                let Some(st) = self.focused_state() else { return };
                st.scroll = match to_end {
                    Some(false) => 0,
                    Some(true) => max,
                    None => (st.scroll as i64 + delta).clamp(0, max as i64) as usize,
                };
            }
        }
    }

    /// The selected row of the focused table: column names and values.
    fn selected_row(&self) -> Option<(Vec<String>, Vec<tracer_plugin_api::Value>)> {
        let sel = self.focused().and_then(|r| self.states.get(&r)).and_then(|st| st.selected)?;
        let (t, shown) = self.focused_table()?;
        let row = t.rows.get(*shown.source.get(sel)?)?;
        let names = t.columns.iter().map(|c| c.name.to_string()).collect();
        let values = row.iter().map(|v| v.as_enum().cloned().unwrap_or(tracer_plugin_api::Value::Missing)).collect();
        Some((names, values))
    }

    /// Enter: a row that names a process pivots every tracer onto it; a row
    /// whose plugin has a `histogram_<column>` setting shows that histogram.
    fn enter(&mut self, session: &mut Session) {
        use tracer_plugin_api::common_names::{COMM, HISTOGRAM_PREFIX, PID};
        use tracer_plugin_api::Value;
        let Some((names, values)) = self.selected_row() else {
            return self.say("select a row first (↑ ↓), then Enter".into());
        };
        let get = |n: &str| names.iter().position(|c| c == n).map(|i| values[i].clone());
        let comm = match get(COMM) {
            Some(Value::Str(c)) => Some(c.to_string()),
            _ => None,
        };
        match (get(PID), comm) {
            (Some(Value::U64(pid)), comm) => return self.pivot(session, PID, serde_json::json!(pid), format!("pid {pid}{}", comm.map(|c| format!(" {}", tracer_core::text::escape_untrusted(&c))).unwrap_or_default())),
            (_, Some(c)) => return self.pivot(session, COMM, serde_json::json!(c), format!("comm {}", tracer_core::text::escape_untrusted(&c))),
            _ => {}
        }
        let Some(r) = self.focused() else { return };
        let Some(idx) = session.slot_index(&r.plugin) else { return };
        let specs = session.slots[idx].desc.settings.clone();
        for (name, v) in names.iter().zip(&values) {
            let key = format!("{HISTOGRAM_PREFIX}{name}");
            if !specs.iter().any(|s| s.runtime && s.name.as_str() == key) {
                continue;
            }
            let text = match v {
                Value::Str(s) => s.to_string(),
                Value::U64(n) => n.to_string(),
                _ => continue,
            };
            self.apply_filter_to(session, &r.plugin, &format!("{key}={text}"));
            // Show the plugin's histogram on this tab, zoomed.
            let panels = self.tab_panels();
            let hist = panels.iter().position(|p| {
                p.plugin == r.plugin
                    && session.slots[idx].desc.panels.iter().any(|s| s.id.as_str() == p.panel && s.kind == tracer_plugin_api::PanelKind::LOG2_HISTOGRAM)
            });
            if let Some(i) = hist {
                self.focus = i;
                self.zoom = true;
            }
            return;
        }
        self.say("this row names no process and has no histogram".into());
    }

    /// Set `key = value` in every running plugin that declares `key` as a run-
    /// time setting; the previous settings are kept for Esc. Each plugin so
    /// filtered starts counting again (its panels re-baseline).
    fn pivot(&mut self, session: &mut Session, key: &str, value: serde_json::Value, label: String) {
        let mut saved = Vec::new();
        let mut not = Vec::new();
        for idx in 0..session.slots.len() {
            let name = session.slots[idx].name().to_string();
            if session.slots[idx].state != SlotState::Running {
                continue;
            }
            if !session.slots[idx].desc.settings.iter().any(|s| s.runtime && s.name.as_str() == key) {
                not.push(name);
                continue;
            }
            match self.set_keys(session, idx, vec![(key.to_string(), value.clone())]) {
                Ok(old) => {
                    session.reset_plugin(idx);
                    saved.push((name, old));
                }
                Err(e) => not.push(format!("{name} ({e})")),
            }
        }
        for st in self.states.values_mut() {
            st.samples.clear();
            st.selected = None;
            st.scroll = 0;
        }
        let left_out = if not.is_empty() { format!("; not filtered: {}", not.join(", ")) } else { String::new() };
        self.say(format!("pivot on {label}: {} filtered{left_out} (Esc: back)", saved.len()));
        self.pivots.push(Pivot { label, saved, tab: self.tab, focus: self.focus, zoom: self.zoom });
    }

    /// Undo the last pivot: every filter it replaced is written back.
    fn unpivot(&mut self, session: &mut Session) {
        let Some(p) = self.pivots.pop() else { return };
        for (name, old) in p.saved {
            let Some(idx) = session.slot_index(&name) else { continue };
            if let Err(e) = session.set_settings(idx, &old.to_string()) {
                self.say(format!("{name}: restoring its filter: {e}"));
            }
            session.reset_plugin(idx);
            self.settings.insert(name, old);
        }
        for st in self.states.values_mut() {
            st.samples.clear();
        }
        (self.tab, self.focus, self.zoom) = (p.tab, p.focus, p.zoom);
        self.say(format!("pivot on {} undone", p.label));
    }

    /// Esc in the normal mode: undo the most recent thing, one per press.
    fn back(&mut self, session: &mut Session) {
        let has_search = self.focused().and_then(|r| self.states.get(&r)).is_some_and(|st| !st.table.filter.is_empty());
        if has_search {
            if let Some(st) = self.focused_state() {
                st.table.filter.clear();
            }
        } else if self.zoom {
            self.zoom = false;
        } else if !self.pivots.is_empty() {
            self.unpivot(session);
        } else if let Some(st) = self.focused_state() {
            st.selected = None;
        }
    }

    /// The help: every key of the table, then the focused plugin's settings
    /// (what `f` takes), from the plugin's own declaration.
    fn help_lines(&self, session: &Session) -> Vec<String> {
        let mut v: Vec<String> = BINDINGS.iter().map(|b| format!("{:>10}  {}", b.label, b.help)).collect();
        v.push(format!("{:>10}  {}", "Ctrl-C", "quit"));
        v.push(format!("{:>10}  {}", "prompts", "Enter applies, Esc cancels, Backspace, Ctrl-U clears, Ctrl-W deletes a word"));
        if let Some(r) = self.focused() {
            if let Some(i) = session.slot_index(&r.plugin) {
                let specs: Vec<_> = session.slots[i].desc.settings.iter().filter(|s| s.runtime).cloned().collect();
                v.push(String::new());
                v.push(format!("f on {} takes KEY=VALUE ... (KEY=- unsets):", r.plugin));
                v.extend(crate::plugin_settings::describe(&specs).into_iter().map(|l| format!("  {}", tracer_core::text::escape_untrusted(&l))));
            }
        }
        v
    }

    fn log_lines(&self) -> Vec<String> {
        if self.log.is_empty() {
            return vec!["(nothing logged)".into()];
        }
        self.log.iter().map(|l| tracer_core::text::escape_untrusted(l).into_owned()).collect()
    }

    /// Every panel of the current tab as JSON, in a file under the temporary
    /// directory; the path is said.
    fn dump(&mut self) {
        let panels = self.tab_panels();
        let items: Vec<serde_json::Value> = panels
            .iter()
            .zip(&self.views)
            .filter_map(|(r, v)| v.content.as_ref().ok().map(|c| tracer_core::output::panel_json(&r.plugin, &r.panel, &v.title, c)))
            .collect();
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let path = std::env::temp_dir().join(format!("tracer-dump-{stamp}-{}.json", std::process::id()));
        let doc = serde_json::json!({ "tab": self.layout.tabs.get(self.tab).map(|t| t.name.clone()), "pivot": self.pivots.last().map(|p| p.label.clone()), "panels": items });
        // A new file only (O_EXCL): the name is guessable, and a symlink put
        // there by someone else must not make root write through it.
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &serde_json::to_vec_pretty(&doc).unwrap_or_default()));
        match written {
            Ok(()) => self.say(format!("{} panels written to {}", items.len(), path.display())),
            Err(e) => self.say(format!("writing {}: {e}", path.display())),
        }
    }

    fn act(&mut self, a: Action, session: &mut Session) -> Result<(), StopReason> {
        let n = self.tab_panels().len().max(1);
        match a {
            Action::Quit => return Err(StopReason::Quit),
            Action::Help => self.mode = if matches!(self.mode, Mode::Help { .. }) { Mode::Normal } else { Mode::Help { scroll: 0 } },
            Action::Log => self.mode = Mode::Log { scroll: 0 },
            Action::Pause => self.paused = !self.paused,
            Action::Reset => {
                if let Some(idx) = self.focused().and_then(|r| session.slot_index(&r.plugin)) {
                    session.reset_plugin(idx);
                    let name = session.slots[idx].name().to_string();
                    self.states.iter_mut().filter(|(r, _)| r.plugin == name).for_each(|(_, st)| st.samples.clear());
                    self.say(format!("{name}: counters reset (R resets every plugin)"));
                }
            }
            Action::ResetAll => {
                session.reset();
                self.states.values_mut().for_each(|st| st.samples.clear());
                self.say("every plugin's counters reset".into());
            }
            Action::FocusNext => self.focus = (self.focus + 1) % n,
            Action::FocusPrev => self.focus = (self.focus + n - 1) % n,
            Action::Tab(i) => {
                if i < self.layout.tabs.len() {
                    (self.tab, self.focus, self.zoom) = (i, 0, false);
                }
            }
            Action::NextTab | Action::PrevTab => {
                let t = self.layout.tabs.len().max(1);
                self.tab = if a == Action::NextTab { (self.tab + 1) % t } else { (self.tab + t - 1) % t };
                self.focus = 0;
                self.zoom = false;
            }
            Action::Up => self.move_cursor(-1, None),
            Action::Down => self.move_cursor(1, None),
            Action::PageUp => self.move_cursor(-10, None),
            Action::PageDown => self.move_cursor(10, None),
            Action::Top => self.move_cursor(0, Some(false)),
            Action::Bottom => self.move_cursor(0, Some(true)),
            Action::Enter => self.enter(session),
            Action::Back => self.back(session),
            Action::SortPrev | Action::SortNext | Action::SortReverse => {
                let ncols = self.focused_table().map(|(t, _)| t.columns.len());
                if let (Some(ncols), Some(st)) = (ncols, self.focused_state()) {
                    st.table.step_sort(a, ncols);
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
            Action::Dump => self.dump(),
            Action::Group => {
                self.group = !self.group;
                for st in self.states.values_mut() {
                    st.selected = None;
                }
                if self.group {
                    self.group_views();
                } else {
                    self.ungroup_views();
                }
                self.say(if self.group { "rows grouped by process name (g: per pid)".into() } else { "rows per pid (g: group by name)".into() });
            }
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
                            st.selected = None;
                        }
                    }
                }
            }
            KeyCode::Esc => self.mode = Mode::Normal,
            _ => {
                keymap::edit_line(text, k);
            }
        }
    }

    /// Keys of the help and log overlays: scroll, or close (Esc, q, or the
    /// overlay's own key); other keys act as in the normal mode.
    fn overlay_key(&mut self, k: KeyEvent, session: &mut Session) -> Result<(), StopReason> {
        let (scroll, own) = match self.mode {
            Mode::Help { scroll } => (scroll, Action::Help),
            Mode::Log { scroll } => (scroll, Action::Log),
            _ => return Ok(()),
        };
        let set = |m: &mut Mode, v: u16| match m {
            Mode::Help { scroll } | Mode::Log { scroll } => *scroll = v,
            _ => {}
        };
        match (k.code, keymap::action_for(k)) {
            (KeyCode::Esc | KeyCode::Char('q'), _) => self.mode = Mode::Normal,
            (_, Some(a)) if a == own => self.mode = Mode::Normal,
            (_, Some(Action::Up)) => set(&mut self.mode, scroll.saturating_sub(1)),
            (_, Some(Action::Down)) => set(&mut self.mode, scroll.saturating_add(1)),
            (_, Some(Action::PageUp)) => set(&mut self.mode, scroll.saturating_sub(10)),
            (_, Some(Action::PageDown)) => set(&mut self.mode, scroll.saturating_add(10)),
            (_, Some(Action::Quit)) => return Err(StopReason::Quit),
            (_, Some(a)) => {
                self.mode = Mode::Normal;
                self.act(a, session)?;
            }
            _ => {}
        }
        Ok(())
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
                Mode::Help { .. } | Mode::Log { .. } => self.overlay_key(k, session)?,
                Mode::Normal => {
                    if let Some(a) = keymap::action_for(k) {
                        self.act(a, session)?;
                    }
                }
            }
            // What the key changed is shown at once, not at the next refresh.
            self.collect(session);
        }
        if let Event::Mouse(m) = ev {
            self.on_mouse(m, session)?;
            self.collect(session);
        }
        Ok(())
    }

    /// A click focuses the panel under it and selects the row (or switches
    /// to the tab); the wheel scrolls the panel under the pointer, or the
    /// help and log.
    fn on_mouse(&mut self, m: MouseEvent, session: &mut Session) -> Result<(), StopReason> {
        const WHEEL_STEP: i64 = 3;
        let step = match m.kind {
            MouseEventKind::ScrollDown => WHEEL_STEP,
            MouseEventKind::ScrollUp => -WHEEL_STEP,
            MouseEventKind::Down(MouseButton::Left) => 0,
            _ => return Ok(()),
        };
        match &mut self.mode {
            Mode::Help { scroll } | Mode::Log { scroll } => {
                *scroll = (*scroll as i64 + step).clamp(0, u16::MAX as i64) as u16;
                return Ok(());
            }
            Mode::Normal => {}
            _ => return Ok(()),
        }
        let target = self.hits.borrow().at(m.column, m.row);
        match target {
            mouse::Target::Tab(i) if step == 0 => self.act(Action::Tab(i), session)?,
            mouse::Target::Panel { index, row } => {
                self.focus = index;
                if step != 0 {
                    self.move_cursor(step, None);
                } else if let (Some(r), Some(st)) = (row, self.focused_state()) {
                    st.selected = Some(r);
                    self.remember_selection();
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// What identifies row `i` of a shown table: the texts of its key columns
/// (those a plugin declares to say what a row is: pid, name, syscall), or
/// the whole row when it declares none.
fn row_identity(t: &tracer_plugin_api::Table, shown: &table_view::Shown, i: usize) -> Option<Vec<String>> {
    let row = shown.rows.get(i)?;
    let keys: Vec<usize> = t.columns.iter().enumerate().filter(|(_, c)| c.priority == 0).map(|(k, _)| k).collect();
    Some(if keys.is_empty() { row.clone() } else { keys.iter().filter_map(|&k| row.get(k).cloned()).collect() })
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
    pub fn new(screen: Screen, log: Option<Captured>, mouse: bool) -> std::io::Result<Tui> {
        Ok(Tui { screen, guard: TerminalGuard::enter(mouse)?, usage: SelfUsage::new(), log })
    }

    fn draw(&mut self, session: &Session) -> Result<(), StopReason> {
        if let Some(l) = &self.log {
            self.screen.log = l.all();
        }
        let screen = &self.screen;
        self.guard
            .term
            .draw(|f| screen.render(f, session))
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
