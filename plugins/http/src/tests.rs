//! The parser and the pairing, fed records as the kernel makes them.

use super::*;
use crate::conn::Exchange;
use crate::stats::template;
use proptest::prelude::*;
use tracer_plugin_kit::bytes_of;

#[test]
fn shared_structs_match_the_btf_of_the_embedded_object() {
    tracer_plugin_kit::test_support::assert_layouts_match(BPF_OBJECT, &types::layouts());
}

/// Builds the records one connection's transfers make.
struct Wire {
    conn: u64,
    role: u32,
    proto: u32,
    capture: usize,
    offsets: [u64; 2],
    now: u64,
}

impl Wire {
    fn new(role: u32) -> Wire {
        Wire { conn: 0xffff_8880_0000_1000, role, proto: HTTP_PROTO_HTTP1, capture: 1024, offsets: [0, 0], now: 1_000_000 }
    }

    /// One transfer of `bytes` in direction `dir` taking `ns`: the record
    /// bytes as the ring holds them (header, then the captured head).
    fn transfer(&mut self, dir: u32, bytes: &[u8], ns: u64) -> Vec<u8> {
        self.transfer_listing(dir, bytes, ns, &[])
    }

    /// The same, the record listing HTTP/2 frame headers (at, header) after
    /// the captured bytes, as the kernel's walk does.
    fn transfer_listing(&mut self, dir: u32, bytes: &[u8], ns: u64, frames: &[(i32, [u8; 9])]) -> Vec<u8> {
        let mut e = http_event {
            start_ns: self.now,
            end_ns: self.now + ns,
            conn: self.conn,
            offset: self.offsets[dir as usize],
            len: bytes.len() as u32,
            tgid: 42,
            tid: 42,
            lport: 8080,
            rport: 50000,
            dir: dir as u8,
            kind: HTTP_EV_DATA as u8,
            role: self.role as u8,
            proto: self.proto as u8,
            family: 2,
            ..Default::default()
        };
        e.laddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        e.raddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        e.comm = tracer_plugin_kit::comm_bytes("srv");
        let cap = bytes.len().min(self.capture);
        e.captured = cap as u32;
        let tail = &bytes[bytes.len().saturating_sub(HTTP_TAIL_LEN as usize)..];
        e.tail[..tail.len()].copy_from_slice(tail);
        e.tail_len = tail.len() as u8;
        self.offsets[dir as usize] += bytes.len() as u64;
        self.now += ns + 10;
        if !frames.is_empty() {
            e.nframes = frames.len() as u16;
            e.frames_off = cap as u16;
            e.h2_walk = HTTP_H2_FRAMES_OK as u8;
        }
        let hdr = std::mem::offset_of!(http_event, data);
        let mut rec = bytes_of(&e)[..hdr].to_vec();
        rec.extend_from_slice(&bytes[..cap]);
        for (at, h) in frames {
            let f = http_h2_frame { at: *at, hdr: *h, ..Default::default() };
            rec.extend_from_slice(bytes_of(&f));
        }
        rec
    }

    fn close(&mut self) -> Vec<u8> {
        let e = http_event { conn: self.conn, tgid: 42, kind: HTTP_EV_CLOSE as u8, role: self.role as u8, proto: self.proto as u8, end_ns: self.now, ..Default::default() };
        bytes_of(&e)[..std::mem::offset_of!(http_event, data)].to_vec()
    }
}

const IN: u32 = HTTP_IN;
const OUT: u32 = HTTP_OUT;

/// Feed records through the plugin as the host would; the exchanges and
/// the rows it streamed.
fn run(records: &[Vec<u8>]) -> (Http, Vec<Exchange>, usize) {
    let mut h = Http::default();
    let mut all = Vec::new();
    let mut rows = 0;
    for r in records {
        let mut out = RVec::new();
        h.on_record(0, r, Some(&mut out)).unwrap();
        rows += out.len() / stats::exchange_columns().len();
        all.extend(h.exchanges.iter().cloned());
    }
    (h, all, rows)
}

fn summary(xs: &[Exchange]) -> Vec<(String, String, u16, u64, u64)> {
    xs.iter().map(|x| (x.method.clone(), x.path.clone(), x.status, x.request_bytes, x.response_bytes)).collect()
}

