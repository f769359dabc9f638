/*
 * Unit tests for src/authz/token.c: token hygiene and WLCG bearer token
 * discovery. Every file lives in a private scratch directory: these tests
 * never create, change or remove /tmp/bt_u<uid> (XDG_RUNTIME_DIR and
 * BEARER_TOKEN_FILE point into the scratch directory instead), and checks
 * that would read it are skipped when such a file exists on this machine.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#include "authz/token.h"
#include "unit.h"

#define JWT                                                                    \
	"eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYTEifQ.eyJzdWIiOiJqZG9lIiwiaXNzIjoia" \
	"HR0cHM6Ly9pYW0uZXhhbXBsZS5vcmcvIn0.c2lnbmF0dXJlLWJ5dGVz"

static char *tmpdir;
static bool tmp_bt_exists; /* /tmp/bt_u<uid> is there: leave it alone */

/*
 * Every lstat and open of the code under test goes through these
 * (-Wl,--wrap, see Makefile.am): how often it looks at token files under
 * @looked_under. _FILE_OFFSET_BITS=64 names them lstat64 and open64.
 */
static const char *looked_under;
static unsigned long looks;

int __real_lstat64(const char *path, struct stat *st);
int __wrap_lstat64(const char *path, struct stat *st);
int __real_open64(const char *path, int flags, ...);
int __wrap_open64(const char *path, int flags, ...);

static void count_look(const char *path)
{
	if (looked_under && !strncmp(path, looked_under, strlen(looked_under)))
		__atomic_add_fetch(&looks, 1, __ATOMIC_RELAXED);
}

int __wrap_lstat64(const char *path, struct stat *st)
{
	count_look(path);
	return __real_lstat64(path, st);
}

int __wrap_open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	count_look(path);
	return __real_open64(path, flags, mode);
}

static void test_clean(void)
{
	char a[] = "  " JWT " \n";
	char b[] = "tok en";
	char c[] = "tok\ten";
	char d[] = "";
	char e[] = " \t\r\n";
	char f[] = "tok\x7f";
	char g[] = "tok\xc3\xa9";
	char h[] = "\x01tok";
	char i[] = "root-ddmlab-unknown-8fea57f57e66416e8cd30b4197455723\r\n";
	char *t;

	t = rfs_token_clean(a);
	CHECK_STR(t, JWT);
	CHECK(t == a + 2); /* in place */
	CHECK(rfs_token_clean(b) == NULL);
	CHECK(rfs_token_clean(c) == NULL);
	CHECK(rfs_token_clean(d) == NULL);
	CHECK(rfs_token_clean(e) == NULL);
	CHECK(rfs_token_clean(f) == NULL);
	CHECK(rfs_token_clean(g) == NULL);
	CHECK(rfs_token_clean(h) == NULL);
	CHECK_STR(rfs_token_clean(i),
		  "root-ddmlab-unknown-8fea57f57e66416e8cd30b4197455723");
}

static void test_is_jwt(void)
{
	CHECK(rfs_token_is_jwt(JWT));
	CHECK(rfs_token_is_jwt("a.b.c"));
	CHECK(rfs_token_is_jwt("aGVsbG8=.d29ybGQ=.c2ln"));
	CHECK(rfs_token_is_jwt("Ab-_09.xY_-.z"));
	/* Rucio's own tokens are opaque: never sent to storage */
	CHECK(!rfs_token_is_jwt(
		"root-ddmlab-unknown-8fea57f57e66416e8cd30b4197455723"));
	CHECK(!rfs_token_is_jwt(""));
	CHECK(!rfs_token_is_jwt("a.b"));
	CHECK(!rfs_token_is_jwt("a.b.c.d"));
	CHECK(!rfs_token_is_jwt("abc"));
	/* base64 (not base64url) and other bytes */
	CHECK(!rfs_token_is_jwt("a+b.c.d"));
	CHECK(!rfs_token_is_jwt("a/b.c.d"));
	CHECK(!rfs_token_is_jwt("a.b.c "));
	CHECK(!rfs_token_is_jwt("a.b.c\n"));
	CHECK(!rfs_token_is_jwt("a.b.\xc3\xa9"));
}

/* ---- discovery ---- */

