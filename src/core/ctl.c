/*
 * The control socket: <cache_dir>/ctl.sock, mode 0600, served by one
 * accept thread and a thread per client. Only the mounting user and root
 * may talk to it (SO_PEERCRED). A client sends one JSON request line and
 * reads JSON lines back, the last one {"done": true, ...}.
 *
 *   {"op": "status"}
 *   {"op": "prefetch", "did": "scope:name", "pin": true|false}
 *   {"op": "unpin", "did": "scope:name"}
 *   {"op": "evict", "did": "scope:name"}
 *   {"op": "verify", "did": "scope:name"}   (no did: every cached file)
 *
 * A prefetch skips the blocks already cached, so an interrupted one
 * resumes where it stopped; it stops when the client goes away.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "core/core.h"
#include "core/ctl.h"
#include "core/file.h"
#include "core/meta.h"
#include "core/readpath.h"
#include "core/replicas.h"
#include "core/verify.h"
#include "util/log.h"
#include "util/banned.h"

#define REQ_MAX (64 * 1024)
#define PROGRESS_EVERY 0.25 /* seconds between progress lines */

#define MAX_CLIENTS 32

struct rfs_ctl {
	int fd;
	int stop_pipe[2];
	pthread_t thread;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];

	/* Client threads are counted so that stopping waits for them: a
	 * prefetch must not outlive the fs it works on. lock is a leaf. */
	pthread_mutex_t lock;
	pthread_cond_t idle;
	int client_fds[MAX_CLIENTS]; /* -1: free slot */
	int nclients;
	bool stopping;
};

struct client {
	struct rfs_fs *fs;
	int fd;
	int slot;
};

/* One JSON line to the client; takes @o. False once the client is gone. */
static bool send_json(int fd, json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	size_t len = s ? strlen(s) : 0, off = 0;
	bool ok = s != NULL;

	while (ok && off <= len) {
		const char *p = off < len ? s + off : "\n";
		ssize_t n =
			send(fd, p, off < len ? len - off : 1, MSG_NOSIGNAL);

		ok = n > 0;
		off += ok ? (size_t)n : 0;
	}
	free(s);
	json_decref(o);
	return ok;
}

static bool send_done(int fd, int rc, const char *msg)
{
	json_t *o = json_pack("{s:b,s:b}", "done", 1, "ok", rc == 0);

	if (o && rc)
		json_object_set_new(o, "error",
				    json_string(msg ? msg : strerror(-rc)));
	return send_json(fd, o);
}

static json_t *status_json(struct rfs_fs *fs)
{
	struct rfs_cache_stats st;
	json_t *eps = json_object(), *o;
	uint64_t good, bad;

	rfs_cache_stats(fs->cache, &st);
	pthread_mutex_lock(&fs->stats_lock);
	for (size_t i = 0; eps && i < sizeof(fs->eps) / sizeof(fs->eps[0]) &&
			   fs->eps[i].rse[0];
	     i++)
		json_object_set_new(
			eps, fs->eps[i].rse,
			json_pack("{s:I,s:I,s:I,s:I,s:b}", "bytes",
				  (json_int_t)fs->eps[i].bytes, "errors",
				  (json_int_t)fs->eps[i].errors, "slow",
				  (json_int_t)fs->eps[i].slow, "rate",
				  (json_int_t)fs->eps[i].rate, "last_resort",
				  fs->eps[i].slow_until > rfs_mono_now()));
	o = json_pack(
		"{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
		"s:I,s:I,s:I,s:I}",
		"cache_dir", fs->conf->cache_dir, "block_size",
		(json_int_t)fs->conf->block_size, "quota", (json_int_t)st.quota,
		"used", (json_int_t)st.used, "pinned", (json_int_t)st.pinned,
		"files", (json_int_t)st.files, "hits", (json_int_t)st.hits,
		"misses", (json_int_t)st.misses, "cache_bytes",
		(json_int_t)st.hit_bytes, "net_bytes",
		(json_int_t)fs->net_bytes, "corrupt", (json_int_t)st.corrupt,
		"evicted", (json_int_t)st.evicted, "dropped",
		(json_int_t)st.dropped, "whole_opens",
		(json_int_t)fs->whole_opens, "written", (json_int_t)st.written,
		"write_us", (json_int_t)st.write_us, "wait_us",
		(json_int_t)st.wait_us);
	pthread_mutex_unlock(&fs->stats_lock);
	if (o)
		json_object_set_new(o, "endpoints", eps);
	else
		json_decref(eps);
	if (o)
		json_object_set_new(o, "offline",
				    json_boolean(rfs_catalog_offline(fs->cat)));
	rfs_verify_counts(fs, &good, &bad);
	if (o)
		json_object_set_new(o, "checksums",
				    json_pack("{s:I,s:I}", "matched",
					      (json_int_t)good, "wrong",
					      (json_int_t)bad));
	if (o)
		json_object_set_new(o, "staged", json_integer(st.staged));
	return o;
}

