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
        selected: None,
        table: TableState::default(),
        rates: vec![Some(120.0), None],
    }
}

fn draw(w: u16, h: u16, rows: &[super::layout::Row], panels: &[PanelView], focus: usize) -> String {
    let buf = draw_buffer(w, h, rows, panels, focus);
    (0..buf.area.height)
        .map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect::<String>().trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn draw_buffer(w: u16, h: u16, rows: &[super::layout::Row], panels: &[PanelView], focus: usize) -> ratatui::buffer::Buffer {
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
        overlay: None,
        picker: None,
        crumb: String::new(),
        clock_text: "12:00:00".into(),
        prompt: None,
        message: None,
        clock: &clock,
    };
    term.draw(|f| {
        render::draw(f, &view);
    })
    .unwrap();
    term.backend().buffer().clone()
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
        let out = draw(80, 15, &one_panel_layout(), &[view_of(kind)], 0);
        insta::assert_snapshot!(format!("kind_{kind}"), out);
    }
}

#[test]
fn a_missing_panel_says_so_in_its_slot() {
    let v = PanelView {
        title: "nope.panel".into(),
        content: Err("no loaded plugin offers panel nope.panel".into()),
        scroll: 0,
        selected: None,
        table: TableState::default(),
        rates: vec![],
    };
    let out = draw(60, 15, &one_panel_layout(), &[v], 0);
    assert!(out.contains("no loaded plugin offers panel nope.panel"), "{out}");
}

