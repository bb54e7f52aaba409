// SPDX-License-Identifier: GPL-2.0
/* HTTP at the system-call level: what processes write to and read from
 * their TCP sockets, streamed for user space to parse (capture here, parse
 * there, as pixie and coroot do).
 *
 * At a call's entry its fd is resolved in the task's own fd table; only
 * TCP sockets (IPv4, IPv6) go on. A connection is followed from the first
 * transfer whose first bytes start an HTTP message (a request line's method,
 * `HTTP/1.`, or HTTP/2's preface); after HTTP_CLASSIFY_TRIES transfers that
 * start none it is left alone (one map lookup a call). From then on every
 * transfer of the connection, both ways, is one record: the connection
 * (its socket's address), direction, bytes before it in that direction,
 * bytes moved, the first `capture` of them and the last HTTP_TAIL_LEN. So
 * user space can follow messages split over many calls (bash's /dev/tcp
 * writes a request in four), skip bodies by length without their bytes,
 * see a chunked body's end in a transfer's tail, and tell a lost record by
 * a gap in the offsets.
 *
 * What is written is copied at the call's entry (what the kernel is about
 * to take), what is read at its return (what the kernel gave): user memory
 * is never read later than the kernel reads or writes it.
 *
 * Alternatives, best first: the calls' own classic tracepoints, or raw_tp
 * sys_enter/sys_exit (x86-64 numbers). Optional: tp_btf inet_sock_set_state
 * forgets a connection when its socket closes without a close(2) (a process
 * that exits). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "tracer.h"
#include "fd_file.h"
#include "http.h"

char LICENSE[] SEC("license") = "GPL";

SHARED_TYPE(enum http_stat_idx);
SHARED_TYPE(enum http_dir);
SHARED_TYPE(enum http_kind);
SHARED_TYPE(enum http_proto);
SHARED_TYPE(enum http_role);
SHARED_TYPE(struct http_filter);
SHARED_TYPE(struct http_event);
SHARED_TYPE(enum http_h2_walk);
SHARED_TYPE(struct http_h2_frame);

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define TCP_CLOSE 7
#define HTTP_HDR_LEN (__builtin_offsetof(struct http_event, data))
#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

enum call_op {
	CALL_NONE = 0,
	CALL_DATA = 1,
	CALL_ACCEPT = 2,
};

/* A thread's call in flight, the record it is building, and the socket of
 * the file it used last. */
struct http_call {
	__u64 sk;
	__u64 buf;   /* the buffer, or the iovec array */
	__u64 count; /* its size, or the iovecs' count */
	__u64 total; /* a vector write: the bytes of the buffers looked at */
	struct file *last_file;
	struct inode *last_inode;
	__u64 last_raw_sk; /* its socket's sock (0: no socket) */
	__u64 last_sk;     /* the same if a TCP socket, else 0 */
	__u32 gen;
	__u8 op;     /* enum call_op */
	__u8 iov;    /* buf is an iovec array */
	__u8 _pad[2];
	/* An HTTP/2 write's frame walk, done at its entry (what the kernel is
	 * about to take), kept for its return. */
	__s64 h2_end;     /* where the next frame header starts, from the transfer's start (-1: lost) */
	__u8 h2_walked;
	__u8 h2_part_len; /* the write's end cut a header: its first bytes, in h2_part */
	__u8 _pad2[6];
	__u8 h2_part[8];
	__u8 h2_tmp[16];  /* a header put together from two transfers */
	__s64 h2_pos;       /* the walk's place after it, */
	__s64 h2_joined_at; /* and its place (see h2_walk_transfer) */
	struct http_event ev;
};

/* Per connection (its socket). */
struct http_conn {
	__u64 bytes[2]; /* per direction, streamed so far */
	__u8 proto;
	__u8 role;
	__u8 tries;
	__u8 ports;     /* the port filter: 0 not asked yet, 1 passes, 2 fails */
	__u8 family;    /* the addresses, kept once it speaks HTTP */
	__u8 _pad;
	__u16 lport;
	__u16 rport;
	__u8 laddr[16];
	__u8 raddr[16];
	/* HTTP/2, per direction: where its next frame header starts (bytes of
	 * the direction before it), whether the walk lost the frames. */
	__u64 h2_next[2];
	__u8 h2_lost[2];
	/* A header the last transfer's end cut: its first bytes (1-8). */
	__u8 h2_part_len[2];
	__u8 _pad2[4];
	__u8 h2_part[2][8];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct http_filter);
} http_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct http_call);
} http_calls SEC(".maps");

/* Bounded: the connections untouched longest go first. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct http_conn);
} http_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} http_events SEC(".maps");

/* A record built where no thread's call state is at hand (a socket closing
 * in softirq). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct http_event);
} http_scratch SEC(".maps");

DECLARE_STATS(http_counters, HTTP_STAT_MAX);

/* TLS: the calls and connections of OpenSSL's uprobes (an SSL object in
 * its process is a connection). */
struct tls_key {
	__u64 ssl;
	__u32 tgid;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct http_call);
} http_tls_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct tls_key);
	__type(value, struct http_conn);
} http_tls_conns SEC(".maps");

static __always_inline struct http_filter *filter(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&http_filter, &zero);
}

/* The TCP socket behind `file`, or 0.
 *
 * The thread's last file is remembered, but a closed socket's file and
 * inode are freed and the next socket's are very often the same two
 * addresses (caught by the nginx test: a probe connection's sock stood in
 * for the next one's). So the sock is read anew each call (two loads);
 * what is kept is whether that sock is TCP: socks come from per-protocol
 * caches, so an address that held a TCP sock holds only TCP socks. An inode
 * that was no socket's cannot become one (socket inodes have their own
 * cache). */
static __always_inline __u64 tcp_sock_of(struct http_call *c, struct file *file)
{
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	struct socket *sock;
	struct sock *sk;
	__u16 family;

	if (file == c->last_file && inode == c->last_inode) {
		if (!c->last_raw_sk)
			return 0;
		sock = BPF_CORE_READ(file, private_data);
		sk = BPF_CORE_READ(sock, sk);
		if ((__u64)sk == c->last_raw_sk)
			return c->last_sk;
	} else {
		c->last_file = file;
		c->last_inode = inode;
		c->last_raw_sk = 0;
		c->last_sk = 0;
		if ((BPF_CORE_READ(inode, i_mode) & S_IFMT) != S_IFSOCK)
			return 0;
		sock = BPF_CORE_READ(file, private_data);
		sk = BPF_CORE_READ(sock, sk);
	}
	c->last_raw_sk = (__u64)sk;
	c->last_sk = 0;
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	c->last_sk = (__u64)sk;
	return (__u64)sk;
}

