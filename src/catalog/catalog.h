/*
 * The Rucio catalogue client: the calls the filesystem needs, each made
 * as the identity it is handed (authz/identity.h: the token to show, and
 * a new one after a 401), and the userpass login exchange that identities
 * which log in use. Every call is synchronous and bounded by the
 * configured timeouts; no lock is held while one waits on the network.
 */
#ifndef RFS_CATALOG_H
#define RFS_CATALOG_H

#include <stdbool.h>
#include <time.h>

#include "catalog/parse.h"
#include "conf/conf.h"

struct rfs_catalog;
struct rfs_identity;

/* Borrows @conf for the catalogue's lifetime. Contacts nobody. */
int rfs_catalog_new(struct rfs_catalog **out, const struct rfs_conf *conf);
void rfs_catalog_free(struct rfs_catalog *cat);

/*
 * True while the catalogue counts as unreachable: after a contact failed
 * to connect or timed out, for offline_retry seconds, requests fail at
 * once with -EHOSTUNREACH.
 */
bool rfs_catalog_offline(struct rfs_catalog *cat);
/*
 * True from the contact that found the catalogue out of reach (the
 * "offline" event) to the next one that reached it ("online"), whether
 * or not the window above is open.
 */
bool rfs_catalog_unreachable(struct rfs_catalog *cat);

/* Kinds of calls, counted for metrics. */
enum rfs_catalog_call {
	RFS_CAT_LISTING,  /* scopes, a scope's DIDs, a collection's */
	RFS_CAT_META,	  /* POST /dids/bulkmeta */
	RFS_CAT_REPLICAS, /* POST /replicas/list */
	RFS_CAT_AUTH,	  /* the userpass login */
	RFS_CAT_CALLS,
};
/* "listing", "meta", "replicas", "auth". */
const char *rfs_catalog_call_name(enum rfs_catalog_call k);
/* Calls sent (not those the offline window failed at once) and, of them,
 * the failed ones: no answer, or an HTTP error other than 404. */
struct rfs_catalog_counts {
	uint64_t calls[RFS_CAT_CALLS];
	uint64_t errors[RFS_CAT_CALLS];
};
void rfs_catalog_counts(struct rfs_catalog *cat,
			struct rfs_catalog_counts *out);

/*
 * GET /auth/userpass with the configured user name, password, account and
 * VO: a token in *@token (free with rfs_token_free) and when to renew it,
 * a quarter of its lifetime early (5 minutes at most).
 */
int rfs_catalog_userpass(struct rfs_catalog *cat, char **token, time_t *renew);

/* When the last userpass login's token expires; 0: no login yet. */
time_t rfs_catalog_login_expires(struct rfs_catalog *cat);

/* GET /ping (needs no token): the server's version as it answers it. */
int rfs_catalog_ping(struct rfs_catalog *cat, char *version, size_t len);

/* GET /accounts/whoami: the account the catalogue takes @who for. */
int rfs_catalog_whoami(struct rfs_catalog *cat, struct rfs_identity *who,
		       char *account, size_t len);

/* GET /scopes/ */
int rfs_catalog_list_scopes(struct rfs_catalog *cat, struct rfs_identity *who,
			    struct rfs_did_list *out);
/* GET /dids/{scope}/: DIDs with no parent in the same scope */
int rfs_catalog_list_top(struct rfs_catalog *cat, struct rfs_identity *who,
			 const char *scope, struct rfs_did_list *out);
/* GET /dids/{scope}/{name}/dids: direct children */
int rfs_catalog_list_content(struct rfs_catalog *cat, struct rfs_identity *who,
			     const char *scope, const char *name,
			     struct rfs_did_list *out);
/* GET /dids/{scope}/{name}/files: every file below a DID (or itself). */
int rfs_catalog_list_files(struct rfs_catalog *cat, struct rfs_identity *who,
			   const char *scope, const char *name,
			   struct rfs_did_list *out);
/*
 * POST /dids/bulkmeta for every record of @l, in batches; fills in
 * created/updated times and missing sizes and checksums in place.
 */
int rfs_catalog_fill_meta(struct rfs_catalog *cat, struct rfs_identity *who,
			  struct rfs_did_list *l);
/*
 * The replica schemes asked of POST /replicas/list from now on, copied
 * (at creation: -o schemes). Rucio returns no PFN of a scheme not asked
 * for, and an empty list asks for its one best protocol per RSE. Not
 * locked: call before the first request.
 */
int rfs_catalog_set_schemes(struct rfs_catalog *cat,
			    const struct rfs_strv *schemes);
/* POST /replicas/list for one file, with the configured schemes/sort. */
int rfs_catalog_list_replicas(struct rfs_catalog *cat, struct rfs_identity *who,
			      const char *scope, const char *name,
			      struct rfs_replica_list *out);
/* The same for @n (1..RFS_REPLICAS_MANY_MAX) DIDs in one request; the
 * answer's order is the catalogue's, not @dids'. */
#define RFS_REPLICAS_MANY_MAX 1000 /* Rucio's schema limit */
int rfs_catalog_list_replicas_many(struct rfs_catalog *cat,
				   struct rfs_identity *who,
				   const struct rfs_did_rec *dids, size_t n,
				   struct rfs_replica_list *out);

#endif
