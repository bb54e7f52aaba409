//! Panels declared once: id, title and kind for the descriptor, and the
//! function that builds the content, in one list (the id is never written
//! twice, so `describe` and `panel` cannot disagree).

use tracer_plugin_api::{Counter, Log2Histogram, Panel, PanelKind, PanelSpec};

pub struct PanelDef<S> {
    pub id: &'static str,
    pub title: &'static str,
    pub kind: PanelKind,
    pub build: fn(&S) -> Panel,
}

/// A panel of tracer state `S`.
pub const fn def<S>(id: &'static str, title: &'static str, kind: PanelKind, build: fn(&S) -> Panel) -> PanelDef<S> {
    PanelDef { id, title, kind, build }
}

/// The descriptor's panel list.
pub fn specs<S>(defs: &[PanelDef<S>]) -> Vec<PanelSpec> {
    defs.iter().map(|d| PanelSpec::new(d.id, d.title, d.kind)).collect()
}

/// The content of panel `id`, or an error naming the plugin and the panels it has.
pub fn build<S>(plugin: &str, defs: &[PanelDef<S>], state: &S, id: &str) -> Result<Panel, String> {
    match defs.iter().find(|d| d.id == id) {
        Some(d) => Ok((d.build)(state)),
        None => {
            let ids: Vec<&str> = defs.iter().map(|d| d.id).collect();
            Err(format!("{plugin}: no panel named {id:?} (it has {})", ids.join(", ")))
        }
    }
}

/// A counters panel from (name, value, unit) triples.
pub fn counters(list: &[(&str, u64, &str)]) -> Panel {
    Panel::Counters(list.iter().map(|&(name, value, unit)| Counter { name: name.into(), value, unit: unit.into() }).collect())
}

/// A log2 histogram panel.
pub fn histogram(unit: &str, buckets: Vec<u64>) -> Panel {
    Panel::Log2Histogram(Log2Histogram { unit: unit.into(), buckets: buckets.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFS: &[PanelDef<u64>] = &[
        def("n", "The number", PanelKind::COUNTERS, |n| counters(&[("n", *n, "")])),
        def("h", "A histogram", PanelKind::LOG2_HISTOGRAM, |n| histogram("usecs", vec![*n])),
    ];

    #[test]
    fn one_list_gives_specs_and_contents() {
        let s = specs(DEFS);
        assert_eq!(s.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["n", "h"]);
        let Panel::Counters(c) = build("t", DEFS, &7, "n").unwrap() else { panic!() };
        assert_eq!(c[0].value, 7);
        let e = build("t", DEFS, &7, "x").unwrap_err();
        assert_eq!(e, "t: no panel named \"x\" (it has n, h)");
    }
}
