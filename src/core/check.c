/*
 * ruciofs --check: what a mount needs, probed step by step through the
 * code a mount runs (the catalogue client, the mount's identity, the
 * replica layer and the transports), each step one line an admin can
 * read: "[ ok ] step: detail", "[FAIL] step: reason", "[skip] step:
 * why". Nothing is mounted, no cache is opened (a running mount may hold
 * it), and no secret is ever printed.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "authz/cred.h"
#include "authz/identity.h"
#include "authz/token.h"
#include "core/core.h"
#include "core/file.h"
#include "core/replicas.h"
#include "util/clock.h"
#include "util/errmap.h"
#include "util/str.h"
#include "util/banned.h"

/* Catalogue requests spent at most looking for a file to read. */
#define FIND_BUDGET 12

struct report {
	FILE *out;
	bool failed;
};

void rfs_check_line(FILE *out, enum rfs_check_result r, const char *step,
		    const char *fmt, ...)
{
	static const char *const tag[] = { "[ ok ]", "[FAIL]", "[skip]" };
	char detail[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	fprintf(out, "%s %s: %s\n", tag[r], step, detail);
	fflush(out);
}

#define SAY(rep, r, step, ...)                                                 \
	do {                                                                   \
		(rep)->failed |= (r) == RFS_CHECK_FAIL;                        \
		rfs_check_line((rep)->out, (r), (step), __VA_ARGS__);          \
	} while (0)

static const char *or_none(const char *s)
{
	return s && *s ? s : "(not set)";
}

static void check_config(struct report *rep, const struct rfs_conf *c)
{
	char host[512], auth[512];

	rfs_url_for_log(host, sizeof(host), c->rucio_host);
	rfs_url_for_log(auth, sizeof(auth), c->auth_host);
	SAY(rep, RFS_CHECK_OK, "configuration",
	    "%s%s: rucio_host %s, auth_host %s, auth_type %s, account %s%s%s",
	    c->config_path ? "read " : "",
	    c->config_path ? c->config_path : "no rucio.cfg found (all -o)",
	    host, auth, c->auth_type == RFS_AUTH_USERPASS ? "userpass" : "oidc",
	    or_none(c->account),
	    c->auth_type == RFS_AUTH_USERPASS ? ", username " : "",
	    c->auth_type == RFS_AUTH_USERPASS ? c->username : "");
}

/* fusermount3 as libfuse finds it: on $PATH. */
static bool find_on_path(const char *prog, char *out, size_t len)
{
	const char *path = getenv("PATH");
	char *copy = strdup(path && *path ? path : "/usr/bin:/bin"), *dir,
	     *save = NULL;
	bool found = false;

	for (dir = copy ? strtok_r(copy, ":", &save) : NULL; dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(out, len, "%s/%s", dir, prog);
		found = access(out, X_OK) == 0;
	}
	free(copy);
	return found;
}

static void check_fuse(struct report *rep)
{
	char prog[4096];

	if (access("/dev/fuse", R_OK | W_OK)) {
		SAY(rep, RFS_CHECK_FAIL, "fuse",
		    "/dev/fuse: %s (modprobe fuse)", strerror(errno));
		return;
	}
	if (!find_on_path("fusermount3", prog, sizeof(prog))) {
		SAY(rep, RFS_CHECK_FAIL, "fuse",
		    "fusermount3 not found on $PATH (package fuse3)");
		return;
	}
	SAY(rep, RFS_CHECK_OK, "fuse", "/dev/fuse can be opened, %s", prog);
}

static void check_mountpoint(struct report *rep, const char *mp)
{
	struct stat st, up;
	char parent[4200];

	if (!mp) {
		SAY(rep, RFS_CHECK_SKIP, "mountpoint", "none given");
		return;
	}
	if (stat(mp, &st)) {
		SAY(rep, RFS_CHECK_FAIL, "mountpoint", "%s: %s", mp,
		    strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		SAY(rep, RFS_CHECK_FAIL, "mountpoint", "%s: not a directory",
		    mp);
		return;
	}
	snprintf(parent, sizeof(parent), "%s/..", mp);
	SAY(rep, RFS_CHECK_OK, "mountpoint", "%s is a directory%s", mp,
	    stat(parent, &up) == 0 && up.st_dev != st.st_dev
		    ? " (something is mounted on it now)"
		    : "");
}

static double gib(uint64_t bytes)
{
	return (double)bytes / (1ull << 30);
}

/* What a mount checks before it detaches (identity map, cache
 * directory), then the room the cache has. */
static void check_cache(struct report *rep, struct rfs_fs *fs)
{
	const struct rfs_conf *c = fs->conf;
	struct statvfs sv;
	char err[1024] = "";
	uint64_t avail;
	int rc = rfs_fs_prepare(fs, err, sizeof(err));

	if (rc) {
		SAY(rep, RFS_CHECK_FAIL, "cache", "%s",
		    err[0] ? err : rfs_errno_reason(rc));
		return;
	}
	if (!c->cache) {
		SAY(rep, RFS_CHECK_SKIP, "cache", "cache=no");
		return;
	}
	if (statvfs(c->cache_dir, &sv)) {
		SAY(rep, RFS_CHECK_FAIL, "cache", "%s: %s", c->cache_dir,
		    strerror(errno));
		return;
	}
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	SAY(rep, RFS_CHECK_OK, "cache",
	    "%s is writable, %.1f GiB free for cache_size %.1f GiB%s",
	    c->cache_dir, gib(avail), gib(c->cache_size),
	    avail < c->cache_size ? " (less: the disk fills before the quota, "
				    "and blocks that do not fit go uncached)"
				  : "");
}

static bool check_catalogue(struct report *rep, struct rfs_fs *fs)
{
	char host[512], version[128];
	double t0 = rfs_mono_now();
	int rc = rfs_catalog_ping(fs->cat, version, sizeof(version));

	rfs_url_for_log(host, sizeof(host), fs->conf->rucio_host);
	if (rc) {
		SAY(rep, RFS_CHECK_FAIL, "catalogue", "GET %s/ping: %s", host,
		    rfs_errno_reason(rc));
		return false;
	}
	SAY(rep, RFS_CHECK_OK, "catalogue",
	    "%s answers /ping in %.3f s: Rucio %s", host, rfs_mono_now() - t0,
	    version);
	return true;
}

/* "until <UTC time> (in N min)", or why not known. */
static void expiry(char *out, size_t len, time_t exp)
{
	struct tm tm;
	char when[64];
	long left = (long)(exp - time(NULL));

	if (exp <= 0 || !gmtime_r(&exp, &tm)) {
		snprintf(out, len, "expiry not told");
		return;
	}
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	snprintf(out, len, "valid until %s (%s%ld min)", when,
		 left < 0 ? "expired " : "in ", (left < 0 ? -left : left) / 60);
}

static bool check_auth(struct report *rep, struct rfs_fs *fs)
{
	struct rfs_identity *id = fs->mount_id;
	bool login = rfs_identity_logs_in(id);
	char account[128] = "", exp[160];
	time_t until = 0;
	unsigned gen;
	char *token;
	int rc = rfs_identity_catalog_token(id, &token, &gen);

	rfs_token_free(token);
	if (!rc)
		rc = rfs_catalog_whoami(fs->cat, id, account, sizeof(account));
	if (rc) {
		SAY(rep, RFS_CHECK_FAIL, "authentication", "%s%s: %s",
		    login ? "" : "oidc: bearer token from ",
		    rfs_identity_where(id), rfs_errno_reason(rc));
		return false;
	}
	if (login)
		until = rfs_catalog_login_expires(fs->cat);
	else if (rfs_identity_token_expires(id, &until))
		until = 0;
	expiry(exp, sizeof(exp), until);
	SAY(rep, RFS_CHECK_OK, "authentication",
	    "%s%s accepted, account '%s' (whoami); token %s%s",
	    login ? "" : "oidc: bearer token from ", rfs_identity_where(id),
	    account, exp,
	    fs->conf->per_caller ? "; shared mount (identity=caller): this "
				   "check reads as the mount's own identity, "
				   "each caller reads with their own token"
				 : "");
	return true;
}

/* The first file of @l worth a read (not empty), or NULL. */
static const struct rfs_did_rec *first_file(const struct rfs_did_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].type == RFS_DID_FILE && l->v[i].has_bytes &&
		    l->v[i].bytes > 0)
			return &l->v[i];
	return NULL;
}

