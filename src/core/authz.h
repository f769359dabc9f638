/*
 * Who may see what on a shared mount (authz.c). With one identity for
 * every caller (no allow_other, or identity=mount) everything is allowed
 * and attributes are as before.
 */
#ifndef RFS_CORE_AUTHZ_H
#define RFS_CORE_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct rfs_attr;
struct rfs_cred;
struct rfs_did_rec;
struct rfs_fs;
struct rfs_identity;
struct rfs_target;

/* Sets up callers, decisions and the identity map; contacts nobody. */
int rfs_authz_new(struct rfs_fs *fs, char *err, size_t errlen);
void rfs_authz_free(struct rfs_fs *fs);

/* The namespace (names, sizes, listings) is shared on purpose with every
 * caller who has an identity, and anonymous ones with anonymous=names.
 * 0 or -EACCES. */
int rfs_authz_names(const struct rfs_fs *fs, const struct rfs_cred *who);

/*
 * Whether @who may read the bytes of @t (its replicas resolved as @who):
 * a decision kept per (identity, DID), else storage is asked with @who's
 * token (a one-byte read of a replica). Returns 0, -EACCES,
 * RFS_WOULD_BLOCK with @nowait, or -EIO when no storage could say and no
 * "yes" made online within authz_offline is at hand.
 */
int rfs_authz_read(struct rfs_fs *fs, const struct rfs_cred *who,
		   struct rfs_target *t, bool nowait);

/*
 * Owner, group and mode of @rec as @who is to see them, and no kernel
 * caching of them: another caller may see them otherwise. In two steps,
 * as attributes are filled under table_lock, a leaf: under it, keep
 * copies what is needed of @rec (false: nothing to do, one identity for
 * all); after it, done adjusts @a and releases @copy.
 */
bool rfs_authz_attr_keep(const struct rfs_fs *fs, const struct rfs_did_rec *rec,
			 struct rfs_did_rec *copy);
void rfs_authz_attr_done(struct rfs_fs *fs, const struct rfs_cred *who,
			 struct rfs_did_rec *copy, bool kept,
			 struct rfs_attr *a);

/* The identity caller @uid presents on a shared mount (a reference, or
 * NULL: none usable); only with callers (rfs_fs_conf()->per_caller). */
int rfs_authz_caller(struct rfs_fs *fs, uid_t uid, gid_t gid, pid_t pid,
		     struct rfs_identity **out);

/* A 64-bit tag of @who's identity (0: none), to keep per-identity answers
 * (replica lists) apart. */
uint64_t rfs_authz_tag(const struct rfs_cred *who);

#endif
