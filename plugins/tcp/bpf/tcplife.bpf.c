// SPDX-License-Identifier: GPL-2.0
/* TCP connection lifecycle from sock:inet_sock_set_state: every transition
 * (tcpstates), and per connection the time in each state, connect latency,
 * lifetime, bytes and how it ended (tcplife), plus a connect-latency histogram.
 *
 * Process attribution: transitions often run in softirq, where `current` is
 * whoever was interrupted. The owner is taken where a system call names it:
 * SYN_SENT (connect) for active connections; accept()/accept4() returning the
 * socket's fd for passive ones; and, for a connection whose accept was not
 * seen, FIN_WAIT1 or LAST_ACK (close/shutdown).
 *
 * Alternatives, best first: tp_btf, classic tracepoint. Reset tracepoints are
 * optional extras in both. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "tracer.h"
#include "tcplife.h"

char LICENSE[] SEC("license") = "GPL";

/* Every type of tcplife.h in the BTF, so its Rust twin is generated from it. */
SHARED_TYPE(enum tcp_stat_idx);
SHARED_TYPE(enum tcp_end);
SHARED_TYPE(struct tcp_filter);
SHARED_TYPE(struct tcp_conn);
SHARED_TYPE(enum tcp_record_kind);
SHARED_TYPE(struct tcp_transition);
SHARED_TYPE(struct tcp_close);

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tcp_filter);
} tcp_filter SEC(".maps");

/* Bounded: connections that never close age out (LRU); evictions are counted
 * as inserted minus live. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct tcp_conn);
} tcp_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} tcp_transitions SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} tcp_closed SEC(".maps");

struct hist {
	__u64 slots[TCP_HIST_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hist);
} tcp_connect_hist SEC(".maps");

DECLARE_STATS(tcp_counters, TCP_STAT_MAX);

/* One transition, the same whichever hook delivered it. */
struct change {
	__u64 sk;
	int oldstate;
	int newstate;
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u8 owned;       /* at CLOSE: the socket is held by a system call */
	__u8 saddr[16];
	__u8 daddr[16];
};

/* Connections held at CLOSE for a reset (see on_change). The destroy hook
 * runs for every socket; it looks anything up only while some are held. */
__u64 held_conns = 0;

static __always_inline bool port_wanted(struct tcp_filter *f, __u16 sport, __u16 dport)
{
	if (!f->nports)
		return true;
#pragma unroll
	for (int i = 0; i < TCP_MAX_PORTS; i++) {
		if (i < f->nports && (f->ports[i] == sport || f->ports[i] == dport))
			return true;
	}
	return false;
}

static __always_inline __u8 end_reason(__u8 flags)
{
	if (!(flags & TCP_FLAG_ESTABLISHED) && (flags & TCP_FLAG_ACTIVE))
		return (flags & TCP_FLAG_RST_RX) ? TCP_END_REFUSED : TCP_END_TIMEOUT;
	if (flags & TCP_FLAG_RST_RX)
		return TCP_END_RST_RECEIVED;
	if (flags & TCP_FLAG_RST_TX)
		return TCP_END_RST_SENT;
	if (flags & TCP_FLAG_FIN)
		return TCP_END_FIN;
	return TCP_END_ABORT;
}

/* The close record of `c`, stamped with the time it reached CLOSE. */
static __always_inline void emit_close(struct tcp_conn *c, __u64 sk, __u64 now)
{
	struct tcp_close *e = bpf_ringbuf_reserve(&tcp_closed, sizeof(*e), 0);
	struct tcp_sock *tp = (struct tcp_sock *)sk;

	if (!e) {
		stat_inc(&tcp_counters, TCP_STAT_RINGBUF_FULL);
		return;
	}
	e->ts_ns = now;
	e->bytes_acked = BPF_CORE_READ(tp, bytes_acked);
	e->bytes_received = BPF_CORE_READ(tp, bytes_received);
	e->end = end_reason(c->flags);
	__builtin_memcpy(&e->conn, c, sizeof(*c));
	bpf_ringbuf_submit(e, rb_submit_flags(&tcp_closed));
}

static __always_inline void emit_transition(struct change *ch, struct tcp_conn *c, __u64 now,
					    __u64 in_old)
{
	struct tcp_transition *e = bpf_ringbuf_reserve(&tcp_transitions, sizeof(*e), 0);

	if (!e) {
		stat_inc(&tcp_counters, TCP_STAT_RINGBUF_FULL);
		return;
	}
	e->ts_ns = now;
	e->in_old_ns = in_old;
	e->pid = c->pid;
	e->family = ch->family;
	e->sport = ch->sport;
	e->dport = ch->dport;
	e->oldstate = ch->oldstate;
	e->newstate = ch->newstate;
	__builtin_memcpy(e->saddr, ch->saddr, 16);
	__builtin_memcpy(e->daddr, ch->daddr, 16);
	__builtin_memcpy(e->comm, c->comm, 16);
	bpf_ringbuf_submit(e, rb_submit_flags(&tcp_transitions));
}

