/*
 * What ruciofs-ctl asks of a mount, on the public core API (fs.h): fill
 * the cache with a DID's files (checked whole), pin, unpin, evict, check
 * cached files again (a scrub), and the statistics for status. The
 * control socket (src/ctl/) only carries them.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz/cred.h"
#include "core/core.h"
#include "core/file.h"
#include "core/meta.h"
#include "core/readpath.h"
#include "core/replicas.h"
#include "core/verify.h"
#include "util/log.h"
#include "util/banned.h"

/*
 * The files below @rec from the catalogue, whose answer is kept; when it
 * cannot be reached, the answer kept last time, so that a prefetch of
 * what is cached whole still succeeds offline.
 */
static int list_files(struct rfs_fs *fs, const struct rfs_did_rec *rec,
		      struct rfs_did_list *l)
{
	/* the namespace, as every listing: the mount's to read */
	int rc = rfs_catalog_list_files(fs->cat, fs->mount_id, rec->scope,
					rec->name, l);
	struct rfs_buf b;
	size_t len;
	char *val;

	if (!rc) {
		rfs_buf_init(&b, fs->conf->max_answer);
		if (rfs_dids_to_stream(l, &b) == 0)
			rfs_meta_store(fs, 'F', rec, &b);
		rfs_buf_release(&b);
		return 0;
	}
	if (!rfs_unreachable(rc) || rfs_meta_load(fs, 'F', rec, &val, &len))
		return rc;
	rfs_did_list_release(l);
	rc = rfs_parse_dids(val, len, l, NULL);
	free(val);
	return rc;
}

/* Every file below "scope:name", once each. */
static int expand(struct rfs_fs *fs, const char *did, struct rfs_did_list *l)
{
	const char *colon = strchr(did, ':');
	char scope[256];
	struct rfs_did_rec rec = { .scope = scope };
	int rc;

	if (!colon || colon == did || (size_t)(colon - did) >= sizeof(scope))
		return -EINVAL;
	memcpy(scope, did, colon - did);
	scope[colon - did] = '\0';
	rec.name = (char *)colon + 1;
	rc = list_files(fs, &rec, l);
	for (size_t i = 0; !rc && i < l->n; i++) {
		for (size_t j = i + 1; j < l->n;) {
			if (strcmp(l->v[i].scope, l->v[j].scope) ||
			    strcmp(l->v[i].name, l->v[j].name)) {
				j++;
				continue;
			}
			rfs_did_rec_release(&l->v[j]);
			l->v[j] = l->v[--l->n];
		}
	}
	return rc;
}

static void file_info(const struct rfs_did_rec *r, struct rfs_cache_id *id,
		      struct rfs_cache_file *cf, char *didstr, size_t len)
{
	snprintf(didstr, len, "%s:%s", r->scope, r->name);
	rfs_cache_id_of(id, r->scope, r->name, r->adler32);
	cf->size = r->bytes;
	memcpy(cf->adler32, r->adler32, sizeof(cf->adler32));
	cf->did = didstr;
	cf->md5 = r->md5;
}

/* A task's progress, told its client through @cb. */
struct progress {
	struct rfs_task_progress n;
	const struct rfs_task_cb *cb;
	bool gone; /* the client went away: the task stops */
};

static void report(struct progress *p, bool force)
{
	if (!p->gone && p->cb && p->cb->progress)
		p->gone = !p->cb->progress(p->cb->arg, &p->n, force);
}

#define CTL_RUN_BYTES (4u << 20)

/*
 * Missing blocks @idx.. into the cache, as one run of up to @max blocks
 * (one request), through @buf; waits for a fetch already under way.
 * Returns the blocks now there, or a negative errno.
 */
static int fetch_run(struct rfs_fs *fs, struct rfs_file *f, uint64_t idx,
		     size_t max, char *buf)
{
	struct rfs_how how = { .pick = RFS_PICK_SPREAD,
			       .deadline =
				       rfs_mono_now() + fs->conf->read_timeout,
			       .background = true };
	size_t n = rfs_blocks_run(fs, &f->t, idx, max, SIZE_MAX, NULL, NULL);

	return rfs_blocks_fetch_retry(fs, &f->t, idx, n, buf, &how);
}

