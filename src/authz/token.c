#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "authz/jose_int.h"
#include "authz/token.h"
#include "authz/token_int.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"
#include "util/banned.h"

/* How long a token read from a file is served before the file is looked
 * at again: every range request asks for it, and a look is a path walk
 * of lstat()s (plus a read when it changed). */
#define RECHECK_SECONDS 1.0

struct rfs_token_source {
	char *env_token; /* $BEARER_TOKEN at start, wiped on free */
	char *files[3];	 /* candidate files, in discovery order */
	/* the last source that gave a token: "$BEARER_TOKEN" or one of
	 * files[], which live as long as @ts; read and set atomically, as
	 * any thread may find a token while another logs where it was */
	const char *where;
	char *forbidden; /* the mountpoint: no token file may be in it */

	/* protects the cache below; never held during file I/O, so a slow
	 * filesystem blocks only the thread that reads */
	pthread_mutex_t lock;
	char *cached;
	struct stat cached_st;
	int cached_idx;
	double recheck_at; /* monotonic; 0: look at the files next time */
	long long expires; /* the cached JWT's "exp" (epoch s), or 0 */
};

static int add_file(struct rfs_token_source *ts, size_t *n, const char *path)
{
	ts->files[*n] = strdup(path);
	if (!ts->files[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

int rfs_token_source_new(struct rfs_token_source **out, const char *token_file)
{
	struct rfs_token_source *ts = calloc(1, sizeof(*ts));
	const char *env, *xdg;
	char path[300];
	size_t n = 0;
	int rc = 0;

	if (!ts)
		return -ENOMEM;
	pthread_mutex_init(&ts->lock, NULL);
	ts->cached_idx = -1;
	if (token_file) {
		rc = add_file(ts, &n, token_file);
		goto out;
	}
	env = getenv("BEARER_TOKEN");
	if (env && *env) {
		ts->env_token = strdup(env);
		if (!ts->env_token)
			rc = -ENOMEM;
	}
	env = getenv("BEARER_TOKEN_FILE");
	if (!rc && env && *env)
		rc = add_file(ts, &n, env);
	xdg = getenv("XDG_RUNTIME_DIR");
	if (!rc && xdg && *xdg) {
		snprintf(path, sizeof(path), "%s/bt_u%u", xdg,
			 (unsigned)geteuid());
		rc = add_file(ts, &n, path);
	}
	snprintf(path, sizeof(path), "/tmp/bt_u%u", (unsigned)geteuid());
	if (!rc)
		rc = add_file(ts, &n, path);
out:
	if (rc) {
		rfs_token_source_free(ts);
		return rc;
	}
	*out = ts;
	return 0;
}

void rfs_token_source_free(struct rfs_token_source *ts)
{
	if (!ts)
		return;
	rfs_token_free(ts->env_token);
	rfs_token_free(ts->cached);
	free(ts->forbidden);
	for (size_t i = 0; i < 3; i++)
		free(ts->files[i]);
	pthread_mutex_destroy(&ts->lock);
	free(ts);
}

void rfs_token_free(char *token)
{
	if (!token)
		return;
	rfs_wipe(token, strlen(token));
	free(token);
}

char *rfs_token_clean(char *raw)
{
	char *s = rfs_strip(raw);

	for (char *p = s; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			return NULL;
	return *s ? s : NULL;
}

bool rfs_token_is_jwt(const char *token)
{
	int dots = 0;

	for (const char *p = token; *p; p++) {
		if (*p == '.')
			dots++;
		else if (!((*p >= 'A' && *p <= 'Z') ||
			   (*p >= 'a' && *p <= 'z') ||
			   (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
			   *p == '='))
			return false;
	}
	return dots == 2;
}

/*
 * Another user could plant /tmp/bt_u<uid>: only a file owned by the one
 * expected and not readable by others is trusted.
 */
static int check_owner(const struct stat *st, uid_t owner, bool or_root)
{
	if (!S_ISREG(st->st_mode))
		return -EACCES;
	if (st->st_uid != owner && !(or_root && st->st_uid == 0))
		return -EACCES;
	/* as XrdCl does: a token others can read is a token others have */
	if (st->st_mode & (S_IRWXG | S_IRWXO))
		return -EACCES;
	return 0;
}

int rfs_token_read_fd(int fd, uid_t owner, bool or_root, struct stat *st,
		      char **out)
{
	size_t len = 0;
	ssize_t n = 1;
	char *buf;
	int rc;

	rc = fstat(fd, st) ? -errno : check_owner(st, owner, or_root);
	if (rc)
		return rc;
	if (st->st_size > RFS_TOKEN_MAX)
		return -EFBIG;
	/* one byte more than allowed: a file that grew since fstat */
	buf = calloc(1, RFS_TOKEN_MAX + 2);
	if (!buf)
		return -ENOMEM;
	while (n > 0 && len <= RFS_TOKEN_MAX) {
		n = read(fd, buf + len, RFS_TOKEN_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			n = 1;
		else if (n > 0)
			len += (size_t)n;
	}
	rc = n < 0 ? -errno : len > RFS_TOKEN_MAX ? -EFBIG : 0;
	/* rfs_token_free wipes up to the first NUL: there must be none */
	if (!rc && memchr(buf, '\0', len))
		rc = -EINVAL;
	if (rc) {
		rfs_wipe(buf, RFS_TOKEN_MAX + 2);
		free(buf);
		return rc;
	}
	*out = buf;
	return 0;
}

static int read_token_file(const char *path, struct stat *st, char **out)
{
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	rc = rfs_token_read_fd(fd, geteuid(), true, st, out);
	close(fd);
	return rc;
}

int rfs_token_jwt_exp(const char *token, long long *exp)
{
	const char *p = strchr(token, '.'), *q = p ? strchr(p + 1, '.') : NULL;
	size_t len = q ? (size_t)(q - p - 1) : 0, n;
	unsigned char *buf;
	json_t *claims, *e;
	int rc;

	if (!q || !rfs_token_is_jwt(token) || len > RFS_TOKEN_MAX)
		return -EINVAL;
	buf = malloc(len * 3 / 4 + 1);
	if (!buf)
		return -ENOMEM;
	/* padding is not JWS (RFC 7515) but costs nothing to allow here */
	while (len && p[len] == '=')
		len--;
	rc = rfs_b64url_decode(p + 1, len, buf, &n);
	claims = rc ? NULL : json_loadb((const char *)buf, n, 0, NULL);
	e = json_object_get(claims, "exp");
	/* RFC 7519 allows a fraction; IAM and our issuer send integers */
	if (json_is_integer(e))
		*exp = (long long)json_integer_value(e);
	else if (json_is_real(e) && json_real_value(e) > 0 &&
		 json_real_value(e) < 1e15)
		*exp = (long long)json_real_value(e);
	rc = !json_is_object(claims) ? -EINVAL
	     : json_is_number(e)     ? 0
				     : -ENOENT;
	json_decref(claims);
	free(buf);
	return rc;
}

/* ctime too: a chmod or chown must be checked again, not cached */
static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
	       a->st_size == b->st_size && a->st_uid == b->st_uid &&
	       a->st_mode == b->st_mode &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/*
 * WLCG discovery: a value that is empty once stripped sends us on to the
 * next step (-ENOENT); one with bytes a token cannot hold stops it.
 */
int rfs_token_dup_clean(const char *raw, char **out)
{
	char *copy = strdup(raw), *s, *t;
	bool blank;

	*out = NULL;
	if (!copy)
		return -ENOMEM;
	s = rfs_strip(copy);
	blank = *s == '\0';
	t = blank ? NULL : rfs_token_clean(s);
	*out = t ? strdup(t) : NULL;
	rfs_token_free(copy);
	if (blank)
		return -ENOENT;
	if (!t)
		return -EINVAL;
	return *out ? 0 : -ENOMEM;
}

/* @path is @dir or below it (both absolute, without "." or ".."). */
static bool under(const char *dir, const char *path)
{
	size_t n = strlen(dir);

	if (n == 1 && dir[0] == '/')
		return true;
	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

#define LINKS_MAX 40 /* as the kernel's path walk */

/* realpath(3)'s work, one component at a time */
struct walk {
	char todo[PATH_MAX]; /* what is left to resolve */
	char done
		[PATH_MAX]; /* resolved so far: no link, "." or ".."; "" is / */
	char link[PATH_MAX];
	size_t pos; /* in todo */
	int links;
};

/* Replaces the link just appended to done by its target. */
static int follow(struct walk *w, size_t cut)
{
	size_t rest = strlen(w->todo + w->pos);
	ssize_t n = readlink(w->done, w->link, sizeof(w->link) - 1);

	if (n < 0)
		return -errno;
	if (++w->links > LINKS_MAX)
		return -ELOOP;
	if ((size_t)n + 1 + rest >= sizeof(w->todo))
		return -ENAMETOOLONG;
	/* the rest moves behind the target; memmove: they may overlap */
	memmove(w->todo + n + 1, w->todo + w->pos, rest + 1);
	memcpy(w->todo, w->link, (size_t)n);
	w->todo[n] = '/';
	w->pos = 0;
	w->done[w->link[0] == '/' ? 0 : cut] = '\0';
	return 0;
}

/* Appends the next component of todo to done; 1 when it was the last. */
static int step(struct walk *w, const char *forbidden)
{
	const char *comp = w->todo + w->pos;
	size_t len = strcspn(comp, "/"), cut = strlen(w->done);
	struct stat st;
	bool last;

	w->pos += len;
	w->pos += strspn(w->todo + w->pos, "/");
	last = w->todo[w->pos] == '\0';
	if (len == 0 || (len == 1 && comp[0] == '.'))
		return last;
	if (len == 2 && comp[0] == '.' && comp[1] == '.') {
		char *slash = strrchr(w->done, '/');

		if (slash) /* done is canonical: ".." drops its last part */
			*slash = '\0';
		return last;
	}
	if (cut + 1 + len >= sizeof(w->done))
		return -ENAMETOOLONG;
	w->done[cut] = '/';
	memcpy(w->done + cut + 1, comp, len);
	w->done[cut + 1 + len] = '\0';
	/* checked before any lookup: one under the mount needs us */
	if (forbidden && under(forbidden, w->done))
		return -EXDEV;
	if (last) /* the file itself is opened with O_NOFOLLOW */
		return 1;
	if (lstat(w->done, &st))
		return -errno;
	if (S_ISLNK(st.st_mode))
		return follow(w, cut);
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/*
 * A token file inside our own mount would need the daemon to serve the
 * read that finds its token: a deadlock. So its directory is resolved
 * here as realpath(3) would (links, ".", "..", "//"), but a component at
 * a time, and refused with -EXDEV as soon as the path reaches the mount,
 * before anything in it is looked up. The real path goes to @out.
 */
int rfs_token_real_path(const char *forbidden, const char *path, char *out,
			size_t outlen)
{
	struct walk *w = calloc(1, sizeof(*w));
	int rc = 0, n;

	if (!w)
		return -ENOMEM;
	if (path[0] != '/' && !getcwd(w->todo, sizeof(w->todo)))
		rc = -errno;
	n = snprintf(w->todo + strlen(w->todo),
		     sizeof(w->todo) - strlen(w->todo), "/%s", path);
	if (!rc && (n < 0 || (size_t)n >= sizeof(w->todo)))
		rc = -ENAMETOOLONG;
	while (rc == 0)
		rc = step(w, forbidden);
	if (rc == 1) {
		n = snprintf(out, outlen, "%s", w->done[0] ? w->done : "/");
		rc = n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
	}
	free(w);
	return rc;
}

/* The cached token if file @path (number @i) is unchanged (lstat: no
 * link followed). */
static int from_cache(struct rfs_token_source *ts, int i, const char *path,
		      char **out)
{
	struct stat st;
	int rc = -ESTALE;

	if (lstat(path, &st))
		return -ESTALE;
	pthread_mutex_lock(&ts->lock);
	if (ts->cached_idx == i && ts->cached &&
	    same_file(&st, &ts->cached_st)) {
		*out = strdup(ts->cached);
		rc = *out ? 0 : -ENOMEM;
		ts->recheck_at = rfs_mono_now() + RECHECK_SECONDS;
	}
	pthread_mutex_unlock(&ts->lock);
	return rc;
}

/*
 * The token found last, if the files were looked at less than a second
 * ago and it is not a JWT past its expiry (that one is looked for again
 * at once: a renewed file must not wait a second more).
 */
static int from_memory(struct rfs_token_source *ts, char **out)
{
	int rc = -ESTALE;

	pthread_mutex_lock(&ts->lock);
	if (ts->cached && rfs_mono_now() < ts->recheck_at &&
	    (!ts->expires || (long long)time(NULL) < ts->expires)) {
		*out = strdup(ts->cached);
		rc = *out ? 0 : -ENOMEM;
	}
	pthread_mutex_unlock(&ts->lock);
	return rc;
}

void rfs_token_source_stale(struct rfs_token_source *ts)
{
	pthread_mutex_lock(&ts->lock);
	ts->recheck_at = 0;
	pthread_mutex_unlock(&ts->lock);
}

static int from_file(struct rfs_token_source *ts, int i, char **out)
{
	char path[PATH_MAX], *raw = NULL, *copy;
	long long exp = 0;
	struct stat st;
	int rc = rfs_token_real_path(ts->forbidden, ts->files[i], path,
				     sizeof(path));

	if (rc == -EXDEV) {
		rfs_log_limited(LOG_ERR, "token-in-mount",
				"token file '%s' is inside the mount %s; not "
				"read",
				ts->files[i], ts->forbidden);
		return -EACCES;
	}
	if (rc)
		return rc;
	if (from_cache(ts, i, path, out) == 0)
		return 0;
	rc = read_token_file(path, &st, &raw);
	if (rc)
		return rc;
	rc = rfs_token_dup_clean(raw, out);
	rfs_token_free(raw);
	if (rc)
		return rc;
	copy = strdup(*out);
	if (rfs_token_jwt_exp(*out, &exp))
		exp = 0;
	pthread_mutex_lock(&ts->lock);
	rfs_token_free(ts->cached);
	ts->cached = copy;
	ts->cached_st = st;
	ts->cached_idx = copy ? i : -1;
	ts->expires = exp;
	ts->recheck_at = rfs_mono_now() + RECHECK_SECONDS;
	pthread_mutex_unlock(&ts->lock);
	__atomic_store_n(&ts->where, ts->files[i], __ATOMIC_RELEASE);
	return 0;
}

int rfs_token_source_get(struct rfs_token_source *ts, char **out)
{
	int rc = -ENOENT;

	*out = NULL;
	if (ts->env_token) {
		rc = rfs_token_dup_clean(ts->env_token, out);
		if (rc != -ENOENT) {
			__atomic_store_n(&ts->where, "$BEARER_TOKEN",
					 __ATOMIC_RELEASE);
			return rc;
		}
	}
	if (from_memory(ts, out) == 0)
		return 0;
	for (int i = 0; i < 3 && ts->files[i]; i++) {
		rc = from_file(ts, i, out);
		if (rc != -ENOENT)
			break;
	}
	return rc;
}

const char *rfs_token_source_where(struct rfs_token_source *ts)
{
	const char *where = __atomic_load_n(&ts->where, __ATOMIC_ACQUIRE);

	if (!where) {
		if (ts->env_token)
			return "$BEARER_TOKEN";
		return ts->files[0] ? ts->files[0] : "(none)";
	}
	return where;
}

int rfs_token_source_forbid(struct rfs_token_source *ts, const char *dir)
{
	free(ts->forbidden);
	ts->forbidden = dir ? strdup(dir) : NULL;
	return dir && !ts->forbidden ? -ENOMEM : 0;
}
