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
use aggregate::{close_columns, transition_columns, TcpStats};
use record::{Close, Transition};
use tracer_plugin_kit::table::{fields, push_row, Column};
use settings::Settings;
use tracer_plugin_api::{
    export_tracer, AttachAlternative, CounterSpec, FieldSpec, FieldValue, MapSnapshot, NativeTracer, Panel,
    PluginDescriptor, PluginInfo, ProbeSpec, ProgramRef, RingSpec, PLUGIN_API_VERSION,
};

pub static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tcplife.bpf.o"));

pub struct Tcp {
    stats: TcpStats,
    /// Built once: `on_record` runs per record.
    transition_cols: Vec<Column<Transition>>,
    close_cols: Vec<Column<Close>>,
}

impl Default for Tcp {
    fn default() -> Self {
        Tcp { stats: TcpStats::default(), transition_cols: transition_columns(), close_cols: close_columns() }
    }
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

pub fn transition_fields() -> Vec<FieldSpec> {
    fields(&transition_columns())
}

pub fn close_fields() -> Vec<FieldSpec> {
    fields(&close_columns())
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
        panels: tracer_plugin_kit::panels::specs(aggregate::PANELS).into(),
        settings: settings::specs().into(),
        metrics: aggregate::metric_specs().into(),
    }
}

impl NativeTracer for Tcp {
    fn describe(&self) -> PluginDescriptor {
        descriptor()
    }

    fn configure(&mut self, settings_json: &str) -> Result<Vec<u8>, String> {
        Ok(Settings::parse(settings_json)?.filter_bytes(tracer_plugin_kit::host_pid()))
    }

    fn on_record(&mut self, ring: u32, data: &[u8], out: Option<&mut RVec<FieldValue>>) -> Result<(), String> {
        match ring {
            0 => {
                let t = Transition::decode(data)?;
                out.map(|o| push_row(&self.transition_cols, &t, o));
                self.stats.add_transition(t);
            }
            1 => {
                let c = Close::decode(data)?;
                out.map(|o| push_row(&self.close_cols, &c, o));
                self.stats.add_close(c);
            }
            other => return Err(format!("tcp: no ring {other}")),
        }
        Ok(())
    }

    fn on_map(&mut self, snap: &MapSnapshot) -> Result<(), String> {
        self.stats.on_map(snap)
    }

    fn panel(&self, id: &str) -> Result<Panel, String> {
        tracer_plugin_kit::panels::build("tcp", aggregate::PANELS, &self.stats, id)
    }

    fn reset(&mut self) {
        self.stats.reset();
    }

    fn metrics(&self) -> Vec<tracer_plugin_api::MetricSample> {
        self.stats.metrics()
    }
}

export_tracer!(Tcp::default);

#[cfg(test)]
mod tests {
    use super::*;
    use record::tests::conn;
    use tracer_plugin_api::Value;

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
        t.reset();
        let m = t.metrics();
        tracer_plugin_kit::test_support::assert_metrics_declared(&aggregate::metric_specs(), &m);
        let get = |n: &str, l: &str| m.iter().find(|x| x.name == n && x.labels[0] == l).map(|x| x.value);
        assert_eq!(get("connections_closed_total", "rst_received"), Some(1.0), "since start, across the reset");
        assert_eq!((get("closed_connection_bytes_total", "sent"), get("closed_connection_bytes_total", "received")), (Some(100.0), Some(50.0)));
    }

    #[test]
    fn transition_fields_match() {
        let mut t = Tcp::default();
        let mut out = RVec::new();
        t.on_record(0, &[0u8; record::TRANSITION_SIZE], Some(&mut out)).unwrap();
        assert_eq!(out.len(), transition_fields().len());
    }
}
