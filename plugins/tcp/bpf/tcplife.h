/* SPDX-License-Identifier: GPL-2.0 */
/* Layouts shared by tcplife.bpf.c and plugins/tcp/src. */
#ifndef __TCPLIFE_H
#define __TCPLIFE_H

#define TCP_NSTATES 14 /* TCP_MAX_STATES */
#define TCP_HIST_SLOTS 32
#define TCP_MAX_PORTS 8

enum tcp_stat_idx {
	TCP_STAT_RINGBUF_FULL = 0, /* records lost: ring buffer full */
	TCP_STAT_CONN_INSERTED = 1, /* connections tracked: minus live = evicted */
	TCP_STAT_CONN_FAILED = 2,  /* connection state could not be stored */
	TCP_STAT_MAX = 3,
};

enum tcp_end {
	TCP_END_FIN = 0,
	TCP_END_RST_RECEIVED = 1,
	TCP_END_RST_SENT = 2,
	TCP_END_REFUSED = 3,  /* SYN_SENT, then RST */
	TCP_END_TIMEOUT = 4,  /* SYN_SENT, then CLOSE without RST */
	TCP_END_ABORT = 5,    /* closed without FIN exchange nor RST seen */
};

#define TCP_FLAG_ACTIVE 1      /* we sent the SYN (connect) */
#define TCP_FLAG_ESTABLISHED 2 /* reached ESTABLISHED */
#define TCP_FLAG_FIN 4         /* went through a FIN state */
#define TCP_FLAG_RST_RX 8
#define TCP_FLAG_RST_TX 16
#define TCP_FLAG_CLOSED 32     /* CLOSE seen, record held for a reset that may follow */

/* Key 0 of tcp_filter. `proc` applies to a connection's owner (the process
 * that connected, accepted or closed it), not to whoever runs when a state
 * changes: in softirq that is any task. */
struct tcp_filter {
	struct proc_filter proc;
	__u16 family;        /* 0, AF_INET (2) or AF_INET6 (10) */
	__u8 nports;         /* match sport or dport against ports[] */
	__u8 transitions;    /* stream every state transition */
	__u16 ports[TCP_MAX_PORTS];
};

/* Per connection (key: struct sock pointer). */
struct tcp_conn {
	__u64 first_ns;       /* first transition seen */
	__u64 last_ns;        /* last transition */
	__u64 syn_sent_ns;
	__u64 established_ns;
	__u64 connect_ns;     /* SYN_SENT -> ESTABLISHED */
	__u64 state_ns[TCP_NSTATES];
	__u32 pid;            /* 0 until seen in a process-context state */
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u8 state;
	__u8 flags;
	__u8 saddr[16];
	__u8 daddr[16];
	char comm[16];
};

enum tcp_record_kind {
	TCP_REC_TRANSITION = 1,
	TCP_REC_CLOSE = 2,
};

/* Ring tcp_transitions. */
struct tcp_transition {
	__u64 ts_ns;
	__u64 in_old_ns;   /* time spent in oldstate */
	__u32 pid;
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u8 oldstate;
	__u8 newstate;
	__u8 saddr[16];
	__u8 daddr[16];
	char comm[16];
};

/* Ring tcp_closed: a tcp_conn at its end plus what only the end knows. */
struct tcp_close {
	__u64 ts_ns;
	__u64 bytes_acked;     /* sent and acknowledged */
	__u64 bytes_received;
	__u8 end;              /* enum tcp_end */
	__u8 _pad[7];
	struct tcp_conn conn;
};

#endif