static __always_inline bool ports_wanted(const struct http_filter *f, struct sock *sk)
{
	__u16 l, r;

	if (!f->nports)
		return true;
	l = BPF_CORE_READ(sk, __sk_common.skc_num);
	r = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	for (int i = 0; i < HTTP_PORTS_MAX; i++) {
		if (i >= f->nports)
			break;
		if (f->ports[i] == l || f->ports[i] == r)
			return true;
	}
	return false;
}

static __always_inline struct http_conn *conn_in(void *map, const void *key)
{
	struct http_conn *conn = bpf_map_lookup_elem(map, key);
	struct http_conn zero = {};
	bool inserted;

	if (conn)
		return conn;
	conn = map_insert_or_find(map, key, &zero, &inserted);
	if (!conn)
		stat_inc(&http_counters, HTTP_STAT_CONN_FAILED);
	return conn;
}

static __always_inline struct http_conn *conn_entry(__u64 sk)
{
	return conn_in(&http_conns, &sk);
}

/* The thread's call state, with the TCP socket behind `fd` in it; NULL
 * where the call is not to be followed. */
static __always_inline struct http_call *call_on(struct http_filter *f, long fd)
{
	struct http_call *c;
	struct file *file;
	__u64 sk;

	if (!proc_wanted(&f->proc, bpf_get_current_pid_tgid() >> 32) || !uid_wanted(&f->uid))
		return NULL;
	file = fd_file(fd);
	if (!file)
		return NULL;
	c = bpf_task_storage_get(&http_calls, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c) {
		stat_inc(&http_counters, HTTP_STAT_UNTRACKED);
		return NULL;
	}
	c->op = CALL_NONE;
	sk = tcp_sock_of(c, file);
	if (!sk)
		return NULL;
	c->sk = sk;
	c->gen = f->proc.gen;
	return c;
}

/* Copy up to `n` bytes (at most the capture) of user memory at `src` to
 * the record's data; returns how many. */
static __always_inline __u32 copy_head(struct http_call *c, const struct http_filter *f, __u64 src, __u64 n)
{
	__u32 cap = f->capture;

	if (n > cap)
		n = cap;
	barrier_var(n);
	if (n > HTTP_CAPTURE_MAX)
		n = HTTP_CAPTURE_MAX;
	if (!n || bpf_probe_read_user(c->ev.data, n, (void *)src))
		return 0;
	return n;
}

/* The last HTTP_TAIL_LEN bytes of the `n` at `src` (fewer: all of them). */
static __always_inline __u8 copy_tail(struct http_call *c, __u64 src, __u64 n)
{
	__u64 k = n < HTTP_TAIL_LEN ? n : HTTP_TAIL_LEN;

	barrier_var(k);
	if (k > HTTP_TAIL_LEN)
		k = HTTP_TAIL_LEN;
	if (!k || bpf_probe_read_user(c->ev.tail, k, (void *)(src + n - k)))
		return 0;
	return k;
}

/* Walking an iovec array: one buffer per bpf_loop step (a loop the verifier
 * checks once: unrolled, the vector calls were too much for 6.1's). */
struct iov_walk {
	__u64 iov;
	__u64 cnt;
	__u64 total;
	__u64 done;
	__u32 got;
	__u32 cap;
	__u8 whole;
};

static long iov_step(__u32 i, void *ctx)
{
	struct iov_walk *w = ctx;
	struct http_call *c = bpf_task_storage_get(&http_calls, bpf_get_current_task_btf(), 0, 0);
	struct iovec v;
	__u64 len;

	if (!c || i >= w->cnt || w->done >= w->total)
		return 1;
	if (bpf_probe_read_user(&v, sizeof(v), (void *)(w->iov + i * sizeof(v))))
		return 1;
	len = v.iov_len;
	if (len > w->total - w->done)
		len = w->total - w->done;
	if (w->whole && w->got < w->cap && len) {
		__u64 n = len < w->cap - w->got ? len : w->cap - w->got;
		__u32 off = w->got & (HTTP_CAPTURE_MAX - 1);

		barrier_var(n);
		if (n > HTTP_CAPTURE_MAX)
			n = HTTP_CAPTURE_MAX;
		if (n && !bpf_probe_read_user(c->ev.data + off, n, v.iov_base))
			w->got += n;
		else
			w->whole = 0;
	}
	w->done += len;
	/* The buffer holding the last byte: its last bytes are the tail. */
	if (w->done >= w->total || i + 1 >= w->cnt)
		c->ev.tail_len = copy_tail(c, (__u64)v.iov_base, len);
	return 0;
}

/* The first bytes (up to the capture) and the last HTTP_TAIL_LEN of the
 * first `total` bytes of an iovec array of `cnt` buffers (at most
 * HTTP_IOV_MAX looked at) into the thread's record. Returns the bytes of
 * the buffers looked at. */
static __always_inline __u64 copy_iov(struct http_call *c, const struct http_filter *f, __u64 iov, __u64 cnt, __u64 total)
{
	struct iov_walk w = {
		.iov = iov,
		.cnt = cnt,
		.total = total,
		.cap = f->capture < HTTP_CAPTURE_MAX ? f->capture : HTTP_CAPTURE_MAX,
		.whole = 1,
	};

	c->ev.captured = 0;
	c->ev.tail_len = 0;
	bpf_loop(HTTP_IOV_MAX, iov_step, &w, 0);
	c->ev.captured = w.got;
	return w.done;
}

static __always_inline void tls_link(struct sock *sk);
static __always_inline void h2_walk_write(struct http_call *c, struct http_conn *conn, __u8 tls);

/* A data call's entry: `buf` is the buffer, or with `iov` an iovec array
 * of `count` buffers (msghdr calls pass their msg_iov). */
