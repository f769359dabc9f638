/*
 * Callers of a shared mount (identity=caller): each local user presents
 * their own IAM token, found on their side (discover.h) and verified
 * against the accepted issuers' keys (keyring.h). The result is kept per
 * uid and checked again after a second, so a request usually costs one
 * table look-up; a replaced token file gives a new identity, an expired
 * or refused one is dropped. Bounded: the users least recently seen go
 * first.
 */
#ifndef RFS_AUTHZ_CALLERS_H
#define RFS_AUTHZ_CALLERS_H

#include <stddef.h>
#include <sys/types.h>

#include "authz/keyring.h"
#include "conf/conf.h"

struct rfs_identity;
struct rfs_callers;

struct rfs_callers_opts {
	const struct rfs_conf *conf;
	/* root's, when root has no token of its own (root reads the cache
	 * directory anyway: nothing is kept from it) */
	struct rfs_identity *mount;
	const struct rfs_keyring_store *store; /* optional */
};

/* Contacts nobody. */
int rfs_callers_new(struct rfs_callers **out, const struct rfs_callers_opts *o);
void rfs_callers_free(struct rfs_callers *cs);

/*
 * The identity the caller (@uid, @gid, @pid) presents now, a reference in
 * *@out, or NULL when they have no usable token (no file, an unsafe one,
 * a token refused: said in one log line per uid and reason a minute,
 * naming the uid and the reason, never the token). Returns 0, or -ENOMEM.
 * May wait on a key fetch (a new issuer key), bounded by the timeouts.
 */
int rfs_callers_identity(struct rfs_callers *cs, uid_t uid, gid_t gid,
			 pid_t pid, struct rfs_identity **out);

/* Callers with an identity now (for status). */
size_t rfs_callers_count(struct rfs_callers *cs);

#endif
