//! One direction of a connection as HTTP/1 messages: the transfers the
//! kernel streamed (offset, length, the first bytes, the last bytes) in,
//! message heads and ends out.
//!
//! Only a transfer's head is captured, so the parser never needs a body's
//! bytes: a `Content-Length` body is skipped by count, a chunked one by its
//! chunk sizes while they are in captured bytes, and by the terminating
//! `0\r\n\r\n` in a transfer's tail once they are not. A gap in the offsets
//! (a lost record) or bytes that are no HTTP make it look for the next
//! message start at a transfer's beginning (a connection found mid-stream
//! starts the same way).

/// One transfer of this direction.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    /// Bytes of this direction before it.
    pub offset: u64,
    pub len: u64,
    /// Its first bytes (at most `len`).
    pub head: &'a [u8],
    /// Its last bytes (empty: not known).
    pub tail: &'a [u8],
    /// When its first and its last byte passed (kernel clock, ns).
    pub first_ns: u64,
    pub last_ns: u64,
}

/// A request line's or status line's parts and the headers that matter.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Head {
    /// Requests: method and target; responses: status.
    pub method: String,
    pub path: String,
    pub host: String,
    pub status: u16,
    /// HTTP/1.x's minor version.
    pub version: u8,
    /// Header block bytes.
    pub header_bytes: u64,
}

/// What feeding a segment found, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A message's head is parsed; its first byte passed at `first_ns`.
    Head { head: Head, first_ns: u64 },
    /// The message whose head came last has ended: all its bytes, and when
    /// its last one passed.
    End { bytes: u64, last_ns: u64 },
    /// The message in progress cannot be followed further (lost records,
    /// bytes that are no HTTP, a head larger than the capture): the next
    /// message start is looked for.
    Lost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Requests,
    Responses,
}

/// How the body after a head is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    Length(u64),
    Chunked,
    /// Until the connection closes (a response without length).
    UntilClose,
}

#[derive(Debug, Clone, PartialEq)]
enum Chunk {
    /// Reading a chunk-size line (the bytes so far).
    Size(Vec<u8>),
    /// Inside a chunk's data (bytes left, with its CRLF).
    Data(u64),
    /// After the last chunk: trailer lines until an empty one (bytes of the
    /// current line).
    Trailer(Vec<u8>),
    /// Chunk boundaries are in bytes not captured: the body ends where a
    /// transfer ends with the last chunk.
    Blind,
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    /// Looking for a message start at a transfer's beginning.
    Resync,
    /// Between messages: the next byte starts one.
    Idle,
    /// A head being read (its bytes so far, when its first byte passed, the
    /// message's bytes so far).
    Header {
        buf: Vec<u8>,
        first_ns: u64,
    },
    Length {
        left: u64,
    },
    Chunked(Chunk),
    UntilClose,
}

/// Heads longer than this are not followed (and a connection holds at most
/// this much of an unfinished head per direction).
const MAX_HEAD: usize = 8 * 1024;
const MAX_HEADERS: usize = 64;

/// The parser of one direction.
#[derive(Debug, Clone)]
pub struct Stream {
    side: Side,
    state: State,
    /// The offset the next segment should start at.
    next: u64,
    /// Bytes of the message in progress.
    bytes: u64,
    last_ns: u64,
}

impl Stream {
    pub fn new(side: Side) -> Stream {
        Stream { side, state: State::Resync, next: 0, bytes: 0, last_ns: 0 }
    }

    pub fn side(&self) -> Side {
        self.side
    }

    /// The offset the next transfer should start at.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Give up the message in progress: the next starts a transfer.
    pub fn resync(&mut self) {
        self.state = State::Resync;
    }

    /// The connection closed: a message running until the close ends.
    pub fn close(&mut self, out: &mut Vec<Event>) {
        if self.state == State::UntilClose {
            out.push(Event::End { bytes: self.bytes, last_ns: self.last_ns });
        } else if !matches!(self.state, State::Idle | State::Resync) {
            out.push(Event::Lost);
        }
        self.state = State::Resync;
    }