static __always_inline void on_enter(__u8 dir, long fd, __u64 buf, __u64 count, __u8 iov)
{
	struct http_filter *f = filter();
	struct http_call *c;
	struct http_conn *conn;

	if (!f)
		return;
	c = call_on(f, fd);
	if (!c)
		return;
	/* (Without TLS probes no TLS call is ever in flight: no lookup.) */
	if (f->tls)
		tls_link((struct sock *)c->sk);
	conn = bpf_map_lookup_elem(&http_conns, &c->sk);
	if (conn && conn->proto == HTTP_PROTO_OTHER)
		return;
	/* The port filter, asked once per connection. */
	if (f->nports) {
		if (!conn) {
			conn = conn_entry(c->sk);
			if (!conn)
				return;
		}
		if (!conn->ports)
			conn->ports = ports_wanted(f, (struct sock *)c->sk) ? 1 : 2;
		if (conn->ports == 2)
			return;
	}
	c->iov = iov;
	c->buf = buf;
	c->count = count;
	c->total = 0;
	c->ev.dir = dir;
	c->ev.captured = 0;
	c->ev.tail_len = 0;
	c->ev.nframes = 0;
	c->ev.h2_walk = HTTP_H2_NONE;
	c->h2_walked = 0;
	/* What the kernel is about to take. */
	if (dir == HTTP_OUT && buf && iov) {
		c->total = copy_iov(c, f, buf, count, ~0ULL);
		/* Buffers past those looked at: the tail is not the last bytes. */
		if (count > HTTP_IOV_MAX)
			c->ev.tail_len = 0;
	} else if (dir == HTTP_OUT && buf) {
		c->ev.captured = copy_head(c, f, buf, count);
		c->ev.tail_len = copy_tail(c, buf, count);
	}
	/* An HTTP/2 write's frames, walked in what the kernel is about to
	 * take (a server writes many frames a call when not using sendfile). */
	if (dir == HTTP_OUT && buf && conn && conn->proto == HTTP_PROTO_HTTP2)
		h2_walk_write(c, conn, 0);
	c->ev.start_ns = bpf_ktime_get_ns();
	c->op = CALL_DATA;
}

/* ---- HTTP/2: the frame headers of a transfer ----
 * User space decodes HTTP/2 from the captured bytes, but a frame header
 * can lie past them (a DATA frame's payload fills the capture). The walk
 * follows the direction's frame lengths from the preface on and lists
 * every header that starts in a transfer, read where the record's bytes
 * are (the capture) or else from user memory: a write's at its entry, a
 * read's at its return, as for the capture. One bpf_loop step a frame.
 * A header cut by a transfer's end (a reader's buffer ends anywhere) has
 * its first bytes kept from the transfer's tail, and is put together with
 * the rest at the next transfer's start, where it is listed at a negative
 * position. More than HTTP_H2_FRAMES frames in a transfer, a header in
 * bytes not in user memory (sendfile), or a header over three transfers
 * lose the direction's frames: counted, and user space gives the
 * connection up when it needs them. */

/* Frame positions within a transfer stay below this (a frame is at most
 * 16 MiB, a transfer below 4 GiB). */
#define H2_POS_MAX (1LL << 32)

struct h2_walk {
	__s64 pos;      /* the next header, from the transfer's start */
	__u64 len;      /* bytes of the transfer */
	__u32 n;        /* frames listed */
	__u32 off;      /* where in data they go */
	__u8 user;      /* user memory may be read (else the capture only) */
	__u8 tls;
	__u8 lost;
	/* The first bytes of a header a transfer's end cut: in, the last
	 * transfer's; out, this one's (0: the walk ends at no cut header). */
	__u8 part_len;
	__u8 _pad[4];
	__u8 part[8];
};

static __always_inline struct http_call *walk_call(__u8 tls)
{
	return bpf_task_storage_get(tls ? (void *)&http_tls_calls : (void *)&http_calls, bpf_get_current_task_btf(), 0, 0);
}

/* Copy a frame header (9 bytes) at `pos` of the transfer into `dst`: from
 * the capture, else from the call's buffer or iovecs. 0 on success.
 * (Addresses as plain numbers, sizes constant: were the position a bound
 * the verifier checks, it would track it exactly and no two steps of the
 * walk would look alike to it.) */
static __always_inline int header_at(struct http_call *c, const struct h2_walk *w, __u64 pos, __u8 *dst)
{
	struct iovec v;
	__u64 base = 0;

	if (pos + 9 > w->len)
		return -1;
	if (pos + 9 <= c->ev.captured)
		return bpf_probe_read_kernel(dst, 9, (void *)((__u64)c->ev.data + pos));
	if (!w->user || !c->buf)
		return -1;
	if (!c->iov)
		return bpf_probe_read_user(dst, 9, (void *)(c->buf + pos));
	/* The buffer holding it (a header over two buffers: not followed). */
	for (int i = 0; i < HTTP_IOV_MAX; i++) {
		if (i >= c->count || bpf_probe_read_user(&v, sizeof(v), (void *)(c->buf + i * sizeof(v))))
			return -1;
		if (pos < base + v.iov_len) {
			if (pos + 9 > base + v.iov_len)
				return -1;
			return bpf_probe_read_user(dst, 9, v.iov_base + (pos - base));
		}
		base += v.iov_len;
	}
	return -1;
}

/* List a frame header at `at` (its bytes in hdr) as the i-th; false: no
 * room. (The loop's index, not a count kept in the context: a count the
 * verifier tracks exactly makes each step a new state to it.) */
static __always_inline bool list_frame(struct http_call *c, struct h2_walk *w, __u32 i, __s64 at, const __u8 *hdr)
{
	struct http_h2_frame fr = { .at = at };
	__u32 idx = w->off + i * sizeof(fr);

	if (i >= HTTP_H2_FRAMES || idx > 2 * HTTP_CAPTURE_MAX - sizeof(fr))
		return false;
	__builtin_memcpy(fr.hdr, hdr, 9);
	idx &= 2 * HTTP_CAPTURE_MAX - 1;
	if (idx > 2 * HTTP_CAPTURE_MAX - sizeof(fr))
		return false;
	__builtin_memcpy(c->ev.data + idx, &fr, sizeof(fr));
	w->n = i + 1;
	return true;
}

/* The header the transfer before cut (its first w->part_len bytes kept,
 * this transfer starting with the rest), put together in c->h2_tmp (a map
 * value takes a copy at a variable offset the verifier can bound). */
static __always_inline bool joined_header(struct http_call *c, struct h2_walk *w)
{
	__u32 k = w->part_len;

	if (k < 1 || k > 8 || w->pos != -(__s64)k || 9 - k > w->len)
		return false;
	__builtin_memcpy(c->h2_tmp, w->part, 8);
	/* The rest is in the capture (the transfer may be shorter than a
	 * header: a reader's call that took only the rest); 8 bytes read from
	 * there, the 9 - k wanted and then what follows. */
	if (9 - k <= c->ev.captured) {
		if (bpf_probe_read_kernel(c->h2_tmp + (k & 7), 8, c->ev.data))
			return false;
	} else if (header_at(c, w, 0, c->h2_tmp + (k & 7))) {
		return false;
	}
	return true;
}

