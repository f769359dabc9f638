/*
 * The control socket ruciofs-ctl talks to (server.c): started after the
 * core, on its public API (core/fs.h) only.
 */
#ifndef RFS_CTL_SERVER_H
#define RFS_CTL_SERVER_H

struct rfs_fs;
struct rfs_ctl;

/* Listens on <@dir>/ctl.sock (mode 0600) and tells @fs where. */
int rfs_ctl_start(struct rfs_ctl **out, struct rfs_fs *fs, const char *dir);
/* Stops it and waits for its clients: before the fs goes. */
void rfs_ctl_stop(struct rfs_ctl *ctl);

#endif
