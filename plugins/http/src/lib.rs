//! The `http` tracer: HTTP/1 requests and responses of any process, from
//! the bytes it writes to and reads from its TCP sockets (no change to the
//! traced program, no proxy). The kernel streams each transfer of a
//! connection that speaks HTTP (stream.rs says how little of it is needed);
//! here they are parsed per direction, requests matched with responses in
//! order (conn.rs), and summed per route and per process (stats.rs).
//! TLS through OpenSSL is read the same way from uprobes on SSL_read and
//! SSL_write. HTTP/2 connections are recognised by their preface and counted.

pub mod conn;
pub mod h2;
pub mod settings;
pub mod stats;
pub mod stream;

/// Rust twins of bpf/http.h, generated from the object's BTF.
pub mod types {
    include!(concat!(env!("OUT_DIR"), "/http_types.rs"));
}

use abi_stable::std_types::{ROption, RVec};
use tracer_plugin_api::*;
use tracer_plugin_kit::panels::counters;
use tracer_plugin_kit::table::{fields, push_row};
use tracer_plugin_kit::{key_u32, per_cpu_values, sat_sum};
use types::*;

/// The plugin's hash maps, hashed per record or per exchange: SipHash took
/// 5.5 % of the host's CPU under wrk (perf). foldhash is seeded at random
/// per map; the keys are kernel addresses, stream ids, and route and
/// process names that max_routes and the process count bound.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

pub static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/http.bpf.o"));

/// The system calls followed, as their tracepoints name them.
const CALLS: [&str; 13] = ["read", "write", "recvfrom", "sendto", "readv", "writev", "recvmsg", "sendmsg", "sendfile64", "accept4", "accept", "connect", "close"];
/// Those with no exit program (their return says nothing needed).
const ENTRY_ONLY: [&str; 2] = ["connect", "close"];

pub struct Http {
    /// libssl, when the settings ask for TLS and it is there.
    libssl: Option<String>,
    conns: conn::Conns,
    stats: stats::HttpStats,
    counters: [u64; HTTP_STAT_MAX as usize],
    filters: settings::Filters,
    /// Exchanges the user-space filters left out.
    filtered_out: u64,
    exchanges: Vec<conn::Exchange>,
    /// The last record's fixed part: kept, as its data array (8 KiB) is
    /// never read from it (the payload is read from the record itself).
    event: Box<http_event>,
    /// The record columns, built once.
    columns: Vec<tracer_plugin_kit::table::Column<conn::Exchange>>,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            libssl: None,
            conns: conn::Conns::with_capacity(4096),
            stats: stats::HttpStats::new(200),
            counters: Default::default(),
            filters: Default::default(),
            filtered_out: 0,
            exchanges: Vec::new(),
            event: Box::default(),
            columns: stats::exchange_columns(),
        }
    }
}

/// The socket calls' probe: the calls' classic tracepoints, or raw_tp.
fn socket_probe() -> ProbeSpec {
    let mut per_call: Vec<ProgramRef> = Vec::new();
    for call in CALLS {
        per_call.push(ProgramRef::new(&format!("http_enter_{call}")));
        if !ENTRY_ONLY.contains(&call) {
            per_call.push(ProgramRef::new(&format!("http_exit_{call}")));
        }
    }
    // Ends a connection whose socket closed with no close(2) (its process
    // exited).
    per_call.push(ProgramRef::optional("http_sock_state_btf"));
    let raw = vec![ProgramRef::new("http_enter_raw"), ProgramRef::new("http_exit_raw"), ProgramRef::optional("http_sock_state_btf")];
    ProbeSpec { name: "socket calls".into(), alternatives: vec![AttachAlternative { programs: per_call.into() }, AttachAlternative { programs: raw.into() }].into() }
}