/* @did's files (itself for a file): one request. */
static int file_of_did(struct rfs_fs *fs, const char *scope, const char *name,
		       struct rfs_did_rec *out)
{
	struct rfs_did_list l;
	const struct rfs_did_rec *f;
	int rc;

	rfs_did_list_init(&l);
	rc = rfs_catalog_list_files(fs->cat, fs->mount_id, scope, name, &l);
	f = rc ? NULL : first_file(&l);
	if (!rc)
		rc = f ? rfs_did_rec_copy(out, f) : l.n ? -EFBIG : -ENODATA;
	rfs_did_list_release(&l);
	return rc;
}

/* Collections still to look into, breadth first, as the tree shows them. */
struct walk {
	struct rfs_did_list todo;
	size_t next;
	unsigned asked;
};

/* One collection's children: a non-empty file among them ends the walk. */
static int walk_one(struct rfs_fs *fs, struct walk *w, struct rfs_did_rec *out)
{
	const struct rfs_did_rec *dir = &w->todo.v[w->next++];
	struct rfs_did_list l;
	int rc;

	rfs_did_list_init(&l);
	w->asked++;
	rc = dir->name ? rfs_catalog_list_content(fs->cat, fs->mount_id,
						  dir->scope, dir->name, &l)
		       : rfs_catalog_list_top(fs->cat, fs->mount_id, dir->scope,
					      &l);
	for (size_t i = 0; !rc && i < l.n && w->asked < FIND_BUDGET; i++) {
		struct rfs_did_rec *r = &l.v[i];

		if (r->type == RFS_DID_FILE && r->has_bytes && r->bytes > 0) {
			rc = rfs_did_rec_copy(out, r);
			rc = rc ? rc : 1;
		} else if (r->type == RFS_DID_FILE && !r->has_bytes) {
			/* a scope's own listing has no sizes */
			w->asked++;
			rc = file_of_did(fs, r->scope, r->name, out);
			rc = rc == 0 ? 1 : rc == -ENOMEM ? rc : 0;
		} else if (r->type != RFS_DID_FILE &&
			   w->todo.n < 4 * FIND_BUDGET) {
			struct rfs_did_rec copy;

			rc = rfs_did_rec_copy(&copy, r);
			if (!rc)
				rc = rfs_did_list_take(&w->todo, &copy);
			rfs_did_rec_release(&copy); /* emptied if taken */
		}
	}
	rfs_did_list_release(&l);
	return rc;
}