fn default_layout() -> Layout {
    let cfg = Config::load_with_env(Some(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/default.toml")), Vec::new()).unwrap();
    Layout::from_config(&cfg.ui.tabs)
}

fn spec(name: &str, kind: FieldKind, priority: u8, flex: u16) -> FieldSpec {
    FieldSpec::new(name, kind, "").priority(priority).flex(flex)
}

/// Tables shaped like the real panels of the first tab (same columns,
/// priorities and flexible columns as the plugins declare), with the values
/// that were cut before: 6-digit pids, a name with a space, long paths, IPv6
/// ends, durations from ns to s in one column.
fn realistic_table(panel: &str) -> Panel {
    use FieldKind as K;
    let (columns, rows): (Vec<FieldSpec>, Vec<Vec<tracer_plugin_api::FieldValue>>) = match panel {
        "recent" => (
            vec![spec("time", K::MONO_TIME_NS, 2, 0), spec("pid", K::U64, 0, 0), spec("comm", K::STR, 0, 0), spec("result", K::ERRNO_RESULT, 1, 0), spec("flags", K::STR, 2, 0), spec("path", K::STR, 1, 12)],
            (0..30u64)
                .map(|i| {
                    vec![
                        Value::u64(58_000_000_000 + i * 1_234_567),
                        Value::u64(899_200 + i * 37),
                        Value::str(if i % 3 == 0 { "tmux: server" } else { "find" }),
                        if i % 4 == 0 { Value::i64(-2) } else { Value::i64(3 + i as i64) },
                        Value::str("O_RDONLY|O_CLOEXEC|O_DIRECTORY"),
                        Value::str(&format!("/usr/lib/x86_64-linux-gnu/perl5/5.36/auto/very/deep/dir{i}/file.so")),
                    ]
                })
                .collect(),
        ),
        "top_time" => (
            vec![spec("syscall", K::STR, 0, 0), spec("count", K::U64, 1, 0), spec("errors", K::U64, 1, 0), spec("total", K::DURATION_NS, 1, 0), spec("avg", K::DURATION_NS, 1, 0), spec("max", K::DURATION_NS, 1, 0)],
            ["epoll_wait", "read", "futex", "clock_nanosleep", "openat"]
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let k = 10u64.pow(i as u32 + 2);
                    vec![Value::str(n), Value::u64(123_456 / (i as u64 + 1)), Value::u64(i as u64 * 7), Value::u64(21_200 * k), Value::u64(850 * k / 100), Value::u64(6_350_000_000 / k * 10)]
                })
                .collect(),
        ),
        "processes" => (
            vec![
                spec("pid", K::U64, 0, 0),
                spec("comm", K::STR, 0, 0),
                FieldSpec::new("cpu", K::F64, "%"),
                spec("run", K::DURATION_NS, 1, 0),
                spec("wait", K::DURATION_NS, 1, 0),
                spec("avg wait", K::DURATION_NS, 1, 0),
                spec("voluntary", K::U64, 2, 0),
                spec("involuntary", K::U64, 2, 0),
                spec("migrations", K::U64, 2, 0),
            ],
            (0..12u64)
                .map(|i| {
                    vec![
                        Value::u64(1_048_000 + i),
                        Value::str(if i == 0 { "python3 -m http" } else { "kworker/u8:2" }),
                        Value::f64(99.7 / (i + 1) as f64),
                        Value::u64(987_654_321 / (i + 1)),
                        Value::u64(12_345 * (i + 1)),
                        if i == 3 { Value::missing() } else { Value::u64(812 * (i + 1)) },
                        Value::u64(123_456),
                        Value::u64(7_890),
                        Value::u64(42),
                    ]
                })
                .collect(),
        ),
        _ => (
            vec![
                spec("pid", K::U64, 0, 0),
                spec("comm", K::STR, 0, 0),
                spec("local", K::STR, 1, 0),
                spec("remote", K::STR, 1, 0),
                spec("dir", K::STR, 1, 0),
                spec("tx", K::BYTES, 1, 0),
                spec("rx", K::BYTES, 1, 0),
                spec("lifetime", K::DURATION_NS, 1, 0),
                spec("connect", K::DURATION_NS, 1, 0),
                spec("end", K::STR, 1, 0),
                spec("states", K::STR, 1, 12),
            ],
            (0..8u64)
                .map(|i| {
                    vec![
                        Value::u64(31_337 + i),
                        Value::str("curl"),
                        Value::str(&format!("127.0.0.1:{}", 40_000 + i)),
                        Value::str(if i % 2 == 0 { "[2001:db8::dead:beef]:18080" } else { "127.0.0.1:18080" }),
                        Value::str("active"),
                        Value::u64(200_192 * (i + 1)),
                        Value::u64(77),
                        Value::u64(4_731_000 * (i + 1)),
                        if i == 5 { Value::missing() } else { Value::u64(95_000) },
                        Value::str("rst_received"),
                        Value::str("SYN_SENT 95µs > ESTABLISHED 4731µs > FIN_WAIT1 12µs > CLOSE"),
                    ]
                })
                .collect(),
        ),
    };
    Panel::Table(Table { columns: columns.into(), rows: rows.into_iter().map(Into::into).collect::<Vec<_>>().into() })
}

/// Match `line` against `cells` in order, each whole (a flexible one may be
/// its start and end around `…`), separated by spaces only. With `shown`,
/// exactly those columns must be there; without, a column whose text is not
/// at the next position counts as hidden. Returns which were there, or None
/// when the line holds anything else (a cut value).
fn match_cells(line: &str, cells: &[String], flex: &[bool], shown: Option<&[bool]>) -> Option<Vec<bool>> {
    let chars: Vec<char> = line.chars().collect();
    let mut pos = 0;
    let mut found = Vec::new();
    for (i, c) in cells.iter().enumerate() {
        if shown.is_some_and(|s| !s[i]) {
            found.push(false);
            continue;
        }
        let mut p = pos;
        while p < chars.len() && chars[p] == ' ' {
            p += 1;
        }
        let rest: String = chars[p..].iter().collect();
        let word: String = rest.split("  ").next().unwrap_or("").trim_end().to_string();
        let taken = if rest.starts_with(c.as_str()) && chars.get(p + c.chars().count()).is_none_or(|x| *x == ' ') {
            Some(c.chars().count())
        } else if flex[i] {
            word.split_once('…').filter(|(a, b)| !a.is_empty() && c.starts_with(a) && c.ends_with(b)).map(|_| word.chars().count())
        } else {
            None
        };
        match (taken, shown) {
            (Some(n), _) => {
                pos = p + n;
                found.push(true);
            }
            (None, Some(_)) => return None,
            (None, None) => found.push(false),
        }
    }
    chars[pos..].iter().all(|c| *c == ' ').then_some(found)
}

