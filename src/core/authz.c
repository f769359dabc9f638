/*
 * Who may see what on a shared mount: the namespace is shared with every
 * caller who has an identity (and anonymous ones if anonymous=names);
 * bytes and replica URLs only with a caller the storage let read the
 * file, asked once with their own token and kept per (identity, DID)
 * while that token lives. Cached blocks are served only through a handle
 * opened after such a "yes", so no caller reads what another fetched
 * unless the storage would have given it to them too.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/stat.h>

#include <openssl/evp.h>

#include "authz/callers.h"
#include "authz/cred.h"
#include "authz/idmap.h"
#include "authz/identity.h"
#include "core/authz.h"
#include "core/core.h"
#include "core/file.h"
#include "core/replicas.h"
#include "util/clock.h"
#include "util/errmap.h"
#include "util/log.h"
#include "util/banned.h"

/* Decisions kept at most (about 48 bytes each), and their chains. */
#define DEC_MAX 16384
#define DEC_BUCKETS 4096
/* A "no" is asked again after this: an ACL may have been fixed. */
#define NO_TTL 60

struct decision {
	unsigned char key[16]; /* SHA-256 of identity key and DID, cut */
	bool allowed;
	time_t made, until;
	double used;
	int next; /* chain; -1 ends it */
};

struct rfs_authz {
	struct rfs_callers *callers;
	struct rfs_idmap *idmap;
	/* lock guards the decisions; a leaf, never held across a probe */
	pthread_mutex_t lock;
	struct decision *v;
	int heads[DEC_BUCKETS];
	size_t n, hand;
};

/* ---- kept decisions ---- */

static void key_of(const struct rfs_cred *who, const struct rfs_target *t,
		   unsigned char out[16])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char buf[96 + sizeof(t->didstr) + 2];
	int n = snprintf(buf, sizeof(buf), "%s%c%s", rfs_identity_key(who->id),
			 0, t->didstr);

	/* a 128-bit digest: 16 bytes an entry, and no two pairs alike */
	EVP_Digest(buf, n > 0 ? (size_t)n : 0, md, NULL, EVP_sha256(), NULL);
	memcpy(out, md, 16);
}

static int bucket(const unsigned char key[16])
{
	return (int)((key[0] | key[1] << 8) % DEC_BUCKETS);
}

/* Under lock. */
static struct decision *find(struct rfs_authz *az, const unsigned char *key)
{
	for (int i = az->heads[bucket(key)]; i >= 0; i = az->v[i].next)
		if (!memcmp(az->v[i].key, key, 16))
			return &az->v[i];
	return NULL;
}

/* Under lock: takes @i out of its chain. */
static void unchain(struct rfs_authz *az, int i)
{
	int *pp = &az->heads[bucket(az->v[i].key)];

	while (*pp >= 0 && *pp != i)
		pp = &az->v[*pp].next;
	if (*pp == i)
		*pp = az->v[i].next;
}

/* Under lock: a free entry, or the least recently used of the next 64
 * (a clock hand: near-LRU without a list to keep). */
static int take_entry(struct rfs_authz *az)
{
	int old = -1;

	if (az->n < DEC_MAX)
		return (int)az->n++;
	for (int k = 0; k < 64; k++) {
		int i = (int)(az->hand++ % DEC_MAX);

		if (old < 0 || az->v[i].used < az->v[old].used)
			old = i;
	}
	unchain(az, old);
	return old;
}

static void remember(struct rfs_authz *az, const unsigned char *key,
		     bool allowed, time_t until)
{
	struct decision *d;
	int i;

	pthread_mutex_lock(&az->lock);
	d = find(az, key);
	if (!d) {
		i = take_entry(az);
		d = &az->v[i];
		memcpy(d->key, key, 16);
		d->next = az->heads[bucket(key)];
		az->heads[bucket(key)] = i;
	}
	d->allowed = allowed;
	d->made = time(NULL);
	d->until = until;
	d->used = rfs_mono_now();
	pthread_mutex_unlock(&az->lock);
}

/* What is kept: 1 yes, 0 no, -1 nothing valid; *@made_offline the time
 * of a "yes" past its validity (for offline use). */