    /// Feed one transfer. `body` says how a head's message is framed (it
    /// knows the request a response answers: a HEAD's has no body).
    pub fn feed(&mut self, seg: Segment, body: &mut dyn FnMut(&Head, &[httparse::Header]) -> Body, out: &mut Vec<Event>) {
        if seg.offset != self.next {
            // Records lost (or the kernel restarted the connection's count):
            // whatever they held is missed, in a message or between two.
            out.push(Event::Lost);
            self.state = State::Resync;
        }
        self.next = seg.offset + seg.len;
        let head = &seg.head[..seg.head.len().min(seg.len as usize)];
        let mut pos: u64 = 0;
        while pos < seg.len {
            let avail = head.get(pos as usize..).unwrap_or(&[]);
            match &mut self.state {
                State::Resync | State::Idle => {
                    let resync = self.state == State::Resync;
                    if avail.is_empty() || !starts_message(self.side, avail) {
                        // After a message, bytes that start none (or that
                        // were not captured): something is missed.
                        if !resync {
                            out.push(Event::Lost);
                        }
                        self.state = State::Resync;
                        return;
                    }
                    // A first byte at the transfer's start passed with it;
                    // later in a transfer, with its end.
                    let first_ns = if pos == 0 { seg.first_ns } else { seg.last_ns };
                    self.state = State::Header { buf: Vec::new(), first_ns };
                    self.bytes = 0;
                }
                State::Header { buf, first_ns } => {
                    if avail.is_empty() {
                        // The head goes on in bytes not captured.
                        out.push(Event::Lost);
                        self.state = State::Resync;
                        return;
                    }
                    let before = buf.len();
                    buf.extend_from_slice(avail);
                    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    let parsed = parse_head(self.side, buf, &mut headers);
                    match parsed {
                        Ok(Some((n, h))) => {
                            let used = (n - before) as u64;
                            pos += used;
                            self.bytes += used;
                            let first_ns = *first_ns;
                            let framing = body(&h, &headers);
                            out.push(Event::Head { head: h, first_ns });
                            self.last_ns = seg.last_ns;
                            self.start_body(framing, out);
                        }
                        Ok(None) if buf.len() <= MAX_HEAD && (pos + avail.len() as u64) == seg.len => {
                            // The head goes on in the next transfer.
                            self.bytes += avail.len() as u64;
                            return;
                        }
                        _ => {
                            out.push(Event::Lost);
                            self.state = State::Resync;
                            return;
                        }
                    }
                }
                State::Length { left } => {
                    let take = (*left).min(seg.len - pos);
                    *left -= take;
                    pos += take;
                    self.bytes += take;
                    if *left == 0 {
                        self.end(seg.last_ns, out);
                    }
                }
                State::UntilClose => {
                    self.bytes += seg.len - pos;
                    self.last_ns = seg.last_ns;
                    return;
                }
                State::Chunked(chunk) => {
                    let (used, done) = chunk.step(avail, seg, pos);
                    pos += used;
                    self.bytes += used;
                    if done {
                        self.end(seg.last_ns, out);
                    } else if used == 0 {
                        out.push(Event::Lost);
                        self.state = State::Resync;
                        return;
                    }
                }
            }
        }
    }

    fn start_body(&mut self, framing: Body, out: &mut Vec<Event>) {
        match framing {
            Body::None | Body::Length(0) => self.end(self.last_ns, out),
            Body::Length(n) => self.state = State::Length { left: n },
            Body::Chunked => self.state = State::Chunked(Chunk::Size(Vec::new())),
            Body::UntilClose => self.state = State::UntilClose,
        }
    }

    fn end(&mut self, last_ns: u64, out: &mut Vec<Event>) {
        out.push(Event::End { bytes: self.bytes, last_ns });
        self.bytes = 0;
        self.state = State::Idle;
    }
}

