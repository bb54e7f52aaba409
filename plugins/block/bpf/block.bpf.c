// SPDX-License-Identifier: GPL-2.0
/* Block I/O (biolatency + biotop): per disk and operation, queue, device and
 * total latency, request sizes, errors; per process, operations, bytes and
 * time. Aggregated in the kernel; nothing is streamed.
 *
 * A request is followed by its `struct request *` from the first hook that
 * sees it to block_rq_complete. Its owner (the process counted) is the task
 * current at that first hook: block_io_start (kernels from 6.5, where the
 * request is made from the submitter's bio), else block_rq_insert, else
 * block_rq_issue. Requests written back from the page cache are submitted by
 * the kernel's flusher threads and count for them (kworker/...), as in
 * biotop. Its start is the kernel's own rq->start_time_ns (what
 * /proc/diskstats times from), else when it was first seen.
 *
 * Alternatives, best first: tp_btf, raw_tp (pointers read with CO-RE). Both
 * need no tracefs. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "tracer.h"
#include "block.h"

char LICENSE[] SEC("license") = "GPL";

SHARED_TYPE(enum block_stat_idx);
SHARED_TYPE(enum block_op);
SHARED_TYPE(struct block_filter);
SHARED_TYPE(struct block_disk_key);
SHARED_TYPE(struct block_disk);
SHARED_TYPE(struct block_proc_key);
SHARED_TYPE(struct block_proc);
SHARED_TYPE(struct block_rq);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct block_filter);
} block_filter SEC(".maps");

/* Requests in flight, by address. LRU: one whose completion never comes
 * (a lost hook) ages out, counted (inserted - deleted - live). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct block_rq);
} block_rqs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct block_disk_key);
	__type(value, struct block_disk);
} block_disks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct block_proc_key);
	__type(value, struct block_proc);
} block_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, char[TASK_COMM_LEN]);
} block_comms SEC(".maps");

/* A zeroed block_disk is too big for the BPF stack: one per CPU to insert from. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct block_disk);
} block_disk_zero SEC(".maps");

DECLARE_STATS(block_counters, BLOCK_STAT_MAX);

/* Fields of the request. `btf` is a constant in each caller: tp_btf
 * programs load them directly (the verifier follows BTF pointers; a NULL
 * one reads as 0), raw_tp programs need a probe read each, which costs a
 * helper call. */
static __always_inline struct gendisk *rq_disk(struct request *rq, bool btf)
{
	return btf ? rq->q->disk : BPF_CORE_READ(rq, q, disk);
}

static __always_inline __u32 rq_dev(struct request *rq, bool btf)
{
	struct gendisk *disk = rq_disk(rq, btf);
	__u32 major, minor;

	if (!disk)
		return 0;
	major = btf ? disk->major : BPF_CORE_READ(disk, major);
	minor = btf ? disk->first_minor : BPF_CORE_READ(disk, first_minor);
	return major << 20 | minor;
}

static __always_inline __u32 rq_flags(struct request *rq, bool btf)
{
	return btf ? rq->cmd_flags : BPF_CORE_READ(rq, cmd_flags);
}

static __always_inline __u32 rq_bytes(struct request *rq, bool btf)
{
	return btf ? rq->__data_len : BPF_CORE_READ(rq, __data_len);
}

static __always_inline __u64 rq_start(struct request *rq, bool btf)
{
	return btf ? rq->start_time_ns : BPF_CORE_READ(rq, start_time_ns);
}

static __always_inline __u8 op_class(__u32 flags)
{
	switch (flags & 0xff) { /* REQ_OP_MASK */
	case 0: return BLOCK_OP_READ;    /* REQ_OP_READ */
	case 1: return BLOCK_OP_WRITE;   /* REQ_OP_WRITE */
	case 2: return BLOCK_OP_FLUSH;   /* REQ_OP_FLUSH */
	case 3:                          /* REQ_OP_DISCARD */
	case 5:                          /* REQ_OP_SECURE_ERASE */
	case 9: return BLOCK_OP_DISCARD; /* REQ_OP_WRITE_ZEROES */
	default: return BLOCK_OP_OTHER;
	}
}