static int recall(struct rfs_authz *az, const unsigned char *key,
		  time_t *yes_made)
{
	time_t now = time(NULL);
	struct decision *d;
	int verdict = -1;

	*yes_made = 0;
	pthread_mutex_lock(&az->lock);
	d = find(az, key);
	if (d && now < d->until)
		verdict = d->allowed;
	if (d && d->allowed)
		*yes_made = d->made;
	if (d)
		d->used = rfs_mono_now();
	pthread_mutex_unlock(&az->lock);
	return verdict;
}

/* ---- the checks ---- */

int rfs_authz_names(const struct rfs_fs *fs, const struct rfs_cred *who)
{
	if (!fs->authz || who->id || fs->conf->anonymous_names)
		return 0;
	return -EACCES;
}

/* Offline (no storage could say): an earlier "yes" still counts for
 * authz_offline, while the token itself has not expired. */
static int offline_verdict(struct rfs_fs *fs, const struct rfs_cred *who,
			   const struct rfs_target *t, time_t yes_made, int rc)
{
	time_t now = time(NULL);

	if (yes_made && now - yes_made < (time_t)fs->conf->authz_offline &&
	    rfs_identity_expires(who->id) > now) {
		rfs_log_limited(LOG_NOTICE, "authz-offline",
				"storage out of reach: uid %u reads %s on "
				"the decision of %lld s ago (authz_offline)",
				(unsigned)who->uid, t->didstr,
				(long long)(now - yes_made));
		return 0;
	}
	rfs_log_limited(LOG_ERR, t->didstr,
			"uid %u: no storage could say whether it may read "
			"'%s' (%s)",
			(unsigned)who->uid, t->didstr, rfs_errno_reason(rc));
	return -EIO;
}

int rfs_authz_read(struct rfs_fs *fs, const struct rfs_cred *who,
		   struct rfs_target *t, bool nowait)
{
	struct rfs_authz *az = fs->authz;
	unsigned char key[16];
	time_t yes_made;
	int verdict, rc;

	if (!az)
		return 0;
	if (!who->id)
		return -EACCES;
	if (!rfs_identity_is_bearer(who->id))
		return 0; /* root without a token of its own: the mount's */
	key_of(who, t, key);
	verdict = recall(az, key, &yes_made);
	if (verdict >= 0)
		return verdict ? 0 : -EACCES;
	if (nowait)
		return RFS_WOULD_BLOCK;
	/* nothing to read, nothing to keep from anyone */
	rc = t->reps->size ? rfs_replicas_probe(fs, t) : 0;
	if (rc == 0 || rc == -EACCES) {
		remember(az, key, rc == 0,
			 rc ? time(NULL) + NO_TTL
			    : rfs_identity_expires(who->id));
		if (rc)
			rfs_dbg("uid %u may not read %s: the storage said no",
				(unsigned)who->uid, t->didstr);
		return rc;
	}
	return offline_verdict(fs, who, t, yes_made, rc);
}

/* Whether @who may read @rec's bytes, as far as is known without asking
 * storage: kept decisions, then the scope's owning group. */
static bool may_read(struct rfs_fs *fs, const struct rfs_cred *who,
		     const struct rfs_did_rec *rec)
{
	struct rfs_target t = { .did = *rec };
	const char *group;
	unsigned char key[16];
	time_t made;
	int verdict;

	if (!who->id)
		return false;
	if (!rfs_identity_is_bearer(who->id))
		return true;
	snprintf(t.didstr, sizeof(t.didstr), "%s:%s", rec->scope,
		 rec->name ? rec->name : "");
	key_of(who, &t, key);
	verdict = recall(fs->authz, key, &made);
	if (verdict >= 0)
		return verdict;
	group = fs->authz->idmap
			? rfs_idmap_scope_group(fs->authz->idmap, rec->scope)
			: NULL;
	return !group || rfs_identity_in_group(who->id, group);
}