static __always_inline bool addr_zero(const __u8 *a)
{
	__u64 x, y;

	__builtin_memcpy(&x, a, 8);
	__builtin_memcpy(&y, a + 8, 8);
	return !(x | y);
}

/* States from which closing sends a reset (the kernel's tcp_need_reset). */
static __always_inline bool may_reset(int old)
{
	return old == TCP_ESTABLISHED || old == TCP_CLOSE_WAIT || old == TCP_FIN_WAIT1 ||
	       old == TCP_FIN_WAIT2 || old == TCP_SYN_RECV;
}

/* Whether connection `c` is one the filter's process part wants. */
static __always_inline bool owner_wanted(struct tcp_filter *f, struct tcp_conn *c)
{
	return proc_wanted_as(&f->proc, c->pid, c->comm);
}

/* Emit the record of a connection held at CLOSE, and forget it. */
static __always_inline void flush_closed(struct tcp_filter *f, struct tcp_conn *c, __u64 sk)
{
	if (owner_wanted(f, c))
		emit_close(c, sk, c->last_ns);
	bpf_map_delete_elem(&tcp_conns, &sk);
	__sync_fetch_and_sub(&held_conns, 1);
}

/* A connection not tracked yet is tracked only if the filter's family and
 * ports want it. A tracked one passed when first seen; its local port is
 * gone by CLOSE, so it is not filtered again. */
static __always_inline bool new_conn_wanted(struct tcp_filter *f, struct change *ch)
{
	if (f->family && f->family != ch->family)
		return false;
	return port_wanted(f, ch->sport, ch->dport);
}

/* A listening socket is no connection: show its transitions, track nothing.
 * (A connection accepted from it starts as LISTEN -> SYN_RECV.) */
static __always_inline bool is_listener(struct change *ch)
{
	return ch->newstate == TCP_LISTEN || (ch->oldstate == TCP_LISTEN && ch->newstate == TCP_CLOSE);
}

static __always_inline void on_listener(struct tcp_filter *f, struct change *ch, __u64 now)
{
	struct tcp_conn none = {};

	bpf_map_delete_elem(&tcp_conns, &ch->sk);
	if (f->transitions && !proc_filter_picks(&f->proc))
		emit_transition(ch, &none, now, 0);
}

/* A new entry for the connection of `ch`, counted; NULL (and counted as
 * lost) when the map refuses it. */
static __always_inline struct tcp_conn *track(struct change *ch, __u64 now)
{
	struct tcp_conn fresh = {};
	struct tcp_conn *c;
	bool inserted;

	fresh.first_ns = now;
	fresh.last_ns = now;
	/* Softirq and process context may race to insert: either entry will do. */
	c = map_insert_or_find(&tcp_conns, &ch->sk, &fresh, &inserted);
	if (inserted)
		stat_inc(&tcp_counters, TCP_STAT_CONN_INSERTED);
	if (!c)
		stat_inc(&tcp_counters, TCP_STAT_CONN_FAILED);
	return c;
}

/* Addresses appear one by one while connecting (the remote end and the
 * route's source at SYN_SENT, the local port after it) and the local port is
 * gone by CLOSE: keep each part's last non-zero value in `c` and fill the
 * missing parts of `ch` from it, so every record shows the last known ends. */
static __always_inline void merge_ends(struct tcp_conn *c, struct change *ch)
{
	if (ch->family)
		c->family = ch->family;
	else
		ch->family = c->family;
	if (ch->dport || !addr_zero(ch->daddr)) {
		c->dport = ch->dport;
		__builtin_memcpy(c->daddr, ch->daddr, 16);
	} else {
		ch->dport = c->dport;
		__builtin_memcpy(ch->daddr, c->daddr, 16);
	}
	if (ch->sport)
		c->sport = ch->sport;
	else
		ch->sport = c->sport;
	if (!addr_zero(ch->saddr))
		__builtin_memcpy(c->saddr, ch->saddr, 16);
	else
		__builtin_memcpy(ch->saddr, c->saddr, 16);
}

/* Account the move of `c` into ch->newstate: time in the old state, the
 * owner where a system call names it, the flags, connect latency. Returns
 * the time spent in the old state. */
