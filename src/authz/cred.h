/*
 * Who asks: a caller's credential, made in fuse/ (through the core) from
 * each request's context and handed to every core entry point that can
 * reach the network or serve bytes; kept on open files, in read-ahead
 * jobs and in control-socket tasks. Refcounted: whoever keeps one takes
 * a reference.
 *
 * It names the identity to present (identity.h). Today every caller maps
 * to the mount's own (key "mount", in rfs_fs_caller); per-user identities
 * (issue 17) replace that one mapping.
 */
#ifndef RFS_AUTHZ_CRED_H
#define RFS_AUTHZ_CRED_H

#include <sys/types.h>

struct rfs_identity;

struct rfs_cred {
	unsigned refs; /* atomic */
	uid_t uid;
	gid_t gid;
	pid_t pid; /* 0: not a process (the daemon's own tasks) */
	/* the identity presented (a reference of the credential's own), or
	 * NULL for a caller of a shared mount with no usable token: what
	 * anonymous callers may do. Its key (rfs_identity_key) is what
	 * transport sessions and decisions are kept apart by. */
	struct rfs_identity *id;
};

/* A new credential (one reference; it takes its own reference to @id,
 * which may be NULL), or NULL when out of memory. */
struct rfs_cred *rfs_cred_new(uid_t uid, gid_t gid, pid_t pid,
			      struct rfs_identity *id);
struct rfs_cred *rfs_cred_get(struct rfs_cred *c);
/* Drops a reference; NULL is fine. */
void rfs_cred_put(struct rfs_cred *c);

#endif