/* A header this transfer's end cuts after its first k bytes: they are the
 * last of the transfer's tail. */
static __always_inline bool keep_part(struct http_call *c, struct h2_walk *w)
{
	__u32 k = w->len - w->pos;
	__u32 t = c->ev.tail_len;

	if (k < 1 || k > 8 || t < k || t > HTTP_TAIL_LEN)
		return false;
	/* (8 bytes from there: the k wanted, then what follows the tail.) */
	if (bpf_probe_read_kernel(w->part, 8, c->ev.tail + ((t - k) & (HTTP_TAIL_LEN - 1))))
		return false;
	w->part_len = k;
	return true;
}

static long h2_step(__u32 i, void *ctx)
{
	struct h2_walk *w = ctx;
	struct http_call *c = walk_call(w->tls);
	__u8 hdr[16] = {};
	__s64 next;

	if (!c || w->pos < 0) {
		w->lost = 1;
		return 1;
	}
	if (w->pos >= w->len)
		return 1;
	/* (A header the transfer's end cuts stops the loop as lost, and is
	 * told apart after it: a branch here is checked again for every
	 * step the verifier cannot tell from the last.) */
	if (header_at(c, w, w->pos, hdr) || !list_frame(c, w, i, w->pos, hdr)) {
		w->lost = 1;
		return 1;
	}
	next = w->pos + 9 + (((__u64)hdr[0] << 16) | ((__u64)hdr[1] << 8) | hdr[2]);
	if (next > H2_POS_MAX) {
		w->lost = 1;
		return 1;
	}
	w->pos = next;
	return 0;
}

/* Walk a transfer of w->len bytes from w->pos, where its direction's next
 * frame header starts (from the transfer's start). The frames go after
 * the captured bytes.
 *
 * A global function: the verifier checks it once, whatever path of the
 * calling program reaches it (inlined, its loop was checked again for each
 * and the programs grew past the verifier's limit). */
__noinline int h2_walk_transfer(struct h2_walk *arg)
{
	struct http_call *c;
	/* bpf_loop's context must be on this function's stack. */
	struct h2_walk w;
	__s64 joined_at;

	if (!arg)
		return 0;
	w = *arg;
	c = walk_call(w.tls);
	if (!c)
		return 0;
	w.off = c->ev.captured;
	w.n = 0;
	w.lost = 0;
	/* A header the transfer before cut: put together first (its length
	 * says where the loop starts), listed after the loop's frames (user
	 * space finds frames by place, not order). What the two paths differ
	 * in goes through the call's state, which the verifier does not
	 * follow: the loop's start then looks the same to it on both, and
	 * it checks the loop once, not for each path and each step (with
	 * them on the stack, loading took 3 to 20 times as long). */
	*(volatile __s64 *)&c->h2_joined_at = 0;
	if (w.pos < 0) {
		if (!joined_header(c, &w)) {
			w.lost = 1;
		} else {
			*(volatile __s64 *)&c->h2_joined_at = w.pos;
			*(volatile __s64 *)&c->h2_pos = w.pos + 9 + (((__u64)c->h2_tmp[0] << 16) | ((__u64)c->h2_tmp[1] << 8) | c->h2_tmp[2]);
			w.pos = *(volatile __s64 *)&c->h2_pos;
			if (w.pos < 0)
				w.lost = 1;
		}
	}
	/* (Used: what is kept from here on is this transfer's.) */
	w.part_len = 0;
	/* One more step than frames listed: the last finds the end. */
	if (!w.lost)
		bpf_loop(HTTP_H2_FRAMES + 1, h2_step, &w, 0);
	if (!w.lost && w.pos < (__s64)w.len)
		w.lost = 1;
	/* A header this transfer's end cuts (header_at refused it first of
	 * all): its first bytes kept for the next transfer. */
	if (w.lost && w.pos >= 0 && w.pos < (__s64)w.len && w.pos + 9 > (__s64)w.len)
		w.lost = !keep_part(c, &w);
	joined_at = *(volatile __s64 *)&c->h2_joined_at;
	if (joined_at < 0 && !w.lost && !list_frame(c, &w, w.n, joined_at, c->h2_tmp))
		w.lost = 1;
	c->ev.nframes = w.n;
	c->ev.frames_off = w.off;
	c->ev.h2_walk = w.lost ? HTTP_H2_LOST : HTTP_H2_FRAMES_OK;
	*arg = w;
	return 0;
}

/* A write's walk at its entry, kept for its return. */
static __always_inline void h2_walk_write(struct http_call *c, struct http_conn *conn, __u8 tls)
{
	struct h2_walk w = { .len = c->iov ? c->total : c->count, .user = 1, .tls = tls };

	c->h2_walked = 0;
	if (conn->proto != HTTP_PROTO_HTTP2 || conn->h2_lost[HTTP_OUT])
		return;
	w.pos = (__s64)(conn->h2_next[HTTP_OUT] - conn->bytes[HTTP_OUT]);
	w.part_len = conn->h2_part_len[HTTP_OUT];
	__builtin_memcpy(w.part, conn->h2_part[HTTP_OUT], 8);
	h2_walk_transfer(&w);
	c->h2_walked = 1;
	c->h2_end = w.lost ? -1 : w.pos;
	c->h2_part_len = w.part_len;
	__builtin_memcpy(c->h2_part, w.part, 8);
}

/* A write that took t->ret bytes of those walked: the frames from there on
 * are not listed; t->end becomes where the walk stops (-1: a header the
 * write cut, not followed). Global for the same reason as the walk. */
struct h2_trim {
	__s64 ret;
	__s64 end;
	__u8 tls;
	__u8 _pad[7];
};