/*
 * One pass over @f: fetches every block neither stored nor queued for
 * storage, and says in *@fetched how many it asked for. The first pass
 * counts the file's bytes as done; later ones only fetch again what the
 * cache lost meanwhile (refused when its queue stayed full, evicted).
 */
static int fill_pass(struct rfs_fs *fs, struct rfs_file *f, size_t max,
		     char *buf, struct progress *p, bool first, size_t *fetched)
{
	uint64_t bs = fs->bs, idx = 0;
	int rc = 0;

	*fetched = 0;
	while (!rc && idx * bs < f->t.reps->size && !p->gone) {
		int got = 1;

		if (rfs_cache_has(fs->cache, &f->t.cid, idx))
			p->n.cached_before +=
				first ? rfs_block_len(&f->t, bs, idx) : 0;
		else if ((got = fetch_run(fs, f, idx, max, buf)) > 0)
			*fetched += (size_t)got;
		rc = got < 0 ? got : 0;
		for (int i = 0; i < got; i++, idx++)
			p->n.bytes_done +=
				first ? rfs_block_len(&f->t, bs, idx) : 0;
		report(p, false);
	}
	return rc;
}

/* Passes over a file at most: a fetch, then checks that fetch again
 * what went missing until one finds every block there. */
#define CTL_PASSES 3

/*
 * Fills the cache with every block of one file not yet there. Succeeds
 * only once a pass finds every block stored or queued for storage: a
 * block taken for there (a copy read ahead from the disk for a reader,
 * say) but never stored would otherwise be reported fetched.
 */
static int prefetch_file(struct rfs_fs *fs, struct rfs_cred *who,
			 const struct rfs_did_rec *r, struct rfs_replicas *reps,
			 struct progress *p)
{
	uint64_t bs = fs->bs;
	size_t max = CTL_RUN_BYTES / bs ? CTL_RUN_BYTES / bs : 1, fetched = 1;
	struct rfs_file *f = NULL;
	char *buf;
	int rc = rfs_fs_file_of(fs, who, r, reps, &f);

	max = max < RFS_RUN_MAX ? max : RFS_RUN_MAX;
	buf = rc ? NULL : malloc(max * bs);
	rc = rc ? rc : buf ? 0 : -ENOMEM;
	for (int pass = 0; !rc && fetched && pass < CTL_PASSES; pass++)
		rc = fill_pass(fs, f, max, buf, p, pass == 0, &fetched);
	if (!rc && fetched && !p->gone) {
		rfs_log_limited(LOG_WARNING, "ctl-prefetch",
				"prefetch '%s': %zu blocks were still not "
				"stored at its last check",
				f->t.didstr, fetched);
		rc = -EIO;
	}
	/* fetched is not enough for a site about to go offline: the whole
	 * must match (a liar is found, and its blocks replaced, meanwhile) */
	if (!rc && !p->gone)
		rc = rfs_verify_whole(fs, f);
	if (f)
		rfs_fs_release(fs, f);
	free(buf);
	return rc;
}

/* Would pinning @l pass the quota? Says so before anything is fetched. */
static int check_pin_quota(struct rfs_fs *fs, const struct rfs_did_list *l,
			   char *msg, size_t len)
{
	struct rfs_cache_stats st;
	uint64_t want = 0, nb;
	bool pinned;

	rfs_cache_stats(fs->cache, &st);
	for (size_t i = 0; i < l->n; i++) {
		struct rfs_cache_id id;

		rfs_cache_id_of(&id, l->v[i].scope, l->v[i].name,
				l->v[i].adler32);
		if (rfs_cache_file_state(fs->cache, &id, &nb, &pinned) ||
		    !pinned)
			want += l->v[i].bytes;
	}
	if (st.pinned + want <= st.quota)
		return 0;
	snprintf(msg, len,
		 "pinning %llu more bytes would pass the cache quota (%llu "
		 "bytes, %llu already pinned)",
		 (unsigned long long)want, (unsigned long long)st.quota,
		 (unsigned long long)st.pinned);
	return -ENOSPC;
}