impl Chunk {
    /// Consume what it can of a segment from `pos` (`avail`: its captured
    /// bytes from there). Returns (bytes used, body done).
    fn step(&mut self, avail: &[u8], seg: Segment, pos: u64) -> (u64, bool) {
        let rest = seg.len - pos;
        match self {
            Chunk::Data(left) => {
                let take = (*left).min(rest);
                *left -= take;
                if *left == 0 {
                    *self = Chunk::Size(Vec::new());
                }
                (take, false)
            }
            Chunk::Size(_) | Chunk::Trailer(_) if avail.is_empty() => {
                // Boundaries beyond the capture: from here the tails tell.
                *self = Chunk::Blind;
                self.blind(seg, pos)
            }
            Chunk::Size(line) => {
                let Some(nl) = avail.iter().position(|&b| b == b'\n') else {
                    line.extend_from_slice(avail);
                    return (avail.len() as u64, false);
                };
                line.extend_from_slice(&avail[..nl]);
                let text = String::from_utf8_lossy(line);
                let size = text.trim().split(';').next().map(|s| u64::from_str_radix(s.trim(), 16));
                let used = nl as u64 + 1;
                match size {
                    Some(Ok(0)) => *self = Chunk::Trailer(Vec::new()),
                    // The data and its CRLF.
                    Some(Ok(n)) => *self = Chunk::Data(n.saturating_add(2)),
                    _ => return (0, false),
                }
                (used, false)
            }
            Chunk::Trailer(line) => {
                let Some(nl) = avail.iter().position(|&b| b == b'\n') else {
                    line.extend_from_slice(avail);
                    return (avail.len() as u64, false);
                };
                line.extend_from_slice(&avail[..nl]);
                let empty = line.iter().all(|&b| b == b'\r');
                line.clear();
                (nl as u64 + 1, empty)
            }
            Chunk::Blind => self.blind(seg, pos),
        }
    }

    /// Not following chunk boundaries: the body ends with a transfer whose
    /// last bytes are the last chunk.
    fn blind(&mut self, seg: Segment, pos: u64) -> (u64, bool) {
        let rest = seg.len - pos;
        (rest, ends_chunked(&seg))
    }
}

/// Whether a transfer's last bytes end a chunked body.
fn ends_chunked(seg: &Segment) -> bool {
    let tail: &[u8] = if !seg.tail.is_empty() {
        seg.tail
    } else if seg.head.len() as u64 == seg.len {
        seg.head
    } else {
        return false;
    };
    tail.ends_with(b"\r\n0\r\n\r\n") || (tail == b"0\r\n\r\n")
}

/// Whether `b` starts a message of this side (as far as it goes).
pub fn starts_message(side: Side, b: &[u8]) -> bool {
    match side {
        Side::Responses => prefix_of(b, b"HTTP/1."),
        Side::Requests => METHODS.iter().any(|m| prefix_of(b, m.as_bytes()) && b.get(m.len()).is_none_or(|&c| c == b' ')),
    }
}

/// `b` and `p` agree as far as both go.
fn prefix_of(b: &[u8], p: &[u8]) -> bool {
    let n = b.len().min(p.len());
    b[..n] == p[..n]
}

pub const METHODS: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"];

/// Parse a complete head: (its length, the parts). None: not complete yet.
fn parse_head<'h, 'b>(side: Side, buf: &'b [u8], headers: &'h mut [httparse::Header<'b>]) -> Result<Option<(usize, Head)>, ()> {
    let header = |hs: &[httparse::Header], name: &str| -> String { hs.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| String::from_utf8_lossy(h.value).into_owned()).unwrap_or_default() };
    match side {
        Side::Requests => {
            let mut req = httparse::Request::new(headers);
            match req.parse(buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let h = Head {
                        method: req.method.unwrap_or("").to_string(),
                        path: req.path.unwrap_or("").to_string(),
                        host: header(req.headers, "host"),
                        status: 0,
                        version: req.version.unwrap_or(1),
                        header_bytes: n as u64,
                    };
                    Ok(Some((n, h)))
                }
                Ok(httparse::Status::Partial) => Ok(None),
                Err(_) => Err(()),
            }
        }
        Side::Responses => {
            let mut resp = httparse::Response::new(headers);
            match resp.parse(buf) {
                Ok(httparse::Status::Complete(n)) => Ok(Some((n, Head { status: resp.code.unwrap_or(0), header_bytes: n as u64, ..Default::default() }))),
                Ok(httparse::Status::Partial) => Ok(None),
                Err(_) => Err(()),
            }
        }
    }
}

/// The framing headers say (RFC 9112 6.3), for a message that may have a
/// body; `until_close_allowed`: a response (a request without length has
/// none).
pub fn framing(headers: &[httparse::Header], until_close_allowed: bool) -> Body {
    let get = |name: &str| headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase());
    if get("transfer-encoding").is_some_and(|v| v.split(',').next_back().is_some_and(|l| l.trim() == "chunked")) {
        return Body::Chunked;
    }
    if let Some(n) = get("content-length").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Body::Length(n);
    }
    if until_close_allowed {
        Body::UntilClose
    } else {
        Body::None
    }
}
