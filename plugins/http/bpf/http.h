/* SPDX-License-Identifier: GPL-2.0 */
/* What http.bpf.c and src/ share: the Rust side is generated from this. */
#ifndef __HTTP_H
#define __HTTP_H

/* Head bytes of a transfer a record can carry (the `capture_bytes`
 * setting picks up to this), and the last bytes it carries besides. */
#define HTTP_CAPTURE_MAX 4096
#define HTTP_TAIL_LEN 16
#define HTTP_PORTS_MAX 8
/* Buffers of a vector call (writev, sendmsg, ...) looked at. */
#define HTTP_IOV_MAX 8
/* Transfers of a connection looked at for an HTTP message start before it
 * is taken for another protocol and left alone. */
#define HTTP_CLASSIFY_TRIES 8

/* HTTP/2 frame headers a transfer's record can list (more: the walk is
 * lost for that direction). */
#define HTTP_H2_FRAMES 32

enum http_stat_idx {
	HTTP_STAT_RING_FULL = 0,      /* transfers not streamed: ring full */
	HTTP_STAT_CONN_INSERTED = 1,  /* connections followed */
	HTTP_STAT_CONN_FAILED = 2,    /* connections not followed: table full */
	HTTP_STAT_UNTRACKED = 3,      /* calls not followed: no task storage */
	HTTP_STAT_TRANSFERS = 4,      /* transfers streamed */
	HTTP_STAT_OTHER = 5,          /* connections found to speak something else */
	HTTP_STAT_UNSAMPLED = 6,      /* HTTP connections left out by sampling */
	HTTP_STAT_H2_WALK_LOST = 7,   /* HTTP/2 directions whose frames the kernel lost */
	HTTP_STAT_MAX = 8,
};

/* Direction of a transfer, as the traced process sees it. */
enum http_dir {
	HTTP_OUT = 0, /* written, sent */
	HTTP_IN = 1,  /* read, received */
};

enum http_kind {
	HTTP_EV_DATA = 0,  /* bytes moved */
	HTTP_EV_CLOSE = 1, /* the process closed the connection */
};

enum http_proto {
	HTTP_PROTO_UNKNOWN = 0,
	HTTP_PROTO_HTTP1 = 1,
	HTTP_PROTO_HTTP2 = 2,
	HTTP_PROTO_OTHER = 3,
};

/* Which end of the connection the process is, where known (accept4,
 * connect, or the first message's direction). */
enum http_role {
	HTTP_ROLE_UNKNOWN = 0,
	HTTP_ROLE_CLIENT = 1,
	HTTP_ROLE_SERVER = 2,
};

/* What the kernel's walk of an HTTP/2 direction's frames says of a
 * transfer. */
enum http_h2_walk {
	HTTP_H2_NONE = 0,   /* not walked (HTTP/1, or lost before) */
	HTTP_H2_FRAMES_OK = 1, /* frames lists every frame header that starts in it */
	HTTP_H2_LOST = 2,   /* the walk lost the frames here */
};

/* An HTTP/2 frame header found by following frame lengths from the
 * connection's start: so headers past the capture are known too. */
struct http_h2_frame {
	__s32 at;      /* its first byte, from the transfer's start (negative: it began in the transfer before) */
	__u8 hdr[9];
	__u8 _pad[3];
};

struct http_filter {
	struct proc_filter proc;
	struct uid_filter uid;
	__u32 capture;                 /* head bytes per transfer, <= HTTP_CAPTURE_MAX */
	__u32 sample_percent;          /* HTTP connections followed, in %: 1-100 */
	__u32 tls;                     /* OpenSSL's uprobes asked for: socket calls look for a TLS call in flight */
	__u32 nports;
	__u16 ports[HTTP_PORTS_MAX];   /* a connection's local or remote port; none: any */
};

/* One transfer on a followed connection (ring http_events), or its close.
 * Only the first `captured` bytes of data are sent (and, on HTTP/2, the
 * frame headers after them). */
struct http_event {
	__u64 start_ns;     /* the call's entry */
	__u64 end_ns;       /* its return */
	__u64 conn;         /* the socket's kernel address: the connection while it lives */
	__u64 offset;       /* bytes of this direction before this transfer, since followed */
	__u32 len;          /* bytes the call moved */
	__u32 captured;     /* of them, the first `captured` are in data */
	__u32 tgid;
	__u32 tid;
	__u16 lport;
	__u16 rport;
	__u8 dir;           /* enum http_dir */
	__u8 kind;          /* enum http_kind */
	__u8 role;          /* enum http_role */
	__u8 proto;         /* enum http_proto */
	__u8 family;        /* AF_INET, AF_INET6; 0: not known (TLS, before its socket is seen) */
	__u8 tail_len;      /* bytes in tail: the transfer's last ones (0: none or not known) */
	__u8 tls;           /* plaintext of a TLS connection (OpenSSL): conn is the SSL object */
	__u8 h2_walk;       /* enum http_h2_walk */
	__u16 nframes;      /* HTTP/2: struct http_h2_frame in data from frames_off */
	__u16 frames_off;
	__u8 laddr[16];
	__u8 raddr[16];
	__u8 tail[HTTP_TAIL_LEN];
	char comm[16];
	/* Twice the capture: a copy into it at any offset below the capture
	 * stays inside, as the verifier can see (HTTP/2 frame headers go after
	 * the captured bytes). */
	__u8 data[2 * HTTP_CAPTURE_MAX];
};

#endif