/* Files whose replicas a prefetch resolves in one catalogue request. */
#define CTL_REP_BATCH 512

static void put_all(struct rfs_replicas **reps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (reps[i])
			rfs_replicas_put(reps[i]);
		reps[i] = NULL;
	}
}

/*
 * The files of @l that have a block not stored, into @todo (borrowed
 * copies; room for all of @l). The others are done already: counted so,
 * pinned with @pin, and no replica of theirs is asked for.
 */
static size_t not_whole(struct rfs_fs *fs, const struct rfs_did_list *l,
			bool pin, struct rfs_did_rec *todo, struct progress *p)
{
	size_t n = 0;

	for (size_t i = 0; i < l->n; i++) {
		const struct rfs_did_rec *r = &l->v[i];
		struct rfs_cache_info ci;
		struct rfs_cache_file cf;
		struct rfs_cache_id id;
		char didstr[520];

		file_info(r, &id, &cf, didstr, sizeof(didstr));
		/* the file record knows: one lookup, no catalogue request */
		if (!r->has_bytes ||
		    (r->bytes && (rfs_cache_file_info(fs->cache, &id, &ci) ||
				  !ci.whole || ci.size != r->bytes))) {
			todo[n++] = *r;
			continue;
		}
		if (pin)
			rfs_cache_pin(fs->cache, &id, &cf, true);
		p->n.cached_before += r->bytes;
		p->n.bytes_done += r->bytes;
		p->n.files_done++;
	}
	return n;
}

static int do_prefetch(struct rfs_fs *fs, struct rfs_cred *who,
		       const struct rfs_did_list *l, bool pin,
		       const struct rfs_task_cb *cb,
		       struct rfs_task_progress *out, char *msg, size_t mlen)
{
	struct progress p = { .n = { .files = l->n }, .cb = cb };
	struct rfs_replicas **reps;
	struct rfs_did_rec *todo;
	size_t base = 0, nreps = 0, n;
	int rc = 0, failed = 0;

	for (size_t i = 0; i < l->n; i++)
		p.n.bytes += l->v[i].bytes;
	if (pin && (rc = check_pin_quota(fs, l, msg, mlen)))
		return rc;
	reps = calloc(CTL_REP_BATCH, sizeof(*reps));
	todo = calloc(l->n, sizeof(*todo));
	if (!reps || !todo) {
		free(reps);
		free(todo);
		return -ENOMEM;
	}
	n = not_whole(fs, l, pin, todo, &p);
	report(&p, true);
	for (size_t i = 0; i < n && !p.gone; i++) {
		struct rfs_cache_file cf;
		struct rfs_cache_id id;
		char didstr[520];

		/* replicas a batch per request; one that failed (NULL) is
		 * asked for alone, and says why */
		if (i == base + nreps) {
			put_all(reps, nreps);
			base = i;
			nreps = n - i < CTL_REP_BATCH ? n - i : CTL_REP_BATCH;
			rfs_replicas_resolve_many(fs, who, &todo[i], nreps,
						  reps);
		}
		file_info(&todo[i], &id, &cf, didstr, sizeof(didstr));
		if (pin)
			rfs_cache_pin(fs->cache, &id, &cf, true);
		if (prefetch_file(fs, who, &todo[i], reps[i - base], &p)) {
			failed++;
			snprintf(msg, mlen,
				 "%d files could not be fetched (last: %.200s)",
				 failed, didstr);
		}
		p.n.files_done++;
		report(&p, true);
	}
	put_all(reps, nreps);
	free(reps);
	free(todo);
	rfs_cache_flush(fs->cache);
	*out = p.n;
	return p.gone ? -ECONNABORTED : failed ? -EIO : 0;
}