/// uprobes on OpenSSL in `libssl` (every process that maps it), each
/// optional: TLS is a part of the tracer, never a reason for it to fail.
fn tls_probe(libssl: &str) -> ProbeSpec {
    let p = |prog: &str, func: &str| ProgramRef::optional(prog).with_target(&format!("{libssl}:{func}"));
    let programs = vec![p("http_ssl_write", "SSL_write"), p("http_ssl_write_ret", "SSL_write"), p("http_ssl_read", "SSL_read"), p("http_ssl_read_ret", "SSL_read"), p("http_ssl_free", "SSL_free")];
    ProbeSpec { name: "tls".into(), alternatives: vec![AttachAlternative { programs: programs.into() }].into() }
}

pub fn descriptor() -> PluginDescriptor {
    let c = |index: u32, name: &str, is_drop: bool| CounterSpec { map: "http_counters".into(), index, name: name.into(), is_drop };
    PluginDescriptor {
        info: PluginInfo {
            name: "http".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "HTTP requests and responses of any process, from its socket reads and writes: latency, status, method and route".into(),
            api_version: PLUGIN_API_VERSION,
        },
        bpf_object: RVec::from(BPF_OBJECT),
        probes: vec![socket_probe()].into(),
        rings: vec![RingSpec { map: "http_events".into(), fields: fields(&stats::exchange_columns()).into() }].into(),
        counters: vec![
            c(HTTP_STAT_RING_FULL, "transfers not streamed (ring full)", true),
            c(HTTP_STAT_CONN_FAILED, "connections not followed (table full)", true),
            c(HTTP_STAT_UNTRACKED, "calls not followed (no task storage)", true),
            c(HTTP_STAT_CONN_INSERTED, "HTTP connections found", false),
            c(HTTP_STAT_TRANSFERS, "transfers streamed", false),
            c(HTTP_STAT_OTHER, "connections of other protocols", false),
            c(HTTP_STAT_UNSAMPLED, "HTTP connections not sampled", false),
            c(HTTP_STAT_H2_WALK_LOST, "HTTP/2 directions whose frames the kernel lost", false),
        ]
        .into(),
        polled_maps: vec!["http_counters".into()].into(),
        config_map: ROption::RSome("http_filter".into()),
        panels: vec![
            PanelSpec::new("requests", "HTTP requests", PanelKind::TABLE),
            PanelSpec::new("routes", "HTTP routes", PanelKind::TABLE),
            PanelSpec::new("processes", "HTTP by process", PanelKind::TABLE),
            PanelSpec::new("slowest", "Slowest HTTP requests", PanelKind::TABLE),
            PanelSpec::new("summary", "HTTP totals", PanelKind::COUNTERS),
        ]
        .into(),
        settings: settings::specs().into(),
        metrics: vec![
            MetricSpec::new(
                "requests_total",
                MetricKind::COUNTER,
                "1",
                "HTTP requests answered, by method, route (path template, capped by max_routes: the rest as other) and status class",
                &["method", "route", "status_class"],
            ),
            MetricSpec::new("request_seconds", MetricKind::LOG2_HISTOGRAM, "seconds", "first request byte to last response byte, as the traced process sees them", &[]),
        ]
        .into(),
    }
}

impl NativeTracer for Http {
    fn describe(&self) -> PluginDescriptor {
        descriptor()
    }

    fn configure(&mut self, json: &str) -> Result<Vec<u8>, String> {
        let s = settings::Settings::parse(json)?;
        self.stats.max_routes = s.max_routes as usize;
        self.conns.set_capacity(s.max_connections as usize);
        self.libssl = if s.tls { settings::libssl() } else { None };
        self.filters = s.filters()?;
        self.stats.scale = 100.0 / s.sample_percent as f64;
        Ok(s.filter_bytes(tracer_plugin_kit::host_pid(), tracer_plugin_kit::next_filter_gen(), self.libssl.is_some()))
    }

    fn probes(&self) -> Option<Vec<ProbeSpec>> {
        let mut v = vec![socket_probe()];
        v.extend(self.libssl.as_deref().map(tls_probe));
        Some(v)
    }

