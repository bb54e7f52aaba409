//! Rendering and key handling, without a terminal: every panel kind and the
//! default layout drawn into ratatui's TestBackend (insta snapshots), and keys
//! fed through `Screen::on_event`, the path the terminal's events take.

use super::layout::{Layout, PanelRef};
use super::render::{self, PanelView, View};
use super::table_view::TableState;
use super::{Screen, StopReason};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::text::{Line, Span};
use ratatui::Terminal;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use crate::config_file::Config;
use tracer_core::format::Clock;
use tracer_core::session::Session;
use tracer_plugin_api::{Counter, FieldKind, FieldSpec, Log2Histogram, Panel, Table, TimeSeries, Value};

fn table() -> Panel {
    Panel::Table(Table {
        columns: vec![
            FieldSpec::new("pid", FieldKind::U64, ""),
            FieldSpec::new("took", FieldKind::DURATION_NS, ""),
            FieldSpec::new("sent", FieldKind::BYTES, ""),
            FieldSpec::new("result", FieldKind::ERRNO_RESULT, ""),
            FieldSpec::new("comm", FieldKind::STR, ""),
        ]
        .into(),
        rows: vec![
            vec![Value::u64(42), Value::u64(1_500), Value::u64(2048), Value::i64(3), Value::str("cat")].into(),
            vec![Value::u64(7), Value::u64(2_500_000), Value::u64(10), Value::i64(-2), Value::str("bash")].into(),
            vec![Value::u64(900), Value::missing(), Value::u64(5 << 20), Value::i64(-13), Value::str("nginx")].into(),
        ]
        .into(),
    })
}

fn content(kind: &str) -> Panel {
    match kind {
        "table" => table(),
        "histogram" => Panel::Log2Histogram(Log2Histogram { unit: "usecs".into(), buckets: vec![0, 3, 10, 40, 7, 1].into() }),
        "counters" => Panel::Counters(
            vec![
                Counter { name: "opens".into(), value: 1200, unit: "events".into() },
                Counter { name: "failed".into(), value: 30, unit: "events".into() },
            ]
            .into(),
        ),
        "series" => Panel::TimeSeries(
            vec![TimeSeries { name: "opens/s".into(), unit: "".into(), interval_ms: 250, points: vec![1, 4, 9, 16, 9, 4, 1, 0, 2, 8].into() }]
                .into(),
        ),
        _ => Panel::Text("a text panel\nwith two lines".into()),
    }
}

fn view_of(kind: &str) -> PanelView {
    PanelView {
        title: format!("demo · {kind}"),
        content: Ok(content(kind).boxed()),
        scroll: 0,
        table: TableState::default(),
        rates: vec![Some(120.0), None],
    }
}

fn draw(w: u16, h: u16, rows: &[super::layout::Row], panels: &[PanelView], focus: usize) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    let clock = Clock::epoch();
    let view = View {
        status: vec![
            Span::raw(" tracer "),
            Span::raw(" open 120/s drop 0 [tracepoint] 655ns/ev 0.01%cpu "),
            Span::raw(" sched 0.00/s drop 0 [tp_btf] 1.1µs/ev 0.02%cpu "),
            Span::raw(" syscall_latency 0.00/s drop 0 [tp_btf] "),
            Span::raw(" tcp 0.00/s drop 0 [tp_btf] "),
        ],
        host_line: Line::from("host 0.4% cpu 20.0MiB │ 4 Hz"),
        tabs: vec!["overview".into(), "files".into()],
        tab: 0,
        rows,
        panels,
        focus,
        zoom: false,
        help: false,
        picker: None,
        prompt: None,
        message: None,
        clock: &clock,
    };
    term.draw(|f| render::draw(f, &view)).unwrap();
    let buf = term.backend().buffer().clone();
    (0..buf.area.height)
        .map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect::<String>().trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn one_panel_layout() -> Vec<super::layout::Row> {
    vec![super::layout::Row {
        height: crate::config_file::Size::Fill,
        cells: vec![super::layout::Cell { panel: PanelRef::parse("demo.x").unwrap(), width: crate::config_file::Size::Fill }],
    }]
}

#[test]
fn every_panel_kind_renders() {
    for kind in ["table", "histogram", "counters", "series", "text"] {
        let out = draw(80, 14, &one_panel_layout(), &[view_of(kind)], 0);
        insta::assert_snapshot!(format!("kind_{kind}"), out);
    }
}

#[test]
fn a_missing_panel_says_so_in_its_slot() {
    let v = PanelView {
        title: "nope.panel".into(),
        content: Err("no loaded plugin offers panel nope.panel".into()),
        scroll: 0,
        table: TableState::default(),
        rates: vec![],
    };
    let out = draw(60, 8, &one_panel_layout(), &[v], 0);
    assert!(out.contains("no loaded plugin offers panel nope.panel"), "{out}");
}

