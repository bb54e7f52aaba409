//! Where things were drawn, so a click or a wheel turn can be matched to the
//! tab, panel and table row under the pointer. Filled by each draw; a click
//! acts on what the user saw when clicking.

use ratatui::layout::Rect;

/// A table's rows as drawn: the screen line of the first row shown, and its
/// index among the table's (filtered, sorted) rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowsAt {
    pub y: u16,
    pub first: usize,
    pub count: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hits {
    /// The tab line: `(x from, x to (exclusive), tab index)` per title.
    pub tab_y: u16,
    pub tabs: Vec<(u16, u16, usize)>,
    /// Each panel drawn: its area, its index on the tab, its table rows.
    pub panels: Vec<(Rect, usize, Option<RowsAt>)>,
    /// Text and histogram panels: how far each (by index) can scroll, so
    /// End and PgDn stop at the last line instead of scrolling past it.
    pub scroll_max: Vec<(usize, usize)>,
}

/// What is under the pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Tab(usize),
    /// A panel, and the row under the pointer when it is a table row.
    Panel { index: usize, row: Option<usize> },
    Nothing,
}

fn contains(r: Rect, x: u16, y: u16) -> bool {
    x >= r.x && x < r.x.saturating_add(r.width) && y >= r.y && y < r.y.saturating_add(r.height)
}

impl Hits {
    pub fn at(&self, x: u16, y: u16) -> Target {
        if y == self.tab_y {
            if let Some(&(_, _, i)) = self.tabs.iter().find(|(a, b, _)| x >= *a && x < *b) {
                return Target::Tab(i);
            }
        }
        for &(area, index, rows) in &self.panels {
            if contains(area, x, y) {
                let row = rows.filter(|r| y >= r.y && ((y - r.y) as usize) < r.count).map(|r| r.first + (y - r.y) as usize);
                return Target::Panel { index, row };
            }
        }
        Target::Nothing
    }
}

/// The x ranges of tab titles as ratatui's `Tabs` lays them out: `pad`
/// spaces each side of a title, a one-cell divider between titles.
pub fn tab_ranges(x: u16, titles: &[String], pad: u16) -> Vec<(u16, u16, usize)> {
    let mut out = Vec::new();
    let mut at = x;
    for (i, t) in titles.iter().enumerate() {
        let w = ratatui::text::Line::from(t.as_str()).width() as u16;
        let from = at;
        at = at.saturating_add(w + 2 * pad);
        out.push((from, at, i));
        at = at.saturating_add(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_names_the_tab_panel_and_row_under_it() {
        let hits = Hits {
            tab_y: 2,
            tabs: tab_ranges(0, &["1 overview".into(), "2 files".into()], 1),
            panels: vec![
                (Rect::new(0, 3, 40, 10), 0, Some(RowsAt { y: 5, first: 20, count: 3 })),
                (Rect::new(40, 3, 40, 10), 1, None),
            ],
            scroll_max: vec![],
        };
        // " 1 overview " is cells 0..12, the divider 12, " 2 files " 13..22.
        assert_eq!((hits.at(0, 2), hits.at(11, 2), hits.at(12, 2), hits.at(13, 2)), (Target::Tab(0), Target::Tab(0), Target::Nothing, Target::Tab(1)));
        assert_eq!(hits.at(5, 4), Target::Panel { index: 0, row: None }, "the header");
        assert_eq!(hits.at(5, 6), Target::Panel { index: 0, row: Some(21) });
        assert_eq!(hits.at(5, 8), Target::Panel { index: 0, row: None }, "below the last row");
        assert_eq!(hits.at(45, 6), Target::Panel { index: 1, row: None });
        assert_eq!(hits.at(90, 6), Target::Nothing);
        // Without padding (too many tabs for the width): "1 overview" 0..10, the divider 10.
        assert_eq!(tab_ranges(0, &["1 overview".into(), "2 files".into()], 0), vec![(0, 10, 0), (11, 18, 1)]);
    }
}