/*
 * The files below @rec from the catalogue, whose answer is kept; when it
 * cannot be reached, the answer kept last time, so that a prefetch of
 * what is cached whole still succeeds offline.
 */
static int list_files(struct rfs_fs *fs, const struct rfs_did_rec *rec,
		      struct rfs_did_list *l)
{
	int rc = rfs_catalog_list_files(fs->cat, rec->scope, rec->name, l);
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

struct progress {
	int fd;
	uint64_t files, bytes, files_done, bytes_done, cached_before;
	double last;
	bool gone;
};

static void report(struct progress *p, bool force)
{
	double now = rfs_mono_now();

	if (p->gone || (!force && now - p->last < PROGRESS_EVERY))
		return;
	p->last = now;
	p->gone = !send_json(
		p->fd, json_pack("{s:{s:I,s:I,s:I,s:I}}", "progress", "files",
				 (json_int_t)p->files, "files_done",
				 (json_int_t)p->files_done, "bytes",
				 (json_int_t)p->bytes, "bytes_done",
				 (json_int_t)p->bytes_done));
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
	uint64_t bs = fs->conf->block_size;
	uint64_t nblocks = (f->reps->size + bs - 1) / bs;
	size_t n = 1;

	struct rfs_how how = { .pick = RFS_PICK_SPREAD,
			       .deadline =
				       rfs_mono_now() + fs->conf->read_timeout,
			       .background = true };

	while (n < max && idx + n < nblocks &&
	       !rfs_cache_has(fs->cache, &f->cid, idx + n))
		n++;
	return rfs_blocks_fetch_retry(fs, f, idx, n, buf, &how);
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
	uint64_t bs = fs->conf->block_size, idx = 0;
	int rc = 0;

	*fetched = 0;
	while (!rc && idx * bs < f->reps->size && !p->gone) {
		int got = 1;

		if (rfs_cache_has(fs->cache, &f->cid, idx))
			p->cached_before +=
				first ? rfs_block_len(f, bs, idx) : 0;
		else if ((got = fetch_run(fs, f, idx, max, buf)) > 0)
			*fetched += (size_t)got;
		rc = got < 0 ? got : 0;
		for (int i = 0; i < got; i++, idx++)
			p->bytes_done += first ? rfs_block_len(f, bs, idx) : 0;
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
static int prefetch_file(struct rfs_fs *fs, const struct rfs_did_rec *r,
			 struct rfs_replicas *reps, struct progress *p)
{
	uint64_t bs = fs->conf->block_size;
	size_t max = CTL_RUN_BYTES / bs ? CTL_RUN_BYTES / bs : 1, fetched = 1;
	struct rfs_file *f = NULL;
	char *buf;
	int rc = rfs_fs_file_of(fs, r, reps, &f);

	max = max < RFS_RUN_MAX ? max : RFS_RUN_MAX;
	buf = rc ? NULL : malloc(max * bs);
	rc = rc ? rc : buf ? 0 : -ENOMEM;
	for (int pass = 0; !rc && fetched && pass < CTL_PASSES; pass++)
		rc = fill_pass(fs, f, max, buf, p, pass == 0, &fetched);
	if (!rc && fetched && !p->gone) {
		rfs_log_limited(LOG_WARNING, "ctl-prefetch",
				"prefetch '%s': %zu blocks were still not "
				"stored at its last check",
				f->didstr, fetched);
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
		p->cached_before += r->bytes;
		p->bytes_done += r->bytes;
		p->files_done++;
	}
	return n;
}

static int do_prefetch(struct rfs_fs *fs, int fd, const struct rfs_did_list *l,
		       bool pin, char *msg, size_t mlen)
{
	struct progress p = { .fd = fd, .files = l->n };
	struct rfs_replicas **reps;
	struct rfs_did_rec *todo;
	size_t base = 0, nreps = 0, n;
	int rc = 0, failed = 0;

	for (size_t i = 0; i < l->n; i++)
		p.bytes += l->v[i].bytes;
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
			rfs_replicas_resolve_many(fs, &todo[i], nreps, reps);
		}
		file_info(&todo[i], &id, &cf, didstr, sizeof(didstr));
		if (pin)
			rfs_cache_pin(fs->cache, &id, &cf, true);
		if (prefetch_file(fs, &todo[i], reps[i - base], &p)) {
			failed++;
			snprintf(msg, mlen,
				 "%d files could not be fetched (last: %.200s)",
				 failed, didstr);
		}
		p.files_done++;
		report(&p, true);
	}
	put_all(reps, nreps);
	free(reps);
	free(todo);
	rfs_cache_flush(fs->cache);
	if (!p.gone)
		send_json(fd, json_pack("{s:I}", "cached_before",
					(json_int_t)p.cached_before));
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
		rfs_log(LOG_ERR,
			"verify '%s': the cached copy does not match (%s); "
			"dropped, it is fetched again when read",
			did, why);
		rfs_cache_drop_file(fs->cache, id);
		rfs_verify_forget(fs, id);
		s->p.gone = !send_json(s->p.fd, json_pack("{s:s,s:s}", "bad",
							  did, "why", why));
	} else {
		s->incomplete++;
	}
	s->p.bytes_done += size;
}