static __always_inline __u64 enter_state(struct tcp_conn *c, struct change *ch, __u64 now)
{
	int new = ch->newstate;
	__u64 in_old = now - c->last_ns;
	/* Unsigned and masked: the verifier needs the index bounded both ways. */
	__u32 oi = (__u32)ch->oldstate;

	if (oi < TCP_NSTATES)
		c->state_ns[oi & 15] += in_old;
	c->last_ns = now;
	c->state = new;

	if (new == TCP_SYN_SENT || new == TCP_FIN_WAIT1 || new == TCP_LAST_ACK) {
		/* Entered from a system call: current owns the socket. */
		if (!c->pid) {
			c->pid = bpf_get_current_pid_tgid() >> 32;
			bpf_get_current_comm(&c->comm, sizeof(c->comm));
		}
	}
	if (new == TCP_SYN_SENT) {
		c->flags |= TCP_FLAG_ACTIVE;
		c->syn_sent_ns = now;
	}
	if (new == TCP_ESTABLISHED) {
		c->flags |= TCP_FLAG_ESTABLISHED;
		c->established_ns = now;
		if (c->syn_sent_ns) {
			__u32 zero = 0;
			struct hist *h = bpf_map_lookup_elem(&tcp_connect_hist, &zero);

			c->connect_ns = now - c->syn_sent_ns;
			if (h)
				h->slots[hist_slot(c->connect_ns / 1000, TCP_HIST_SLOTS)]++;
		}
	}
	if (new == TCP_FIN_WAIT1 || new == TCP_CLOSE_WAIT)
		c->flags |= TCP_FLAG_FIN;
	return in_old;
}

/* `c` reached CLOSE. Closed by a system call from a state that gets a reset
 * (close() with unread data, SO_LINGER 0, an abort): the kernel sends that
 * reset right after CLOSE, so the record waits for it, or for the socket's
 * destruction. In softirq (time-wait, timeouts) no reset follows and nothing
 * waits. */
static __always_inline void on_close(struct tcp_conn *c, struct change *ch, __u64 now, bool wanted)
{
	if (ch->owned && may_reset(ch->oldstate) && !(c->flags & TCP_FLAG_RST_RX)) {
		c->flags |= TCP_FLAG_CLOSED;
		__sync_fetch_and_add(&held_conns, 1);
		return;
	}
	if (wanted)
		emit_close(c, ch->sk, now);
	bpf_map_delete_elem(&tcp_conns, &ch->sk);
}

static __always_inline void on_change(struct change *ch)
{
	__u32 zero = 0;
	struct tcp_filter *f = bpf_map_lookup_elem(&tcp_filter, &zero);
	__u64 now = bpf_ktime_get_ns(), in_old;
	struct tcp_conn *c;
	bool wanted;

	if (!f)
		return;
	c = bpf_map_lookup_elem(&tcp_conns, &ch->sk);
	/* Closed and held for a reset, and now reused (connect again): that
	 * connection is over. */
	if (c && (c->flags & TCP_FLAG_CLOSED)) {
		flush_closed(f, c, ch->sk);
		c = NULL;
	}
	if (!c && !new_conn_wanted(f, ch))
		return;
	if (is_listener(ch)) {
		on_listener(f, ch, now);
		return;
	}
	if (!c && !(c = track(ch, now)))
		return;
	merge_ends(c, ch);
	in_old = enter_state(c, ch, now);
	wanted = owner_wanted(f, c);
	if (f->transitions && wanted)
		emit_transition(ch, c, now, in_old);
	if (ch->newstate == TCP_CLOSE)
		on_close(c, ch, now, wanted);
}

/* A reset is being sent on `sk`: a connection held at CLOSE ends here. */
static __always_inline void on_reset_sent(__u64 sk)
{
	__u32 zero = 0;
	struct tcp_filter *f = bpf_map_lookup_elem(&tcp_filter, &zero);
	struct tcp_conn *c = bpf_map_lookup_elem(&tcp_conns, &sk);

	if (!c)
		return;
	c->flags |= TCP_FLAG_RST_TX;
	if ((c->flags & TCP_FLAG_CLOSED) && f)
		flush_closed(f, c, sk);
}

/* The socket is freed: a connection still held at CLOSE ends without reset. */
static __always_inline void on_destroy(__u64 sk)
{
	__u32 zero = 0;
	struct tcp_filter *f;
	struct tcp_conn *c;

	if (!*(volatile __u64 *)&held_conns)
		return;
	c = bpf_map_lookup_elem(&tcp_conns, &sk);
	f = bpf_map_lookup_elem(&tcp_filter, &zero);
	if (c && (c->flags & TCP_FLAG_CLOSED) && f)
		flush_closed(f, c, sk);
}

static __always_inline void mark(__u64 sk, __u8 flag)
{
	struct tcp_conn *c = bpf_map_lookup_elem(&tcp_conns, &sk);

	if (c)
		c->flags |= flag;
}

