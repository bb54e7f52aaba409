//! HTTP/2 on one connection: each direction's frames, header blocks decoded
//! with HPACK (loona-hpack), streams paired into exchanges.
//!
//! Frames are followed from the connection's start (the preface, then
//! frame after frame), so every header block is seen and the HPACK tables
//! stay right. A DATA frame's payload is skipped by its length; a frame
//! header or a header block in bytes not captured loses the direction for
//! good (HPACK has no point to start again from): the streams in flight are
//! counted and the connection is only counted from then on.

use crate::stream::Segment;
use crate::FastMap;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const PUSH_PROMISE: u8 = 5;
const CONTINUATION: u8 = 9;

const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// A header block (with its continuations) larger than this is given up.
const MAX_BLOCK: usize = 64 * 1024;
/// The HPACK dynamic table a peer may ask for, at most (the default is 4 KiB;
/// bounds what a connection holds).
const MAX_TABLE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy)]
struct Frame {
    len: u32,
    kind: u8,
    flags: u8,
    stream: u32,
    /// When its first byte passed.
    first_ns: u64,
}

/// The fields of a header block that matter here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields {
    pub method: String,
    pub path: String,
    pub authority: String,
    pub status: Option<u16>,
    pub grpc: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum H2Event {
    /// A header block on `stream` (bytes: its frames').
    Headers {
        stream: u32,
        fields: Fields,
        end_stream: bool,
        first_ns: u64,
        last_ns: u64,
        bytes: u64,
    },
    Data {
        stream: u32,
        end_stream: bool,
        last_ns: u64,
        bytes: u64,
    },
    Reset {
        stream: u32,
    },
    /// The direction cannot be followed further.
    Lost,
}

/// The frame headers the kernel found in a transfer by following frame
/// lengths (so also those past the capture): (first byte from the
/// transfer's start, the header). A header not listed was not found (the
/// kernel's walk lost the direction, counted there).
#[derive(Debug, Clone, Default)]
pub struct KernelFrames {
    pub list: Vec<(i64, [u8; 9])>,
}

impl KernelFrames {
    fn at(&self, at: i64) -> Option<[u8; 9]> {
        self.list.iter().find(|(a, _)| *a == at).map(|(_, h)| *h)
    }
}

/// One direction's frames.
pub struct FrameStream {
    preface_left: u64,
    next: u64,
    /// The frame header in progress: its bytes known, how many of its bytes
    /// have passed, whether all that passed are known.
    hdr: Vec<u8>,
    hdr_seen: usize,
    hdr_known: bool,
    hdr_first_ns: u64,
    frame: Option<Frame>,
    left: u64,
    payload: Vec<u8>,
    /// A header block waiting for its CONTINUATION frames: stream, end of
    /// stream, first byte's time, bytes so far.
    block: Option<(u32, bool, u64, u64)>,
    fragments: Vec<u8>,
    decoder: loona_hpack::Decoder<'static>,
    lost: bool,
}

impl FrameStream {
    /// `preface`: this direction starts with the client's preface.
    pub fn new(preface: bool) -> FrameStream {
        let mut decoder = loona_hpack::Decoder::new();
        decoder.set_max_allowed_table_size(MAX_TABLE);
        FrameStream {
            preface_left: if preface { PREFACE.len() as u64 } else { 0 },
            next: 0,
            hdr: Vec::with_capacity(9),
            hdr_seen: 0,
            hdr_known: true,
            hdr_first_ns: 0,
            frame: None,
            left: 0,
            payload: Vec::new(),
            block: None,
            fragments: Vec::new(),
            decoder,
            lost: false,
        }
    }

    /// The offset the next transfer should start at.
    pub fn next(&self) -> u64 {
        self.next
    }

    fn lose(&mut self, out: &mut Vec<H2Event>) {
        if !self.lost {
            self.lost = true;
            out.push(H2Event::Lost);
        }
        self.payload = Vec::new();
        self.fragments = Vec::new();
    }

