//! The `tcp` tracer: TCP connection lifecycle like tcplife, tcpstates and
//! tcpconnlat together. Every transition and every close is streamed; live
//! connections come from the kernel's connection map; the connect-latency
//! histogram is built in the kernel.

pub mod aggregate;
pub mod record;
pub mod settings;
/// Rust twins of bpf/tcplife.h, generated from the object's BTF.
pub mod types {
    include!(concat!(env!("OUT_DIR"), "/tcplife_types.rs"));
}

use abi_stable::std_types::{ROption, RVec};
use aggregate::TcpStats;
use record::{end_name, state_name, Close, Transition};
use settings::Settings;
use tracer_plugin_api::{
    export_tracer, AttachAlternative, CounterSpec, FieldKind, FieldSpec, FieldValue, MapSnapshot, NativeTracer,
    Panel, PanelKind, PanelSpec, PluginDescriptor, PluginInfo, ProbeSpec, ProgramRef, RingSpec, Value,
    PLUGIN_API_VERSION,
};

pub static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tcplife.bpf.o"));

#[derive(Default)]
pub struct Tcp {
    stats: TcpStats,
    /// Newest timestamp seen (monotonic ns), for connection ages.
    now_ns: u64,
}

/// `main` and `destroy` (the socket freed: ends a connection held at CLOSE
/// for a reset), plus the optional extras: how connections end (`resets`) and
/// who accepted a passive connection (accept's return, needs tracefs).
fn alt(main: &str, destroy: &str, resets: [&str; 2]) -> AttachAlternative {
    let mut programs = vec![ProgramRef::new(main), ProgramRef::new(destroy)];
    for p in resets.into_iter().chain(["tcp_accept4_tp", "tcp_accept_tp"]) {
        programs.push(ProgramRef::optional(p));
    }
    AttachAlternative { programs: programs.into() }
}

fn f(name: &str, kind: FieldKind) -> FieldSpec {
    FieldSpec::new(name, kind, "")
}

/// What both kinds of record start with: when, who, and the two ends.
fn endpoint_fields() -> Vec<FieldSpec> {
    vec![
        f("ts", FieldKind::MONO_TIME_NS),
        f("pid", FieldKind::U64),
        f("comm", FieldKind::STR),
        f("family", FieldKind::U64),
        f("laddr", FieldKind::STR),
        f("lport", FieldKind::U64),
        f("raddr", FieldKind::STR),
        f("rport", FieldKind::U64),
    ]
}

pub fn transition_fields() -> Vec<FieldSpec> {
    let mut v = endpoint_fields();
    v.extend([f("old", FieldKind::STR), f("new", FieldKind::STR), f("in_old", FieldKind::DURATION_NS)]);
    v
}

pub fn close_fields() -> Vec<FieldSpec> {
    let mut v = endpoint_fields();
    v.extend([
        f("dir", FieldKind::STR),
        f("tx_bytes", FieldKind::BYTES),
        f("rx_bytes", FieldKind::BYTES),
        f("lifetime", FieldKind::DURATION_NS),
        f("connect", FieldKind::DURATION_NS),
        f("end", FieldKind::STR),
        f("states", FieldKind::STR),
    ]);
    v
}

pub fn descriptor() -> PluginDescriptor {
    PluginDescriptor {
        info: PluginInfo {
            name: "tcp".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "TCP connections: state transitions, lifetimes, bytes, connect latency, how they ended".into(),
            api_version: PLUGIN_API_VERSION,
        },
        bpf_object: RVec::from(BPF_OBJECT),
        probes: vec![ProbeSpec {
            name: "tcp state".into(),
            alternatives: vec![
                alt("tcp_state_btf", "tcp_destroy_btf", ["tcp_rst_rx_btf", "tcp_rst_tx_btf"]),
                alt("tcp_state_tp", "tcp_destroy_tp", ["tcp_rst_rx_tp", "tcp_rst_tx_tp"]),
            ]
            .into(),
        }]
        .into(),
        rings: vec![
            RingSpec { map: "tcp_transitions".into(), fields: transition_fields().into() },
            RingSpec { map: "tcp_closed".into(), fields: close_fields().into() },
        ]
        .into(),
        counters: vec![
            CounterSpec { map: "tcp_counters".into(), index: types::TCP_STAT_RINGBUF_FULL, name: "ring buffer full".into(), is_drop: true },
            CounterSpec { map: "tcp_counters".into(), index: types::TCP_STAT_CONN_INSERTED, name: "connections tracked".into(), is_drop: false },
            CounterSpec { map: "tcp_counters".into(), index: types::TCP_STAT_CONN_FAILED, name: "connection state not stored".into(), is_drop: true },
        ]
        .into(),
        polled_maps: vec!["tcp_conns".into(), "tcp_connect_hist".into(), "tcp_counters".into()].into(),
        config_map: ROption::RSome("tcp_filter".into()),
        panels: vec![
            PanelSpec::new("live", "Live connections", PanelKind::TABLE),
            PanelSpec::new("closed", "Closed connections", PanelKind::TABLE),
            PanelSpec::new("transitions", "State transitions", PanelKind::TABLE),
            PanelSpec::new("connect_latency", "Connect latency", PanelKind::LOG2_HISTOGRAM),
            PanelSpec::new("summary", "TCP totals", PanelKind::COUNTERS),
        ]
        .into(),
        settings: settings::specs().into(),
        metrics: RVec::new(),
    }
}

