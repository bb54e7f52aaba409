/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers shared by every tracer's BPF program. Keep them tiny and inline:
 * they run on every traced event. */
#ifndef __TRACER_H
#define __TRACER_H

#define TASK_COMM_LEN 16

/* Puts type T into the object's BTF, so the kit can generate its Rust twin from
 * the header that declares it (plugins/kit/src/btf_types.rs): for structs that
 * are only ever locals (ring records). One unused pointer in .bss. */
#define SHARED_TYPE(T) ___SHARED_TYPE(T, __COUNTER__)
#define ___SHARED_TYPE(T, n) ____SHARED_TYPE(T, n)
#define ____SHARED_TYPE(T, n) T *___shared_type_##n __attribute__((unused))

/* Per-CPU u64 counters declared by a plugin as CounterSpec: one slot per index.
 * Per-CPU so the hot path never contends on a shared cache line; the host sums. */
#define DECLARE_STATS(name, n)                          \
	struct {                                        \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); \
		__uint(max_entries, n);                 \
		__type(key, __u32);                     \
		__type(value, __u64);                   \
	} name SEC(".maps")

static __always_inline void stat_inc(void *map, __u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(map, &idx);
	if (v)
		*v += 1;
}

/* Ring-buffer submit flags: wake the consumer only once a batch is waiting.
 * A wake-up per record costs the traced workload a context switch and an IPI
 * on a busy box; the host also drains at every refresh and keeps polling while
 * records flow, so nothing waits longer than one refresh. */
#define RB_WAKEUP_BYTES (256 * 1024)