/* The kernel's op_is_sync(): bit numbers from this kernel's enum. */
static __always_inline __u8 is_sync(__u32 flags)
{
	__u32 sync = 1U << bpf_core_enum_value(enum req_flag_bits, __REQ_SYNC);
	__u32 fua = 1U << bpf_core_enum_value(enum req_flag_bits, __REQ_FUA);
	__u32 preflush = 1U << bpf_core_enum_value(enum req_flag_bits, __REQ_PREFLUSH);

	return (flags & 0xff) == 0 || (flags & (sync | fua | preflush));
}

/* First sight of a request: its owner is the current task. `fresh`: the
 * caller knows the request is new (block_io_start), so no lookup first. */
static __always_inline void track(struct request *rq, __u64 now, bool btf, bool fresh)
{
	__u64 key = (__u64)rq;
	__u32 zero = 0, tgid = bpf_get_current_pid_tgid() >> 32;
	struct block_filter *f;
	struct block_rq r = {};

	if (!fresh && bpf_map_lookup_elem(&block_rqs, &key))
		return;
	f = bpf_map_lookup_elem(&block_filter, &zero);
	if (!f)
		return;
	r.seen_ns = now;
	r.tgid = tgid;
	r.dev = rq_dev(rq, btf);
	r.skip = !proc_wanted(&f->proc, tgid) || !uid_wanted(&f->uid) || (f->dev && f->dev != r.dev);
	if (!r.skip)
		bpf_get_current_comm(&r.comm, sizeof(r.comm));
	if (!bpf_map_update_elem(&block_rqs, &key, &r, BPF_NOEXIST)) {
		stat_inc(&block_counters, BLOCK_STAT_RQ_INSERTED);
	} else if (fresh) {
		/* A new request at the address of one whose state remained (it
		 * ended by a way no hook saw): that state is stale. */
		struct block_rq *old = bpf_map_lookup_elem(&block_rqs, &key);

		if (old) {
			stat_inc(&block_counters, BLOCK_STAT_STALE);
			if (old->done_ns)
				stat_inc(&block_counters, BLOCK_STAT_STALE_DONE);
		}
		if (bpf_map_update_elem(&block_rqs, &key, &r, BPF_ANY))
			stat_inc(&block_counters, BLOCK_STAT_RQ_FAILED);
	}
}

static __always_inline void hist_add(struct block_hist *h, __u64 slot_value, __u64 sum_value)
{
	h->slots[hist_slot(slot_value, BLOCK_HIST_SLOTS)]++;
	h->sum += sum_value;
}

static __always_inline struct block_disk *disk_entry(struct block_disk_key *k, struct request *rq)
{
	struct block_disk *d = bpf_map_lookup_elem(&block_disks, k);
	__u32 zero = 0;
	bool inserted;

	if (d)
		return d;
	d = bpf_map_lookup_elem(&block_disk_zero, &zero);
	if (!d)
		return NULL;
	/* The scratch entry is zero but for the name, which is always rewritten. */
	BPF_CORE_READ_STR_INTO(&d->disk_name, rq, q, disk, disk_name);
	d = map_insert_or_find(&block_disks, k, d, &inserted);
	if (!d)
		stat_inc(&block_counters, BLOCK_STAT_DISK_FAILED);
	return d;
}

static __always_inline void forget(__u64 *key)
{
	if (!bpf_map_delete_elem(&block_rqs, key))
		stat_inc(&block_counters, BLOCK_STAT_RQ_DELETED);
}

static __always_inline void on_start(struct request *rq, bool btf, bool fresh)
{
	track(rq, bpf_ktime_get_ns(), btf, fresh);
}

static __always_inline void on_issue(struct request *rq, bool btf)
{
	__u64 now = bpf_ktime_get_ns(), key = (__u64)rq;
	struct block_rq *e = bpf_map_lookup_elem(&block_rqs, &key);
	struct block_disk_key k = {};
	struct block_disk *d;
	__u32 flags;

	if (!e) {
		/* Not seen made nor inserted: its owner is who issues it. */
		track(rq, now, btf, true);
		e = bpf_map_lookup_elem(&block_rqs, &key);
		if (!e) {
			stat_inc(&block_counters, BLOCK_STAT_RQ_FAILED);
			return;
		}
	}
	if (e->skip)
		return;
	flags = rq_flags(rq, btf);
	e->issue_ns = now;
	e->op = op_class(flags);
	e->sync = is_sync(flags);
	e->bytes = rq_bytes(rq, btf);
	k.dev = e->dev;
	k.op = e->op;
	k.sync = e->sync;
	d = disk_entry(&k, rq);
	if (d)
		d->issued++;
}