static void clear_env(void)
{
	unsetenv("BEARER_TOKEN");
	unsetenv("BEARER_TOKEN_FILE");
	/* discovery step 3 looks here: never the real /run/user/<uid> */
	setenv("XDG_RUNTIME_DIR", tmpdir, 1);
}

/* Rewrites @path (mode 0600) with @text and sets its mtime to @mtime. */
static int rewrite(const char *path, const char *text, time_t mtime)
{
	struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };
	FILE *f = fopen(path, "w");
	int rc = 0;

	if (!f)
		return -1;
	if (fputs(text, f) == EOF)
		rc = -1;
	if (fclose(f))
		rc = -1;
	/* a new file must not be group-writable under a lax umask */
	if (!rc && chmod(path, 0600))
		rc = -1;
	if (!rc && utimensat(AT_FDCWD, path, ts, 0))
		rc = -1;
	return rc;
}

/*
 * The token the source gives now, or "" plus the error in *@rc. The
 * source looks at its files again first: these checks are about what a
 * look finds, not about how often it looks (test_looks_once_a_second).
 */
static const char *get(struct rfs_token_source *ts, int *rc)
{
	static char out[RFS_TOKEN_MAX + 1];
	char *t = (char *)0x1;

	out[0] = '\0';
	rfs_token_source_stale(ts);
	*rc = rfs_token_source_get(ts, &t);
	if (*rc == 0 && t) {
		snprintf(out, sizeof(out), "%s", t);
		rfs_token_free(t);
	} else if (*rc && t != NULL) {
		snprintf(out, sizeof(out), "(output not NULL on error)");
	}
	return out;
}