/// Check every table panel drawn on `screen`: its header names whole, and
/// each of its data rows (in order) with every shown cell whole.
fn assert_no_cell_is_cut(screen: &str, panels: &[PanelView]) {
    let lines: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
    for p in panels {
        let Ok(Panel::Table(t)) = p.content.as_ref().unwrap().as_enum() else { continue };
        let shown = super::table_view::shown(t, &p.table, &Clock::epoch());
        // The panel's box: its title on the top border.
        let (y, x0) = lines
            .iter()
            .enumerate()
            .find_map(|(y, l)| {
                let s: String = l.iter().collect();
                s.find(&format!("┌{}", p.title)).map(|b| (y, s[..b].chars().count()))
            })
            .unwrap_or_else(|| panic!("panel {} not on screen:\n{screen}", p.title));
        let x1 = (x0 + 1..lines[y].len()).find(|&x| lines[y][x] == '┐').unwrap();
        let inner = |y: usize| -> String { lines[y][x0 + 1..x1.min(lines[y].len())].iter().collect::<String>().trim_end().to_string() };
        let flex: Vec<bool> = shown.needs.iter().map(|n| n.flex_min > 0).collect();
        let header = inner(y + 1);
        let on = match_cells(&header, &shown.headers, &flex, None).unwrap_or_else(|| panic!("{}: header cut: {header:?}", p.title));
        assert!(on.iter().any(|o| *o), "{}: no column shown: {header:?}", p.title);
        // Columns left out are counted on the box's bottom border.
        let hidden = on.iter().filter(|o| !**o).count();
        let bottom = (y + 1..lines.len()).find(|&b| lines[b].get(x0) == Some(&'└')).expect("the box's bottom");
        let border: String = lines[bottom][x0..=x1.min(lines[bottom].len() - 1)].iter().collect();
        let said = format!("+{hidden} col");
        assert_eq!(border.contains(&said), hidden > 0, "{}: {hidden} hidden columns, border {border:?}", p.title);
        let mut rows_seen = 0;
        for (k, row) in shown.rows.iter().enumerate() {
            let y = y + 2 + k;
            if lines[y].get(x0) == Some(&'└') {
                break;
            }
            let l = inner(y);
            assert!(match_cells(&l, row, &flex, Some(&on)).is_some(), "{}: a cell cut in {l:?}\nfull row: {row:?}\n{screen}", p.title);
            rows_seen += 1;
        }
        assert!(rows_seen > 0, "{}: no row checked", p.title);
    }
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
            if kinds(&c.panel) == "table" {
                v.content = Ok(realistic_table(&c.panel.panel).boxed());
            }
            v.title = c.panel.id();
            v
        })
        .collect();
    let out = draw(w, h, &rows, &panels, 0);
    assert_no_cell_is_cut(&out, &panels);
    out
}

#[test]
fn default_layout_at_three_sizes_cuts_no_value() {
    for (w, h) in [(80, 24), (120, 40), (200, 60)] {
        // default_screen checks every cell of every table against its value.
        let out = default_screen(w, h);
        for id in ["open.recent", "syscall_latency", "sched.processes", "tcp.closed"] {
            assert!(out.contains(id), "{id} on the first screen at {w}x{h}:\n{out}");
        }
        insta::assert_snapshot!(format!("default_{w}x{h}"), out);
    }
}

#[test]
fn the_cut_checker_catches_a_cut_value() {
    let cells = vec!["8992".to_string(), "cat".to_string()];
    let flex = [false, false];
    assert!(match_cells("8992 cat", &cells, &flex, Some(&[true, true])).is_some());
    assert!(match_cells(" 899 cat", &cells, &flex, Some(&[true, true])).is_none(), "a pid cut");
    assert!(match_cells("8992 ca", &cells, &flex, Some(&[true, true])).is_none(), "a name cut");
    let path = vec!["/a/b/c/d/e".to_string()];
    assert!(match_cells("/a/…/d/e", &path, &[true], Some(&[true])).is_some(), "a marked elision");
    assert!(match_cells("/a/b/c", &path, &[true], Some(&[true])).is_none(), "an unmarked cut");
}