static int scrub_cached(void *arg, const struct rfs_cache_id *id)
{
	struct scrub *s = arg;
	struct rfs_cache_info ci;

	if (rfs_cache_file_info(s->fs->cache, id, &ci) == 0) {
		scrub_one(s, id, ci.did, ci.size, ci.adler32, ci.md5);
		s->p.files++;
		s->p.files_done++;
		report(&s->p, false);
	}
	return s->p.gone ? -ECONNABORTED : 0;
}

static int do_verify(struct rfs_fs *fs, int fd, const struct rfs_did_list *l,
		     char *msg, size_t mlen)
{
	struct scrub s = { .fs = fs, .p = { .fd = fd } };
	int rc = 0;

	if (!l) {
		rc = rfs_cache_foreach(fs->cache, scrub_cached, &s);
	} else {
		s.p.files = l->n;
		for (size_t i = 0; i < l->n; i++)
			s.p.bytes += l->v[i].bytes;
		for (size_t i = 0; i < l->n && !s.p.gone; i++) {
			struct rfs_cache_file cf;
			struct rfs_cache_id id;
			char didstr[520];

			file_info(&l->v[i], &id, &cf, didstr, sizeof(didstr));
			scrub_one(&s, &id, didstr, l->v[i].bytes,
				  l->v[i].adler32, l->v[i].md5);
			s.p.files_done++;
			report(&s.p, false);
		}
	}
	report(&s.p, true);
	if (!s.p.gone)
		send_json(fd, json_pack("{s:{s:I,s:I,s:I}}", "verified", "good",
					(json_int_t)s.good, "bad",
					(json_int_t)s.bad, "incomplete",
					(json_int_t)s.incomplete));
	if (!rc && s.bad) {
		snprintf(msg, mlen,
			 "%llu cached files did not match their checksums and "
			 "were dropped",
			 (unsigned long long)s.bad);
		rc = -EBADMSG;
	}
	return s.p.gone ? -ECONNABORTED : rc;
}

