//! Drawing, as a pure function of a [`View`]: testable with ratatui's TestBackend.

use super::keymap::BINDINGS;
use ratatui::{
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Sparkline, Table as TableWidget, Wrap},
    Frame,
};
use tracer_core::format::{self, Clock};
use tracer_core::output::log2_bounds;
use tracer_plugin_api::{FieldKind, Panel, PanelContent, Table};

pub struct PanelView {
    pub title: String,
    pub content: Result<PanelContent, String>,
    pub scroll: usize,
}

pub struct View<'a> {
    pub status: Vec<Line<'static>>,
    pub panels: &'a [PanelView],
    pub focus: usize,
    pub help: bool,
    pub prompt: Option<&'a str>,
    pub message: Option<&'a str>,
    pub clock: &'a Clock,
}

pub fn draw(f: &mut Frame, v: &View) {
    let area = f.area();
    let status_h = v.status.len() as u16;
    let [status, body, footer] = Layout::vertical([
        Constraint::Length(status_h),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    f.render_widget(Paragraph::new(v.status.clone()), status);

    if v.panels.is_empty() {
        f.render_widget(Paragraph::new("no panels: check [ui] panels in the config"), body);
    } else {
        let rows = Layout::vertical(v.panels.iter().map(|_| Constraint::Fill(1))).split(body);
        for (i, (p, r)) in v.panels.iter().zip(rows.iter()).enumerate() {
            draw_panel(f, *r, p, i == v.focus, v.clock);
        }
    }

    let foot = match (v.prompt, v.message) {
        (Some(p), _) => Line::from(vec![
            Span::styled("filter> ", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(p.to_string()),
            Span::styled("▏", Style::new().add_modifier(Modifier::SLOW_BLINK)),
        ]),
        (None, Some(m)) => Line::from(m.to_string()),
        (None, None) => Line::from(
            BINDINGS
                .iter()
                .take(5)
                .map(|b| format!("{} {}", b.label, b.help.split_whitespace().next().unwrap_or("")))
                .collect::<Vec<_>>()
                .join("  "),
        ),
    };
    f.render_widget(Paragraph::new(foot).style(Style::new().fg(Color::Black).bg(Color::Gray)), footer);

    if v.help {
        draw_help(f, area);
    }
}

fn draw_panel(f: &mut Frame, area: Rect, p: &PanelView, focused: bool, clock: &Clock) {
    let border = if focused { Style::new().fg(Color::Cyan) } else { Style::new() };
    let block = Block::default().borders(Borders::ALL).border_style(border).title(p.title.clone());
    let inner = block.inner(area);
    f.render_widget(block, area);
    match &p.content {
        Err(e) => f.render_widget(Paragraph::new(e.clone()).wrap(Wrap { trim: true }), inner),
        Ok(c) => match c.as_enum() {
            Ok(Panel::Table(t)) => draw_table(f, inner, t, p.scroll, clock),
            Ok(Panel::Log2Histogram(h)) => {
                f.render_widget(Paragraph::new(histogram_lines(&h.unit, &h.buckets, inner.width)).scroll((p.scroll as u16, 0)), inner)
            }
            Ok(Panel::Counters(cs)) => {
                let spans: Vec<Span> = cs
                    .iter()
                    .flat_map(|c| {
                        [
                            Span::styled(format!("{}: ", c.name), Style::new().fg(Color::Gray)),
                            Span::styled(format!("{} {}   ", c.value, c.unit), Style::new().add_modifier(Modifier::BOLD)),
                        ]
                    })
                    .collect();
                f.render_widget(Paragraph::new(Line::from(spans)).wrap(Wrap { trim: true }), inner)
            }
            Ok(Panel::TimeSeries(ss)) => {
                if let Some(s) = ss.first() {
                    let take = inner.width as usize;
                    let pts = &s.points[s.points.len().saturating_sub(take)..];
                    f.render_widget(Sparkline::default().data(pts), inner)
                }
            }
            Ok(Panel::Text(t)) => f.render_widget(Paragraph::new(t.to_string()).scroll((p.scroll as u16, 0)), inner),
            _ => f.render_widget(Paragraph::new("(a panel kind this host does not know)"), inner),
        },
    }
}

fn draw_table(f: &mut Frame, area: Rect, t: &Table, scroll: usize, clock: &Clock) {
    let visible = area.height.saturating_sub(1) as usize;
    let start = scroll.min(t.rows.len().saturating_sub(1));
    let rows: Vec<Vec<String>> = t
        .rows
        .iter()
        .skip(start)
        .take(visible)
        .map(|r| r.iter().zip(t.columns.iter()).map(|(v, c)| format::value_text(v, c.kind, clock)).collect())
        .collect();
    let last = t.columns.len().saturating_sub(1);
    let widths: Vec<Constraint> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i == last && c.kind == FieldKind::STR {
                return Constraint::Fill(1);
            }
            let w = rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0).max(c.name.len());
            Constraint::Length(w.min(40) as u16)
        })
        .collect();
    let header = Row::new(t.columns.iter().map(|c| Cell::from(c.name.to_uppercase())))
        .style(Style::new().add_modifier(Modifier::BOLD));
    let body = rows.into_iter().map(Row::new);
    f.render_widget(TableWidget::new(body, widths).header(header).column_spacing(1), area);
}

/// runqlat-style lines, with bars sized to the panel.
pub fn histogram_lines(unit: &str, buckets: &[u64], width: u16) -> Vec<Line<'static>> {
    let last = buckets.iter().rposition(|&c| c > 0).map(|i| i + 1).unwrap_or(0);
    let max = buckets.iter().copied().max().unwrap_or(0).max(1);
    let bar_w = (width as usize).saturating_sub(36).clamp(10, 60) as u64;
    let mut v = vec![Line::from(format!("{unit:>21} : {:<8} distribution", "count"))];
    for (i, &c) in buckets[..last].iter().enumerate() {
        let (lo, hi) = log2_bounds(i);
        let n = (c * bar_w).div_ceil(max) as usize;
        v.push(Line::from(format!("{lo:>9} -> {hi:<9} : {c:<8} |{:<w$}|", "*".repeat(n), w = bar_w as usize)));
    }
    v
}

fn draw_help(f: &mut Frame, area: Rect) {
    let lines: Vec<Line> = BINDINGS
        .iter()
        .map(|b| Line::from(vec![Span::styled(format!("{:>10}  ", b.label), Style::new().add_modifier(Modifier::BOLD)), Span::raw(b.help)]))
        .collect();
    let h = (lines.len() as u16 + 2).min(area.height);
    let w = 72.min(area.width);
    let r = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    f.render_widget(Clear, r);
    f.render_widget(Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title("keys")), r);
}
