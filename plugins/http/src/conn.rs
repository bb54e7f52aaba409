//! Connections: each one's two directions parsed (stream.rs), requests
//! matched with their responses in order (a queue per connection: HTTP/1
//! answers in order, pipelined or not), whole exchanges out.

use crate::h2::{FrameStream, H2Event, KernelFrames, Streams};
use crate::stream::{framing, Body, Event, Head, Segment, Side, Stream};
use crate::types::*;
use crate::FastMap;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One request and its response.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub tgid: u32,
    pub comm: String,
    /// This process is the server (it read the request).
    pub server: bool,
    /// For TLS, known once a socket call inside an SSL call names the
    /// socket under the SSL object.
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    /// Plaintext read from OpenSSL's calls.
    pub tls: bool,
    /// "HTTP/1.0", "HTTP/1.1", "HTTP/2", "gRPC" (HTTP/2 with a gRPC body).
    pub protocol: &'static str,
    pub method: String,
    pub path: String,
    pub host: String,
    pub status: u16,
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// First request byte to last response byte (kernel clock, ns).
    pub start_ns: u64,
    pub latency_ns: u64,
}

/// Counts of what could not be followed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Losses {
    /// Messages given up on (lost records, bytes that are no HTTP, heads
    /// beyond the capture).
    pub lost: u64,
    /// Responses with no request known to answer.
    pub unmatched: u64,
    /// Requests whose connection closed before a response.
    pub unanswered: u64,
    /// Connections forgotten because the table was full.
    pub evicted: u64,
    /// HTTP/2 streams reset before their response ended.
    pub reset: u64,
    /// HTTP/2 connections no longer decoded (a frame or header block past
    /// the capture, a record lost, bytes that are no HTTP/2).
    pub h2_given_up: u64,
}

impl Losses {
    fn add_h2(&mut self, l: crate::h2::H2Losses) {
        self.lost += l.lost;
        self.reset += l.reset;
        self.unanswered += l.unanswered;
    }
}

#[derive(Debug, Clone)]
struct Request {
    head: Head,
    first_ns: u64,
    bytes: Option<u64>,
    /// The process that wrote it (client) or read it (server).
    tgid: u32,
    comm: String,
}

#[derive(Debug)]
struct Conn {
    server: bool,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
    tls: bool,
    /// By direction: 0 written, 1 read.
    streams: [Stream; 2],
    pending: VecDeque<Request>,
    /// Per response head parsed and not yet ended, in order: the request it
    /// answers (None: an interim 1xx, or none known), and the head. (The
    /// parser decides a response's framing while it reads, before its
    /// events are seen here: several may be in one transfer.)
    answering: VecDeque<Option<Request>>,
    response_heads: VecDeque<Head>,
    /// Switched to another protocol (101): not HTTP any more.
    upgraded: bool,
    last_ns: u64,
}

/// An HTTP/2 connection: its two directions' frames (0 written, 1 read)
/// and its streams.
struct H2Conn {
    server: bool,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
    tls: bool,
    dirs: [FrameStream; 2],
    streams: Streams,
    /// A direction was lost: only counted from then on.
    given_up: bool,
    last_ns: u64,
}

/// The table of connections, by socket: processes that share one (a shell
/// that writes a request, the `cat` it starts that reads the answer) share
/// its byte stream, as the kernel counts it.
#[derive(Default)]
pub struct Conns {
    conns: FastMap<(u64, u32), Conn>,
    h2: FastMap<(u64, u32), H2Conn>,
    pub losses: Losses,
    /// HTTP/2 connections seen (by their preface).
    pub http2_seen: u64,
    max: usize,
}