fn default_layout() -> Layout {
    let cfg = Config::load_with_env(Some(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/default.toml")), Vec::new()).unwrap();
    Layout::from_config(&cfg.ui.tabs)
}

/// The default config's first tab, each slot filled with content of the kind
/// its panel has.
fn default_screen(w: u16, h: u16) -> String {
    let layout = default_layout();
    let rows = layout.visible(0, &Default::default());
    let kinds = |r: &PanelRef| match r.panel.as_str() {
        "summary" => "counters",
        "histogram" | "runq" | "oncpu" | "connect_latency" => "histogram",
        _ => "table",
    };
    let panels: Vec<PanelView> = rows
        .iter()
        .flat_map(|r| r.cells.iter())
        .map(|c| {
            let mut v = view_of(kinds(&c.panel));
            v.title = c.panel.id();
            v
        })
        .collect();
    draw(w, h, &rows, &panels, 0)
}

#[test]
fn default_layout_at_120x40_and_80x24() {
    let big = default_screen(120, 40);
    for id in ["open.recent", "syscall_latency.top_time", "sched.processes", "tcp.closed"] {
        assert!(big.contains(id), "{id} on the first screen:\n{big}");
    }
    insta::assert_snapshot!("default_120x40", big);
    let small = default_screen(80, 24);
    for id in ["open.recent", "syscall_latency", "sched.processes", "tcp.closed"] {
        assert!(small.contains(id), "{id} readable at 80x24:\n{small}");
    }
    insta::assert_snapshot!("default_80x24", small);
}

fn key(c: KeyCode) -> Event {
    Event::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

fn screen() -> (Screen, Session, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let session = Session::load(dir.path()).unwrap();
    (Screen::new(default_layout(), Duration::from_millis(250), HashMap::new()), session, dir)
}

#[test]
fn keys_move_focus_switch_tabs_zoom_and_quit() {
    let (mut s, mut session, _d) = screen();
    s.collect(&session);
    assert_eq!(s.views.len(), 4);
    s.on_event(key(KeyCode::Tab), &mut session).unwrap();
    assert_eq!(s.focus, 1);
    s.on_event(key(KeyCode::BackTab), &mut session).unwrap();
    s.on_event(key(KeyCode::BackTab), &mut session).unwrap();
    assert_eq!(s.focus, 3, "Shift-Tab wraps");
    s.on_event(key(KeyCode::Char('2')), &mut session).unwrap();
    assert_eq!(s.focus, 1);
    s.on_event(key(KeyCode::Char(']')), &mut session).unwrap();
    assert_eq!((s.tab, s.focus), (1, 0));
    s.on_event(key(KeyCode::Char('[')), &mut session).unwrap();
    assert_eq!(s.tab, 0);
    s.on_event(key(KeyCode::Char('z')), &mut session).unwrap();
    assert!(s.zoom);
    s.on_event(key(KeyCode::Char('?')), &mut session).unwrap();
    assert_eq!(s.mode, super::Mode::Help);
    s.on_event(key(KeyCode::Esc), &mut session).unwrap();
    assert_eq!(s.mode, super::Mode::Normal);
    s.on_event(key(KeyCode::Char('?')), &mut session).unwrap();
    assert_eq!(s.on_event(key(KeyCode::Char('q')), &mut session), Ok(()), "q in the help closes it, does not quit");
    assert_eq!(s.mode, super::Mode::Normal);
    s.on_event(key(KeyCode::Char('+')), &mut session).unwrap();
    assert_eq!(s.refresh(), Duration::from_millis(100), "4 Hz -> 10 Hz");
    s.on_event(key(KeyCode::Char('-')), &mut session).unwrap();
    s.on_event(key(KeyCode::Char('-')), &mut session).unwrap();
    assert_eq!(s.refresh(), Duration::from_millis(500), "-> 4 -> 2 Hz");
    assert_eq!(s.on_event(key(KeyCode::Char('q')), &mut session), Err(StopReason::Quit));
    let ctrl_c = Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert_eq!(s.on_event(ctrl_c, &mut session), Err(StopReason::Quit));
}

#[test]
fn search_prompt_filters_the_focused_table_and_picker_hides_panels() {
    let (mut s, mut session, _d) = screen();
    s.collect(&session);
    s.on_event(key(KeyCode::Char('/')), &mut session).unwrap();
    for c in "cat".chars() {
        s.on_event(key(KeyCode::Char(c)), &mut session).unwrap();
    }
    s.on_event(key(KeyCode::Enter), &mut session).unwrap();
    let focused = s.focused().unwrap();
    assert_eq!(s.states[&focused].table.filter, "cat");
    assert_eq!(s.views[0].table.filter, "cat");
    // Switching a panel off in the picker takes it off the tab.
    s.off.insert(PanelRef::parse("open.recent").unwrap());
    s.collect(&session);
    assert_eq!(s.views.len(), 3);
}

#[test]
fn malformed_panels_from_a_faulty_plugin_do_not_take_the_host_down() {
    // Rows shorter and longer than the columns, and far too many buckets.
    let bad_table = Panel::Table(Table {
        columns: vec![FieldSpec::new("a", FieldKind::U64, ""), FieldSpec::new("b", FieldKind::STR, "")].into(),
        rows: vec![
            vec![Value::u64(1)].into(),
            vec![Value::u64(2), Value::str("x"), Value::str("extra"), Value::u64(9)].into(),
            tracer_plugin_api::abi_stable::std_types::RVec::new(),
        ]
        .into(),
    });
    let bad_hist = Panel::Log2Histogram(Log2Histogram { unit: "usecs".into(), buckets: vec![1u64; 200].into() });
    for p in [bad_table, bad_hist] {
        let v = PanelView { title: "bad".into(), content: Ok(p.clone().boxed()), scroll: 0, table: TableState::default(), rates: vec![] };
        let out = draw(80, 20, &one_panel_layout(), &[v], 0);
        assert!(out.contains("bad"), "{out}");
        // The headless writers take the same contents.
        let json = tracer_core::output::panel_json("p", "bad", "bad", &p.clone().boxed());
        assert!(json.get("kind").is_some());
        let _ = tracer_core::output::panel_text("bad", &p.boxed(), &Clock::epoch());
    }
}