    fn on_record(&mut self, _ring: u32, data: &[u8], out: Option<&mut RVec<FieldValue>>) -> Result<(), String> {
        let hdr = std::mem::offset_of!(http_event, data);
        if !tracer_plugin_kit::read_head_into(&mut *self.event, data, hdr) {
            return Err(format!("http: a record of {} bytes, shorter than its {hdr}-byte header", data.len()));
        }
        let e = &*self.event;
        let payload = &data[hdr..];
        let frames = h2_frames(e, payload);
        self.exchanges.clear();
        self.conns.on_event(e, payload, &frames, &mut self.exchanges);
        if !self.filters.is_empty() {
            let before = self.exchanges.len();
            let f = &self.filters;
            self.exchanges.retain(|x| f.keeps(x));
            self.filtered_out += (before - self.exchanges.len()) as u64;
        }
        for x in &self.exchanges {
            self.stats.add(x);
        }
        if let Some(out) = out {
            for x in &self.exchanges {
                push_row(&self.columns, x, out);
            }
        }
        Ok(())
    }

    fn on_map(&mut self, snap: &MapSnapshot) -> Result<(), String> {
        match snap.name.as_str() {
            "http_counters" => {
                for e in snap.entries.iter() {
                    let Some(i) = key_u32(&e.key, 0) else {
                        continue;
                    };
                    if let Some(c) = self.counters.get_mut(i as usize) {
                        // Never down: a re-attached map starts from 0.
                        *c = (*c).max(sat_sum(per_cpu_values::<u64>(snap, &e.value)));
                    }
                }
                Ok(())
            }
            other => Err(format!("http: unexpected map {other}")),
        }
    }

    fn panel(&self, id: &str) -> Result<Panel, String> {
        match id {
            "requests" => Ok(Panel::Table(self.stats.recent())),
            "routes" => Ok(Panel::Table(self.stats.routes())),
            "processes" => Ok(Panel::Table(self.stats.processes())),
            "slowest" => Ok(Panel::Table(self.stats.slowest())),
            "summary" => {
                let l = &self.conns.losses;
                let t = &self.stats.total;
                let scaled = |n: u64| self.stats.scaled(n);
                Ok(counters(&[
                    ("requests", scaled(t.count), ""),
                    ("errors (4xx, 5xx)", scaled(t.errors()), ""),
                    ("sampled: connections followed, %", (100.0 / self.stats.scale).round() as u64, "%"),
                    ("requests seen (unscaled)", t.count, ""),
                    ("requests left out by the filters", self.filtered_out, ""),
                    ("connections followed now", self.conns.len() as u64, ""),
                    ("HTTP/2 connections seen", self.conns.http2_seen, ""),
                    ("HTTP/2 connections given up (frames past capture_bytes, lost records)", l.h2_given_up, ""),
                    ("HTTP/2 streams reset before their response", l.reset, ""),
                    ("messages given up (lost records, not HTTP, head past capture_bytes)", l.lost, ""),
                    ("responses with no request known", l.unmatched, ""),
                    ("requests closed unanswered", l.unanswered, ""),
                    ("connections forgotten (max_connections)", l.evicted, ""),
                    ("transfers streamed", self.counters[HTTP_STAT_TRANSFERS as usize], ""),
                ]))
            }
            other => Err(format!("http: no panel {other:?} (it has requests, routes, processes, slowest, summary)")),
        }
    }

    fn reset(&mut self) {
        self.stats.reset();
    }

    fn metrics(&self) -> Vec<MetricSample> {
        let mut out = Vec::new();
        self.stats.metrics(&mut out);
        out
    }
}

/// The HTTP/2 frame headers a record lists after its captured bytes.
fn h2_frames(e: &http_event, payload: &[u8]) -> h2::KernelFrames {
    let size = std::mem::size_of::<http_h2_frame>();
    let start = e.frames_off as usize;
    let list = (0..e.nframes as usize)
        .map_while(|i| payload.get(start + i * size..start + (i + 1) * size).and_then(tracer_plugin_kit::read::<http_h2_frame>))
        .map(|f| (f.at as i64, f.hdr))
        .collect();
    h2::KernelFrames { list }
}

export_tracer!(Http::default);

#[cfg(test)]
mod tests;
