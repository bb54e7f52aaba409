//! Drawing, as a pure function of a [`View`]: tested with ratatui's TestBackend.

use tracer_core::text::escape_untrusted;
use super::keymap::BINDINGS;
use super::layout::{constraint, Row};
use super::columns;
use super::mouse::{self, Hits, RowsAt};
use super::table_view::{self, TableState};
use ratatui::{
    layout::{Alignment, Constraint, Flex, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Cell, Clear, Paragraph, Row as TableRow, Sparkline, Table as TableWidget, Tabs, Wrap},
    Frame,
};
use tracer_core::format::Clock;
use tracer_core::output::log2_bounds;
use tracer_plugin_api::{Panel, PanelContent};

/// What one panel slot shows.
pub struct PanelView {
    pub title: String,
    pub content: Result<PanelContent, String>,
    pub scroll: usize,
    /// The selected row of a table (index into the rows shown).
    pub selected: Option<usize>,
    pub table: TableState,
    /// Per counter (same order), its rate per second since the last refresh.
    pub rates: Vec<Option<f64>>,
}

/// The panel picker: every panel of every plugin, on or off.
pub struct PickerView {
    pub items: Vec<(String, String, bool)>,
    pub cursor: usize,
}

pub struct View<'a> {
    /// One chunk per plugin, packed into as many lines as the width needs.
    pub status: Vec<Span<'static>>,
    /// The host's own line (CPU, RSS, refresh, problems).
    pub host_line: Line<'static>,
    pub tabs: Vec<String>,
    pub tab: usize,
    /// Rows of the current tab; panels in `panels`, row by row, in order.
    pub rows: &'a [Row],
    pub panels: &'a [PanelView],
    pub focus: usize,
    pub zoom: bool,
    /// The help or the log over the screen: title, lines, scroll.
    pub overlay: Option<(&'a str, Vec<String>, u16)>,
    pub picker: Option<&'a PickerView>,
    /// The pivots in force (`pid 42 python3 › ...`), empty when none.
    pub crumb: String,
    /// Wall-clock `HH:MM:SS`.
    pub clock_text: String,
    /// (label, text) of an input line: the kernel filter or the table search.
    pub prompt: Option<(&'a str, &'a str)>,
    pub message: Option<&'a str>,
    pub clock: &'a Clock,
}

