/* The FUSE low-level operations table over the core (fuse/ only). */
#ifndef RFS_FUSE_OPS_H
#define RFS_FUSE_OPS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

/* The readahead the mount asks for: the largest FUSE read request. */
#define RFS_FUSE_READAHEAD (1024 * 1024)

struct rfs_fs;
struct rfs_async;

/* The session's userdata. */
struct rfs_fuse {
	struct rfs_fs *fs;
	struct rfs_async *async; /* NULL: every request answered inline */
	/* session workers that may wait on the network at once; the
	 * others stay free for what is at hand, and past this requests
	 * that must wait go to @async */
	unsigned inline_max;
	unsigned inline_busy; /* atomic */
};

extern const struct fuse_lowlevel_ops rfs_fuse_ops;

#endif