static int do_each(struct rfs_fs *fs, const struct rfs_did_list *l,
		   const char *op)
{
	int rc = 0;

	for (size_t i = 0; i < l->n && !rc; i++) {
		struct rfs_cache_file cf;
		struct rfs_cache_id id;
		char didstr[520];

		file_info(&l->v[i], &id, &cf, didstr, sizeof(didstr));
		rc = !strcmp(op, "unpin")
			     ? rfs_cache_pin(fs->cache, &id, &cf, false)
			     : rfs_cache_evict(fs->cache, &id);
	}
	return rc;
}

/* A scrub: cached files summed again against the catalogue's checksums. */
struct scrub {
	struct rfs_fs *fs;
	struct progress p;
	uint64_t good, bad, incomplete;
};

static void scrub_one(struct scrub *s, const struct rfs_cache_id *id,
		      const char *did, uint64_t size, const char *adler32,
		      const char *md5)
{
	struct rfs_fs *fs = s->fs;
	struct rfs_cache_info ci;
	char why[256] = "";
	int rc = rfs_cache_file_info(fs->cache, id, &ci);

	if (rc || !ci.whole || ci.size != size || (!adler32[0] && !md5[0])) {
		s->incomplete++;
		return;
	}
	rc = rfs_verify_cached(fs, id, size, adler32, md5, why, sizeof(why));
	if (rc == -EIO)
		snprintf(why, sizeof(why), "a block failed its CRC32Cs");
	if (rc == 0) {
		s->good++;
		rfs_cache_mark_verified(fs->cache, id, size);
	} else if (rc == -EBADMSG || rc == -EIO) {
		s->bad++;
		rfs_event(LOG_ERR, "checksum-mismatch",
			  "'%s': the cached copy does not match (%s); dropped, "
			  "it is fetched again when read",
			  did, why);
		rfs_cache_drop_file(fs->cache, id);
		rfs_verify_forget(fs, id);
		if (s->p.cb && s->p.cb->bad && !s->p.gone)
			s->p.gone = !s->p.cb->bad(s->p.cb->arg, did, why);
	} else {
		s->incomplete++;
	}
	s->p.n.bytes_done += size;
}

static int scrub_cached(void *arg, const struct rfs_cache_id *id)
{
	struct scrub *s = arg;
	struct rfs_cache_info ci;

	if (rfs_cache_file_info(s->fs->cache, id, &ci) == 0) {
		scrub_one(s, id, ci.did, ci.size, ci.adler32, ci.md5);
		s->p.n.files++;
		s->p.n.files_done++;
		report(&s->p, false);
	}
	return s->p.gone ? -ECONNABORTED : 0;
}

static int do_verify(struct rfs_fs *fs, const struct rfs_did_list *l,
		     const struct rfs_task_cb *cb, struct rfs_scrub_result *out,
		     char *msg, size_t mlen)
{
	struct scrub s = { .fs = fs, .p = { .cb = cb } };
	int rc = 0;

	if (!l) {
		rc = rfs_cache_foreach(fs->cache, scrub_cached, &s);
	} else {
		s.p.n.files = l->n;
		for (size_t i = 0; i < l->n; i++)
			s.p.n.bytes += l->v[i].bytes;
		for (size_t i = 0; i < l->n && !s.p.gone; i++) {
			struct rfs_cache_file cf;
			struct rfs_cache_id id;
			char didstr[520];

			file_info(&l->v[i], &id, &cf, didstr, sizeof(didstr));
			scrub_one(&s, &id, didstr, l->v[i].bytes,
				  l->v[i].adler32, l->v[i].md5);
			s.p.n.files_done++;
			report(&s.p, false);
		}
	}
	report(&s.p, true);
	out->good = s.good;
	out->bad = s.bad;
	out->incomplete = s.incomplete;
	if (!rc && s.bad) {
		snprintf(msg, mlen,
			 "%llu cached files did not match their checksums and "
			 "were dropped",
			 (unsigned long long)s.bad);
		rc = -EBADMSG;
	}
	return s.p.gone ? -ECONNABORTED : rc;
}

