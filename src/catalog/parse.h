/*
 * Pure parsers for the catalogue's answers: bytes in, owned structs out.
 * No network here, so every function can be fuzzed. A malformed answer is
 * -EBADMSG as a whole, never a partial result (a DID stream skips single
 * malformed records, see rfs_parse_dids).
 */
#ifndef RFS_CATALOG_PARSE_H
#define RFS_CATALOG_PARSE_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <time.h>

#include "util/buf.h"

enum rfs_did_type {
	RFS_DID_UNKNOWN = 0,
	RFS_DID_FILE,
	RFS_DID_DATASET,
	RFS_DID_CONTAINER,
	RFS_DID_SCOPE, /* not Rucio's: a scope shown as a directory */
	RFS_DID_ROOT,  /* not Rucio's: the list of scopes */
};

struct rfs_did_rec {
	char *scope; /* owned */
	char *name;  /* owned; NULL for scopes and the root */
	enum rfs_did_type type;
	bool has_bytes;
	uint64_t bytes;
	char adler32[9]; /* 8 lowercase hex digits, or "" */
	char md5[33];	 /* 32 lowercase hex digits, or "" */
	time_t created;	 /* 0: unknown */
	time_t updated;
	/* the Rucio account that made it (at most 25 characters in Rucio),
	 * "" when not given: shown as the owner through an idmap */
	char account[32];
};

struct rfs_did_list {
	struct rfs_did_rec *v;
	size_t n;
	size_t alloc;
};

struct rfs_pfn {
	char *url;	  /* owned, as the catalogue sent it */
	char *rse;	  /* owned */
	int64_t priority; /* lower is tried first */
};

struct rfs_replica_rec {
	struct rfs_did_rec did;
	struct rfs_pfn *pfn; /* sorted by priority (stable) */
	size_t npfn;
};

struct rfs_replica_list {
	struct rfs_replica_rec *v;
	size_t n;
};

void rfs_did_rec_release(struct rfs_did_rec *r);
/* Deep copy; returns 0 or -ENOMEM. */
int rfs_did_rec_copy(struct rfs_did_rec *dst, const struct rfs_did_rec *src);
void rfs_did_list_init(struct rfs_did_list *l);
void rfs_did_list_release(struct rfs_did_list *l);
/* Moves @r into the list (the list owns its strings afterwards). */
int rfs_did_list_take(struct rfs_did_list *l, struct rfs_did_rec *r);
void rfs_replica_list_release(struct rfs_replica_list *l);

/* "FILE", "DIDType.FILE" (1.31 search), "F", case-insensitive. */
enum rfs_did_type rfs_did_type_parse(const char *s);
const char *rfs_did_type_name(enum rfs_did_type t);

/* GET /scopes/: a JSON array of strings -> RFS_DID_SCOPE records. */
int rfs_parse_scopes(const char *buf, size_t len, struct rfs_did_list *out);

/* What rfs_parse_dids left out of an answer it accepted. */
/*
 * GET /ping's answer, {"version": "..."}: the version into @version.
 * -EBADMSG for anything else, an empty or too long version, or one with
 * control characters (it is shown on a terminal).
 */
int rfs_parse_ping(const char *buf, size_t len, char *version, size_t vlen);

/*
 * GET /accounts/whoami: the account named in a 303's @location
 * (".../accounts/NAME"; may be NULL or lack it), else by the body
 * {"account": NAME} of a 200. The same rules as rfs_parse_ping.
 */
int rfs_parse_whoami(const char *location, const char *buf, size_t len,
		     char *account, size_t alen);

struct rfs_parse_skips {
	size_t nul_names; /* records whose name holds a NUL byte */
	size_t malformed; /* records with a missing or wrong field */
	/* the first malformed one, "scope:name" as sent ('?' for what it
	 * lacks; for a log line, which escapes it), and its wrong field */
	char first[512];
	const char *field; /* static */
};

/*
 * Any json-stream of DID objects: /dids/{scope}/, /dids/{s}/{n}/dids,
 * /dids/bulkmeta, /dids/{s}/{n}/meta (a single object is one line too).
 * Reads scope, name, type or did_type, bytes, adler32, md5, created_at,
 * updated_at. One record that is malformed (no scope or name, a size
 * that is not a non-negative integer, a bad checksum or time) or whose
 * name cannot be a C string is skipped, counted in *@skips (may be
 * NULL), and its siblings kept. -EBADMSG, for the whole answer, is a
 * line that is not a JSON object (not JSON, truncated, another shape).
 */
int rfs_parse_dids(const char *buf, size_t len, struct rfs_did_list *out,
		   struct rfs_parse_skips *skips);

/* POST /replicas/list json-stream. */
int rfs_parse_replicas(const char *buf, size_t len,
		       struct rfs_replica_list *out);

/*
 * The reverse, for the offline copy kept in the cache: a json-stream the
 * parsers above read back to the same records (times as ISO 8601 UTC).
 * Scopes are written as the JSON array of GET /scopes/.
 */
int rfs_dids_to_stream(const struct rfs_did_list *l, struct rfs_buf *out);
int rfs_scopes_to_json(const struct rfs_did_list *l, struct rfs_buf *out);
int rfs_replicas_to_stream(const struct rfs_replica_list *l,
			   struct rfs_buf *out);

/*
 * Normalises a checksum: adler32 to 8 zero-padded lowercase hex digits
 * (Rucio may drop leading zeros), md5 to 32. -EINVAL if not hex.
 */
int rfs_checksum_norm(char *out, size_t width, const char *in);

#endif