static void test_explicit_file(void)
{
	struct rfs_token_source *ts = NULL;
	char *path = unit_write(tmpdir, "explicit.tok", "tokenAAA\n", 0600);
	char *t1 = NULL, *t2 = NULL;
	const char *v;
	int rc;

	CHECK(path != NULL);
	if (!path)
		return;
	clear_env();
	/* an explicit file ignores the environment */
	setenv("BEARER_TOKEN", "from-env", 1);
	CHECK_INT(rfs_token_source_new(&ts, path), 0);
	if (!ts)
		goto out;
	CHECK_STR(rfs_token_source_where(ts), path);
	v = get(ts, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokenAAA");
	CHECK_STR(rfs_token_source_where(ts), path);

	/* every call hands out a copy of its own */
	CHECK_INT(rfs_token_source_get(ts, &t1), 0);
	CHECK_INT(rfs_token_source_get(ts, &t2), 0);
	CHECK(t1 && t2 && t1 != t2 && !strcmp(t1, t2));
	rfs_token_free(t1);
	rfs_token_free(t2);
	rfs_token_free(NULL);

	/* a new token with a new mtime is picked up (oidc-agent timers) */
	CHECK_INT(rewrite(path, "tokenBBB-longer\n", 1700000000), 0);
	v = get(ts, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokenBBB-longer");
	CHECK_INT(rewrite(path, "tokenCCC-longer\n", 1700000100), 0);
	v = get(ts, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokenCCC-longer");
	/*
	 * Same inode, size and mtime, but a write changes the ctime: read
	 * again, so that a chmod or chown is never hidden by the cache.
	 */
	CHECK_INT(rewrite(path, "tokenDDD-longer\n", 1700000100), 0);
	v = get(ts, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokenDDD-longer");

	/* a file replaced by rename (a new inode) is read again */
	{
		char *next =
			unit_write(tmpdir, "explicit.new", "tokenEEE\n", 0600);

		CHECK(next && rename(next, path) == 0);
		v = get(ts, &rc);
		CHECK_INT(rc, 0);
		CHECK_STR(v, "tokenEEE");
		free(next);
	}

	/* the file went away */
	CHECK_INT(unlink(path), 0);
	v = get(ts, &rc);
	CHECK_INT(rc, -ENOENT);
	CHECK_STR(v, "");
out:
	rfs_token_source_free(ts);
	rfs_token_source_free(NULL);
	clear_env();
	free(path);
}

static void test_unsafe_files(void)
{
	struct rfs_token_source *ts = NULL;
	char *path = unit_write(tmpdir, "unsafe.tok", "tokenAAA\n", 0620);
	char big[RFS_TOKEN_MAX + 16];
	char link[4096], fifo[4096];
	int rc;

	CHECK(path != NULL);
	if (!path)
		return;
	clear_env();
	CHECK_INT(rfs_token_source_new(&ts, path), 0);
	if (!ts)
		goto out;
	/* another user could have written it */
	get(ts, &rc);
	CHECK_INT(rc, -EACCES);
	CHECK_INT(chmod(path, 0602), 0);
	get(ts, &rc);
	CHECK_INT(rc, -EACCES);
	CHECK_INT(chmod(path, 0600), 0);
	CHECK_STR(get(ts, &rc), "tokenAAA");
	CHECK_INT(rc, 0);
	rfs_token_source_free(ts);
	ts = NULL;

	/* owned by someone else (needs root to set up) */
	if (geteuid() == 0) {
		CHECK_INT(rewrite(path, "tokenOTHER\n", 1700000200), 0);
		CHECK_INT(chown(path, 4242, 4242), 0);
		CHECK_INT(rfs_token_source_new(&ts, path), 0);
		if (ts)
			get(ts, &rc);
		CHECK_INT(rc, -EACCES);
		rfs_token_source_free(ts);
		ts = NULL;
		CHECK_INT(chown(path, 0, 0), 0);
	}

	/* larger than any real token */
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_INT(rewrite(path, big, 1700000300), 0);
	CHECK_INT(rfs_token_source_new(&ts, path), 0);
	if (ts)
		get(ts, &rc);
	CHECK_INT(rc, -EFBIG);
	rfs_token_source_free(ts);
	ts = NULL;

	/* a symlink is not followed: /tmp/bt_u<uid> could be planted */
	snprintf(link, sizeof(link), "%s/link.tok", tmpdir);
	CHECK_INT(rewrite(path, "tokenAAA\n", 1700000400), 0);
	CHECK_INT(symlink(path, link), 0);
	CHECK_INT(rfs_token_source_new(&ts, link), 0);
	if (ts) {
		get(ts, &rc);
		CHECK(rc < 0);
	}
	rfs_token_source_free(ts);
	ts = NULL;

	/* a FIFO is refused, without blocking on its open */
	snprintf(fifo, sizeof(fifo), "%s/fifo.tok", tmpdir);
	CHECK_INT(mkfifo(fifo, 0600), 0);
	CHECK_INT(rfs_token_source_new(&ts, fifo), 0);
	if (ts)
		get(ts, &rc);
	CHECK_INT(rc, -EACCES);
	rfs_token_source_free(ts);
	ts = NULL;

	/* not a token: an error, not an empty token */
	CHECK_INT(rewrite(path, "two words\n", 1700000500), 0);
	CHECK_INT(rfs_token_source_new(&ts, path), 0);
	if (ts)
		get(ts, &rc);
	CHECK_INT(rc, -EINVAL);

	/*
	 * Nor is one with a NUL byte: it was cut there, and the bytes past
	 * it escaped the wipe (rfs_token_free wipes up to the first NUL).
	 */
	{
		int fd = open(path, O_WRONLY | O_TRUNC);

		CHECK(fd >= 0 && write(fd, "tokenAAA\0rest\n", 14) == 14);
		if (fd >= 0)
			close(fd);
	}
	if (ts)
		get(ts, &rc);
	CHECK_INT(rc, -EINVAL);
out:
	rfs_token_source_free(ts);
	free(path);
}

/* Discovery steps 2 and 3 (and 1), with files in the scratch directory. */
static void test_discovery(void)
{
	struct rfs_token_source *ts = NULL;
	char xdg_file[4096], *btf = NULL, *xdg = NULL, *blank = NULL,
			     *empty = NULL, *bad = NULL;
	const char *v;
	int rc;

	snprintf(xdg_file, sizeof(xdg_file), "bt_u%u", (unsigned)geteuid());
	btf = unit_write(tmpdir, "btf.tok", " tokenFILE \n", 0600);
	xdg = unit_write(tmpdir, xdg_file, "tokenXDG\n", 0600);
	blank = unit_write(tmpdir, "blank.tok", " \n\t\n", 0600);
	empty = unit_write(tmpdir, "empty.tok", "", 0600);
	bad = unit_write(tmpdir, "bad.tok", "bad token\n", 0600);
	CHECK(btf && xdg && blank && empty && bad);
	if (!btf || !xdg || !blank || !empty || !bad)
		goto out;

	/* 1. $BEARER_TOKEN beats every file */
	clear_env();
	setenv("BEARER_TOKEN", "  tokenENV\n", 1);
	setenv("BEARER_TOKEN_FILE", btf, 1);
	CHECK_INT(rfs_token_source_new(&ts, NULL), 0);
	/* the environment is read once, at creation */
	unsetenv("BEARER_TOKEN");
	v = get(ts, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokenENV");
	CHECK_STR(rfs_token_source_where(ts), "$BEARER_TOKEN");
	rfs_token_source_free(ts);
	ts = NULL;

	/* 2. $BEARER_TOKEN_FILE beats $XDG_RUNTIME_DIR */
	clear_env();
	setenv("BEARER_TOKEN_FILE", btf, 1);
	CHECK_INT(rfs_token_source_new(&ts, NULL), 0);
	v = get(ts, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokenFILE");
	CHECK_STR(rfs_token_source_where(ts), btf);
	rfs_token_source_free(ts);
	ts = NULL;

	/* 3. a missing or empty file: on to $XDG_RUNTIME_DIR/bt_u<uid> */
	clear_env();
	setenv("BEARER_TOKEN_FILE", "/nonexistent/bt", 1);
	CHECK_INT(rfs_token_source_new(&ts, NULL), 0);
	v = get(ts, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokenXDG");
	CHECK_STR(rfs_token_source_where(ts), xdg);
	rfs_token_source_free(ts);
	ts = NULL;

	clear_env();
	setenv("BEARER_TOKEN_FILE", empty, 1);
	CHECK_INT(rfs_token_source_new(&ts, NULL), 0);
	v = get(ts, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokenXDG");
	rfs_token_source_free(ts);
	ts = NULL;

	/* empty after stripping is empty: the spec says go on */
	clear_env();
	setenv("BEARER_TOKEN_FILE", blank, 1);
	CHECK_INT(rfs_token_source_new(&ts, NULL), 0);
	v = get(ts, &rc);
	CHECK(rc == 0 && !strcmp(v, "tokenXDG"));
	rfs_token_source_free(ts);
	ts = NULL;

	clear_env();
	setenv("BEARER_TOKEN", " \n", 1);
	CHECK_INT(rfs_token_source_new(&ts, NULL), 0);
	v = get(ts, &rc);
	CHECK(rc == 0 && !strcmp(v, "tokenXDG"));
	rfs_token_source_free(ts);
	ts = NULL;

	/* an invalid token stops discovery with an error */
	clear_env();
	setenv("BEARER_TOKEN_FILE", bad, 1);
	CHECK_INT(rfs_token_source_new(&ts, NULL), 0);
	v = get(ts, &rc);
	CHECK_INT(rc, -EINVAL);
	CHECK_STR(v, "");
	rfs_token_source_free(ts);
	ts = NULL;

	/* nothing anywhere (step 4 only when /tmp/bt_u<uid> is absent) */
	CHECK_INT(unlink(xdg), 0);
	clear_env();
	setenv("BEARER_TOKEN_FILE", empty, 1);
	CHECK_INT(rfs_token_source_new(&ts, NULL), 0);
	if (!tmp_bt_exists) {
		v = get(ts, &rc);
		CHECK_INT(rc, -ENOENT);
		CHECK_STR(v, "");
		/* ... until the user's timer writes the file */
		CHECK_INT(rewrite(xdg, "tokenLATE\n", 1700000600), 0);
		v = get(ts, &rc);
		CHECK_INT(rc, 0);
		CHECK_STR(v, "tokenLATE");
	} else {
		UNIT_SKIP("/tmp/bt_u%u exists on this machine",
			  (unsigned)geteuid());
	}
	rfs_token_source_free(ts);
	ts = NULL;
out:
	rfs_token_source_free(ts);
	clear_env();
	free(btf);
	free(xdg);
	free(blank);
	free(empty);
	free(bad);
}

/* What the source with only @file, forbidden @mnt, gives (see get()). */
static const char *get_from(const char *file, const char *mnt, int *rc)
{
	struct rfs_token_source *ts = NULL;
	const char *v = "";

	*rc = rfs_token_source_new(&ts, file);
	if (!*rc)
		*rc = rfs_token_source_forbid(ts, mnt);
	if (!*rc)
		v = get(ts, rc);
	rfs_token_source_free(ts);
	return v;
}

/* @pre, the scratch directory, then @post: a fresh string to free(). */
static char *at(const char *pre, const char *post)
{
	size_t n = strlen(pre) + strlen(tmpdir) + strlen(post) + 1;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s%s%s", pre, tmpdir, post);
	return p;
}

/*
 * A token file inside the mount is refused however its path is spelled,
 * and without a lookup under the mount: "mnt/loop" is a link to itself,
 * which any lookup there would report as ELOOP. A path that only passes
 * through the mount ("link/../out") is refused too.
 */
static void test_inside_mount(void)
{
	static const char *const inside[][2] = {
		{ "", "/mnt/bt" },	   { "", "//mnt/bt" },
		{ "/", "/mnt/bt" },	   { "", "/./mnt/bt" },
		{ "", "/out/../mnt/bt" },  { "", "/link/bt" },
		{ "", "/abslink/bt" },	   { "", "/uplink/mnt/bt" },
		{ "", "/mnt/loop/bt" },	   { "", "/mnt" },
		{ "", "/link/../out/bt" }, { NULL, NULL },
	};
	static const char *const outside[] = { "/out/bt", "/mntx/bt",
					       "/uplink/out/bt", "/out/./bt",
					       NULL };
	static const char *const dirs[] = { "/mnt", "/out", "/mntx", NULL };
	static const char *const links[][2] = {
		{ "/link", "mnt" },	 { "/uplink", "out/.." },
		{ "/mnt/loop", "loop" }, { "/loop", "loop" },
		{ NULL, NULL },
	};
	char *mnt = at("", "/mnt"), cwd[4096], *p;
	const char *v;
	int rc;

	for (size_t i = 0; dirs[i]; i++) {
		CHECK_INT(mkdir(p = at("", dirs[i]), 0700), 0);
		free(unit_write(p, "bt", i ? "tokenOUT\n" : "tokenIN\n", 0600));
		free(p);
	}
	for (size_t i = 0; links[i][0]; i++) {
		CHECK_INT(symlink(links[i][1], p = at("", links[i][0])), 0);
		free(p);
	}
	CHECK_INT(symlink(mnt, p = at("", "/abslink")), 0);
	free(p);
	clear_env();

	for (size_t i = 0; inside[i][0]; i++) {
		p = at(inside[i][0], inside[i][1]);
		v = get_from(p, mnt, &rc);
		if (rc != -EACCES)
			printf("# inside: %s\n", p);
		CHECK_INT(rc, -EACCES);
		CHECK_STR(v, "");
		free(p);
	}
	for (size_t i = 0; outside[i]; i++) {
		p = at("", outside[i]);
		v = get_from(p, mnt, &rc);
		if (rc)
			printf("# outside: %s\n", p);
		CHECK_INT(rc, 0);
		CHECK_STR(v, "tokenOUT");
		free(p);
	}
	/* a loop elsewhere is the kernel's answer to it */
	get_from(p = at("", "/loop/bt"), mnt, &rc);
	CHECK_INT(rc, -ELOOP);
	free(p);
	/* relative paths, from the current directory */
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK_INT(chdir(tmpdir), 0);
	get_from("mnt/bt", mnt, &rc);
	CHECK_INT(rc, -EACCES);
	v = get_from("out/bt", mnt, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokenOUT");
	CHECK_INT(chdir(cwd), 0);
	/* without a mount to avoid, the file inside is just a file */
	v = get_from(p = at("", "/link/bt"), NULL, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokenIN");
	free(p);
	free(mnt);
}

/* A JWT whose payload is {"exp":@exp} (no signature: not checked). */
static void make_jwt(char *out, size_t len, long long exp)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
				  "opqrstuvwxyz0123456789-_";
	char json[64];
	size_t n = (size_t)snprintf(json, sizeof(json), "{\"exp\":%lld}", exp);
	size_t o = (size_t)snprintf(out, len, "eyJhbGciOiJSUzI1NiJ9.");

	for (size_t i = 0; i < n && o + 5 < len; i += 3) {
		unsigned v = (unsigned char)json[i] << 16;

		v |= i + 1 < n ? (unsigned char)json[i + 1] << 8 : 0;
		v |= i + 2 < n ? (unsigned char)json[i + 2] : 0;
		out[o++] = b64[v >> 18];
		out[o++] = b64[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = b64[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = b64[v & 63];
	}
	snprintf(out + o, len - o, ".c2ln");
}

/* Replaces @path by a new file (a new inode, as oidc-agent does). */
static bool replace(const char *path, const char *text)
{
	char *next = unit_write(tmpdir, "replace.new", text, 0600);
	bool ok = next && rename(next, path) == 0;

	free(next);
	return ok;
}

/* The token straight from rfs_token_source_get, in @out. */
static int get_now(struct rfs_token_source *ts, char *out, size_t len)
{
	char *t = NULL;
	int rc = rfs_token_source_get(ts, &t);

	snprintf(out, len, "%s", t ? t : "");
	rfs_token_free(t);
	return rc;
}

/* Polls until @ts gives @want; returns the seconds it took, or -1. */
static double picked_up_after(struct rfs_token_source *ts, const char *want)
{
	struct timespec t0, t;
	char got[RFS_TOKEN_MAX + 1];
	double s = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (s < 3) {
		if (get_now(ts, got, sizeof(got)) == 0 && !strcmp(got, want))
			return s;
		usleep(10000);
		clock_gettime(CLOCK_MONOTONIC, &t);
		s = (double)(t.tv_sec - t0.tv_sec) +
		    (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
	}
	return -1;
}

/*
 * Every range request asks for the token: the files are looked at no
 * more than once a second, yet a replaced file is picked up within
 * about a second, and an expired JWT is looked for again at once.
 */
static void test_looks_once_a_second(void)
{
	struct rfs_token_source *ts = NULL;
	char *path = unit_write(tmpdir, "often.tok", "tokenAAA\n", 0600);
	char got[RFS_TOKEN_MAX + 1], jwt1[256], jwt2[256];
	unsigned long before;
	double took;

	CHECK(path != NULL);
	if (!path)
		return;
	clear_env();
	CHECK_INT(rfs_token_source_new(&ts, path), 0);
	if (!ts)
		goto out;
	looked_under = tmpdir;
	CHECK_INT(get_now(ts, got, sizeof(got)), 0);
	CHECK_STR(got, "tokenAAA");
	/* the hook sees the first read, or it proves nothing below */
	CHECK(looks > 0);
	before = looks;
	for (int i = 0; i < 1000; i++)
		CHECK_INT(get_now(ts, got, sizeof(got)), 0);
	printf("# %lu looks at the token file for 1000 gets\n", looks - before);
	/* at most one look more, should a second pass during the loop */
	CHECK(looks - before <= 2);

	CHECK(replace(path, "tokenBBB\n"));
	took = picked_up_after(ts, "tokenBBB");
	printf("# a replaced file picked up after %.2f s\n", took);
	CHECK(took >= 0 && took < 1.5);

	/* asked to look again (a 401): at once */
	CHECK(replace(path, "tokenCCC\n"));
	rfs_token_source_stale(ts);
	CHECK_INT(get_now(ts, got, sizeof(got)), 0);
	CHECK_STR(got, "tokenCCC");

	/* a JWT past its "exp" is looked for again on every call */
	make_jwt(jwt1, sizeof(jwt1), (long long)time(NULL) - 10);
	make_jwt(jwt2, sizeof(jwt2), (long long)time(NULL) + 3600);
	CHECK(replace(path, jwt1));
	rfs_token_source_stale(ts);
	CHECK_INT(get_now(ts, got, sizeof(got)), 0);
	CHECK_STR(got, jwt1);
	CHECK(replace(path, jwt2));
	CHECK_INT(get_now(ts, got, sizeof(got)), 0);
	CHECK_STR(got, jwt2);
	/* and a live one is kept like any token */
	before = looks;
	for (int i = 0; i < 1000; i++)
		CHECK_INT(get_now(ts, got, sizeof(got)), 0);
	CHECK(looks - before <= 2);
	CHECK_STR(got, jwt2);
out:
	looked_under = NULL;
	rfs_token_source_free(ts);
	unlink(path);
	free(path);
}

static void test_jwt_exp(void)
{
	char jwt[256];
	long long exp = 0;

	make_jwt(jwt, sizeof(jwt), 1700000000LL);
	CHECK_INT(rfs_token_jwt_exp(jwt, &exp), 0);
	CHECK_INT(exp, 1700000000LL);
	/* header {"alg":"none"}, payload {"sub":"x","exp":1.5e9} padded */
	CHECK_INT(rfs_token_jwt_exp("eyJhbGciOiJub25lIn0."
				    "eyJzdWIiOiJ4IiwiZXhwIjoxLjVlOX0=.c2ln",
				    &exp),
		  0);
	CHECK_INT(exp, 1500000000LL);
	/* {"sub":"x"}: no expiry */
	CHECK_INT(rfs_token_jwt_exp("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln",
				    &exp),
		  -ENOENT);
	/* {"exp":"soon"}: not a number */
	CHECK_INT(rfs_token_jwt_exp("e30.eyJleHAiOiJzb29uIn0.c2ln", &exp),
		  -ENOENT);
	/* [1] and broken JSON and base64 */
	CHECK_INT(rfs_token_jwt_exp("e30.WzFd.c2ln", &exp), -EINVAL);
	CHECK_INT(rfs_token_jwt_exp("e30.eyJleHAi.c2ln", &exp), -EINVAL);
	CHECK_INT(rfs_token_jwt_exp("e30.e=30.c2ln", &exp), -EINVAL);
	CHECK_INT(rfs_token_jwt_exp("e30..c2ln", &exp), -EINVAL);
	/* Rucio's own tokens are opaque */
	CHECK_INT(
		rfs_token_jwt_exp(
			"root-ddmlab-unknown-8fea57f57e66416e8cd30b4197455723",
			&exp),
		-EINVAL);
	CHECK_INT(rfs_token_jwt_exp("", &exp), -EINVAL);
}

#define WHERE_THREADS 8
#define WHERE_ROUNDS 2000

struct where_worker {
	struct rfs_token_source *ts;
	pthread_t th;
	int bad; /* wrong tokens or places: CHECK is not thread-safe */
};

static void *where_main(void *arg)
{
	struct where_worker *w = arg;

	for (int i = 0; i < WHERE_ROUNDS; i++) {
		char *t = NULL;

		if (rfs_token_source_get(w->ts, &t) || !t ||
		    strcmp(t, "from-env"))
			w->bad++;
		rfs_token_free(t);
		if (strcmp(rfs_token_source_where(w->ts), "$BEARER_TOKEN"))
			w->bad++;
	}
	return NULL;
}

/*
 * Any thread may fetch a token while another logs where it came from:
 * both at once, from many threads, give the right answers (and, under
 * ThreadSanitizer, race on nothing).
 */
static void test_where_threads(void)
{
	struct where_worker w[WHERE_THREADS];
	struct rfs_token_source *ts = NULL;
	int started = 0;

	clear_env();
	setenv("BEARER_TOKEN", "from-env", 1);
	CHECK_INT(rfs_token_source_new(&ts, NULL), 0);
	if (!ts)
		goto out;
	for (int i = 0; i < WHERE_THREADS; i++) {
		w[i] = (struct where_worker){ ts, 0, 0 };
		started +=
			pthread_create(&w[i].th, NULL, where_main, &w[i]) == 0;
	}
	CHECK_INT(started, WHERE_THREADS);
	for (int i = 0; i < WHERE_THREADS; i++) {
		if (i < started)
			pthread_join(w[i].th, NULL);
		CHECK_INT(w[i].bad, 0);
	}
out:
	rfs_token_source_free(ts);
	clear_env();
}

int main(void)
{
	char tmp_bt[64];
	struct stat st;

	snprintf(tmp_bt, sizeof(tmp_bt), "/tmp/bt_u%u", (unsigned)geteuid());
	tmp_bt_exists = lstat(tmp_bt, &st) == 0;

	test_clean();
	test_is_jwt();
	test_jwt_exp();
	tmpdir = unit_mkdtemp("token");
	CHECK(tmpdir != NULL);
	if (tmpdir) {
		test_explicit_file();
		test_unsafe_files();
		test_discovery();
		test_inside_mount();
		test_where_threads();
		test_looks_once_a_second();
	}
	unit_rmtree(tmpdir);
	free(tmpdir);
	/* the real /tmp/bt_u<uid> is exactly as it was */
	CHECK_INT(lstat(tmp_bt, &st) == 0, tmp_bt_exists);
	return unit_done("token");
}