static __always_inline void on_requeue(struct request *rq)
{
	__u64 key = (__u64)rq;
	struct block_rq *e = bpf_map_lookup_elem(&block_rqs, &key);

	if (e && !e->skip && e->issue_ns) {
		struct block_disk_key k = { .dev = e->dev, .op = e->op, .sync = e->sync };
		struct block_disk *d = bpf_map_lookup_elem(&block_disks, &k);

		if (d)
			d->requeued++;
		e->issue_ns = 0;
		stat_inc(&block_counters, BLOCK_STAT_REQUEUED);
	}
}

/* Count a request that ended (`done`: its completion; `now`: the end of its
 * accounting, as /proc/diskstats ends it). Counted for its disk as
 * /proc/diskstats counts it:
 * every request that ends, including those never issued to the driver
 * themselves (an fsync's empty PREFLUSH write, finished by the flush
 * machinery once the flush request it caused is done) and those that began
 * before the programs were attached (then without owner or device time). */
static __always_inline void account(struct request *rq, struct block_rq *e, __u64 now, __u64 done, int error,
				    __u32 nr_bytes, bool btf)
{
	__u64 key = (__u64)rq, start, issue = 0;
	struct block_disk_key dk = {};
	struct block_disk *d;
	__u32 bytes, zero = 0;

	start = rq_start(rq, btf);
	if (e) {
		issue = e->issue_ns;
		/* No start kept by the kernel (iostats off): our first sight. */
		if (!start || start > now)
			start = e->seen_ns;
	} else {
		struct block_filter *f = bpf_map_lookup_elem(&block_filter, &zero);

		if (!f)
			return;
		dk.dev = rq_dev(rq, btf);
		if (f->dev && f->dev != dk.dev)
			return;
		/* Whose it was is not known: under a process filter it is not counted. */
		if (proc_filter_picks(&f->proc)) {
			stat_inc(&block_counters, BLOCK_STAT_UNOWNED);
			return;
		}
		stat_inc(&block_counters, BLOCK_STAT_UNSEEN);
		if (start > now)
			start = 0;
	}
	if (issue) {
		dk.dev = e->dev;
		dk.op = e->op;
		dk.sync = e->sync;
		bytes = e->bytes;
	} else {
		__u32 flags = rq_flags(rq, btf);

		if (e)
			dk.dev = e->dev;
		dk.op = op_class(flags);
		dk.sync = is_sync(flags);
		bytes = nr_bytes;
	}
	d = disk_entry(&dk, rq);
	if (d) {
		d->done++;
		d->bytes += bytes;
		if (error)
			d->errors++;
		hist_add(&d->size, bytes, bytes);
		if (start)
			hist_add(&d->total, (now - start) / 1000, now - start);
		if (issue && done >= issue) {
			hist_add(&d->device, (done - issue) / 1000, done - issue);
			if (start && start < issue) {
				d->queued++;
				hist_add(&d->queue, (issue - start) / 1000, issue - start);
			}
		}
	}
	if (e) {
		struct block_proc_key pk = { .tgid = e->tgid, .dev = dk.dev, .op = dk.op > BLOCK_OP_WRITE ? BLOCK_OP_OTHER : dk.op };
		struct block_proc *p = bpf_map_lookup_elem(&block_procs, &pk);

		if (!p) {
			struct block_proc z = {};
			bool inserted;

			p = map_insert_or_find(&block_procs, &pk, &z, &inserted);
			if (inserted) {
				stat_inc(&block_counters, BLOCK_STAT_PROC_INSERTED);
				bpf_map_update_elem(&block_comms, &pk.tgid, &e->comm, BPF_ANY);
			}
			if (!p)
				stat_inc(&block_counters, BLOCK_STAT_PROC_FAILED);
		}
		if (p) {
			p->ops++;
			p->bytes += bytes;
			if (start)
				p->total_ns += now - start;
			if (issue && done >= issue)
				p->device_ns += done - issue;
		}
		forget(&key);
	}
}

