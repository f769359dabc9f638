/*
 * Kernel passthrough for whole cached files (Linux 6.9 and later): the
 * kernel reads such a file straight from its block file in the cache, in
 * its own page cache, with no request to the daemon. libfuse 3.14 (Debian
 * 12) predates the feature, so it is negotiated here on the wire, through
 * the session's custom I/O hooks: the INIT reply asks for it when the
 * kernel offers it, and an open reply names the backing file.
 *
 * The kernel refuses to mix the two modes on one inode (an open through
 * the daemon while another reads through a backing file fails with EIO),
 * so every open and release of a file is counted here, by inode.
 */
#ifndef RFS_FUSE_PASSTHROUGH_H
#define RFS_FUSE_PASSTHROUGH_H

#include <stdbool.h>
#include <stdint.h>

#include "fuse/ops.h" /* fuse_lowlevel.h, at our API version */

/* After fuse_session_mount: hooks @se's I/O to offer passthrough;
 * -errno if libfuse refused them. */
int rfs_pt_install(struct fuse_session *se);

/* Whether opens may ask for passthrough: negotiated, and not given up. */
bool rfs_pt_usable(void);

/* Whether an open of @ino now would take a backing file: worth opening
 * one for rfs_pt_open (not when the inode is served one way already). */
bool rfs_pt_wants_fd(uint64_t ino);

/*
 * Decides how an open of @ino is served. @fd: a read-only fd of the whole
 * file's bytes, or negative if there is none (borrowed: the caller closes
 * it). Returns a backing id (> 0) for the open reply, or 0: served by the
 * daemon. Sets *@counted if the open is counted, and then owes one
 * rfs_pt_release. While passthrough is unusable, only opens of an inode
 * still read from a backing file are counted (they must share it).
 */
int rfs_pt_open(uint64_t ino, int fd, bool *counted);

/* fuse_reply_open, with the backing file @backing_id (0: none). */
int rfs_pt_reply_open(fuse_req_t req, struct fuse_file_info *fi,
		      int backing_id);

/* An open of @ino that rfs_pt_open counted has ended (released, or its
 * reply never reached the kernel). */
void rfs_pt_release(uint64_t ino, bool passthrough);

/* After the session loop: forgets the opens whose RELEASE never came. */
void rfs_pt_clear(void);

#endif
