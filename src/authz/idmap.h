/*
 * The identity map (-o idmap=FILE): how IAM identities and Rucio
 * accounts show as local owners, and which IAM group owns a scope. One
 * rule per line, '#' starts a comment, fields separated by blanks:
 *
 *   group    /escape/cta   cta      IAM group -> local group (name or gid)
 *   user     <sub>         alice    IAM subject -> local user (name or uid)
 *   account  jdoe          alice    Rucio account -> local user
 *   scope    cta           /escape/cta    scope -> the IAM group owning it
 *
 * Names are resolved to ids when the file is loaded. A later rule for the
 * same key replaces an earlier one.
 */
#ifndef RFS_AUTHZ_IDMAP_H
#define RFS_AUTHZ_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct rfs_idmap;

/* Parses @text (@len bytes). On a bad line: -EINVAL and @err says which
 * line and why ("idmap line 3: unknown group 'xyz'"). */
int rfs_idmap_parse(const char *text, size_t len, struct rfs_idmap **out,
		    char *err, size_t errlen);
/* Reads and parses @path (at most 1 MiB). */
int rfs_idmap_load(const char *path, struct rfs_idmap **out, char *err,
		   size_t errlen);
void rfs_idmap_free(struct rfs_idmap *m);

/* The IAM group owning @scope, or NULL. */
const char *rfs_idmap_scope_group(const struct rfs_idmap *m, const char *scope);
/* The local gid of IAM group @group; false if unmapped. */
bool rfs_idmap_gid(const struct rfs_idmap *m, const char *group, gid_t *out);
/* The local uid of IAM subject @sub; false if unmapped. */
bool rfs_idmap_uid_of_sub(const struct rfs_idmap *m, const char *sub,
			  uid_t *out);
/* The local uid of Rucio account @account; false if unmapped. */
bool rfs_idmap_uid_of_account(const struct rfs_idmap *m, const char *account,
			      uid_t *out);

#endif
