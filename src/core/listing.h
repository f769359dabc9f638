/* Listings of collections (listing.c). */
#ifndef RFS_CORE_LISTING_H
#define RFS_CORE_LISTING_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog/parse.h"

struct rfs_cred;
struct rfs_fs;
struct rfs_node;
struct rfs_replicas;

struct rfs_entry {
	char *name; /* the POSIX name shown */
	uint64_t ino;
	struct rfs_did_rec rec;
	/* resolved ahead with a sibling's (under table_lock) */
	struct rfs_replicas *reps;
	double reps_time;
	uint64_t reps_tag; /* whose they are (rfs_authz_tag) */
	bool untimed;	   /* times not asked for yet (under table_lock) */
};

/*
 * One answer of the catalogue for a directory: immutable, refcounted,
 * but for what is asked for later under table_lock (entries' times and
 * replicas).
 */
struct rfs_listing {
	unsigned refs; /* atomic */
	size_t n;
	struct rfs_entry *e; /* sorted by name */
	size_t untimed;	     /* entries still untimed */
	bool times_busy;     /* a thread is asking for times */
};

void rfs_listing_put(struct rfs_listing *l);
struct rfs_listing *rfs_listing_get(struct rfs_listing *l);
/* The entry named @name, or NULL. */
const struct rfs_entry *rfs_listing_find(const struct rfs_listing *l,
					 const char *name);
/*
 * The listing of @n, fetched (as the mount) if missing or older than
 * dir_ttl;
 * with @nowait, RFS_WOULD_BLOCK instead of a fetch or a wait for
 * another's.
 */
int rfs_node_listing(struct rfs_fs *fs, struct rfs_node *n,
		     struct rfs_listing **out, bool nowait);
/* Whether entry @idx of @l waits for its times (a bulk request). */
bool rfs_entry_untimed(struct rfs_fs *fs, const struct rfs_listing *l,
		       size_t idx);
/* Makes entry @idx of @dir's listing @l timed, asking as the mount (see
 * listing.c). */
void rfs_entry_times(struct rfs_fs *fs, struct rfs_node *dir,
		     struct rfs_listing *l, size_t idx);
/* For listings, a busy catalogue (429/503) counts as out of reach too. */
bool rfs_unreachable_or_busy(int rc);

#endif
