/* SPDX-License-Identifier: GPL-2.0 */
/* A file's name as the kernel keeps it in the dentry cache: its last
 * component and its directory's, for tracers that show files (a full path
 * needs bpf_d_path, which tracepoints may not call). Needs vmlinux.h and
 * bpf_core_read.h. */
#ifndef __DENTRY_NAME_H
#define __DENTRY_NAME_H

/* The dentry's name into name[name_len] and its parent's into
 * dir[dir_len]; returns the truncation flags (1: name, 2: dir) for the
 * reader to mark. */
static __always_inline __u8 dentry_names(struct dentry *d, char *name, __u32 name_len, char *dir, __u32 dir_len)
{
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	__u8 trunc = 0;

	if (!d)
		return 0;
	bpf_probe_read_kernel_str(name, name_len, BPF_CORE_READ(d, d_name.name));
	if (BPF_CORE_READ(d, d_name.len) >= name_len)
		trunc |= 1;
	if (parent && parent != d) {
		bpf_probe_read_kernel_str(dir, dir_len, BPF_CORE_READ(parent, d_name.name));
		if (BPF_CORE_READ(parent, d_name.len) >= dir_len)
			trunc |= 2;
	}
	return trunc;
}

/* One of the inode's dentries (a hard-linked file has several; an inode
 * with none, as a block device's in bdevfs, gives NULL). */
static __always_inline struct dentry *inode_dentry(struct inode *inode)
{
	struct hlist_node *first = BPF_CORE_READ(inode, i_dentry.first);

	if (!first)
		return NULL;
	return (struct dentry *)((void *)first - bpf_core_field_offset(struct dentry, d_u.d_alias));
}

#endif