fn addr(family: u8, bytes: &[u8; 16], port: u16) -> Option<SocketAddr> {
    let ip = match family {
        10 => IpAddr::V6(Ipv6Addr::from(*bytes)),
        2 => IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// A record's (local, remote) addresses, where known.
fn addrs(e: &http_event) -> (Option<SocketAddr>, Option<SocketAddr>) {
    (addr(e.family, &e.laddr, e.lport), addr(e.family, &e.raddr, e.rport))
}

/// A data record as one transfer of its direction.
fn segment<'a>(e: &'a http_event, data: &'a [u8]) -> Segment<'a> {
    let tail_len = (e.tail_len as usize).min(e.tail.len());
    Segment {
        offset: e.offset,
        len: e.len as u64,
        head: &data[..data.len().min(e.captured as usize)],
        tail: &e.tail[..tail_len],
        // A write's first byte leaves at its call; a read's arrived by its
        // return.
        first_ns: if e.dir & 1 == HTTP_OUT as u8 { e.start_ns } else { e.end_ns },
        last_ns: e.end_ns,
    }
}

impl Conns {
    pub fn with_capacity(max: usize) -> Conns {
        Conns { max, ..Default::default() }
    }

    pub fn set_capacity(&mut self, max: usize) {
        self.max = max;
    }

    pub fn len(&self) -> usize {
        self.conns.len() + self.h2.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One record from the kernel (with the HTTP/2 frame headers it
    /// listed); completed exchanges are pushed to `out`.
    pub fn on_event(&mut self, e: &http_event, data: &[u8], frames: &KernelFrames, out: &mut Vec<Exchange>) {
        // A socket is one connection whoever uses it; an SSL object is an
        // address in its own process.
        let key = (e.conn, if e.tls != 0 { e.tgid } else { 0 });
        if e.proto == HTTP_PROTO_HTTP2 as u8 {
            return self.on_h2(key, e, data, frames, out);
        }
        if e.kind == HTTP_EV_CLOSE as u8 {
            if let Some(c) = self.conns.remove(&key) {
                self.finish(c, out);
            }
            return;
        }
        let dir = (e.dir & 1) as usize;
        // The kernel forgot the socket and it is a new connection now
        // (offsets start again).
        if e.offset == 0 && self.conns.get(&key).is_some_and(|c| c.streams[dir].next() > 0) {
            if let Some(c) = self.conns.remove(&key) {
                self.finish(c, out);
            }
        }
        if !self.conns.contains_key(&key) {
            let server = match e.role as u32 {
                HTTP_ROLE_SERVER => true,
                HTTP_ROLE_CLIENT => false,
                // The first bytes tell: a request read, a response written.
                _ => {
                    let req = crate::stream::starts_message(Side::Requests, data);
                    (dir == HTTP_IN as usize) == req
                }
            };
            if self.len() >= self.max.max(1) {
                self.evict_oldest(out);
            }
            let sides = if server { [Side::Responses, Side::Requests] } else { [Side::Requests, Side::Responses] };
            let (local, remote) = addrs(e);
            self.conns.insert(
                key,
                Conn {
                    server,
                    local,
                    remote,
                    tls: e.tls != 0,
                    streams: [Stream::new(sides[0]), Stream::new(sides[1])],
                    pending: VecDeque::new(),
                    answering: VecDeque::new(),
                    response_heads: VecDeque::new(),
                    upgraded: false,
                    last_ns: 0,
                },
            );
        }
        let c = self.conns.get_mut(&key).expect("inserted above");
        c.last_ns = e.end_ns;
        if c.local.is_none() {
            // TLS: the socket under the SSL object seen since.
            (c.local, c.remote) = addrs(e);
        }
        if c.upgraded {
            return;
        }
        let seg = segment(e, data);
        let requests = c.streams[dir].side() == Side::Requests;
        let mut events = Vec::new();
        if requests {
            c.streams[dir].feed(seg, &mut |_, hs| framing(hs, false), &mut events);
            for ev in events {
                match ev {
                    Event::Head { head, first_ns } => c.pending.push_back(Request { head, first_ns, bytes: None, tgid: e.tgid, comm: tracer_plugin_kit::c_str(&e.comm) }),
                    Event::End { bytes, .. } => {
                        if let Some(r) = c.pending.iter_mut().rev().find(|r| r.bytes.is_none()) {
                            r.bytes = Some(bytes);
                        }
                    }
                    Event::Lost => {
                        // A request missed: the responses can no longer be
                        // matched in order. Start both ways again.
                        self.losses.lost += 1 + c.forget();
                        c.streams[1 - dir].resync();
                    }
                }
            }
        } else {
            let pending = &mut c.pending;
            let answering = &mut c.answering;
            let upgraded = &mut c.upgraded;
            let unmatched = &mut self.losses.unmatched;
            c.streams[dir].feed(
                seg,
                &mut |head, hs| {
                    // 1xx but 101 are interim: the final response follows.
                    if (100..200).contains(&head.status) && head.status != 101 {
                        answering.push_back(None);
                        return Body::None;
                    }
                    let req = pending.pop_front();
                    if req.is_none() {
                        *unmatched += 1;
                    }
                    let head_request = req.as_ref().is_some_and(|r| r.head.method.eq_ignore_ascii_case("HEAD"));
                    answering.push_back(req);
                    if head.status == 101 {
                        *upgraded = true;
                        return Body::None;
                    }
                    if head_request || head.status == 204 || head.status == 304 {
                        Body::None
                    } else {
                        framing(hs, true)
                    }
                },
                &mut events,
            );
            for ev in events {
                match ev {
                    Event::Head { head, .. } => c.response_heads.push_back(head),
                    Event::End { bytes, last_ns } => {
                        if let (Some(Some(req)), Some(resp)) = (c.answering.pop_front(), c.response_heads.pop_front()) {
                            out.push(exchange(c, req, &resp, bytes, last_ns));
                        }
                    }
                    Event::Lost => {
                        // Responses missed (or one given up): which requests
                        // they answered is not known. Start again with the
                        // next request.
                        self.losses.lost += c.forget();
                        c.streams[1 - dir].resync();
                    }
                }
            }
        }
    }

    /// A connection ends: a response running until the close completes;
    /// requests never answered are counted.
    fn finish(&mut self, mut c: Conn, out: &mut Vec<Exchange>) {
        for dir in 0..2 {
            let mut events = Vec::new();
            c.streams[dir].close(&mut events);
            if c.streams[dir].side() == Side::Responses {
                for ev in events {
                    if let Event::End { bytes, last_ns } = ev {
                        if let (Some(Some(req)), Some(resp)) = (c.answering.pop_front(), c.response_heads.pop_front()) {
                            out.push(exchange(&c, req, &resp, bytes, last_ns));
                        }
                    }
                }
            }
        }
        self.losses.unanswered += c.pending.len() as u64 + c.answering.iter().flatten().count() as u64;
    }

    fn evict_oldest(&mut self, out: &mut Vec<Exchange>) {
        let h1 = self.conns.iter().map(|(k, c)| (c.last_ns, *k, false));
        let h2 = self.h2.iter().map(|(k, c)| (c.last_ns, *k, true));
        if let Some((_, key, is_h2)) = h1.chain(h2).min_by_key(|(ns, _, _)| *ns) {
            self.losses.evicted += 1;
            if is_h2 {
                let mut c = self.h2.remove(&key).expect("found");
                self.finish_h2(&mut c);
            } else {
                let c = self.conns.remove(&key).expect("found");
                self.finish(c, out);
            }
        }
    }

    /// A record of an HTTP/2 connection.
    fn on_h2(&mut self, key: (u64, u32), e: &http_event, data: &[u8], frames: &KernelFrames, out: &mut Vec<Exchange>) {
        if e.kind == HTTP_EV_CLOSE as u8 {
            if let Some(mut c) = self.h2.remove(&key) {
                self.finish_h2(&mut c);
            }
            return;
        }
        let dir = (e.dir & 1) as usize;
        if e.offset == 0 && self.h2.get(&key).is_some_and(|c| c.dirs[dir].next() > 0) {
            if let Some(mut c) = self.h2.remove(&key) {
                self.finish_h2(&mut c);
            }
        }
        if !self.h2.contains_key(&key) {
            self.http2_seen += 1;
            if self.len() >= self.max.max(1) {
                self.evict_oldest(out);
            }
            // The preface tells the client (the kernel saw who sent it).
            let server = e.role as u32 == HTTP_ROLE_SERVER;
            let preface_dir = if server { HTTP_IN } else { HTTP_OUT } as usize;
            let (local, remote) = addrs(e);
            self.h2.insert(
                key,
                H2Conn {
                    server,
                    local,
                    remote,
                    tls: e.tls != 0,
                    dirs: [FrameStream::new(preface_dir == 0), FrameStream::new(preface_dir == 1)],
                    streams: Streams::default(),
                    given_up: false,
                    last_ns: 0,
                },
            );
        }
        let c = self.h2.get_mut(&key).expect("inserted above");
        c.last_ns = e.end_ns;
        if c.local.is_none() {
            (c.local, c.remote) = addrs(e);
        }
        if c.given_up {
            return;
        }
        let seg = segment(e, data);
        let mut events = Vec::new();
        c.dirs[dir].feed(seg, frames, &mut events);
        // Requests are what the client writes.
        let requests = (dir == HTTP_OUT as usize) != c.server;
        let comm = tracer_plugin_kit::c_str(&e.comm);
        let mut done = Vec::new();
        for ev in events {
            if ev == H2Event::Lost {
                c.given_up = true;
                self.losses.h2_given_up += 1;
            }
            if requests {
                c.streams.on_request(ev, e.tgid, &comm);
            } else {
                c.streams.on_response(ev, &mut done);
            }
        }
        for d in done {
            out.push(Exchange {
                tgid: d.open.tgid,
                comm: d.open.comm,
                server: c.server,
                local: c.local,
                remote: c.remote,
                tls: c.tls,
                protocol: if d.open.fields.grpc { "gRPC" } else { "HTTP/2" },
                method: d.open.fields.method,
                path: d.open.fields.path,
                host: d.open.fields.authority,
                status: d.status,
                request_bytes: d.open.request_bytes,
                response_bytes: d.open.response_bytes,
                start_ns: d.open.first_ns,
                latency_ns: d.last_ns.saturating_sub(d.open.first_ns),
            });
        }
        self.take_h2_losses(key);
    }

    /// Move a connection's stream counts into the totals.
    fn take_h2_losses(&mut self, key: (u64, u32)) {
        if let Some(c) = self.h2.get_mut(&key) {
            self.losses.add_h2(std::mem::take(&mut c.streams.losses));
        }
    }

    fn finish_h2(&mut self, c: &mut H2Conn) {
        c.streams.close();
        self.losses.add_h2(std::mem::take(&mut c.streams.losses));
    }
}

impl Conn {
    /// Drop the requests waiting for an answer and the responses in
    /// progress; returns how many requests that gives up.
    fn forget(&mut self) -> u64 {
        let n = self.pending.len() + self.answering.iter().flatten().count();
        self.pending.clear();
        self.answering.clear();
        self.response_heads.clear();
        n as u64
    }
}

fn exchange(c: &Conn, req: Request, resp: &Head, bytes: u64, last_ns: u64) -> Exchange {
    Exchange {
        tgid: req.tgid,
        comm: req.comm,
        server: c.server,
        local: c.local,
        remote: c.remote,
        tls: c.tls,
        protocol: if req.head.version == 0 { "HTTP/1.0" } else { "HTTP/1.1" },
        method: req.head.method,
        path: req.head.path,
        host: req.head.host,
        status: resp.status,
        request_bytes: req.bytes.unwrap_or(req.head.header_bytes),
        response_bytes: bytes,
        start_ns: req.first_ns,
        latency_ns: last_ns.saturating_sub(req.first_ns),
    }
}