    /// Feed one transfer (`kernel`: the frame headers the kernel listed in it).
    pub fn feed(&mut self, seg: Segment, kernel: &KernelFrames, out: &mut Vec<H2Event>) {
        if self.lost {
            return;
        }
        if seg.offset != self.next {
            return self.lose(out);
        }
        self.next = seg.offset + seg.len;
        let head = &seg.head[..seg.head.len().min(seg.len as usize)];
        let mut pos: u64 = 0;
        while pos < seg.len {
            let avail = head.get(pos as usize..).unwrap_or(&[]);
            let rest = seg.len - pos;
            if self.preface_left > 0 {
                let take = self.preface_left.min(rest);
                let done = PREFACE.len() as u64 - self.preface_left;
                let want = &PREFACE[done as usize..(done + take) as usize];
                if avail.len() < take as usize || &avail[..take as usize] != want {
                    return self.lose(out);
                }
                self.preface_left -= take;
                pos += take;
                continue;
            }
            let Some(frame) = self.frame else {
                // A frame header, perhaps over two transfers, its bytes
                // captured or else listed by the kernel.
                if self.hdr_seen == 0 {
                    self.hdr.clear();
                    self.hdr_known = true;
                    self.hdr_first_ns = if pos == 0 { seg.first_ns } else { seg.last_ns };
                }
                let start = pos as i64 - self.hdr_seen as i64;
                let take = (9 - self.hdr_seen).min(rest as usize);
                if self.hdr_known && avail.len() >= take {
                    self.hdr.extend_from_slice(&avail[..take]);
                } else {
                    self.hdr_known = false;
                }
                self.hdr_seen += take;
                pos += take as u64;
                if self.hdr_seen < 9 {
                    continue;
                }
                if !self.hdr_known {
                    match kernel.at(start) {
                        Some(h) => self.hdr = h.to_vec(),
                        None => return self.lose(out),
                    }
                }
                self.hdr_seen = 0;
                let h = &self.hdr;
                let f =
                    Frame { len: u32::from_be_bytes([0, h[0], h[1], h[2]]), kind: h[3], flags: h[4], stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff, first_ns: self.hdr_first_ns };
                self.frame = Some(f);
                self.left = f.len as u64;
                self.payload.clear();
                if self.left == 0 {
                    self.complete(seg.last_ns, out);
                }
                continue;
            };
            let take = self.left.min(rest);
            if matches!(frame.kind, HEADERS | CONTINUATION | PUSH_PROMISE) {
                // Header blocks are needed whole: HPACK's tables change with them.
                if (avail.len() as u64) < take {
                    return self.lose(out);
                }
                self.payload.extend_from_slice(&avail[..take as usize]);
            }
            self.left -= take;
            pos += take;
            if self.left == 0 {
                self.complete(seg.last_ns, out);
                if self.lost {
                    return;
                }
            }
        }
    }

    /// The frame in progress has all its bytes.
    fn complete(&mut self, last_ns: u64, out: &mut Vec<H2Event>) {
        let Some(f) = self.frame.take() else { return };
        let bytes = 9 + f.len as u64;
        // A header block must be followed by its continuations only.
        if self.block.is_some() && f.kind != CONTINUATION {
            return self.lose(out);
        }
        match f.kind {
            DATA => out.push(H2Event::Data { stream: f.stream, end_stream: f.flags & END_STREAM != 0, last_ns, bytes }),
            RST_STREAM => out.push(H2Event::Reset { stream: f.stream }),
            HEADERS | PUSH_PROMISE => {
                let payload = std::mem::take(&mut self.payload);
                let Some(fragment) = fragment(&payload, f) else {
                    return self.lose(out);
                };
                self.fragments.clear();
                self.fragments.extend_from_slice(fragment);
                self.payload = payload;
                // A promise's block is decoded for the tables' sake only.
                let stream = if f.kind == PUSH_PROMISE { 0 } else { f.stream };
                self.block = Some((stream, f.flags & END_STREAM != 0, f.first_ns, bytes));
                if f.flags & END_HEADERS != 0 {
                    self.end_block(last_ns, out);
                }
            }
            CONTINUATION => {
                let Some(b) = self.block.as_mut() else {
                    return self.lose(out);
                };
                b.3 += bytes;
                if self.fragments.len() + self.payload.len() > MAX_BLOCK {
                    return self.lose(out);
                }
                self.fragments.extend_from_slice(&self.payload);
                if f.flags & END_HEADERS != 0 {
                    self.end_block(last_ns, out);
                }
            }
            // SETTINGS, PING, GOAWAY, WINDOW_UPDATE, PRIORITY, unknown
            // types: nothing of a stream's exchange.
            _ => {}
        }
    }

    fn end_block(&mut self, last_ns: u64, out: &mut Vec<H2Event>) {
        let Some((stream, end_stream, first_ns, bytes)) = self.block.take() else {
            return;
        };
        let mut fields = Fields::default();
        let decoded = self.decoder.decode_with_cb(&self.fragments, |name, value| {
            let v = || String::from_utf8_lossy(&value).into_owned();
            match &name[..] {
                b":method" => fields.method = v(),
                b":path" => fields.path = v(),
                b":authority" => fields.authority = v(),
                b":status" => fields.status = std::str::from_utf8(&value).ok().and_then(|s| s.parse().ok()),
                b"content-type" => fields.grpc = value.starts_with(b"application/grpc"),
                _ => {}
            }
        });
        if decoded.is_err() {
            return self.lose(out);
        }
        if stream != 0 {
            out.push(H2Event::Headers { stream, fields, end_stream, first_ns, last_ns, bytes });
        }
    }
}