#[test]
fn a_server_exchange_with_a_request_in_four_writes_and_keep_alive() {
    let mut w = Wire::new(HTTP_ROLE_SERVER);
    let recs = vec![
        // bash's /dev/tcp: a request in four pieces.
        w.transfer(IN, b"GET /split HTTP/1.1\r\n", 5),
        w.transfer(IN, b"Host: a\r\n", 5),
        w.transfer(IN, b"Connection: keep-alive\r\n", 5),
        w.transfer(IN, b"\r\n", 5),
        w.transfer(OUT, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 100),
        w.transfer(IN, b"GET /items/12345?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", 5),
        w.transfer(OUT, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 50),
    ];
    let (h, xs, rows) = run(&recs);
    assert_eq!(summary(&xs), vec![("GET".into(), "/split".into(), 200, 56, 43), ("GET".into(), "/items/12345?x=1".into(), 404, 42, 45)]);
    assert_eq!(rows, 2, "one streamed row per exchange");
    assert!(xs.iter().all(|x| x.server && x.host == "a"));
    // Server side: from the read that brought the first byte to the write
    // that sent the last.
    assert_eq!(xs[0].latency_ns, (1_000_000 + 5 + 3 * 15 + 10 + 100) - (1_000_000 + 5));
    let Panel::Table(t) = h.panel("routes").unwrap() else { panic!() };
    let route = t.columns.iter().position(|c| c.name.as_str() == "route").unwrap();
    let routes: Vec<String> = t.rows.iter().map(|r| format!("{:?}", r[route])).collect();
    assert!(routes.iter().any(|r| r.contains("/items/{id}")), "{routes:?}");
}

