//! The screen's arrangement: tabs of rows of panels, from the config's
//! `[[ui.tabs]]`, plus a tab for panels that no tab names (plugins dropped in
//! later, or no layout at all). Panels switched off in the picker are left out
//! of their row, and a row left empty goes away.

use ratatui::layout::Constraint;
use std::collections::HashSet;
use crate::config_file::{Size, TabConfig};
use tracer_core::session::Session;

/// `plugin.panel`
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PanelRef {
    pub plugin: String,
    pub panel: String,
}

impl PanelRef {
    pub fn parse(s: &str) -> Option<PanelRef> {
        let (a, b) = s.split_once('.')?;
        Some(PanelRef { plugin: a.into(), panel: b.into() })
    }
    pub fn id(&self) -> String {
        format!("{}.{}", self.plugin, self.panel)
    }
}

#[derive(Debug, Clone)]
pub struct Cell {
    pub panel: PanelRef,
    pub width: Size,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub height: Size,
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone)]
pub struct Tab {
    pub name: String,
    pub rows: Vec<Row>,
}

pub fn constraint(s: Size) -> Constraint {
    match s {
        Size::Percent(p) => Constraint::Percentage(p),
        Size::Fixed(n) => Constraint::Length(n),
        Size::Min(n) => Constraint::Min(n),
        Size::Fill => Constraint::Fill(1),
    }
}

#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub tabs: Vec<Tab>,
}

impl Layout {
    /// From the (validated) config.
    pub fn from_config(tabs: &[TabConfig]) -> Layout {
        let size = |s: &str| Size::parse(s).unwrap_or(Size::Fill);
        Layout {
            tabs: tabs
                .iter()
                .map(|t| Tab {
                    name: t.name.clone(),
                    rows: t
                        .rows
                        .iter()
                        .map(|r| Row {
                            height: size(&r.height),
                            cells: r
                                .panels
                                .iter()
                                .enumerate()
                                .filter_map(|(i, p)| {
                                    let width = r.widths.get(i).map(|w| size(w)).unwrap_or(Size::Fill);
                                    PanelRef::parse(p).map(|panel| Cell { panel, width })
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    pub fn placed(&self) -> HashSet<PanelRef> {
        self.tabs.iter().flat_map(|t| t.rows.iter().flat_map(|r| r.cells.iter().map(|c| c.panel.clone()))).collect()
    }

    /// Give every loaded plugin's panels that no tab names a tab of their own
    /// (one per plugin, named after it): new plugins appear without a restart.
    pub fn place_unplaced(&mut self, session: &Session) {
        let placed = self.placed();
        for slot in &session.slots {
            let missing: Vec<PanelRef> = slot
                .desc
                .panels
                .iter()
                .map(|p| PanelRef { plugin: slot.name().to_string(), panel: p.id.to_string() })
                .filter(|r| !placed.contains(r))
                .collect();
            if missing.is_empty() {
                continue;
            }
            // Two panels a row, in the plugin's order.
            let rows = missing
                .chunks(2)
                .map(|pair| Row { height: Size::Fill, cells: pair.iter().map(|p| Cell { panel: p.clone(), width: Size::Fill }).collect() })
                .collect();
            let name = slot.name().to_string();
            match self.tabs.iter_mut().find(|t| t.name == name) {
                Some(t) => t.rows.extend::<Vec<Row>>(rows),
                None => self.tabs.push(Tab { name, rows }),
            }
        }
    }

    /// Tab `t` without the panels switched off (rows left empty dropped).
    pub fn visible(&self, t: usize, off: &HashSet<PanelRef>) -> Vec<Row> {
        self.tabs
            .get(t)
            .map(|tab| {
                tab.rows
                    .iter()
                    .map(|r| Row { height: r.height, cells: r.cells.iter().filter(|c| !off.contains(&c.panel)).cloned().collect() })
                    .filter(|r| !r.cells.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_file::RowConfig;

    fn cfg() -> Vec<TabConfig> {
        vec![TabConfig {
            name: "a".into(),
            rows: vec![
                RowConfig { height: "40%".into(), panels: vec!["x.p".into(), "y.q".into()], widths: vec!["30%".into(), "fill".into()] },
                RowConfig { height: "fill".into(), panels: vec!["x.r".into()], widths: vec![] },
            ],
        }]
    }

    #[test]
    fn config_becomes_rows_and_switched_off_panels_leave() {
        let l = Layout::from_config(&cfg());
        assert_eq!(l.tabs[0].rows[0].height, Size::Percent(40));
        assert_eq!(l.tabs[0].rows[0].cells[0].width, Size::Percent(30));
        assert_eq!(l.placed().len(), 3);
        let mut off = HashSet::new();
        off.insert(PanelRef::parse("x.r").unwrap());
        let v = l.visible(0, &off);
        assert_eq!(v.len(), 1, "the row left empty is gone");
        off.insert(PanelRef::parse("x.p").unwrap());
        assert_eq!(l.visible(0, &off)[0].cells.len(), 1);
    }
}