static long trim_step(__u32 j, void *ctx)
{
	struct h2_trim *t = ctx;
	struct http_call *c = walk_call(t->tls);
	struct http_h2_frame fr;
	__u32 idx;

	if (!c || j >= c->ev.nframes)
		return 1;
	idx = c->ev.frames_off + j * sizeof(fr);
	if (idx > 2 * HTTP_CAPTURE_MAX - sizeof(fr))
		return 1;
	idx &= 2 * HTTP_CAPTURE_MAX - 1;
	if (idx > 2 * HTTP_CAPTURE_MAX - sizeof(fr))
		return 1;
	__builtin_memcpy(&fr, c->ev.data + idx, sizeof(fr));
	if (fr.at >= t->ret) {
		c->ev.nframes = j;
		t->end = fr.at;
		return 1;
	}
	if (fr.at + 9 > t->ret) {
		t->end = -1;
		return 1;
	}
	return 0;
}

__noinline int h2_short_write(struct h2_trim *arg)
{
	struct h2_trim t;

	if (!arg)
		return 0;
	t = *arg;
	bpf_loop(HTTP_H2_FRAMES, trim_step, &t, 0);
	*arg = t;
	return 0;
}

/* A transfer of `ret` bytes on an HTTP/2 connection: its walk (a read's
 * now; a write's from its entry, cut to what was written), and where the
 * direction's next header is. */
static __always_inline void h2_transfer(struct http_call *c, struct http_conn *conn, __u8 dir, long ret, __u8 tls)
{
	struct h2_walk w = { .len = ret, .user = dir == HTTP_IN, .tls = tls };
	__s64 end;
	__u8 part_len;

	dir &= 1;
	if (conn->h2_lost[dir]) {
		c->ev.h2_walk = HTTP_H2_NONE;
		c->ev.nframes = 0;
		return;
	}
	if (dir == HTTP_OUT && c->h2_walked) {
		__u64 walked = c->iov ? c->total : c->count;

		end = c->h2_end;
		part_len = c->h2_part_len;
		__builtin_memcpy(w.part, c->h2_part, 8);
		if (end >= 0 && (__u64)ret < walked) {
			struct h2_trim t = { .ret = ret, .end = end, .tls = tls };

			h2_short_write(&t);
			end = t.end;
			/* What was kept is of the buffer's end, not the write's. */
			part_len = 0;
		}
	} else {
		/* A read, or the write that found the connection (walked in
		 * what it captured). */
		w.pos = (__s64)(conn->h2_next[dir] - conn->bytes[dir]);
		w.part_len = conn->h2_part_len[dir];
		__builtin_memcpy(w.part, conn->h2_part[dir], 8);
		h2_walk_transfer(&w);
		end = w.lost ? -1 : w.pos;
		part_len = w.part_len;
	}
	/* A header this transfer's end cut: its first bytes must be kept. */
	if (end >= 0 && end < ret && (!part_len || ret - end != part_len))
		end = -1;
	if (end < 0 || c->ev.h2_walk == HTTP_H2_LOST) {
		conn->h2_lost[dir] = 1;
		c->ev.h2_walk = HTTP_H2_LOST;
		stat_inc(&http_counters, HTTP_STAT_H2_WALK_LOST);
		return;
	}
	conn->h2_part_len[dir] = end < ret ? part_len : 0;
	__builtin_memcpy(conn->h2_part[dir], w.part, 8);
	conn->h2_next[dir] = conn->bytes[dir] + end;
}

/* sendmsg/recvmsg: their msghdr's iovec array. */
static __always_inline void on_enter_msg(__u8 dir, long fd, __u64 msg)
{
	struct user_msghdr m;

	if (bpf_probe_read_user(&m, sizeof(m), (void *)msg))
		return;
	on_enter(dir, fd, (__u64)m.msg_iov, m.msg_iovlen, 1);
}

static __always_inline bool is(const __u8 *d, const char *p, int n)
{
	for (int i = 0; i < n; i++)
		if (d[i] != p[i])
			return false;
	return true;
}

/* What the first bytes of a transfer start, if anything known. */
static __always_inline __u8 classify(const __u8 *d, __u32 n, __u8 dir, __u8 *role)
{
	bool request;

	if (n >= 8 && is(d, "PRI * HT", 8)) {
		*role = dir == HTTP_OUT ? HTTP_ROLE_CLIENT : HTTP_ROLE_SERVER;
		return HTTP_PROTO_HTTP2;
	}
	if (n >= 7 && is(d, "HTTP/1.", 7)) {
		*role = dir == HTTP_OUT ? HTTP_ROLE_SERVER : HTTP_ROLE_CLIENT;
		return HTTP_PROTO_HTTP1;
	}
	request = (n >= 4 && (is(d, "GET ", 4) || is(d, "PUT ", 4))) || (n >= 5 && (is(d, "POST ", 5) || is(d, "HEAD ", 5))) ||
		  (n >= 6 && is(d, "PATCH ", 6)) || (n >= 7 && is(d, "DELETE ", 7)) ||
		  (n >= 8 && (is(d, "OPTIONS ", 8) || is(d, "CONNECT ", 8))) || (n >= 6 && is(d, "TRACE ", 6));
	if (request) {
		*role = dir == HTTP_OUT ? HTTP_ROLE_CLIENT : HTTP_ROLE_SERVER;
		return HTTP_PROTO_HTTP1;
	}
	return HTTP_PROTO_UNKNOWN;
}

/* The connection's addresses, read once when it is found to speak HTTP
 * (connected by then) and copied into each of its records. */