bool rfs_authz_attr_keep(const struct rfs_fs *fs, const struct rfs_did_rec *rec,
			 struct rfs_did_rec *copy)
{
	/* on no memory, the attributes go out closed (see attr_for) */
	if (fs->authz && rfs_did_rec_copy(copy, rec))
		memset(copy, 0, sizeof(*copy));
	return fs->authz != NULL;
}

static void attr_for(struct rfs_fs *fs, const struct rfs_cred *who,
		     const struct rfs_did_rec *rec, struct rfs_attr *a)
{
	struct rfs_authz *az = fs->authz;
	const char *group = NULL;
	uid_t uid;
	gid_t gid;

	if (az->idmap && rec->account[0] &&
	    rfs_idmap_uid_of_account(az->idmap, rec->account, &uid))
		a->uid = uid;
	if (az->idmap && rec->scope)
		group = rfs_idmap_scope_group(az->idmap, rec->scope);
	if (group && rfs_idmap_gid(az->idmap, group, &gid))
		a->gid = gid;
	if (S_ISDIR(a->mode))
		a->mode = S_IFDIR | (rfs_authz_names(fs, who) ? 0 : 0555);
	else
		a->mode = S_IFREG |
			  (rec->scope && may_read(fs, who, rec) ? 0444 : 0);
}

void rfs_authz_attr_done(struct rfs_fs *fs, const struct rfs_cred *who,
			 struct rfs_did_rec *copy, bool kept,
			 struct rfs_attr *a)
{
	if (!kept)
		return;
	a->attr_ttl = a->entry_ttl = 0;
	attr_for(fs, who, copy, a);
	rfs_did_rec_release(copy);
}

uint64_t rfs_authz_tag(const struct rfs_cred *who)
{
	const char *k = who->id ? rfs_identity_key(who->id) : NULL;
	uint64_t h = 1469598103934665603ull;

	if (!k)
		return 0;
	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211ull;
	return h;
}

/* ---- set-up ---- */

/* Issuers' keys, kept in the cache's metadata for offline starts. */
static int keys_load(void *arg, const char *iss, char **json, size_t *len,
		     time_t *fetched)
{
	struct rfs_fs *fs = arg;
	char key[600];

	if (!fs->cache)
		return -ENOENT;
	snprintf(key, sizeof(key), "K\x1f%s", iss);
	return rfs_cache_meta_get(fs->cache, key, (void **)json, len, fetched);
}

static int keys_save(void *arg, const char *iss, const char *json, size_t len,
		     time_t fetched)
{
	struct rfs_fs *fs = arg;
	char key[600];

	(void)fetched; /* the cache stamps it */
	if (!fs->cache)
		return 0;
	snprintf(key, sizeof(key), "K\x1f%s", iss);
	return rfs_cache_meta_put(fs->cache, key, json, len);
}

int rfs_authz_new(struct rfs_fs *fs, char *err, size_t errlen)
{
	struct rfs_keyring_store store = { keys_load, keys_save, fs };
	struct rfs_callers_opts o = { fs->conf, fs->mount_id, &store };
	struct rfs_authz *az;
	int rc;

	if (!fs->conf->per_caller)
		return 0;
	az = calloc(1, sizeof(*az));
	if (!az || !(az->v = calloc(DEC_MAX, sizeof(*az->v)))) {
		free(az);
		return -ENOMEM;
	}
	pthread_mutex_init(&az->lock, NULL);
	memset(az->heads, -1, sizeof(az->heads));
	fs->authz = az;
	rc = rfs_callers_new(&az->callers, &o);
	if (!rc && fs->conf->idmap)
		rc = rfs_idmap_load(fs->conf->idmap, &az->idmap, err, errlen);
	return rc;
}

void rfs_authz_free(struct rfs_fs *fs)
{
	struct rfs_authz *az = fs->authz;

	if (!az)
		return;
	rfs_callers_free(az->callers);
	rfs_idmap_free(az->idmap);
	pthread_mutex_destroy(&az->lock);
	free(az->v);
	free(az);
	fs->authz = NULL;
}

int rfs_authz_caller(struct rfs_fs *fs, uid_t uid, gid_t gid, pid_t pid,
		     struct rfs_identity **out)
{
	return rfs_callers_identity(fs->authz->callers, uid, gid, pid, out);
}