/// A HEADERS or PUSH_PROMISE frame's header block fragment (padding,
/// priority and the promised stream left out); None: malformed.
fn fragment(payload: &[u8], f: Frame) -> Option<&[u8]> {
    let mut p = payload;
    let mut pad = 0usize;
    if f.flags & PADDED != 0 {
        pad = *p.first()? as usize;
        p = &p[1..];
    }
    if f.kind == HEADERS && f.flags & PRIORITY != 0 {
        p = p.get(5..)?;
    }
    if f.kind == PUSH_PROMISE {
        p = p.get(4..)?;
    }
    p.get(..p.len().checked_sub(pad)?)
}

/// A request stream in flight.
#[derive(Debug, Clone)]
pub struct Open {
    pub fields: Fields,
    pub first_ns: u64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub status: Option<u16>,
    pub tgid: u32,
    pub comm: String,
}

/// A finished stream: its request and when its response's last byte passed.
#[derive(Debug, Clone)]
pub struct Done {
    pub open: Open,
    pub status: u16,
    pub last_ns: u64,
}

/// What a connection's streams came to, besides exchanges.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct H2Losses {
    /// Streams in flight when a direction was lost.
    pub lost: u64,
    /// Streams reset (RST_STREAM) before their response ended.
    pub reset: u64,
    /// Streams open when the connection closed.
    pub unanswered: u64,
}

/// Streams open on a connection at most (more are counted as lost).
const MAX_OPEN: usize = 1024;

/// The streams of one connection.
#[derive(Default)]
pub struct Streams {
    open: FastMap<u32, Open>,
    pub losses: H2Losses,
}

impl Streams {
    /// Events of the requests' direction; `tgid`/`comm`: the process that
    /// moved them.
    pub fn on_request(&mut self, ev: H2Event, tgid: u32, comm: &str) {
        match ev {
            H2Event::Headers { stream, fields, first_ns, bytes, .. } => {
                if let Some(o) = self.open.get_mut(&stream) {
                    // Trailers.
                    o.request_bytes += bytes;
                } else if self.open.len() < MAX_OPEN {
                    self.open.insert(stream, Open { fields, first_ns, request_bytes: bytes, response_bytes: 0, status: None, tgid, comm: comm.to_string() });
                } else {
                    self.losses.lost += 1;
                }
            }
            H2Event::Data { stream, bytes, .. } => {
                if let Some(o) = self.open.get_mut(&stream) {
                    o.request_bytes += bytes;
                }
            }
            H2Event::Reset { stream } => self.reset(stream),
            H2Event::Lost => self.lose(),
        }
    }

    /// Events of the responses' direction; streams whose response ended.
    pub fn on_response(&mut self, ev: H2Event, out: &mut Vec<Done>) {
        let (stream, end, last_ns) = match ev {
            H2Event::Headers { stream, fields, end_stream, last_ns, bytes, .. } => {
                let Some(o) = self.open.get_mut(&stream) else {
                    return;
                };
                o.response_bytes += bytes;
                // 1xx are interim; a later block without :status is trailers.
                if let Some(s) = fields.status.filter(|s| *s >= 200) {
                    o.status.get_or_insert(s);
                }
                o.fields.grpc |= fields.grpc;
                (stream, end_stream, last_ns)
            }
            H2Event::Data { stream, end_stream, last_ns, bytes } => {
                let Some(o) = self.open.get_mut(&stream) else {
                    return;
                };
                o.response_bytes += bytes;
                (stream, end_stream, last_ns)
            }
            H2Event::Reset { stream } => return self.reset(stream),
            H2Event::Lost => return self.lose(),
        };
        if end {
            if let Some(open) = self.open.remove(&stream) {
                match open.status {
                    Some(status) => out.push(Done { open, status, last_ns }),
                    None => self.losses.lost += 1,
                }
            }
        }
    }

    fn reset(&mut self, stream: u32) {
        if self.open.remove(&stream).is_some() {
            self.losses.reset += 1;
        }
    }

    fn lose(&mut self) {
        self.losses.lost += self.open.len() as u64;
        self.open.clear();
    }

    /// The connection closed.
    pub fn close(&mut self) {
        self.losses.unanswered += self.open.len() as u64;
        self.open.clear();
    }
}
