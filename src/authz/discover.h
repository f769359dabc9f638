/*
 * A caller's own bearer token on a shared mount, found by WLCG bearer
 * token discovery on the caller's side (storage-and-tokens.md, 4-5):
 * with token_env, BEARER_TOKEN then BEARER_TOKEN_FILE from the caller's
 * environment (/proc/<pid>/environ, read off the request thread with a
 * deadline and kept per session: (session id, session leader's start
 * time, uid)); then $XDG_RUNTIME_DIR/bt_u<uid> (the caller's, with
 * token_env; else /run/user/<uid>), then /tmp/bt_u<uid>. A file is used
 * only when it is a regular file owned by the caller's uid with no group
 * or other permission bits, at most RFS_TOKEN_MAX bytes, opened as the
 * caller (per-thread setfsuid/setfsgid) with O_NOFOLLOW and checked with
 * fstat, and never inside the mount. A replaced file is seen within a
 * second. Contents are cleaned as rfs_token_clean does.
 */
#ifndef RFS_AUTHZ_DISCOVER_H
#define RFS_AUTHZ_DISCOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct rfs_discover_opts {
	bool token_env;		/* read the caller's environment */
	double env_timeout;	/* seconds for one environ read */
	const char *forbid_dir; /* the mountpoint; copied */
};

struct rfs_discovery;

int rfs_discovery_new(struct rfs_discovery **out,
		      const struct rfs_discover_opts *o);
void rfs_discovery_free(struct rfs_discovery *d);

/*
 * A copy of the token of the caller (@uid, @gid, @pid: a thread id; 0 for
 * the kernel), to free with rfs_token_free; @where (>= 256 bytes) says
 * where it came from, for log lines. Returns 0; -ENOENT when no step has
 * one; -EACCES when the step that had one was unsafe (wrong owner, group
 * or other bits, not a regular file, a link, inside the mount): the next
 * steps are not tried, as discovery stops at an invalid source; -EINVAL
 * when it held bytes a token cannot; -ETIMEDOUT when the environment
 * could not be read in time. Per-uid results are kept a second at most
 * (a bounded table); safe from many threads at once.
 */
int rfs_discovery_token(struct rfs_discovery *d, uid_t uid, gid_t gid,
			pid_t pid, char **out, char *where, size_t wlen);

/* Forget what is kept for @uid (its token was refused: look again). */
void rfs_discovery_forget(struct rfs_discovery *d, uid_t uid);

#endif