/* A file to read, found as the tree would show it, within the budget. */
static int find_file(struct rfs_fs *fs, struct rfs_did_rec *out,
		     unsigned *asked)
{
	struct walk w = { .next = 0, .asked = 1 };
	int rc;

	rfs_did_list_init(&w.todo);
	rc = rfs_catalog_list_scopes(fs->cat, fs->mount_id, &w.todo);
	while (!rc && w.next < w.todo.n && w.asked < FIND_BUDGET)
		rc = walk_one(fs, &w, out);
	rfs_did_list_release(&w.todo);
	*asked = w.asked;
	return rc == 1 ? 0 : rc ? rc : -ENODATA;
}

static int check_did(struct report *rep, struct rfs_fs *fs,
		     struct rfs_did_rec *out)
{
	const char *did = fs->conf->check_did;
	const char *colon = strchr(did, ':');
	char scope[256];
	int rc;

	if (!colon || colon == did || !colon[1] ||
	    (size_t)(colon - did) >= sizeof(scope)) {
		SAY(rep, RFS_CHECK_FAIL, "replicas",
		    "check_did '%s' is not scope:name", did);
		return -EINVAL;
	}
	snprintf(scope, sizeof(scope), "%.*s", (int)(colon - did), did);
	rc = file_of_did(fs, scope, colon + 1, out);
	if (rc == -ENOENT)
		SAY(rep, RFS_CHECK_FAIL, "replicas",
		    "check_did %s: no such DID in the catalogue", did);
	else if (rc == -ENODATA || rc == -EFBIG)
		SAY(rep, RFS_CHECK_FAIL, "replicas", "check_did %s: %s", did,
		    rc == -ENODATA ? "holds no file"
				   : "holds only empty files");
	else if (rc)
		SAY(rep, RFS_CHECK_FAIL, "replicas", "check_did %s: %s", did,
		    rfs_errno_reason(rc));
	return rc;
}

/* The file the replica steps read: -o check_did, or the first found. */
static int pick_file(struct report *rep, struct rfs_fs *fs,
		     struct rfs_did_rec *out, unsigned *asked)
{
	int rc;

	*asked = 1;
	if (fs->conf->check_did)
		return check_did(rep, fs, out);
	rc = find_file(fs, out, asked);
	if (rc == -ENODATA)
		SAY(rep, RFS_CHECK_FAIL, "replicas",
		    "no file found in %u catalogue requests (give -o "
		    "check_did=scope:name)",
		    *asked);
	else if (rc)
		SAY(rep, RFS_CHECK_FAIL, "replicas",
		    "looking for a file to read: %s", rfs_errno_reason(rc));
	return rc;
}