/* The bios of the request are done (its waiter is woken). On kernels with
 * block_io_done (6.5+), a request the kernel times is counted there, where
 * /proc/diskstats ends its time (a few µs later: measured 5-14 µs on a loop
 * device, where the woken waiter runs first); device time ends here. */
static __always_inline void on_complete(struct request *rq, int error, __u32 nr_bytes, bool btf)
{
	__u64 now = bpf_ktime_get_ns(), key = (__u64)rq;
	struct block_rq *e = bpf_map_lookup_elem(&block_rqs, &key);

	/* A partial completion: the request goes on. */
	if (nr_bytes < rq_bytes(rq, btf))
		return;
	if (e && e->skip) {
		forget(&key);
		return;
	}
	if (e && bpf_core_type_exists(btf_trace_block_io_done) && rq_start(rq, btf)) {
		e->done_ns = now;
		e->done_bytes = nr_bytes;
		e->error = error != 0;
		return;
	}
	account(rq, e, now, now, error, nr_bytes, btf);
}

static __always_inline void on_io_done(struct request *rq, bool btf)
{
	__u64 key = (__u64)rq;
	struct block_rq *e = bpf_map_lookup_elem(&block_rqs, &key);

	if (e && e->done_ns)
		account(rq, e, bpf_ktime_get_ns(), e->done_ns, e->error, e->done_bytes, btf);
}

/* ---- alternative 1: tp_btf ---- */
SEC("tp_btf/block_io_start")
int BPF_PROG(block_io_start_btf, struct request *rq)
{
	on_start(rq, true, true);
	return 0;
}

SEC("tp_btf/block_rq_insert")
int BPF_PROG(block_rq_insert_btf, struct request *rq)
{
	on_start(rq, true, false);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(block_rq_issue_btf, struct request *rq)
{
	on_issue(rq, true);
	return 0;
}

SEC("tp_btf/block_rq_requeue")
int BPF_PROG(block_rq_requeue_btf, struct request *rq)
{
	on_requeue(rq);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(block_rq_complete_btf, struct request *rq, int error, unsigned int nr_bytes)
{
	on_complete(rq, error, nr_bytes, true);
	return 0;
}

/* A request merged into another is freed without completing. */
SEC("tp_btf/block_rq_merge")
int BPF_PROG(block_rq_merge_btf, struct request *rq)
{
	__u64 key = (__u64)rq;

	forget(&key);
	return 0;
}

SEC("tp_btf/block_io_done")
int BPF_PROG(block_io_done_btf, struct request *rq)
{
	on_io_done(rq, true);
	return 0;
}

/* ---- alternative 2: raw_tp ---- */
SEC("raw_tp/block_io_start")
int BPF_PROG(block_io_start_raw, struct request *rq)
{
	on_start(rq, false, true);
	return 0;
}

SEC("raw_tp/block_rq_insert")
int BPF_PROG(block_rq_insert_raw, struct request *rq)
{
	on_start(rq, false, false);
	return 0;
}

SEC("raw_tp/block_rq_issue")
int BPF_PROG(block_rq_issue_raw, struct request *rq)
{
	on_issue(rq, false);
	return 0;
}

SEC("raw_tp/block_rq_requeue")
int BPF_PROG(block_rq_requeue_raw, struct request *rq)
{
	on_requeue(rq);
	return 0;
}

SEC("raw_tp/block_rq_complete")
int BPF_PROG(block_rq_complete_raw, struct request *rq, int error, unsigned int nr_bytes)
{
	on_complete(rq, error, nr_bytes, false);
	return 0;
}

SEC("raw_tp/block_rq_merge")
int BPF_PROG(block_rq_merge_raw, struct request *rq)
{
	__u64 key = (__u64)rq;

	forget(&key);
	return 0;
}

SEC("raw_tp/block_io_done")
int BPF_PROG(block_io_done_raw, struct request *rq)
{
	on_io_done(rq, false);
	return 0;
}
