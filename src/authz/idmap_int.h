/*
 * The insides of idmap.c that its tests and fuzz target reach: the parser
 * with the name lookups handed in (so a fuzz run never asks NSS), and the
 * rules a map holds. The daemon includes idmap.h only.
 */
#ifndef RFS_AUTHZ_IDMAP_INT_H
#define RFS_AUTHZ_IDMAP_INT_H

#include <stddef.h>
#include <sys/types.h>

#include "authz/idmap.h"

/* Longest field; IAM subjects are at most 255 bytes (WLCG profile). */
#define RFS_IDMAP_FIELD_MAX 1024
/* Largest map file rfs_idmap_load reads. */
#define RFS_IDMAP_FILE_MAX (1 << 20)

enum rfs_idmap_kind {
	RFS_IDMAP_GROUP,   /* IAM group -> local gid */
	RFS_IDMAP_USER,	   /* IAM subject -> local uid */
	RFS_IDMAP_ACCOUNT, /* Rucio account -> local uid */
	RFS_IDMAP_SCOPE,   /* Rucio scope -> IAM group */
	RFS_IDMAP_NKINDS,
};

/* One rule; IAM groups (keys of group rules, values of scope rules)
 * are kept with their leading '/'. */
struct rfs_idmap_rule {
	char *key;
	char *group;   /* scope rules: the IAM group; else NULL */
	unsigned id;   /* group, user and account rules: the local id */
	unsigned line; /* where it was written */
};

/* Name lookups: 0, -ENOENT for an unknown name, or another -errno. */
struct rfs_idmap_names {
	int (*user)(const char *name, uid_t *out, void *arg);
	int (*group)(const char *name, gid_t *out, void *arg);
	void *arg;
};

/* rfs_idmap_parse with @names in place of getpwnam_r/getgrnam_r. */
int rfs_idmap_parse_with(const char *text, size_t len,
			 const struct rfs_idmap_names *names,
			 struct rfs_idmap **out, char *err, size_t errlen);

/* The rules of kind @k, sorted by key (strcmp), one per key. */
const struct rfs_idmap_rule *rfs_idmap_rules(const struct rfs_idmap *m,
					     enum rfs_idmap_kind k, size_t *n);

#endif
