/* The control socket beside the cache (ctl.c). */
#ifndef RFS_CORE_CTL_H
#define RFS_CORE_CTL_H

struct rfs_fs;

int rfs_ctl_start(struct rfs_fs *fs);
void rfs_ctl_stop(struct rfs_fs *fs);
/* The socket's path, or NULL when there is none. */
const char *rfs_ctl_path(struct rfs_fs *fs);
#endif