#[test]
fn a_tiny_terminal_says_it_is_too_small() {
    for (w, h) in [(20, 6), (40, 12), (59, 30), (100, 14)] {
        let out = draw(w, h, &one_panel_layout(), &[view_of("table")], 0);
        assert!(out.replace('\n', " ").contains("terminal too small"), "{w}x{h}:\n{out}");
        assert!(!out.contains('┌'), "no empty boxes at {w}x{h}:\n{out}");
    }
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
    // Digits and ←/→ switch tabs, as the tab bar's numbers say.
    s.on_event(key(KeyCode::Char('3')), &mut session).unwrap();
    assert_eq!((s.tab, s.focus), (2, 0));
    s.on_event(key(KeyCode::Right), &mut session).unwrap();
    assert_eq!(s.tab, 3);
    s.on_event(key(KeyCode::Left), &mut session).unwrap();
    s.on_event(key(KeyCode::Left), &mut session).unwrap();
    assert_eq!(s.tab, 1);
    s.on_event(key(KeyCode::Char(']')), &mut session).unwrap();
    assert_eq!(s.tab, 2);
    let tabs = default_layout().tabs.len();
    assert!(crate::tui::keymap::digit_of_tab(tabs - 1).is_some(), "every shipped tab has its digit (1-9, then 0)");
    if let Some(d) = crate::tui::keymap::digit_of_tab(tabs) {
        s.on_event(key(KeyCode::Char(d)), &mut session).unwrap();
        assert_eq!(s.tab, 2, "no tab {}: nothing moves", tabs + 1);
    }
    // A digit past the last tab does nothing: on a layout of three tabs.
    let mut three = default_layout();
    three.tabs.truncate(3);
    let mut t = Screen::new(three, Duration::from_millis(250), HashMap::new());
    t.on_event(key(KeyCode::Char('2')), &mut session).unwrap();
    t.on_event(key(KeyCode::Char('4')), &mut session).unwrap();
    assert_eq!(t.tab, 1, "no tab 4: nothing moves");
    s.on_event(key(KeyCode::Char('1')), &mut session).unwrap();
    s.on_event(key(KeyCode::Char('z')), &mut session).unwrap();
    assert!(s.zoom);
    s.on_event(key(KeyCode::Esc), &mut session).unwrap();
    assert!(!s.zoom, "Esc leaves zoom");
    s.on_event(key(KeyCode::Char('?')), &mut session).unwrap();
    assert_eq!(s.mode, super::Mode::Help { scroll: 0 });
    s.on_event(key(KeyCode::Down), &mut session).unwrap();
    assert_eq!(s.mode, super::Mode::Help { scroll: 1 }, "↓ scrolls the help");
    s.on_event(key(KeyCode::Esc), &mut session).unwrap();
    assert_eq!(s.mode, super::Mode::Normal);
    s.on_event(key(KeyCode::Char('?')), &mut session).unwrap();
    assert_eq!(s.on_event(key(KeyCode::Char('q')), &mut session), Ok(()), "q in the help closes it, does not quit");
    assert_eq!(s.mode, super::Mode::Normal);
    s.on_event(key(KeyCode::Char('l')), &mut session).unwrap();
    assert_eq!(s.mode, super::Mode::Log { scroll: 0 });
    assert_eq!(s.on_event(key(KeyCode::Char('q')), &mut session), Ok(()), "q in the log closes it");
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
fn the_help_lists_every_key_of_the_table_and_is_never_cut() {
    use super::keymap::BINDINGS;
    let (mut s, mut session, _d) = screen();
    s.collect(&session);
    s.on_event(key(KeyCode::Char('h')), &mut session).unwrap();
    let lines = s.help_lines(&session);
    for b in BINDINGS {
        assert!(lines.iter().any(|l| l.contains(b.label) && l.contains(b.help)), "{} missing from the help", b.label);
    }
    // At 80x24 the help is taller than the screen: it scrolls to its end.
    // What the box shows, frame after frame, read inside its borders.
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let mut seen = String::new();
    for _ in 0..40 {
        term.draw(|f| s.render(f, &session)).unwrap();
        let buf = term.backend().buffer().clone();
        let rows: Vec<Vec<String>> = (0..24).map(|y| (0..80).map(|x| buf[(x, y)].symbol().to_string()).collect()).collect();
        let y0 = rows.iter().position(|r| r.concat().contains("┌keys")).expect("the help box");
        let x0 = rows[y0].iter().position(|c| c == "┌").unwrap();
        let x1 = rows[y0].iter().rposition(|c| c == "┐").unwrap();
        for r in &rows[y0 + 1..] {
            if r[x0] == "└" {
                break;
            }
            seen.push_str(&r[x0 + 1..x1].concat());
            seen.push(' ');
        }
        s.on_event(key(KeyCode::Down), &mut session).unwrap();
    }
    let flat: String = seen.split_whitespace().collect::<Vec<_>>().join(" ");
    for b in BINDINGS {
        let words: String = b.help.split_whitespace().collect::<Vec<_>>().join(" ");
        let last_words: String = words.split(' ').rev().take(2).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join(" ");
        assert!(flat.contains(&last_words), "the end of {:?}'s help never shows", b.label);
    }
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
        let v = PanelView { title: "bad".into(), content: Ok(p.clone().boxed()), scroll: 0, selected: None, table: TableState::default(), rates: vec![] };
        let out = draw(80, 20, &one_panel_layout(), &[v], 0);
        assert!(out.contains("bad"), "{out}");
        // The headless writers take the same contents.
        let json = tracer_core::output::panel_json("p", "bad", "bad", &p.clone().boxed());
        assert!(json.get("kind").is_some());
        let _ = tracer_core::output::panel_text("bad", &p.boxed(), &Clock::epoch());
    }
}