/* The files below "scope:name" into @l, or the reason in @msg. */
static int files_of(struct rfs_fs *fs, struct rfs_cred *who, const char *did,
		    struct rfs_did_list *l, char *msg, size_t mlen)
{
	int rc;

	rfs_did_list_init(l);
	if (!fs->cache) {
		snprintf(msg, mlen, "this mount has no cache");
		return -ENOTSUP;
	}
	rc = expand(fs, did, l);
	if (!rc && l->n == 0)
		rc = -ENOENT;
	if (rc)
		snprintf(msg, mlen, "'%s': %s", did,
			 rc == -ENOENT ? "no such DID or no files"
				       : strerror(-rfs_fs_errno(rc)));
	return rc;
}

int rfs_fs_prefetch(struct rfs_fs *fs, struct rfs_cred *who, const char *did,
		    bool pin, const struct rfs_task_cb *cb,
		    struct rfs_task_progress *out, char *msg, size_t mlen)
{
	struct rfs_did_list l;
	int rc = files_of(fs, who, did, &l, msg, mlen);

	memset(out, 0, sizeof(*out));
	if (!rc)
		rc = do_prefetch(fs, who, &l, pin, cb, out, msg, mlen);
	rfs_did_list_release(&l);
	return rc;
}

static int each(struct rfs_fs *fs, struct rfs_cred *who, const char *did,
		const char *op, char *msg, size_t mlen)
{
	struct rfs_did_list l;
	int rc = files_of(fs, who, did, &l, msg, mlen);

	if (!rc) {
		rc = do_each(fs, &l, op);
		rfs_cache_flush(fs->cache);
	}
	rfs_did_list_release(&l);
	return rc;
}

int rfs_fs_unpin(struct rfs_fs *fs, struct rfs_cred *who, const char *did,
		 char *msg, size_t mlen)
{
	return each(fs, who, did, "unpin", msg, mlen);
}

int rfs_fs_evict(struct rfs_fs *fs, struct rfs_cred *who, const char *did,
		 char *msg, size_t mlen)
{
	return each(fs, who, did, "evict", msg, mlen);
}

int rfs_fs_scrub(struct rfs_fs *fs, struct rfs_cred *who, const char *did,
		 const struct rfs_task_cb *cb, struct rfs_scrub_result *out,
		 char *msg, size_t mlen)
{
	struct rfs_did_list l;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!did && !fs->cache) {
		snprintf(msg, mlen, "this mount has no cache");
		return -ENOTSUP;
	}
	if (!did)
		return do_verify(fs, NULL, cb, out, msg, mlen);
	rc = files_of(fs, who, did, &l, msg, mlen);
	if (!rc)
		rc = do_verify(fs, &l, cb, out, msg, mlen);
	rfs_did_list_release(&l);
	return rc;
}

int rfs_fs_stats(struct rfs_fs *fs, struct rfs_fs_stats *out)
{
	struct rfs_cache_stats st;

	memset(out, 0, sizeof(*out));
	if (!fs->cache)
		return -ENOTSUP;
	rfs_cache_stats(fs->cache, &st);
	out->cache_dir = fs->conf->cache_dir;
	out->block_size = fs->bs;
	out->quota = st.quota;
	out->used = st.used;
	out->pinned = st.pinned;
	out->files = st.files;
	out->hits = st.hits;
	out->misses = st.misses;
	out->cache_bytes = st.hit_bytes;
	out->corrupt = st.corrupt;
	out->evicted = st.evicted;
	out->dropped = st.dropped;
	out->written = st.written;
	out->write_us = st.write_us;
	out->wait_us = st.wait_us;
	out->staged = st.staged;
	out->offline = rfs_catalog_offline(fs->cat);
	rfs_verify_counts(fs, &out->matched, &out->wrong);
	rfs_transports_sessions(fs->tps, &out->sessions_busy,
				&out->sessions_idle);
	out->evicted_files = st.evicted_files;
	rfs_endpoints_snapshot(fs, out);
	return 0;
}