static __always_inline __u64 rb_submit_flags(void *ringbuf)
{
	return bpf_ringbuf_query(ringbuf, BPF_RB_AVAIL_DATA) >= RB_WAKEUP_BYTES ?
		       BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/* Exact comparison of two TASK_COMM_LEN buffers (NUL-padded). */
static __always_inline bool comm_eq(const char *a, const char *b)
{
#pragma unroll
	for (int i = 0; i < TASK_COMM_LEN; i++) {
		if (a[i] != b[i])
			return false;
		if (a[i] == 0)
			return true;
	}
	return true;
}

/* A tgid -> comm map stays current when a process renames itself (exec,
 * prctl PR_SET_NAME, /proc/PID/comm): call from tracepoint task/task_rename.
 * Keys are tgids, so only a main thread's rename matches one; a thread that
 * names itself leaves its process's name alone. */
static __always_inline void comm_renamed(void *comms, __u32 pid, const char *newcomm)
{
	char comm[TASK_COMM_LEN];

	if (!bpf_map_lookup_elem(comms, &pid))
		return;
	/* ctx fields at unaligned offsets: copy, do not load directly. */
	bpf_probe_read_kernel(comm, sizeof(comm), newcomm);
	bpf_map_update_elem(comms, &pid, comm, BPF_EXIST);
}

/* The entry of `key` in hash `map`, created from `init`: for a caller whose
 * own lookup found nothing. Another CPU may insert the same key between that
 * lookup and this update; its entry is then used, which is no failure.
 * *inserted says whether this call created the entry; NULL means the map
 * refused it (full, out of memory). */
static __always_inline void *map_insert_or_find(void *map, const void *key, const void *init,
						bool *inserted)
{
	*inserted = !bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

/* Remember the current task's comm as the name of process `tgid`, taken now,
 * at event time (never looked up later in /proc). */
static __always_inline void comm_remember(void *comms, __u32 tgid)
{
	char comm[TASK_COMM_LEN];

	bpf_get_current_comm(&comm, sizeof(comm));
	bpf_map_update_elem(comms, &tgid, &comm, BPF_ANY);
}

/* The slow half of PROC_ENTRY: `key` was not found; make its entry from
 * `zero`. A new entry is counted (stats[inserted_idx]: inserted minus live
 * is what the LRU evicted) and its process named in `comms` under `tgid`,
 * from the current task at event time; one the map refuses is counted as
 * lost (stats[failed_idx]) and NULL returned. */
static __always_inline void *proc_entry_insert(void *map, const void *key, const void *zero, __u32 tgid,
					       void *comms, void *stats, __u32 inserted_idx, __u32 failed_idx)
{
	bool inserted;
	void *v = map_insert_or_find(map, key, zero, &inserted);

	if (inserted) {
		stat_inc(stats, inserted_idx);
		comm_remember(comms, tgid);
	}
	if (!v)
		stat_inc(stats, failed_idx);
	return v;
}

/* The per-process entry (of value type T) of `key` in hash `map`: looked up,
 * else made (see proc_entry_insert). A macro so that the zeroed T is built
 * only on the insert path, never on the hot path of an existing entry. */
#define PROC_ENTRY(T, map, key, tgid, comms, stats, inserted_idx, failed_idx)                     \
	({                                                                                         \
		T *__v = bpf_map_lookup_elem(map, key);                                            \
		if (!__v) {                                                                        \
			T __zero = {};                                                             \
			__v = proc_entry_insert(map, key, &__zero, tgid, comms, stats, inserted_idx, \
						failed_idx);                                       \
		}                                                                                  \
		__v;                                                                               \
	})

/* The process filter every tracer's filter struct starts with (32 bytes).
 * Zero fields mean "no filter". The Rust side is tracer_plugin_kit::proc_filter. */
struct proc_filter {
	__u32 pid;         /* only this tgid */
	__u32 exclude_pid; /* never this tgid (the host itself, as the kernel numbers it) */
	__u8 has_comm;
	__u8 _pad[3];
	/* Changes with every filter write (and reset). State stored while an older
	 * filter was in force (a syscall in flight) carries the old value and is
	 * dropped at exit, so a new filter never counts calls it did not see start. */
	__u32 gen;
	char comm[TASK_COMM_LEN];
};

/* Whether the current task passes `f`, `tgid` being its process. The cheap
 * checks first: pid comes from a register, comm needs a copy. */
static __always_inline bool proc_wanted(const struct proc_filter *f, __u32 tgid)
{
	if (f->pid && f->pid != tgid)
		return false;
	if (f->exclude_pid == tgid)
		return false;
	if (f->has_comm) {
		char comm[TASK_COMM_LEN];

		bpf_get_current_comm(&comm, sizeof(comm));
		if (!comm_eq(comm, f->comm))
			return false;
	}
	return true;
}

/* Whether a process known by its tgid and comm, stored earlier (a
 * connection's owner, named when a system call used it), passes `f`. A tgid
 * of 0 is no process yet: it passes only a filter on neither pid nor comm. */
static __always_inline bool proc_wanted_as(const struct proc_filter *f, __u32 tgid, const char *comm)
{
	if (f->pid && f->pid != tgid)
		return false;
	if (f->exclude_pid && f->exclude_pid == tgid)
		return false;
	if (f->has_comm && (!tgid || !comm_eq(comm, f->comm)))
		return false;
	return true;
}

/* The uid filter of tracers that take one (settings key `uid`): a task's
 * real uid, as /proc/PID/status's first Uid field. uid 0 is a real uid,
 * hence the flag. The Rust side is tracer_plugin_kit::uid_filter. */
struct uid_filter {
	__u32 uid;
	__u32 has_uid;
};

static __always_inline bool uid_wanted(const struct uid_filter *u)
{
	return !u->has_uid || (__u32)bpf_get_current_uid_gid() == u->uid;
}

/* Whether `f` picks processes at all (pid or comm): a transition no process
 * owns (a listening socket's) is shown only when it does not. */
static __always_inline bool proc_filter_picks(const struct proc_filter *f)
{
	return f->pid || f->has_comm;
}

#include "log2_hist.h"

#endif /* __TRACER_H */