static void serve(struct rfs_fs *fs, int fd, json_t *req)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	const char *did = json_string_value(json_object_get(req, "did"));
	bool pin = json_is_true(json_object_get(req, "pin"));
	struct rfs_did_list l;
	char msg[512] = "";
	int rc;

	if (op && !strcmp(op, "status")) {
		send_json(fd, status_json(fs));
		send_done(fd, 0, NULL);
		return;
	}
	if (op && !strcmp(op, "verify") && !did) {
		rc = do_verify(fs, fd, NULL, msg, sizeof(msg));
		if (rc != -ECONNABORTED)
			send_done(fd, rc, msg[0] ? msg : NULL);
		return;
	}
	if (!op || !did ||
	    (strcmp(op, "prefetch") && strcmp(op, "unpin") &&
	     strcmp(op, "evict") && strcmp(op, "verify"))) {
		send_done(fd, -EINVAL, "unknown request");
		return;
	}
	rfs_did_list_init(&l);
	rc = expand(fs, did, &l);
	if (!rc && l.n == 0)
		rc = -ENOENT;
	if (rc) {
		snprintf(msg, sizeof(msg), "'%s': %s", did,
			 rc == -ENOENT ? "no such DID or no files"
				       : strerror(-rfs_fs_errno(rc)));
	} else if (!strcmp(op, "prefetch")) {
		rc = do_prefetch(fs, fd, &l, pin, msg, sizeof(msg));
	} else if (!strcmp(op, "verify")) {
		rc = do_verify(fs, fd, &l, msg, sizeof(msg));
	} else {
		rc = do_each(fs, &l, op);
		rfs_cache_flush(fs->cache);
	}
	rfs_did_list_release(&l);
	if (rc != -ECONNABORTED)
		send_done(fd, rc, msg[0] ? msg : NULL);
}

static bool peer_allowed(struct rfs_fs *fs, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		return false;
	return cred.uid == 0 || cred.uid == fs->conf->uid;
}

static json_t *read_request(int fd)
{
	struct timeval tv = { 10, 0 };
	char *buf = malloc(REQ_MAX + 1);
	size_t n = 0;
	json_t *req = NULL;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (buf && n < REQ_MAX && !memchr(buf, '\n', n)) {
		ssize_t got = recv(fd, buf + n, REQ_MAX - n, 0);

		if (got <= 0)
			break;
		n += (size_t)got;
	}
	if (buf && n && memchr(buf, '\n', n))
		req = json_loadb(buf, n, JSON_DISABLE_EOF_CHECK, NULL);
	free(buf);
	return req;
}

static void client_done(struct rfs_ctl *ctl, struct client *c)
{
	pthread_mutex_lock(&ctl->lock);
	ctl->client_fds[c->slot] = -1;
	close(c->fd);
	if (--ctl->nclients == 0)
		pthread_cond_broadcast(&ctl->idle);
	pthread_mutex_unlock(&ctl->lock);
	free(c);
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct rfs_ctl *ctl = c->fs->ctl;
	json_t *req;

	if (!peer_allowed(c->fs, c->fd)) {
		send_done(c->fd, -EACCES, "only the mounting user and root");
	} else if ((req = read_request(c->fd))) {
		serve(c->fs, c->fd, req);
		json_decref(req);
	} else {
		send_done(c->fd, -EINVAL, "bad request");
	}
	client_done(ctl, c);
	return NULL;
}

/* Under ctl->lock: a free slot, or -1 when too many clients are busy. */
static int take_slot(struct rfs_ctl *ctl, int fd)
{
	for (int i = 0; i < MAX_CLIENTS && !ctl->stopping; i++) {
		if (ctl->client_fds[i] >= 0)
			continue;
		ctl->client_fds[i] = fd;
		ctl->nclients++;
		return i;
	}
	return -1;
}