/// Spans packed into lines no wider than `width`.
fn pack(spans: &[Span<'static>], width: u16) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut cur: Vec<Span<'static>> = Vec::new();
    let mut used = 0usize;
    for s in spans {
        let w = s.content.chars().count();
        if used + w > width as usize && !cur.is_empty() {
            lines.push(Line::from(std::mem::take(&mut cur)));
            used = 0;
        }
        used += w;
        cur.push(s.clone());
    }
    if !cur.is_empty() {
        lines.push(Line::from(cur));
    }
    lines
}

/// Below this the panels cannot be drawn honestly: the screen says so instead.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;

/// Draws the screen; returns where tabs, panels and table rows went (for the mouse).
pub fn draw(f: &mut Frame, v: &View) -> Hits {
    let mut hits = Hits::default();
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!("terminal too small: {}x{}, need at least {MIN_WIDTH}x{MIN_HEIGHT} (q quits)", area.width, area.height);
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return hits;
    }
    let mut status_lines = pack(&v.status, area.width);
    status_lines.push(v.host_line.clone());
    let [status, tabs, body, footer] = Layout::vertical([
        Constraint::Length(status_lines.len() as u16),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    f.render_widget(Paragraph::new(status_lines), status);
    // Tabs on the left; the pivot breadcrumb and the clock on the right.
    let mut right = vec![Span::raw(format!(" {} ", v.clock_text))];
    if !v.crumb.is_empty() {
        right.insert(0, Span::styled(format!(" ▶ {} (Esc back) ", v.crumb), Style::new().fg(Color::Black).bg(Color::Yellow)));
    }
    let right = Line::from(right);
    let [tabs, side] = Layout::horizontal([Constraint::Min(10), Constraint::Length(right.width() as u16)]).areas(tabs);
    let labels: Vec<String> = v.tabs.iter().enumerate().map(|(i, t)| match super::keymap::digit_of_tab(i) {
        Some(d) => format!("{d} {t}"),
        None => t.to_string(),
    }).collect();
    hits.tab_y = tabs.y;
    // Padded titles while they fit; without the padding when they do not
    // (many tabs, a narrow terminal), so every title stays on screen longer.
    let fits = |pad: u16| mouse::tab_ranges(tabs.x, &labels, pad).last().is_none_or(|(_, end, _)| *end <= tabs.x + tabs.width);
    let pad = if fits(1) { 1 } else { 0 };
    hits.tabs = mouse::tab_ranges(tabs.x, &labels, pad).into_iter().filter(|(_, end, _)| *end <= tabs.x + tabs.width).collect();
    let titles: Vec<Line> = labels.into_iter().map(Line::from).collect();
    let padding = if pad == 1 { " " } else { "" };
    f.render_widget(
        Tabs::new(titles)
            .padding(padding, padding)
            .select(v.tab)
            .highlight_style(Style::new().fg(Color::Black).bg(Color::Cyan))
            .divider("│"),
        tabs,
    );
    f.render_widget(Paragraph::new(right), side);

    if v.panels.is_empty() {
        f.render_widget(Paragraph::new("no panels on this tab: press c to choose panels"), body);
    } else if v.zoom {
        if let Some(p) = v.panels.get(v.focus) {
            let (rows, max) = draw_panel(f, body, p, true, v.clock);
            hits.panels.push((body, v.focus, rows));
            hits.scroll_max.extend(max.map(|m| (v.focus, m)));
        }
    } else {
        let row_areas = Layout::vertical(v.rows.iter().map(|r| constraint(r.height))).split(body);
        let mut i = 0;
        for (row, ra) in v.rows.iter().zip(row_areas.iter()) {
            let cells = Layout::horizontal(row.cells.iter().map(|c| constraint(c.width))).split(*ra);
            for ca in cells.iter() {
                if let Some(p) = v.panels.get(i) {
                    let (rows, max) = draw_panel(f, *ca, p, i == v.focus, v.clock);
                    hits.panels.push((*ca, i, rows));
                    hits.scroll_max.extend(max.map(|m| (i, m)));
                }
                i += 1;
            }
        }
    }

    let foot = match (v.prompt, v.message) {
        (Some((label, text)), _) => Line::from(vec![
            Span::styled(format!("{label}> "), Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(text.to_string()),
            Span::raw("▏"),
        ]),
        (None, Some(m)) => Line::from(m.to_string()),
        (None, None) => Line::from(fit_words(BINDINGS.iter().filter(|b| !b.short.is_empty()).map(|b| format!("{} {}", b.label, b.short)), "  ", footer.width as usize)),
    };
    f.render_widget(Paragraph::new(foot).style(Style::new().fg(Color::Black).bg(Color::Gray)), footer);

    if let Some(p) = v.picker {
        draw_picker(f, area, p);
    }
    if let Some((title, lines, scroll)) = &v.overlay {
        draw_overlay(f, area, title, lines, *scroll);
    }
    hits
}

/// One panel in its box; for a table, where its rows went; for text and
/// histograms, how far they scroll (lines past what the box shows).
fn draw_panel(f: &mut Frame, area: Rect, p: &PanelView, focused: bool, clock: &Clock) -> (Option<RowsAt>, Option<usize>) {
    let border = if focused { Style::new().fg(Color::Cyan) } else { Style::new() };
    let mut title = p.title.clone();
    if !p.table.filter.is_empty() {
        title.push_str(&format!(" /{}", escape_untrusted(&p.table.filter)));
    }
    let inner = Block::default().borders(Borders::ALL).inner(area);
    let fitted = match &p.content {
        Ok(c) => match c.as_enum() {
            Ok(Panel::Table(t)) => Some(Fitted::new(t, p, clock, inner.width)),
            _ => None,
        },
        Err(_) => None,
    };
    let mut block = Block::default().borders(Borders::ALL).border_style(border).title(title);
    // Where the selection is, and columns left out for want of width (said,
    // never cut).
    if let Some(fit) = &fitted {
        let mut foot = Vec::new();
        if let Some(sel) = p.selected {
            foot.push(format!("{}/{}", sel + 1, fit.shown.rows.len()));
        }
        let n = fit.hidden();
        if n > 0 {
            foot.push(format!("+{n} col{} (z)", if n == 1 { "" } else { "s" }));
        }
        if !foot.is_empty() {
            block = block.title_bottom(Line::from(foot.join(" ")).right_aligned());
        }
    }
    f.render_widget(block, area);
    if let Some(fit) = &fitted {
        return (Some(draw_table(f, inner, fit, p)), None);
    }
    // Lines beyond the box: the furthest a scroll can go.
    let scrolled = |lines: usize| {
        let max = lines.saturating_sub(inner.height as usize);
        (p.scroll.min(max) as u16, max)
    };
    let mut scroll_max = None;
    match &p.content {
        Err(e) => f.render_widget(Paragraph::new(e.clone()).wrap(Wrap { trim: true }), inner),
        Ok(c) => match c.as_enum() {
            Ok(Panel::Log2Histogram(h)) => {
                let lines = histogram_lines(&escape_untrusted(&h.unit), &h.buckets, inner.width);
                let (at, max) = scrolled(lines.len());
                scroll_max = Some(max);
                f.render_widget(Paragraph::new(lines).scroll((at, 0)), inner)
            }
            Ok(Panel::Counters(cs)) => {
                let spans: Vec<Span> = cs
                    .iter()
                    .enumerate()
                    .flat_map(|(i, c)| {
                        let rate = match p.rates.get(i).copied().flatten() {
                            Some(r) => format!(" ({}/s)", human_rate(r)),
                            None => String::new(),
                        };
                        [
                            Span::styled(format!("{}: ", c.name), Style::new().fg(Color::Gray)),
                            Span::styled(format!("{} {}", c.value, c.unit), Style::new().add_modifier(Modifier::BOLD)),
                            Span::raw(format!("{rate}   ")),
                        ]
                    })
                    .collect();
                f.render_widget(Paragraph::new(Line::from(spans)).wrap(Wrap { trim: true }), inner)
            }
            Ok(Panel::TimeSeries(ss)) => {
                let rows = Layout::vertical(ss.iter().map(|_| Constraint::Fill(1))).split(inner);
                for (s, r) in ss.iter().zip(rows.iter()) {
                    let [label, spark] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(*r);
                    let last = s.points.last().copied().unwrap_or(0);
                    f.render_widget(Paragraph::new(format!("{}: {} {}", s.name, last, s.unit)), label);
                    let take = spark.width as usize;
                    let pts = &s.points[s.points.len().saturating_sub(take)..];
                    f.render_widget(Sparkline::default().data(pts).style(Style::new().fg(Color::Green)), spark);
                }
            }
            Ok(Panel::Text(t)) => {
                let text = tracer_core::text::escape_untrusted_lines(t);
                let (at, max) = scrolled(text.lines().count());
                scroll_max = Some(max);
                f.render_widget(Paragraph::new(text).scroll((at, 0)), inner)
            }
            _ => f.render_widget(Paragraph::new("(a panel kind this host does not know)"), inner),
        },
    }
    (None, scroll_max)
}

/// As many whole items as fit in `width`, joined by `sep`: the footer drops
/// its last hints rather than cut one.
fn fit_words(items: impl Iterator<Item = String>, sep: &str, width: usize) -> String {
    let mut out = String::new();
    for it in items {
        let extra = if out.is_empty() { 0 } else { sep.chars().count() } + it.chars().count();
        if out.chars().count() + extra > width {
            break;
        }
        if !out.is_empty() {
            out.push_str(sep);
        }
        out.push_str(&it);
    }
    out
}

/// `1.2k`, `35`, `0.50`.
pub fn human_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.1}M", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1}k", r / 1e3)
    } else if r >= 10.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.2}")
    }
}