#[test]
fn pipelined_requests_pair_in_order_and_head_has_no_body() {
    let mut w = Wire::new(HTTP_ROLE_CLIENT);
    let recs = vec![
        w.transfer(OUT, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nHEAD /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n", 5),
        // Responses split at odd places, the HEAD's with a length but no body.
        w.transfer(IN, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\nContent-Le", 5),
        w.transfer(IN, b"ngth: 100\r\n\r\nHTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n", 5),
        w.transfer(IN, b"0\r\n\r\n", 5),
    ];
    let (_, xs, _) = run(&recs);
    let got: Vec<(String, u16)> = xs.iter().map(|x| (x.path.clone(), x.status)).collect();
    assert_eq!(got, vec![("/a".into(), 200), ("/b".into(), 200), ("/c".into(), 500)]);
    assert_eq!(xs[2].response_bytes, 49 + 8 + 5);
    assert!(xs.iter().all(|x| !x.server));
}

#[test]
fn large_bodies_are_skipped_by_length_and_chunked_ends_seen_in_tails() {
    let mut w = Wire::new(HTTP_ROLE_SERVER);
    w.capture = 64;
    let body = vec![b'x'; 5 << 20];
    let mut head = b"HTTP/1.1 200 OK\r\nContent-Length: 5242880\r\n\r\n".to_vec();
    head.extend_from_slice(&body[..100_000]);
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    chunked.extend_from_slice(b"10000\r\n");
    chunked.extend_from_slice(&body[..0x10000]);
    chunked.extend_from_slice(b"\r\n");
    let mut last = b"8000\r\n".to_vec();
    last.extend_from_slice(&body[..0x8000]);
    last.extend_from_slice(b"\r\n0\r\n\r\n");
    let recs = vec![
        w.transfer(IN, b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n", 5),
        w.transfer(OUT, &head, 5),
        // The rest of the body: no byte of it needed.
        w.transfer(OUT, &body[100_000..], 5),
        w.transfer(IN, b"GET /chunks HTTP/1.1\r\nHost: h\r\n\r\n", 5),
        w.transfer(OUT, &chunked, 5),
        w.transfer(OUT, &last, 5),
        w.transfer(IN, b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n", 5),
        w.transfer(OUT, b"HTTP/1.1 204 No Content\r\n\r\n", 5),
    ];
    let (_, xs, _) = run(&recs);
    let got: Vec<(String, u16, u64)> = xs.iter().map(|x| (x.path.clone(), x.status, x.response_bytes)).collect();
    assert_eq!(got, vec![("/big".into(), 200, 44 + (5 << 20)), ("/chunks".into(), 200, (chunked.len() + last.len()) as u64), ("/after".into(), 204, 27)]);
}

#[test]
fn expect_continue_interim_responses_do_not_answer_the_request() {
    let mut w = Wire::new(HTTP_ROLE_CLIENT);
    let recs = vec![
        w.transfer(OUT, b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n", 5),
        w.transfer(IN, b"HTTP/1.1 100 Continue\r\n\r\n", 5),
        w.transfer(OUT, b"data", 5),
        w.transfer(IN, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 5),
    ];
    let (h, xs, _) = run(&recs);
    assert_eq!(summary(&xs), vec![("POST".into(), "/up".into(), 201, 71 + 4, 43)]);
    assert_eq!(h.conns.losses, conn::Losses::default());
}

#[test]
fn a_lost_record_gives_up_the_message_and_the_next_request_is_found_again() {
    let mut w = Wire::new(HTTP_ROLE_SERVER);
    let a = w.transfer(IN, b"GET /one HTTP/1.1\r\nHost: h\r\n\r\n", 5);
    let lost = w.transfer(OUT, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 5);
    let b = w.transfer(IN, b"GET /two HTTP/1.1\r\nHost: h\r\n\r\n", 5);
    let c = w.transfer(OUT, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 5);
    drop(lost);
    let (h, xs, _) = run(&[a, b, c]);
    // /one's response was lost: /two must not be paired with it.
    assert_eq!(summary(&xs).iter().map(|s| s.1.as_str()).collect::<Vec<_>>(), Vec::<&str>::new(), "no pairing across a gap: {xs:?}");
    assert!(h.conns.losses.lost >= 1);
    // After it, the connection is followed again.
    let mut w2 = Wire::new(HTTP_ROLE_SERVER);
    w2.offsets = w.offsets;
    w2.now = w.now;
    let d = w2.transfer(IN, b"GET /three HTTP/1.1\r\nHost: h\r\n\r\n", 5);
    let e = w2.transfer(OUT, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 5);
    let mut h = h;
    let mut got = Vec::new();
    for r in [d, e] {
        h.on_record(0, &r, None).unwrap();
        got.extend(h.exchanges.iter().map(|x| x.path.clone()));
    }
    assert_eq!(got, vec!["/three".to_string()]);
}

#[test]
fn a_response_until_close_ends_with_the_connection_and_unanswered_requests_count() {
    let mut w = Wire::new(HTTP_ROLE_CLIENT);
    let recs = vec![w.transfer(OUT, b"GET /old HTTP/1.0\r\n\r\n", 5), w.transfer(IN, b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nsome body", 5), w.transfer(IN, b" and more", 5), w.close()];
    let (h, xs, _) = run(&recs);
    assert_eq!(summary(&xs), vec![("GET".into(), "/old".into(), 200, 21, 48)]);
    let mut w = Wire::new(HTTP_ROLE_CLIENT);
    let (h2, xs2, _) = run(&[w.transfer(OUT, b"GET /hang HTTP/1.1\r\nHost: h\r\n\r\n", 5), w.close()]);
    assert!(xs2.is_empty());
    assert_eq!((h.conns.losses.unanswered, h2.conns.losses.unanswered), (0, 1));
}

#[test]
fn routes_collapse_ids_and_stop_at_the_cap() {
    assert_eq!(template("/users/12345/orders/9f1c2a3b4c5d6e7f8091?x=1"), "/users/{id}/orders/{id}");
    assert_eq!(template("/a/123e4567-e89b-12d3-a456-426614174000/b"), "/a/{id}/b");
    assert_eq!(template("/static/app.js"), "/static/app.js");
    assert_eq!(template("http://example.com/x/1"), "/x/{id}");
    assert_eq!(template(""), "/");
    assert_eq!(template("/1/2/3/4/5/6/7/8/9/10"), "/{id}/{id}/{id}/{id}/{id}/{id}/{id}/{id}/…");
    let mut s = stats::HttpStats::new(2);
    let x = |path: &str| Exchange {
        protocol: "HTTP/1.1",
        tgid: 1,
        comm: "c".into(),
        server: true,
        local: "127.0.0.1:1".parse().ok(),
        remote: "127.0.0.1:2".parse().ok(),
        tls: false,
        method: "GET".into(),
        path: path.into(),
        host: String::new(),
        status: 200,
        request_bytes: 1,
        response_bytes: 1,
        start_ns: 0,
        latency_ns: 1000,
    };
    for p in ["/a", "/b", "/c", "/d", "/a"] {
        s.add(&x(p));
    }
    let mut m = Vec::new();
    s.metrics(&mut m);
    let labels: Vec<String> = m.iter().filter(|s| s.name.as_str() == "requests_total").map(|s| format!("{}={}", s.labels[1], s.value)).collect();
    let mut labels = labels;
    labels.sort();
    assert_eq!(labels, vec!["/a=2", "/b=1", "other=2"]);
    tracer_plugin_kit::test_support::assert_metrics_declared(&descriptor().metrics, &m);
}

#[test]
fn malformed_records_are_errors_not_panics() {
    let mut h = Http::default();
    assert!(h.on_record(0, &[1, 2, 3], None).is_err());
    // A record claiming more captured bytes than it has.
    let mut w = Wire::new(HTTP_ROLE_SERVER);
    let mut r = w.transfer(IN, b"GET / HTTP/1.1\r\n\r\n", 5);
    r.truncate(r.len() - 5);
    h.on_record(0, &r, None).unwrap();
}

/// HTTP/2 frames: (type, flags, stream, payload) each.
fn frames(fs: &[(u8, u8, u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (kind, flags, stream, payload) in fs {
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        out.extend_from_slice(&[*kind, *flags]);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
    }
    out
}

/// An HTTP/2 conversation as a client writes and reads it: two requests on
/// streams 1 and 3 (the second's headers in a HEADERS and a CONTINUATION,
/// its path indexed from the first's dynamic table entries), answered out
/// of order, the first with a 40 KB body in three DATA frames.
fn h2_conversation() -> (Vec<u8>, Vec<u8>) {
    let mut enc = loona_hpack::Encoder::new();
    let h = |v: &[(&str, &str)]| -> Vec<(Vec<u8>, Vec<u8>)> { v.iter().map(|(a, b)| (a.as_bytes().to_vec(), b.as_bytes().to_vec())).collect() };
    let req1 = enc.encode(h(&[(":method", "GET"), (":scheme", "https"), (":path", "/users/42"), (":authority", "example.test")]).iter().map(|(a, b)| (&a[..], &b[..])));
    let req3 =
        enc.encode(h(&[(":method", "POST"), (":scheme", "https"), (":path", "/upload"), (":authority", "example.test"), ("content-type", "application/grpc")]).iter().map(|(a, b)| (&a[..], &b[..])));
    let mut senc = loona_hpack::Encoder::new();
    let resp1 = senc.encode(h(&[(":status", "200"), ("server", "t")]).iter().map(|(a, b)| (&a[..], &b[..])));
    let resp3 = senc.encode(h(&[(":status", "503"), ("server", "t")]).iter().map(|(a, b)| (&a[..], &b[..])));
    let settings = (4u8, 0u8, 0u32, vec![0, 3, 0, 0, 0, 100]);
    let mut written = crate::h2::PREFACE.to_vec();
    let (a, b) = req3.split_at(req3.len() / 2);
    written.extend(frames(&[settings.clone(), (1, 0x5, 1, req1), (1, 0x0, 3, a.to_vec()), (9, 0x4, 3, b.to_vec()), (0, 0x1, 3, vec![0; 5])]));
    // A padded HEADERS for stream 3's response.
    let mut padded = vec![2u8];
    padded.extend(&resp3);
    padded.extend([0, 0]);
    let read = frames(&[settings, (1, 0x4 | 0x8 | 0x1, 3, padded), (1, 0x4, 1, resp1), (0, 0, 1, vec![1; 16384]), (0, 0, 1, vec![2; 16384]), (0, 0x1, 1, vec![3; 7232])]);
    (written, read)
}

/// The conversation cut into transfers of `cuts` bytes in turn.
fn h2_records(w: &mut Wire, cuts: &[usize]) -> Vec<Vec<u8>> {
    let (written, read) = h2_conversation();
    let mut recs = Vec::new();
    for (dir, bytes) in [(OUT, &written), (IN, &read)] {
        let (mut pos, mut i) = (0, 0);
        while pos < bytes.len() {
            let n = cuts[i % cuts.len()].min(bytes.len() - pos);
            recs.push(w.transfer(dir, &bytes[pos..pos + n], 5));
            pos += n;
            i += 1;
        }
    }
    recs
}

#[test]
fn http2_streams_are_decoded_with_hpack_and_paired_by_stream() {
    let mut w = Wire::new(HTTP_ROLE_CLIENT);
    w.proto = HTTP_PROTO_HTTP2;
    // Each frame header at a transfer's start, bodies not captured.
    w.capture = 200;
    let (written, read) = h2_conversation();
    let mut recs = vec![w.transfer(OUT, &written, 5)];
    // The read side: the frames up to the first DATA, then one DATA frame
    // a transfer (as a server writes them), each with 200 bytes captured.
    let first_data = read.len() - (3 * 9 + 16384 * 2 + 7232);
    recs.push(w.transfer(IN, &read[..first_data], 5));
    let mut pos = first_data;
    for n in [16384, 16384, 7232] {
        recs.push(w.transfer(IN, &read[pos..pos + 9 + n], 5));
        pos += 9 + n;
    }
    recs.push(w.close());
    let (h, xs, rows) = run(&recs);
    let got: Vec<(&str, &str, &str, u16, &str)> = xs.iter().map(|x| (x.method.as_str(), x.path.as_str(), x.host.as_str(), x.status, x.protocol)).collect();
    assert_eq!(got, vec![("POST", "/upload", "example.test", 503, "gRPC"), ("GET", "/users/42", "example.test", 200, "HTTP/2")]);
    // Stream 1's response: its HEADERS frame and three DATA frames, 40,000
    // bytes of payload.
    assert!(xs[1].response_bytes > 4 * 9 + 40_000 && xs[1].response_bytes < 4 * 9 + 40_000 + 20, "{}", xs[1].response_bytes);
    assert_eq!(rows, 2);
    assert_eq!(h.conns.losses, conn::Losses::default(), "nothing lost");
    // The GET's latency: from its write to the read of its last DATA frame.
    assert!(xs[1].latency_ns > xs[0].latency_ns);
}

#[test]
fn http2_frames_past_the_capture_give_the_connection_up_and_count_it() {
    let mut w = Wire::new(HTTP_ROLE_CLIENT);
    w.proto = HTTP_PROTO_HTTP2;
    w.capture = 200;
    // The whole read side in one transfer: the second DATA frame's header
    // is past the 200 bytes captured.
    let (written, read) = h2_conversation();
    let recs = vec![w.transfer(OUT, &written, 5), w.transfer(IN, &read, 5), w.close()];
    let (h, xs, _) = run(&recs);
    // Stream 3's response ended inside the capture; stream 1's could not be followed.
    assert_eq!(xs.iter().map(|x| x.path.as_str()).collect::<Vec<_>>(), vec!["/upload"]);
    assert_eq!((h.conns.losses.h2_given_up, h.conns.losses.lost), (1, 1));
}

/// Where each frame header of `bytes` (frames from its start) is.
fn frame_headers(bytes: &[u8]) -> Vec<(i32, [u8; 9])> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 9 <= bytes.len() {
        let mut h = [0u8; 9];
        h.copy_from_slice(&bytes[pos..pos + 9]);
        out.push((pos as i32, h));
        pos += 9 + u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
    }
    out
}

#[test]
fn http2_frames_past_the_capture_are_followed_where_the_kernel_lists_them() {
    let mut w = Wire::new(HTTP_ROLE_CLIENT);
    w.proto = HTTP_PROTO_HTTP2;
    w.capture = 200;
    let (written, read) = h2_conversation();
    // All the read side in one transfer, only its first 200 bytes captured:
    // the DATA frames' headers come from the kernel's list.
    let recs = vec![w.transfer(OUT, &written, 5), w.transfer_listing(IN, &read, 5, &frame_headers(&read)), w.close()];
    let (h, xs, _) = run(&recs);
    assert_eq!(xs.iter().map(|x| (x.path.as_str(), x.status)).collect::<Vec<_>>(), vec![("/upload", 503), ("/users/42", 200)]);
    assert_eq!(h.conns.losses, conn::Losses::default());
}

/// What the kernel lists for the transfer of `bytes[start..end]` (frames
/// from the start of `bytes`): every header whose last byte is in it, at
/// its place from the transfer's start (negative: the transfer before cut
/// it, and kept its first bytes).
fn listing(bytes: &[u8], start: usize, end: usize) -> Vec<(i32, [u8; 9])> {
    frame_headers(bytes).into_iter().filter(|(at, _)| (*at as usize + 9 > start) && (*at as usize + 9 <= end)).map(|(at, h)| (at - start as i32, h)).collect()
}

proptest! {
    /// A reader's buffer ends anywhere, so a frame header past the capture
    /// is often cut between two transfers: followed from the kernel's
    /// list, the cut one listed in the second transfer at a negative place.
    #[test]
    fn http2_headers_cut_between_transfers_past_the_capture_are_followed(cuts in proptest::collection::vec(9usize..20_000, 1..20)) {
        let mut w = Wire::new(HTTP_ROLE_CLIENT);
        w.proto = HTTP_PROTO_HTTP2;
        w.capture = 200;
        let (written, read) = h2_conversation();
        let first_data = read.len() - (3 * 9 + 16384 * 2 + 7232);
        let mut recs = vec![w.transfer(OUT, &written, 5), w.transfer(IN, &read[..first_data], 5)];
        let (mut pos, mut i) = (first_data, 0);
        while pos < read.len() {
            let n = cuts[i % cuts.len()].min(read.len() - pos);
            recs.push(w.transfer_listing(IN, &read[pos..pos + n], 5, &listing(&read[first_data..], pos - first_data, pos - first_data + n)));
            pos += n;
            i += 1;
        }
        recs.push(w.close());
        let (h, xs, _) = run(&recs);
        prop_assert_eq!(xs.iter().map(|x| (x.path.as_str(), x.status)).collect::<Vec<_>>(), vec![("/upload", 503), ("/users/42", 200)]);
        prop_assert_eq!(h.conns.losses, conn::Losses::default());
    }
}

proptest! {
    /// The fast address text is SocketAddr's own, for every address.
    #[test]
    fn address_text_is_what_display_writes(ip in any::<u32>(), port in any::<u16>(), v6 in any::<u128>(), six in any::<bool>()) {
        let a: std::net::SocketAddr = if six { (std::net::Ipv6Addr::from(v6), port).into() } else { (std::net::Ipv4Addr::from(ip), port).into() };
        prop_assert_eq!(crate::stats::addr_text(&a), a.to_string());
    }
}

proptest! {
    /// Any cut of an HTTP/2 conversation into transfers, all captured,
    /// gives the same streams.
    #[test]
    fn any_split_of_an_http2_conversation_gives_the_same_streams(cuts in proptest::collection::vec(1usize..3000, 1..20)) {
        let mut w = Wire::new(HTTP_ROLE_SERVER);
        w.proto = HTTP_PROTO_HTTP2;
        w.capture = 4096;
        // The server's view: it reads what the client wrote.
        let mut recs = h2_records(&mut w, &cuts);
        for r in &mut recs {
            // Swap directions: the client's writes are the server's reads.
            let at = std::mem::offset_of!(http_event, dir);
            r[at] ^= 1;
        }
        let (h, xs, _) = run(&recs);
        let got: Vec<(String, u16)> = xs.iter().map(|x| (x.path.clone(), x.status)).collect();
        prop_assert_eq!(got, vec![("/upload".to_string(), 503), ("/users/42".to_string(), 200)]);
        prop_assert_eq!(h.conns.losses, conn::Losses::default());
    }

    /// Bytes that are no HTTP/2 after a preface never panic the parser.
    #[test]
    fn arbitrary_bytes_on_an_http2_connection_never_panic(junk in proptest::collection::vec(any::<u8>(), 0..600), cut in 1usize..100) {
        let mut w = Wire::new(HTTP_ROLE_CLIENT);
        w.proto = HTTP_PROTO_HTTP2;
        let mut bytes = crate::h2::PREFACE.to_vec();
        bytes.extend(&junk);
        let mut recs: Vec<Vec<u8>> = bytes.chunks(cut).map(|c| w.transfer(OUT, c, 1)).collect();
        recs.extend(junk.chunks(cut).map(|c| w.transfer(IN, c, 1)).collect::<Vec<_>>());
        let _ = run(&recs);
    }
}

proptest! {
    /// However the bytes of a conversation are cut into transfers (and
    /// however little of each is captured), the same exchanges come out.
    #[test]
    fn any_split_of_the_same_bytes_gives_the_same_exchanges(cuts in proptest::collection::vec(1usize..40, 1..30), capture in 40usize..400) {
        let requests = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello".to_vec();
        let responses = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n".to_vec();
        let mut w = Wire::new(HTTP_ROLE_SERVER);
        w.capture = capture;
        let mut recs = Vec::new();
        for (dir, bytes) in [(IN, &requests), (OUT, &responses)] {
            let mut pos = 0;
            let mut i = 0;
            while pos < bytes.len() {
                let n = cuts[i % cuts.len()].min(bytes.len() - pos);
                recs.push(w.transfer(dir, &bytes[pos..pos + n], 5));
                pos += n;
                i += 1;
            }
        }
        let (_, xs, _) = run(&recs);
        prop_assert_eq!(summary(&xs), vec![("GET".into(), "/a".into(), 200, 28, 40), ("POST".into(), "/b".into(), 201, 53, 64)]);
    }
}