static __always_inline void keep_addrs(struct http_conn *conn, struct sock *sk)
{
	conn->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	conn->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	conn->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (conn->family == AF_INET) {
		bpf_core_read(conn->laddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(conn->raddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_core_read(conn->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(conn->raddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

/* A socket call made inside OpenSSL's SSL_read or SSL_write (the thread's
 * TLS call in flight): the socket under that SSL object. Its addresses are
 * kept for the TLS connection, so its records carry them as plain ones do
 * (OpenSSL's structures, which hold the fd, differ between versions; the
 * call in flight does not). */
static __always_inline void tls_link(struct sock *sk)
{
	struct http_call *t = bpf_task_storage_get(&http_tls_calls, bpf_get_current_task_btf(), 0, 0);
	struct tls_key key = {};
	struct http_conn *conn;

	if (!t || t->op != CALL_DATA)
		return;
	key.ssl = t->sk;
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	conn = conn_in(&http_tls_conns, &key);
	if (conn && !conn->family)
		keep_addrs(conn, sk);
}

/* A record's addresses: those kept for its connection (zero for TLS until
 * a socket call inside an SSL call names its socket). */
static __always_inline void conn_addrs(struct http_event *e, const struct http_conn *conn)
{
	e->family = conn->family;
	e->lport = conn->lport;
	e->rport = conn->rport;
	__builtin_memcpy(e->laddr, conn->laddr, sizeof(e->laddr));
	__builtin_memcpy(e->raddr, conn->raddr, sizeof(e->raddr));
}

/* Stream a record (its head `captured` bytes). */
static __always_inline void emit(struct http_event *e)
{
	__u64 size = e->captured;

	if (e->nframes)
		size = e->frames_off + e->nframes * sizeof(struct http_h2_frame);
	barrier_var(size);
	if (size > 2 * HTTP_CAPTURE_MAX)
		size = 2 * HTTP_CAPTURE_MAX;
	if (bpf_ringbuf_output(&http_events, e, HTTP_HDR_LEN + size, rb_submit_flags(&http_events)))
		stat_inc(&http_counters, HTTP_STAT_RING_FULL);
	else
		stat_inc(&http_counters, HTTP_STAT_TRANSFERS);
}

static __always_inline void stream_transfer(struct http_call *c, struct http_conn *conn, long ret, struct sock *sk);

static __always_inline bool sampled(__u64 id)
{
	struct http_filter *f = filter();
	__u32 pct = f ? f->sample_percent : 100;

	if (pct >= 100)
		return true;
	/* Fibonacci hashing of the address (its low bits are alignment). */
	return ((((id >> 4) * 11400714819323198485ULL) >> 32) % 100) < pct;
}

static __always_inline void data_exit(struct http_call *c, struct http_filter *f, long ret)
{
	struct http_conn *conn;
	__u8 dir = c->ev.dir & 1;

	if (ret <= 0)
		return;
	if (dir == HTTP_IN && c->buf && c->iov) {
		/* What the kernel gave: the first `ret` bytes of the buffers. */
		if (copy_iov(c, f, c->buf, c->count, ret) < (__u64)ret)
			c->ev.tail_len = 0;
	} else if (dir == HTTP_IN && c->buf) {
		__u64 got = (__u64)ret < c->count ? (__u64)ret : c->count;

		c->ev.captured = copy_head(c, f, c->buf, got);
		c->ev.tail_len = copy_tail(c, c->buf, got);
	} else if (dir == HTTP_OUT) {
		if (c->ev.captured > ret)
			c->ev.captured = ret;
		/* A short write: its tail is not what was copied. */
		if ((__u64)ret != (c->iov ? c->total : c->count))
			c->ev.tail_len = 0;
	}
	conn = conn_entry(c->sk);
	if (!conn)
		return;
	stream_transfer(c, conn, ret, (struct sock *)c->sk);
}

/* A transfer of `ret` bytes on `conn`, its head and tail in c->ev: classify
 * the connection if need be, and stream it if it speaks HTTP. `sk`: the
 * socket, for the addresses (NULL: TLS, not known). */
static __always_inline void stream_transfer(struct http_call *c, struct http_conn *conn, long ret, struct sock *sk)
{
	__u64 tid_tgid = bpf_get_current_pid_tgid();
	__u8 dir = c->ev.dir & 1;
	__u8 role = HTTP_ROLE_UNKNOWN;

	if (conn->proto == HTTP_PROTO_UNKNOWN) {
		__u8 p = classify(c->ev.data, c->ev.captured, dir, &role);

		if (p == HTTP_PROTO_UNKNOWN) {
			if (++conn->tries >= HTTP_CLASSIFY_TRIES) {
				conn->proto = HTTP_PROTO_OTHER;
				stat_inc(&http_counters, HTTP_STAT_OTHER);
			}
			return;
		}
		conn->proto = p;
		if (conn->role == HTTP_ROLE_UNKNOWN)
			conn->role = role;
		/* Frames start after the preface one way, at once the other. */
		if (p == HTTP_PROTO_HTTP2) {
			conn->h2_next[dir] = sizeof(H2_PREFACE) - 1;
			conn->h2_next[dir ^ 1] = 0;
		}
		if (sk)
			keep_addrs(conn, sk);
		/* Sampling by connection: a hash of its identity picks it or
		 * not, once; user space scales what it counts. */
		if (!sampled(c->sk)) {
			conn->proto = HTTP_PROTO_OTHER;
			stat_inc(&http_counters, HTTP_STAT_UNSAMPLED);
			return;
		}
		stat_inc(&http_counters, HTTP_STAT_CONN_INSERTED);
	}
	if (conn->proto == HTTP_PROTO_OTHER)
		return;
	c->ev.end_ns = bpf_ktime_get_ns();
	c->ev.conn = c->sk;
	c->ev.offset = conn->bytes[dir];
	c->ev.len = ret;
	c->ev.tgid = tid_tgid >> 32;
	c->ev.tid = (__u32)tid_tgid;
	c->ev.kind = HTTP_EV_DATA;
	c->ev.role = conn->role;
	c->ev.proto = conn->proto;
	c->ev.tls = !sk;
	conn_addrs(&c->ev, conn);
	bpf_get_current_comm(c->ev.comm, sizeof(c->ev.comm));
	if (conn->proto == HTTP_PROTO_HTTP2)
		h2_transfer(c, conn, dir, ret, !sk);
	conn->bytes[dir] += ret;
	emit(&c->ev);
}

/* accept4's return: the new fd's socket, the server end. */
static __always_inline void accept_exit(struct http_call *c, long ret)
{
	struct file *file;
	struct http_conn *conn;
	__u64 sk;

	if (ret < 0)
		return;
	file = fd_file(ret);
	if (!file)
		return;
	sk = tcp_sock_of(c, file);
	if (!sk)
		return;
	conn = conn_entry(sk);
	if (conn && conn->role == HTTP_ROLE_UNKNOWN)
		conn->role = HTTP_ROLE_SERVER;
}

static __always_inline void on_exit(long ret)
{
	struct http_call *c = bpf_task_storage_get(&http_calls, bpf_get_current_task_btf(), 0, 0);
	struct http_filter *f = filter();
	__u8 op;

	if (!c || !f)
		return;
	op = c->op;
	c->op = CALL_NONE;
	/* Started under another filter (or before a reset): not ours. */
	if (op == CALL_NONE || c->gen != f->proc.gen)
		return;
	if (op == CALL_DATA)
		data_exit(c, f, ret);
	else if (op == CALL_ACCEPT)
		accept_exit(c, ret);
}

static __always_inline void on_accept_enter(void)
{
	struct http_filter *f = filter();
	struct http_call *c;

	if (!f || !proc_wanted(&f->proc, bpf_get_current_pid_tgid() >> 32) || !uid_wanted(&f->uid))
		return;
	c = bpf_task_storage_get(&http_calls, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c)
		return;
	c->gen = f->proc.gen;
	c->op = CALL_ACCEPT;
}

/* connect(2): the client end. */
static __always_inline void on_connect(long fd)
{
	struct http_filter *f = filter();
	struct http_call *c;
	struct http_conn *conn;

	if (!f)
		return;
	c = call_on(f, fd);
	if (!c)
		return;
	conn = conn_entry(c->sk);
	if (conn)
		conn->role = HTTP_ROLE_CLIENT;
}

/* The end of a followed connection: a record so user space finishes it
 * (built in the thread's call state, or else in the CPU's scratch). */
static __always_inline void conn_gone(__u64 sk, struct http_call *c)
{
	struct http_conn *conn = bpf_map_lookup_elem(&http_conns, &sk);
	__u32 zero = 0;
	struct http_event *e;

	if (!conn)
		return;
	e = c ? &c->ev : bpf_map_lookup_elem(&http_scratch, &zero);
	if (e && (conn->proto == HTTP_PROTO_HTTP1 || conn->proto == HTTP_PROTO_HTTP2)) {
		__u64 tid_tgid = bpf_get_current_pid_tgid();

		e->start_ns = e->end_ns = bpf_ktime_get_ns();
		e->conn = sk;
		e->offset = 0;
		e->len = 0;
		e->captured = 0;
		e->tail_len = 0;
		e->nframes = 0;
		e->h2_walk = HTTP_H2_NONE;
		e->tgid = tid_tgid >> 32;
		e->tid = (__u32)tid_tgid;
		e->kind = HTTP_EV_CLOSE;
		e->role = conn->role;
		e->proto = conn->proto;
		e->tls = 0;
		/* Kept when it was found to speak HTTP. */
		conn_addrs(e, conn);
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		emit(e);
	}
	bpf_map_delete_elem(&http_conns, &sk);
}

/* Before 6.13 a file's references were f_count, from 1 for one. */
struct file___f_count {
	atomic_long_t f_count;
} __attribute__((preserve_access_index));

/* Whether closing `fd` leaves the file open elsewhere: another fd or
 * another process holds it. A server that forks a child per connection
 * (busybox httpd, inetd) closes its copy in the parent while the child
 * answers on its own; that close must not end the connection (it once
 * made a request unanswered and its response unmatched, racing the
 * child's read). The last holder's close, or the socket's own close at
 * exit (inet_sock_set_state), ends it. */
static __always_inline bool file_held_elsewhere(long fd)
{
	struct file *file = fd_file(fd);

	if (!file)
		return false;
	if (bpf_core_field_exists(file->f_ref))
		/* file_ref_t counts from 0 for one reference; past LONG_MAX
		 * it is being released. */
		return (long)BPF_CORE_READ(file, f_ref.refcnt.counter) > 0;
	return BPF_CORE_READ((struct file___f_count *)file, f_count.counter) > 1;
}

static __always_inline void on_close(long fd)
{
	struct http_filter *f = filter();
	struct http_call *c;

	if (!f)
		return;
	c = call_on(f, fd);
	if (c && !file_held_elsewhere(fd))
		conn_gone(c->sk, c);
}

/* ---- alternative 1: the calls' own classic tracepoints ---- */
#define HTTP_EXIT(call)                                                     \
	SEC("tracepoint/syscalls/sys_exit_" #call)                          \
	int http_exit_##call(struct trace_event_raw_sys_exit *ctx)          \
	{                                                                   \
		on_exit(ctx->ret);                                          \
		return 0;                                                   \
	}

#define HTTP_DATA_TP(call, dir, iov)                                        \
	SEC("tracepoint/syscalls/sys_enter_" #call)                         \
	int http_enter_##call(struct trace_event_raw_sys_enter *ctx)        \
	{                                                                   \
		on_enter(dir, (long)ctx->args[0], ctx->args[1], ctx->args[2], iov); \
		return 0;                                                   \
	}                                                                   \
	HTTP_EXIT(call)

HTTP_DATA_TP(read, HTTP_IN, 0)
HTTP_DATA_TP(write, HTTP_OUT, 0)
HTTP_DATA_TP(recvfrom, HTTP_IN, 0)
HTTP_DATA_TP(sendto, HTTP_OUT, 0)
HTTP_DATA_TP(readv, HTTP_IN, 1)
HTTP_DATA_TP(writev, HTTP_OUT, 1)

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int http_enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	on_enter_msg(HTTP_IN, (long)ctx->args[0], ctx->args[1]);
	return 0;
}
HTTP_EXIT(recvmsg)

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int http_enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	on_enter_msg(HTTP_OUT, (long)ctx->args[0], ctx->args[1]);
	return 0;
}
HTTP_EXIT(sendmsg)

/* sendfile: bytes of a body that never pass through user memory. */
SEC("tracepoint/syscalls/sys_enter_sendfile64")
int http_enter_sendfile64(struct trace_event_raw_sys_enter *ctx)
{
	on_enter(HTTP_OUT, (long)ctx->args[0], 0, ctx->args[3], 0);
	return 0;
}
HTTP_EXIT(sendfile64)

SEC("tracepoint/syscalls/sys_enter_accept4")
int http_enter_accept4(struct trace_event_raw_sys_enter *ctx)
{
	on_accept_enter();
	return 0;
}
HTTP_EXIT(accept4)

SEC("tracepoint/syscalls/sys_enter_accept")
int http_enter_accept(struct trace_event_raw_sys_enter *ctx)
{
	on_accept_enter();
	return 0;
}
HTTP_EXIT(accept)

SEC("tracepoint/syscalls/sys_enter_connect")
int http_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	on_connect((long)ctx->args[0]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_close")
int http_enter_close(struct trace_event_raw_sys_enter *ctx)
{
	on_close((long)ctx->args[0]);
	return 0;
}

/* ---- alternative 2: raw tracepoints on every system call (x86-64) ---- */
SEC("raw_tp/sys_enter")
int BPF_PROG(http_enter_raw, struct pt_regs *regs, long id)
{
	long a0, a1, a2, a3;

	switch (id) {
	case 0:  /* read */
	case 45: /* recvfrom */
	case 1:  /* write */
	case 44: /* sendto */
	case 19: /* readv */
	case 20: /* writev */
		a0 = PT_REGS_PARM1_CORE_SYSCALL(regs);
		a1 = PT_REGS_PARM2_CORE_SYSCALL(regs);
		a2 = PT_REGS_PARM3_CORE_SYSCALL(regs);
		on_enter(id == 0 || id == 45 || id == 19 ? HTTP_IN : HTTP_OUT, a0, a1, a2, id == 19 || id == 20);
		break;
	case 47: /* recvmsg */
	case 46: /* sendmsg */
		on_enter_msg(id == 47 ? HTTP_IN : HTTP_OUT, PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM2_CORE_SYSCALL(regs));
		break;
	case 40: /* sendfile */
		a3 = PT_REGS_PARM4_CORE_SYSCALL(regs);
		on_enter(HTTP_OUT, PT_REGS_PARM1_CORE_SYSCALL(regs), 0, a3, 0);
		break;
	case 43:  /* accept */
	case 288: /* accept4 */
		on_accept_enter();
		break;
	case 42: /* connect */
		on_connect(PT_REGS_PARM1_CORE_SYSCALL(regs));
		break;
	case 3: /* close */
		on_close(PT_REGS_PARM1_CORE_SYSCALL(regs));
		break;
	}
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(http_exit_raw, struct pt_regs *regs, long ret)
{
	on_exit(ret);
	return 0;
}

/* ---- optional, both alternatives: a socket closing without close(2) ---- */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(http_sock_state_btf, const struct sock *sk, int oldstate, int newstate)
{
	if (newstate == TCP_CLOSE)
		conn_gone((__u64)sk, NULL);
	return 0;
}

/* ---- optional: TLS through OpenSSL (uprobes on libssl, every process) ----
 * SSL_write's plaintext is copied at its entry, SSL_read's at its return,
 * as for the system calls; the connection is the SSL object in its process
 * (its addresses: tls_link's). The encrypted bytes on the socket start no
 * HTTP message: that connection is left alone. */

static __always_inline struct http_call *tls_call(struct http_filter *f)
{
	struct http_call *c;

	if (!proc_wanted(&f->proc, bpf_get_current_pid_tgid() >> 32) || !uid_wanted(&f->uid))
		return NULL;
	c = bpf_task_storage_get(&http_tls_calls, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c)
		stat_inc(&http_counters, HTTP_STAT_UNTRACKED);
	return c;
}

static __always_inline void tls_enter(__u8 dir, __u64 ssl, __u64 buf, __u64 num)
{
	struct http_filter *f = filter();
	struct http_call *c;

	if (!f)
		return;
	c = tls_call(f);
	if (!c)
		return;
	c->sk = ssl;
	c->gen = f->proc.gen;
	c->iov = 0;
	c->buf = buf;
	c->count = num;
	c->ev.dir = dir;
	c->ev.captured = 0;
	c->ev.tail_len = 0;
	c->ev.nframes = 0;
	c->ev.h2_walk = HTTP_H2_NONE;
	c->h2_walked = 0;
	if (dir == HTTP_OUT && buf) {
		struct tls_key key = { .ssl = ssl, .tgid = bpf_get_current_pid_tgid() >> 32 };
		struct http_conn *conn = bpf_map_lookup_elem(&http_tls_conns, &key);

		c->ev.captured = copy_head(c, f, buf, num);
		c->ev.tail_len = copy_tail(c, buf, num);
		if (conn)
			h2_walk_write(c, conn, 1);
	}
	c->ev.start_ns = bpf_ktime_get_ns();
	c->op = CALL_DATA;
}

static __always_inline void tls_exit(long ret)
{
	struct http_call *c = bpf_task_storage_get(&http_tls_calls, bpf_get_current_task_btf(), 0, 0);
	struct http_filter *f = filter();
	struct tls_key key = {};
	struct http_conn *conn;

	if (!c || !f || c->op != CALL_DATA)
		return;
	c->op = CALL_NONE;
	if (c->gen != f->proc.gen || ret <= 0)
		return;
	if (c->ev.dir == HTTP_IN) {
		__u64 got = (__u64)ret < c->count ? (__u64)ret : c->count;

		c->ev.captured = copy_head(c, f, c->buf, got);
		c->ev.tail_len = copy_tail(c, c->buf, got);
	} else {
		if (c->ev.captured > ret)
			c->ev.captured = ret;
		if ((__u64)ret != c->count)
			c->ev.tail_len = 0;
	}
	key.ssl = c->sk;
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	conn = conn_in(&http_tls_conns, &key);
	if (!conn)
		return;
	stream_transfer(c, conn, ret, NULL);
}

SEC("uprobe")
int BPF_KPROBE(http_ssl_write, void *ssl, const void *buf, int num)
{
	tls_enter(HTTP_OUT, (__u64)ssl, (__u64)buf, num > 0 ? num : 0);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(http_ssl_write_ret, int ret)
{
	tls_exit(ret);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(http_ssl_read, void *ssl, void *buf, int num)
{
	tls_enter(HTTP_IN, (__u64)ssl, (__u64)buf, num > 0 ? num : 0);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(http_ssl_read_ret, int ret)
{
	tls_exit(ret);
	return 0;
}

/* SSL_free: the TLS connection is over. */
SEC("uprobe")
int BPF_KPROBE(http_ssl_free, void *ssl)
{
	struct tls_key key = { .ssl = (__u64)ssl, .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct http_conn *conn = bpf_map_lookup_elem(&http_tls_conns, &key);
	struct http_filter *f = filter();
	struct http_call *c;

	if (!conn || !f)
		return 0;
	c = tls_call(f);
	if (c && (conn->proto == HTTP_PROTO_HTTP1 || conn->proto == HTTP_PROTO_HTTP2)) {
		__u64 tid_tgid = bpf_get_current_pid_tgid();

		__builtin_memset(&c->ev, 0, HTTP_HDR_LEN);
		c->ev.start_ns = c->ev.end_ns = bpf_ktime_get_ns();
		c->ev.conn = (__u64)ssl;
		c->ev.tgid = tid_tgid >> 32;
		c->ev.tid = (__u32)tid_tgid;
		c->ev.kind = HTTP_EV_CLOSE;
		c->ev.role = conn->role;
		c->ev.proto = conn->proto;
		c->ev.tls = 1;
		bpf_get_current_comm(c->ev.comm, sizeof(c->ev.comm));
		emit(&c->ev);
	}
	bpf_map_delete_elem(&http_tls_conns, &key);
	return 0;
}
