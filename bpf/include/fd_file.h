/* SPDX-License-Identifier: GPL-2.0 */
/* The file behind one of the current task's fds, for tracers of system
 * calls that take an fd. Needs vmlinux.h and bpf_helpers.h. */
#ifndef __FD_FILE_H
#define __FD_FILE_H

/* The file behind the current task's `fd`, as the call about to run will
 * find it; NULL for none. The task's own structures are walked through its
 * BTF pointer (plain loads); only the fd array's slot needs a copy. */
static __always_inline struct file *fd_file(long fd)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct files_struct *files = t->files;
	struct file *file = NULL;
	struct fdtable *fdt;

	if (!files)
		return NULL;
	fdt = files->fdt;
	if (!fdt || fd < 0 || fd >= fdt->max_fds)
		return NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fdt->fd[fd]);
	return file;
}

#endif