/* Whether @f's source @i is the first of its endpoint. */
static bool first_of_endpoint(const struct rfs_replicas *r, size_t i)
{
	char a[96], b[96];
	const char *ka = rfs_source_endpoint(&r->src[i], a, sizeof(a));

	for (size_t j = 0; j < i; j++)
		if (!strcmp(ka, rfs_source_endpoint(&r->src[j], b, sizeof(b))))
			return false;
	return true;
}

static size_t count_endpoints(const struct rfs_replicas *r)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++)
		n += first_of_endpoint(r, i);
	return n;
}

/* One byte from each endpoint among @f's replicas, through its
 * transport, as a read would fetch it. */
static void check_endpoints(struct report *rep, struct rfs_fs *fs,
			    struct rfs_file *f)
{
	struct rfs_replicas *r = f->t.reps;

	for (size_t i = 0; i < r->n; i++) {
		char key[96], step[128], url[1024];
		double t0 = rfs_mono_now();
		int rc;

		if (!first_of_endpoint(r, i))
			continue;
		snprintf(step, sizeof(step), "endpoint %s",
			 rfs_source_endpoint(&r->src[i], key, sizeof(key)));
		rfs_url_for_log(url, sizeof(url), r->src[i].url);
		rc = rfs_replicas_probe_one(fs, &f->t, i);
		if (rc)
			SAY(rep, RFS_CHECK_FAIL, step, "%s: %s (after %.3f s)",
			    url, rfs_errno_reason(rc), rfs_mono_now() - t0);
		else
			SAY(rep, RFS_CHECK_OK, step, "%s: 1 byte in %.3f s",
			    url, rfs_mono_now() - t0);
	}
}

static void check_replicas(struct report *rep, struct rfs_fs *fs)
{
	struct rfs_did_rec rec;
	struct rfs_file *f = NULL;
	struct rfs_cred *who;
	unsigned asked;
	int rc;

	memset(&rec, 0, sizeof(rec));
	if (pick_file(rep, fs, &rec, &asked)) {
		SAY(rep, RFS_CHECK_SKIP, "endpoints", "no file to read");
		return;
	}
	/* the mount's own identity, as a mount's reads are but a shared
	 * mount's callers' (said at the authentication step) */
	who = rfs_cred_new(getuid(), getgid(), getpid(), fs->mount_id);
	rc = who ? rfs_fs_file_of(fs, who, &rec, NULL, &f) : -ENOMEM;
	if (rc) {
		SAY(rep, RFS_CHECK_FAIL, "replicas", "%s:%s: %s", rec.scope,
		    rec.name, rfs_errno_reason(rc));
		SAY(rep, RFS_CHECK_SKIP, "endpoints", "no replica to read");
	} else {
		SAY(rep, RFS_CHECK_OK, "replicas",
		    "%s:%s (%llu bytes): %zu replica%s on %zu endpoint%s%s",
		    rec.scope, rec.name, (unsigned long long)rec.bytes,
		    f->t.reps->n, f->t.reps->n == 1 ? "" : "s",
		    count_endpoints(f->t.reps),
		    count_endpoints(f->t.reps) == 1 ? "" : "s",
		    f->t.reps->skipped ? " (more of schemes this build "
					 "does not read)"
				       : "");
		check_endpoints(rep, fs, f);
		rfs_fs_release(fs, f);
	}
	rfs_cred_put(who);
	rfs_did_rec_release(&rec);
}

int rfs_fs_self_check(struct rfs_fs *fs, FILE *out)
{
	struct report rep = { out, false };

	check_config(&rep, fs->conf);
	check_fuse(&rep);
	check_mountpoint(&rep, fs->conf->mountpoint);
	check_cache(&rep, fs);
	rfs_transports_start(fs->tps); /* a failure is logged there */
	if (!check_catalogue(&rep, fs)) {
		SAY(&rep, RFS_CHECK_SKIP, "authentication",
		    "the catalogue does not answer");
		SAY(&rep, RFS_CHECK_SKIP, "replicas", "no catalogue");
	} else if (!check_auth(&rep, fs)) {
		SAY(&rep, RFS_CHECK_SKIP, "replicas", "not authenticated");
	} else {
		check_replicas(&rep, fs);
	}
	return rep.failed ? 1 : 0;
}
