/* SPDX-License-Identifier: GPL-2.0 */
/* Log2 histogram slots. Plain C with no BPF helper, so the host's C compiler
 * can test it too (core/tests/log2_hist.rs). */
#ifndef __LOG2_HIST_H
#define __LOG2_HIST_H

/* floor(log2(v)) for v > 0, 0 for v == 0: the bucket index of the libbpf-tools
 * histograms (bucket i holds [2^i, 2^(i+1))). */
static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0, shift;
	shift = (v > 0xFFFFFFFFULL) << 5; v >>= shift; r |= shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

/* The slot of value v in a log2 histogram of `nslots` buckets (a power of
 * two): values past the last bucket are counted in the last one (clamped,
 * never wrapped into a low bucket as masking alone would). The final mask
 * never changes a clamped slot; it shows the verifier the bound, which it
 * loses when the compiler compares one register and indexes with a copy. */
static __always_inline __u32 hist_slot(__u64 v, __u32 nslots)
{
	__u32 s = log2_u64(v);

	if (s >= nslots)
		s = nslots - 1;
	/* Keeps the compiler from dropping the mask as redundant. */
	asm volatile("" : "+r"(s));
	return s & (nslots - 1);
}

#endif /* __LOG2_HIST_H */