static void spawn_client(struct rfs_fs *fs, int fd)
{
	struct rfs_ctl *ctl = fs->ctl;
	struct client *c = malloc(sizeof(*c));
	pthread_attr_t attr;
	pthread_t t;

	pthread_mutex_lock(&ctl->lock);
	if (c)
		c->slot = take_slot(ctl, fd);
	pthread_mutex_unlock(&ctl->lock);
	if (!c || c->slot < 0) {
		send_done(fd, -EBUSY, "too many ruciofs-ctl clients");
		close(fd);
		free(c);
		return;
	}
	c->fs = fs;
	c->fd = fd;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, client_main, c)) {
		fd = dup(fd); /* client_done closes c->fd */
		client_done(ctl, c);
		if (fd >= 0)
			close(fd);
	}
	pthread_attr_destroy(&attr);
}

static void *accept_main(void *arg)
{
	struct rfs_fs *fs = arg;
	struct rfs_ctl *ctl = fs->ctl;

	pthread_setname_np(pthread_self(), "rfs-ctl");
	for (;;) {
		struct pollfd p[2] = { { ctl->fd, POLLIN, 0 },
				       { ctl->stop_pipe[0], POLLIN, 0 } };
		int fd;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(ctl->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			spawn_client(fs, fd);
	}
	return NULL;
}

static int listen_on(struct rfs_ctl *ctl)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int rc;

	memcpy(sa.sun_path, ctl->path, sizeof(sa.sun_path));
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0)
		return -errno;
	unlink(ctl->path); /* a daemon that died left it */
	old = umask(0077);
	rc = bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc || listen(ctl->fd, 16))
		return -errno;
	return 0;
}

int rfs_ctl_start(struct rfs_fs *fs)
{
	struct rfs_ctl *ctl = calloc(1, sizeof(*ctl));
	int n, rc;

	if (!ctl)
		return -ENOMEM;
	ctl->fd = -1;
	ctl->stop_pipe[0] = ctl->stop_pipe[1] = -1;
	pthread_mutex_init(&ctl->lock, NULL);
	pthread_cond_init(&ctl->idle, NULL);
	for (int i = 0; i < MAX_CLIENTS; i++)
		ctl->client_fds[i] = -1;
	n = snprintf(ctl->path, sizeof(ctl->path), "%s/ctl.sock",
		     fs->conf->cache_dir);
	rc = n < 0 || (size_t)n >= sizeof(ctl->path) ? -ENAMETOOLONG : 0;
	if (!rc)
		rc = pipe2(ctl->stop_pipe, O_CLOEXEC) ? -errno : 0;
	if (!rc)
		rc = listen_on(ctl);
	fs->ctl = ctl;
	if (!rc)
		rc = -pthread_create(&ctl->thread, NULL, accept_main, fs);
	if (rc) {
		fs->ctl = NULL;
		if (ctl->fd >= 0)
			close(ctl->fd);
		for (int i = 0; i < 2; i++)
			if (ctl->stop_pipe[i] >= 0)
				close(ctl->stop_pipe[i]);
		free(ctl);
	}
	return rc;
}

void rfs_ctl_stop(struct rfs_fs *fs)
{
	struct rfs_ctl *ctl = fs->ctl;

	if (!ctl)
		return;
	if (write(ctl->stop_pipe[1], "x", 1) == 1)
		pthread_join(ctl->thread, NULL);
	/* no new clients now; those still busy see their socket fail at
	 * their next line and finish */
	pthread_mutex_lock(&ctl->lock);
	ctl->stopping = true;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (ctl->client_fds[i] >= 0)
			shutdown(ctl->client_fds[i], SHUT_RDWR);
	while (ctl->nclients)
		pthread_cond_wait(&ctl->idle, &ctl->lock);
	pthread_mutex_unlock(&ctl->lock);
	pthread_cond_destroy(&ctl->idle);
	pthread_mutex_destroy(&ctl->lock);
	close(ctl->fd);
	close(ctl->stop_pipe[0]);
	close(ctl->stop_pipe[1]);
	unlink(ctl->path);
	free(ctl);
	fs->ctl = NULL;
}

const char *rfs_ctl_path(struct rfs_fs *fs)
{
	return fs->ctl ? fs->ctl->path : NULL;
}