#[test]
fn the_dump_key_writes_a_new_file_and_never_through_a_planted_symlink() {
    let (mut s, mut session, _d) = screen();
    s.collect(&session);
    // A symlink where the dump would go (this second and the next): refused.
    let target = tempfile::NamedTempFile::new().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let planted: Vec<_> = (now..now + 2).map(|t| std::env::temp_dir().join(format!("tracer-dump-{t}-{}.json", std::process::id()))).collect();
    for p in &planted {
        let _ = std::fs::remove_file(p);
        std::os::unix::fs::symlink(target.path(), p).unwrap();
    }
    s.on_event(key(KeyCode::Char('d')), &mut session).unwrap();
    let said = s.message.as_ref().unwrap().0.clone();
    assert!(said.starts_with("writing ") && said.contains("exists"), "{said}");
    assert_eq!(std::fs::read(target.path()).unwrap(), b"", "nothing written through the link");
    for p in &planted {
        std::fs::remove_file(p).unwrap();
    }
    // Then a file of its own, with the tab's name.
    s.on_event(key(KeyCode::Char('d')), &mut session).unwrap();
    let said = s.message.as_ref().unwrap().0.clone();
    let path = said.rsplit(" written to ").next().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(doc["tab"], "overview", "{said}");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_state_column_gives_each_state_its_own_colour_everywhere() {
    use ratatui::style::Color;
    let t = Table {
        columns: vec![spec("conn", FieldKind::STR, 0, 0), FieldSpec::new("state", FieldKind::STR, "").style(tracer_plugin_api::STYLE_COLOUR_BY_VALUE)].into(),
        rows: vec![
            vec![Value::str("a"), Value::str("ESTABLISHED")].into(),
            vec![Value::str("b"), Value::str("CLOSE_WAIT")].into(),
            vec![Value::str("c"), Value::str("ESTABLISHED")].into(),
        ]
        .into(),
    };
    let v = PanelView { title: "tcp · live".into(), content: Ok(Panel::Table(t).boxed()), scroll: 0, selected: None, table: TableState::default(), rates: vec![] };
    let buf = draw_buffer(80, 15, &one_panel_layout(), &[v], 0);
    // The colour of the first cell of each occurrence of `text`.
    let colours = |text: &str| -> Vec<Color> {
        let mut out = Vec::new();
        for y in 0..buf.area.height {
            let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
            if let Some(i) = line.find(&format!(" {text}")) {
                let x = line[..i + 1].chars().count() as u16;
                out.push(buf[(x, y)].fg);
            }
        }
        out
    };
    let est = colours("ESTABLISHED");
    assert_eq!(est, vec![render::value_colour("ESTABLISHED"); 2], "the same state, the same colour");
    assert_eq!(colours("CLOSE_WAIT"), vec![render::value_colour("CLOSE_WAIT")]);
    assert_ne!(render::value_colour("ESTABLISHED"), render::value_colour("CLOSE_WAIT"));
    assert!(est.iter().all(|c| *c != Color::Reset && *c != Color::Red), "coloured, never the losses' red");
    // The plain column keeps the terminal's colour.
    let row_a = (0..buf.area.height).find(|&y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect::<String>().contains("│a ")).unwrap();
    assert_eq!(buf[(1, row_a)].fg, Color::Reset);
}

#[test]
fn the_selection_follows_its_row_when_a_refresh_reorders_the_table() {
    let (mut s, mut session, _d) = screen();
    s.collect(&session);
    let t = |names: &[&str]| {
        Panel::Table(Table {
            columns: vec![spec("pid", FieldKind::U64, 0, 0), spec("n", FieldKind::U64, 1, 0)].into(),
            rows: names.iter().enumerate().map(|(i, p)| vec![Value::u64(p.parse().unwrap()), Value::u64(i as u64)].into()).collect::<Vec<_>>().into(),
        })
        .boxed()
    };
    s.views[0].content = Ok(t(&["10", "20", "30"]));
    s.focus = 0;
    // Down twice: the second row, pid 20.
    s.move_cursor(1, None);
    s.move_cursor(1, None);
    let r = s.focused().unwrap();
    assert_eq!(s.states[&r].selected, Some(1));
    // The next refresh puts pid 20 last: the selection goes with it.
    s.views[0].content = Ok(t(&["30", "10", "20"]));
    s.follow_selections();
    assert_eq!((s.states[&r].selected, s.views[0].selected), (Some(2), Some(2)));
    // A row that is gone leaves the selection at its place, within the table.
    s.views[0].content = Ok(t(&["30", "10"]));
    s.follow_selections();
    assert_eq!(s.states[&r].selected, Some(1));
    let _ = &mut session;
}

#[test]
fn end_scrolls_a_text_panel_to_its_last_line_not_past_it() {
    let (mut s, session, _d) = screen();
    s.collect(&session);
    let text: String = (1..=100).map(|i| format!("line {i}\n")).collect();
    s.views[0].content = Ok(Panel::Text(text.trim_end().into()).boxed());
    s.focus = 0;
    s.zoom = true;
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    term.draw(|f| s.render(f, &session)).unwrap();
    s.move_cursor(0, Some(true));
    let r = s.focused().unwrap();
    let max = s.states[&r].scroll;
    assert!(max > 0 && max < 100, "End: as far as the last line, {max}");
    s.views[0].scroll = max;
    term.draw(|f| s.render(f, &session)).unwrap();
    let screen: String = {
        let buf = term.backend().buffer();
        (0..buf.area.height).map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n").collect()
    };
    assert!(screen.contains("line 100") && !screen.contains("line 1 "), "the last lines fill the box:\n{screen}");
    // One line up from the end is one line up, not lost in a huge offset.
    s.move_cursor(-1, None);
    s.move_cursor(10, None);
    assert_eq!(s.states[&r].scroll, max, "PgDn stops at the end");
}