/// A table fitted to `area`: which columns show, how wide, and how many hid.
struct Fitted {
    shown: table_view::Shown,
    widths: Vec<Option<usize>>,
}

impl Fitted {
    fn new(t: &tracer_plugin_api::Table, p: &PanelView, clock: &Clock, width: u16) -> Fitted {
        let shown = table_view::shown(t, &p.table, clock);
        let widths = columns::fit(&shown.needs, width as usize);
        Fitted { shown, widths }
    }
    fn hidden(&self) -> usize {
        self.widths.iter().filter(|w| w.is_none()).count()
    }
}

/// The first row shown: the scroll position, moved so the selection is in view.
fn first_row(p: &PanelView, rows: usize, visible: usize) -> usize {
    let mut start = p.scroll.min(rows.saturating_sub(1));
    if let Some(sel) = p.selected {
        if sel < start {
            start = sel;
        } else if visible > 0 && sel >= start + visible {
            start = sel + 1 - visible;
        }
    }
    start
}

fn draw_table(f: &mut Frame, area: Rect, fitted: &Fitted, p: &PanelView) -> RowsAt {
    let s = &fitted.shown;
    let visible = area.height.saturating_sub(1) as usize;
    let start = first_row(p, s.rows.len(), visible);
    let cols: Vec<(usize, usize)> = fitted.widths.iter().enumerate().filter_map(|(i, w)| w.map(|w| (i, w))).collect();
    // Whole, or for a flexible column shortened with a visible `…`.
    let cell = |i: usize, w: usize, text: &str| {
        let text = if s.needs[i].flex_min > 0 { columns::elide_middle(text, w) } else { text.to_string() };
        Cell::from(Line::from(text).alignment(if s.right[i] { Alignment::Right } else { Alignment::Left }))
    };
    let header = TableRow::new(cols.iter().map(|&(i, w)| cell(i, w, &s.headers[i]))).style(Style::new().add_modifier(Modifier::BOLD));
    let body = s.rows.iter().enumerate().skip(start).take(visible).map(|(k, r)| {
        let row = TableRow::new(cols.iter().map(|&(i, w)| {
            let c = cell(i, w, &r[i]);
            if s.coloured[i] {
                c.style(Style::new().fg(value_colour(&r[i])))
            } else {
                c
            }
        }));
        if p.selected == Some(k) {
            row.style(Style::new().add_modifier(Modifier::REVERSED))
        } else {
            row
        }
    });
    let widths = cols.iter().map(|&(_, w)| Constraint::Length(w as u16));
    f.render_widget(
        TableWidget::new(body, widths).header(header).column_spacing(columns::SPACING as u16).flex(Flex::Start),
        area,
    );
    // Rows start under the header line.
    RowsAt { y: area.y + 1, first: start, count: s.rows.len().saturating_sub(start).min(visible) }
}

