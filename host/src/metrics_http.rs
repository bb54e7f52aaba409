//! `--metrics-addr`: `/metrics` for Prometheus and `/healthz`, served by a
//! thread of its own. A scrape is handed to the event loop (the only thread
//! that touches plugins), which encodes the metrics and hands the text back;
//! a slow or stuck client only ever holds this thread, never tracing.

use crate::exposition::Exposition;
use std::sync::Arc;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::SyncSender;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// One scrape waiting for the event loop: the encoded text goes back here.
pub struct Scrape {
    pub reply: SyncSender<String>,
}

/// What the event loop needs to answer scrapes.
pub struct Endpoint {
    pub requests: UnboundedReceiver<Scrape>,
    pub exposition: Arc<Exposition>,
}

/// How long a client may take to send its request, and the event loop to
/// answer (it answers between two refreshes: well under this).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests are a line and a few headers; anything longer is refused.
const MAX_REQUEST: usize = 16 * 1024;

/// Listen on `addr` (`127.0.0.1:9464`, `[::]:9464`); the error names the
/// option and the address.
pub fn start(addr: &str, exposition: Arc<Exposition>) -> Result<Endpoint, String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("--metrics-addr {addr}: cannot listen: {e}"))?;
    let (tx, requests) = unbounded_channel();
    std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = serve(stream, &tx) {
                    tracing::debug!("metrics client: {e}");
                }
            }
        })
        .map_err(|e| format!("starting the metrics thread: {e}"))?;
    tracing::info!("serving metrics on http://{addr}/metrics");
    Ok(Endpoint { requests, exposition })
}

/// The request's path and whether the client takes OpenMetrics.
fn read_request(stream: &mut TcpStream) -> Result<Option<(String, bool)>, String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                if req.method != Some("GET") && req.method != Some("HEAD") {
                    return Ok(Some((String::new(), false)));
                }
                let openmetrics = req
                    .headers
                    .iter()
                    .any(|h| h.name.eq_ignore_ascii_case("accept") && String::from_utf8_lossy(h.value).contains("application/openmetrics-text"));
                return Ok(Some((req.path.unwrap_or("").to_string(), openmetrics)));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST => continue,
            Ok(httparse::Status::Partial) => return Err("request too long".into()),
            Err(e) => return Err(format!("bad request: {e}")),
        }
    }
}

fn serve(mut stream: TcpStream, loop_tx: &UnboundedSender<Scrape>) -> Result<(), String> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).map_err(|e| e.to_string())?;
    let Some((path, openmetrics)) = read_request(&mut stream)? else { return Ok(()) };
    let (status, ctype, body) = match path.split('?').next().unwrap_or("") {
        "/metrics" => {
            let (reply, answer) = std::sync::mpsc::sync_channel(1);
            if loop_tx.send(Scrape { reply }).is_err() {
                ("503 Service Unavailable", "text/plain; charset=utf-8", "tracer-host is stopping\n".to_string())
            } else {
                match answer.recv_timeout(CLIENT_TIMEOUT) {
                    Ok(text) if openmetrics => ("200 OK", "application/openmetrics-text; version=1.0.0; charset=utf-8", text),
                    Ok(text) => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", to_prometheus_text(&text)),
                    Err(_) => ("503 Service Unavailable", "text/plain; charset=utf-8", "the event loop did not answer in time\n".to_string()),
                }
            }
        }
        "/healthz" => ("200 OK", "text/plain; charset=utf-8", "ok\n".to_string()),
        "" => ("405 Method Not Allowed", "text/plain; charset=utf-8", "GET only\n".to_string()),
        _ => ("404 Not Found", "text/plain; charset=utf-8", "try /metrics or /healthz\n".to_string()),
    };
    let head = format!("HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(body.as_bytes())).map_err(|e| e.to_string())
}

/// OpenMetrics text as Prometheus' older text format (0.0.4), for clients
/// that do not ask for OpenMetrics: a counter's family is named with its
/// `_total`, an info metric is a gauge named `_info`, no `# EOF`.
pub fn to_prometheus_text(om: &str) -> String {
    let mut counters = std::collections::HashSet::new();
    let mut infos = std::collections::HashSet::new();
    for l in om.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            if let (Some(name), Some(kind)) = (it.next(), it.next()) {
                match kind {
                    "counter" => counters.insert(name.to_string()),
                    "info" => infos.insert(name.to_string()),
                    _ => false,
                };
            }
        }
    }
    let mut out = String::with_capacity(om.len());
    for l in om.lines() {
        if l == "# EOF" {
            continue;
        }
        let line = if let Some(rest) = l.strip_prefix("# TYPE ").or_else(|| l.strip_prefix("# HELP ")) {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let kw = &l[..7];
            if counters.contains(name) {
                format!("{kw}{name}_total {tail}")
            } else if infos.contains(name) {
                format!("{kw}{name}_info {}", if kw == "# TYPE " { "gauge" } else { tail })
            } else {
                l.to_string()
            }
        } else if l.starts_with("# UNIT ") {
            continue;
        } else {
            l.to_string()
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_becomes_prometheus_text() {
        let om = "# HELP tracer_open_opens opens\n# TYPE tracer_open_opens counter\ntracer_open_opens_total{node=\"n\"} 7\n# HELP tracer_build x\n# TYPE tracer_build info\ntracer_build_info{version=\"0.1.0\"} 1\n# EOF\n";
        let p = to_prometheus_text(om);
        assert_eq!(
            p,
            "# HELP tracer_open_opens_total opens\n# TYPE tracer_open_opens_total counter\ntracer_open_opens_total{node=\"n\"} 7\n# HELP tracer_build_info x\n# TYPE tracer_build_info gauge\ntracer_build_info{version=\"0.1.0\"} 1\n"
        );
    }
}