/* ---- alternative 1: tp_btf ---- */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcp_state_btf, const struct sock *sk, const int oldstate, const int newstate)
{
	struct change ch = {};

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	ch.sk = (__u64)sk;
	ch.oldstate = oldstate;
	ch.newstate = newstate;
	if (newstate == TCP_CLOSE)
		ch.owned = BPF_CORE_READ(sk, sk_lock.owned) != 0;
	ch.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	/* inet_sport, as the classic tracepoint reports it (skc_num is 0 at
	 * SYN_SENT, before the port is bound). */
	ch.sport = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	ch.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (ch.family == AF_INET) {
		BPF_CORE_READ_INTO(&ch.saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO(&ch.daddr, sk, __sk_common.skc_daddr);
	} else {
		BPF_CORE_READ_INTO(&ch.saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&ch.daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
	on_change(&ch);
	return 0;
}

/* ---- alternative 2: classic tracepoint ---- */
SEC("tracepoint/sock/inet_sock_set_state")
int tcp_state_tp(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct change ch = {};

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	ch.sk = (__u64)ctx->skaddr;
	ch.oldstate = ctx->oldstate;
	ch.newstate = ctx->newstate;
	if (ch.newstate == TCP_CLOSE)
		ch.owned = BPF_CORE_READ((struct sock *)ctx->skaddr, sk_lock.owned) != 0;
	ch.family = ctx->family;
	ch.sport = ctx->sport;
	ch.dport = ctx->dport;
	if (ch.family == AF_INET) {
		bpf_probe_read_kernel(ch.saddr, 4, ctx->saddr);
		bpf_probe_read_kernel(ch.daddr, 4, ctx->daddr);
	} else {
		bpf_probe_read_kernel(ch.saddr, 16, ctx->saddr_v6);
		bpf_probe_read_kernel(ch.daddr, 16, ctx->daddr_v6);
	}
	on_change(&ch);
	return 0;
}

/* ---- how connections end: resets, and the socket's destruction (which
 * ends a connection held at CLOSE for a reset that did not come) ---- */
SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tcp_rst_rx_btf, struct sock *sk)
{
	mark((__u64)sk, TCP_FLAG_RST_RX);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tcp_rst_tx_btf, const struct sock *sk)
{
	/* Replies to segments of no connection have no socket. */
	if (sk)
		on_reset_sent((__u64)sk);
	return 0;
}

SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(tcp_destroy_btf, struct sock *sk)
{
	on_destroy((__u64)sk);
	return 0;
}

SEC("tracepoint/tcp/tcp_receive_reset")
int tcp_rst_rx_tp(struct trace_event_raw_tcp_event_sk *ctx)
{
	mark((__u64)ctx->skaddr, TCP_FLAG_RST_RX);
	return 0;
}

/* The fields every kernel's tcp_send_reset tracepoint starts with: 6.1 uses
 * the tcp_event_sk_skb layout, later kernels their own; both begin with the
 * skb and the socket. Fixed layout, no CO-RE: the same on both. */
struct tcp_send_reset_head {
	struct trace_entry ent;
	const void *skbaddr;
	const void *skaddr;
};

SEC("tracepoint/tcp/tcp_send_reset")
int tcp_rst_tx_tp(struct tcp_send_reset_head *ctx)
{
	if (ctx->skaddr)
		on_reset_sent((__u64)ctx->skaddr);
	return 0;
}

SEC("tracepoint/tcp/tcp_destroy_sock")
int tcp_destroy_tp(struct trace_event_raw_tcp_event_sk *ctx)
{
	on_destroy((__u64)ctx->skaddr);
	return 0;
}

/* ---- optional in both: the owner of a passive connection, at accept ---- */
/* The fd that accept returned leads to the socket: current->files->fdt->fd[fd]
 * ->private_data (struct socket)->sk. */
static __always_inline void on_accepted(long fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **fds;
	struct file *file;
	struct socket *sock;
	__u64 sk;
	struct tcp_conn *c;

	if (fd < 0)
		return;
	if (fd >= BPF_CORE_READ(task, files, fdt, max_fds))
		return;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return;
	sk = (__u64)BPF_CORE_READ(sock, sk);
	c = bpf_map_lookup_elem(&tcp_conns, &sk);
	if (c && !c->pid) {
		c->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(&c->comm, sizeof(c->comm));
	}
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tcp_accept4_tp(struct trace_event_raw_sys_exit *ctx)
{
	on_accepted(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tcp_accept_tp(struct trace_event_raw_sys_exit *ctx)
{
	on_accepted(ctx->ret);
	return 0;
}