/// The colour of a value in a column coloured by value: the same text gets
/// the same colour in every panel and every run (FNV-1a of its bytes onto a
/// palette without red, which the status line keeps for losses).
pub fn value_colour(text: &str) -> Color {
    const PALETTE: [Color; 10] = [
        Color::Green,
        Color::Yellow,
        Color::Blue,
        Color::Magenta,
        Color::Cyan,
        Color::LightGreen,
        Color::LightYellow,
        Color::LightBlue,
        Color::LightMagenta,
        Color::LightCyan,
    ];
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    PALETTE[(hash % PALETTE.len() as u64) as usize]
}

/// runqlat-style lines, with bars sized to the panel.
pub fn histogram_lines(unit: &str, buckets: &[u64], width: u16) -> Vec<Line<'static>> {
    // A u64 value has 64 log2 buckets; more would come from a faulty plugin.
    let buckets = &buckets[..buckets.len().min(64)];
    let last = buckets.iter().rposition(|&c| c > 0).map(|i| i + 1).unwrap_or(0);
    let max = buckets.iter().copied().max().unwrap_or(0).max(1);
    let bar_w = (width as usize).saturating_sub(36).clamp(4, 60) as u64;
    let mut v = vec![Line::from(format!("{unit:>21} : {:<8} distribution", "count"))];
    for (i, &c) in buckets[..last].iter().enumerate() {
        let (lo, hi) = log2_bounds(i);
        let n = (c * bar_w).div_ceil(max) as usize;
        v.push(Line::from(format!("{lo:>9} -> {hi:<9} : {c:<8} |{:<w$}|", "*".repeat(n), w = bar_w as usize)));
    }
    v.extend(tracer_core::output::quantile_marks(buckets).map(Line::from));
    v
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

fn draw_picker(f: &mut Frame, area: Rect, p: &PickerView) {
    let r = centered(area, 70, p.items.len() as u16 + 3);
    let inner_h = r.height.saturating_sub(3) as usize;
    let start = p.cursor.saturating_sub(inner_h.saturating_sub(1));
    let lines: Vec<Line> = p
        .items
        .iter()
        .enumerate()
        .skip(start)
        .take(inner_h)
        .map(|(i, (id, title, on))| {
            let style = if i == p.cursor { Style::new().add_modifier(Modifier::REVERSED) } else { Style::new() };
            Line::styled(format!("[{}] {id:<32} {title}", if *on { "x" } else { " " }), style)
        })
        .chain(std::iter::once(Line::styled("Space toggles · Esc closes", Style::new().fg(Color::Gray))))
        .collect();
    f.render_widget(Clear, r);
    f.render_widget(Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title("panels")), r);
}

/// The help or the log: wrapped to the screen, scrolled, never cut.
fn draw_overlay(f: &mut Frame, area: Rect, title: &str, lines: &[String], scroll: u16) {
    let w = area.width.saturating_sub(4).min(110);
    let text: Vec<Line> = lines.iter().map(|l| Line::from(l.clone())).collect();
    let para = Paragraph::new(text).wrap(Wrap { trim: false });
    let needed = para.line_count(w.saturating_sub(2)) as u16 + 2;
    let r = centered(area, w, needed.min(area.height.saturating_sub(2)));
    let room = r.height.saturating_sub(2);
    let scroll = scroll.min(needed.saturating_sub(2).saturating_sub(room));
    let title = if needed.saturating_sub(2) > room { format!("{title} {}/{}", scroll + room, needed - 2) } else { title.to_string() };
    f.render_widget(Clear, r);
    f.render_widget(para.scroll((scroll, 0)).block(Block::default().borders(Borders::ALL).title(title)), r);
}