fn push_common(out: &mut RVec<FieldValue>, ts: u64, pid: u32, comm: &str, family: u8, la: &str, lp: u16, ra: &str, rp: u16) {
    out.push(Value::u64(ts));
    out.push(if pid == 0 { Value::missing() } else { Value::u64(pid as u64) });
    out.push(Value::str(comm));
    out.push(Value::u64(family as u64));
    out.push(Value::str(la));
    out.push(Value::u64(lp as u64));
    out.push(Value::str(ra));
    out.push(Value::u64(rp as u64));
}

impl NativeTracer for Tcp {
    fn describe(&self) -> PluginDescriptor {
        descriptor()
    }

    fn configure(&mut self, settings_json: &str) -> Result<Vec<u8>, String> {
        Ok(Settings::parse(settings_json)?.filter_bytes())
    }

    fn on_record(&mut self, ring: u32, data: &[u8], out: Option<&mut RVec<FieldValue>>) -> Result<(), String> {
        match ring {
            0 => {
                let t = Transition::decode(data)?;
                self.now_ns = self.now_ns.max(t.ts_ns);
                if let Some(out) = out {
                    push_common(out, t.ts_ns, t.pid, &t.comm, t.family, &t.saddr, t.sport, &t.daddr, t.dport);
                    out.push(Value::str(state_name(t.oldstate)));
                    out.push(Value::str(state_name(t.newstate)));
                    out.push(Value::u64(t.in_old_ns));
                }
                self.stats.add_transition(t);
            }
            1 => {
                let c = Close::decode(data)?;
                self.now_ns = self.now_ns.max(c.ts_ns);
                if let Some(out) = out {
                    let k = &c.conn;
                    push_common(out, c.ts_ns, k.pid, &k.comm, k.family, &k.saddr, k.sport, &k.daddr, k.dport);
                    out.push(Value::str(if k.active() { "active" } else { "passive" }));
                    out.push(Value::u64(c.bytes_acked));
                    out.push(Value::u64(c.bytes_received));
                    out.push(c.lifetime_value());
                    out.push(k.connect_value());
                    out.push(Value::str(end_name(c.end)));
                    out.push(Value::str(&k.state_times()));
                }
                self.stats.add_close(c);
            }
            other => return Err(format!("tcp: no ring {other}")),
        }
        Ok(())
    }

    fn on_map(&mut self, snap: &MapSnapshot) -> Result<(), String> {
        self.stats.on_map(snap)?;
        if let Some(newest) = self.stats.live.iter().map(|c| c.last_ns).max() {
            self.now_ns = self.now_ns.max(newest);
        }
        Ok(())
    }

    fn panel(&self, id: &str) -> Result<Panel, String> {
        self.stats.panel(id, self.now_ns)
    }

    fn reset(&mut self) {
        self.stats.reset();
    }
}

export_tracer!(Tcp::default);

#[cfg(test)]
mod tests {
    use super::*;
    use record::tests::conn;

    fn close_bytes(end: u8, tx: u64, rx: u64) -> Vec<u8> {
        record::tests::close_bytes(end, tx, rx, conn(42, 2, &[127, 0, 0, 1], &[127, 0, 0, 1], 40000, 8080, 7, 3))
    }

    #[test]
    fn shared_structs_match_the_btf_of_the_embedded_object() {
        tracer_plugin_kit::test_support::assert_layouts_match(BPF_OBJECT, &crate::types::layouts());
    }

    #[test]
    fn a_close_record_decodes_into_the_declared_fields_and_panels() {
        let mut t = Tcp::default();
        let mut out = RVec::new();
        t.on_record(1, &close_bytes(1, 100, 50), Some(&mut out)).unwrap();
        assert_eq!(out.len(), close_fields().len());
        assert_eq!(out[4], Value::str("127.0.0.1"));
        assert_eq!(out[7], Value::u64(8080));
        assert_eq!(out[8], Value::str("active"));
        assert_eq!(out[13], Value::str("rst_received"));
        let Panel::Table(closed) = t.panel("closed").unwrap() else { panic!() };
        assert_eq!(closed.rows.len(), 1);
        assert_eq!(closed.rows[0][4], Value::str("127.0.0.1:8080"));
        let Panel::Counters(s) = t.panel("summary").unwrap() else { panic!() };
        assert!(s.iter().any(|c| c.name.as_str() == "ended rst_received" && c.value == 1));
        assert!(t.on_record(5, &[], None).is_err());
    }

    #[test]
    fn transition_fields_match() {
        let mut t = Tcp::default();
        let mut out = RVec::new();
        t.on_record(0, &[0u8; record::TRANSITION_SIZE], Some(&mut out)).unwrap();
        assert_eq!(out.len(), transition_fields().len());
    }
}
