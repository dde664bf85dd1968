/* Whether a host file lives in memory (tmpfs, ramfs): its pages are the
 * file, with no disk behind them.  Copies into such a file choose another
 * way than into one on a disk (disk/content_copy.c): reserving space there
 * fills pages with zeros, a whole extra copy, and the kernel's own copy
 * between two files beats a read and a write through the process. */
#ifndef VDENGINE_FILE_IN_MEMORY_H
#define VDENGINE_FILE_IN_MEMORY_H

#include "host/io.h"

/* 1 for a file of tmpfs or ramfs, 0 otherwise and where the host cannot
 * tell (fstatfs fails, another system). */
int vd_file_in_memory(const vd_file *file);

#endif
