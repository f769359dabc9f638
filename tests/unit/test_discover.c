/*
 * Unit tests for src/authz/discover.c: a caller's own bearer token on a
 * shared mount. The suite runs as root: token files are real files chown'd
 * to uids nobody uses (65000 and up, no passwd entry needed), opened as
 * those uids; processes whose environment is read are real children
 * exec'd as those uids. /run/user and /tmp are directories in a private
 * scratch directory (rfs_discovery_set_hooks, discover_int.h): these tests
 * never touch the real /run/user or /tmp. Every token holds "SeCrEt" and
 * the log (stderr, kept in a file) must never show it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "authz/discover.h"
#include "authz/discover_int.h"
#include "authz/token.h"
#include "util/clock.h"
#include "unit.h"

#define U1 65001u
#define U2 65002u
#define U3 65003u
#define MARK "SeCrEt"

static char *tmpdir;
static char run_dir[PATH_MAX];
static char tmp_dir[PATH_MAX];
static char log_path[PATH_MAX];
static int saved_stderr = -1;
static pthread_t main_thread;

/* ---- helpers ---- */

static char *path_of(char *buf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static char *path_of(char *buf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
	return buf;
}

/* @path holds @text, owned by @uid (gid the same), with @mode. */
static bool put(const char *path, const char *text, uid_t uid, mode_t mode)
{
	char tmp[PATH_MAX + 8];
	FILE *f;
	bool ok;

	/* a new inode renamed into place, as a token refresher does */
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	f = fopen(tmp, "w");
	if (!f)
		return false;
	ok = fputs(text, f) != EOF;
	ok &= fclose(f) == 0;
	ok = ok && chown(tmp, uid, uid) == 0 && chmod(tmp, mode) == 0 &&
	     rename(tmp, path) == 0;
	if (!ok)
		printf("# put %s: %s\n", path, strerror(errno));
	return ok;
}

static bool mkdir_as(const char *path, uid_t uid, mode_t mode)
{
	if (mkdir(path, mode) && errno != EEXIST)
		return false;
	return chown(path, uid, uid) == 0 && chmod(path, mode) == 0;
}

static char *run_file(char *buf, uid_t uid)
{
	return path_of(buf, "%s/%u/bt_u%u", run_dir, (unsigned)uid,
		       (unsigned)uid);
}

static char *tmp_file(char *buf, uid_t uid)
{
	return path_of(buf, "%s/bt_u%u", tmp_dir, (unsigned)uid);
}

/* Removes both token files of @uid (and what a test left at them). */
static void clear_uid(uid_t uid)
{
	char p[PATH_MAX];

	remove(run_file(p, uid));
	remove(tmp_file(p, uid));
}

static struct rfs_discovery *new_disc(bool token_env, double timeout,
				      const char *forbid, rfs_env_reader rd,
				      void *arg)
{
	struct rfs_discover_opts o = { token_env, timeout, forbid };
	struct rfs_discover_hooks h = { run_dir, tmp_dir, rd, arg, 0, 0 };
	struct rfs_discovery *d = NULL;

	CHECK_INT(rfs_discovery_new(&d, &o), 0);
	if (d)
		CHECK_INT(rfs_discovery_set_hooks(d, &h), 0);
	return d;
}

static char last_where[256];

/*
 * The token @uid gets now into @got ("" on error, the error in *@rc);
 * false if the thread is not itself again afterwards (root's filesystem
 * ids) or the token and the error disagree. No CHECK: threads call it.
 */
static bool ask_into(struct rfs_discovery *d, uid_t uid, pid_t pid, int *rc,
		     char *got, size_t len)
{
	char *t = NULL, where[256];
	bool ok;

	*rc = rfs_discovery_token(d, uid, uid, pid, &t, where, sizeof(where));
	got[0] = '\0';
	if (!*rc && t)
		snprintf(got, len, "%s", t);
	ok = *rc == 0 ? t != NULL : t == NULL;
	rfs_token_free(t);
	ok &= syscall(SYS_setfsuid, -1) == geteuid();
	ok &= syscall(SYS_setfsgid, -1) == getegid();
	if (pthread_equal(pthread_self(), main_thread))
		snprintf(last_where, sizeof(last_where), "%s", where);
	return ok;
}

static const char *ask(struct rfs_discovery *d, uid_t uid, pid_t pid, int *rc)
{
	static char got[RFS_TOKEN_MAX + 1];

	CHECK(ask_into(d, uid, pid, rc, got, sizeof(got)));
	return got;
}

/* What @uid gets with nothing kept from before. */
static const char *ask_fresh(struct rfs_discovery *d, uid_t uid, pid_t pid,
			     int *rc)
{
	rfs_discovery_forget(d, uid);
	return ask(d, uid, pid, rc);
}

/* ---- parsers ---- */

static void feed_str(struct rfs_environ *e, const char *s, size_t n)
{
	CHECK_INT(rfs_environ_feed(e, s, n), 0);
	CHECK_INT(rfs_environ_end(e), 0);
}

#define ENV(s) s, sizeof(s) - 1

static void test_environ(void)
{
	static const char block[] = "A=1\0BEARER_TOKEN=tok\0"
				    "BEARER_TOKEN_FILE=/f\0"
				    "XDG_RUNTIME_DIR=/run/user/5\0";
	struct rfs_environ e, b;
	char *big;

	rfs_environ_init(&e);
	feed_str(&e, ENV(block));
	CHECK_STR(e.val[RFS_ENV_TOKEN], "tok");
	CHECK_STR(e.val[RFS_ENV_TOKEN_FILE], "/f");
	CHECK_STR(e.val[RFS_ENV_XDG], "/run/user/5");
	/* the same in one-byte pieces */
	rfs_environ_init(&b);
	for (size_t i = 0; i < sizeof(block) - 1; i++)
		CHECK_INT(rfs_environ_feed(&b, block + i, 1), 0);
	rfs_environ_end(&b);
	for (int i = 0; i < RFS_ENV_NVARS; i++)
		CHECK_STR(b.val[i], e.val[i]);
	rfs_environ_release(&b);
	rfs_environ_release(&e);

	/* the first of a name counts, as with getenv(3) */
	rfs_environ_init(&e);
	feed_str(&e, ENV("BEARER_TOKEN=a\0BEARER_TOKEN=b\0"));
	CHECK_STR(e.val[RFS_ENV_TOKEN], "a");
	rfs_environ_release(&e);
	/* no final NUL; '=' in the value; an empty value is set */
	rfs_environ_init(&e);
	feed_str(&e, ENV("XDG_RUNTIME_DIR=\0BEARER_TOKEN=a=b"));
	CHECK_STR(e.val[RFS_ENV_TOKEN], "a=b");
	CHECK_STR(e.val[RFS_ENV_XDG], "");
	rfs_environ_release(&e);
	/* near misses are other variables */
	rfs_environ_init(&e);
	feed_str(&e, ENV("BEARER_TOKENX=1\0XBEARER_TOKEN=2\0BEARER_TOKEN\0"
			 "BEARER_TOKEN_FIL=3\0bearer_token=4\0=5\0"
			 "BEARER_TOKEN_FILE_XXXXXXXXXXXXXXXXXXXXX=6\0"));
	for (int i = 0; i < RFS_ENV_NVARS; i++)
		CHECK(e.val[i] == NULL && !e.over[i]);
	rfs_environ_release(&e);

	/* a value at its cap is kept, one byte more is not */
	big = malloc(RFS_TOKEN_MAX + 64);
	CHECK(big != NULL);
	if (!big)
		return;
	memcpy(big, "BEARER_TOKEN=", 13);
	memset(big + 13, 'a', RFS_TOKEN_MAX + 1);
	rfs_environ_init(&e);
	feed_str(&e, big, 13 + RFS_TOKEN_MAX);
	CHECK(e.val[RFS_ENV_TOKEN] &&
	      strlen(e.val[RFS_ENV_TOKEN]) == RFS_TOKEN_MAX);
	rfs_environ_release(&e);
	rfs_environ_init(&e);
	feed_str(&e, big, 13 + RFS_TOKEN_MAX + 1);
	CHECK(e.val[RFS_ENV_TOKEN] == NULL && e.over[RFS_ENV_TOKEN]);
	rfs_environ_release(&e);
	/* a second one after the long one still does not count */
	rfs_environ_init(&e);
	big[13 + RFS_TOKEN_MAX + 1] = '\0';
	CHECK_INT(rfs_environ_feed(&e, big, 13 + RFS_TOKEN_MAX + 2), 0);
	feed_str(&e, ENV("BEARER_TOKEN=short\0"));
	CHECK(e.val[RFS_ENV_TOKEN] == NULL && e.over[RFS_ENV_TOKEN]);
	rfs_environ_release(&e);
	free(big);
}

static void test_stat_line(void)
{
	static const char line[] = "42 (a b) c)) S 1 40 41 0 -1 4194560 100 "
				   "0 0 0 1 2 0 0 20 0 1 0 98765 1000 5\n";
	unsigned long long start = 0;
	char buf[1024];
	pid_t sid = -1;
	ssize_t n;
	int fd;

	CHECK_INT(rfs_proc_stat_parse(ENV(line), &sid, &start), 0);
	CHECK_INT(sid, 41);
	CHECK_U64(start, 98765);
	/* cut before field 22, no ')', a sign where a number goes */
	CHECK_INT(rfs_proc_stat_parse(line, 60, &sid, &start), -EINVAL);
	CHECK_INT(rfs_proc_stat_parse(ENV("42 a S 1 40 41"), &sid, &start),
		  -EINVAL);
	CHECK_INT(rfs_proc_stat_parse(ENV("1 (x) S 1 1 -1 0 0 0 0 0 0 0 0 0 0 "
					  "0 0 0 0 0 7"),
				      &sid, &start),
		  -EINVAL);
	CHECK_INT(rfs_proc_stat_parse(ENV("1 (x) S 1 1 1 0 0 0 0 0 0 0 0 0 0 "
					  "0 0 0 0 0 99999999999999999999999"),
				      &sid, &start),
		  -EINVAL);
	/* and the kernel's own */
	fd = open("/proc/self/stat", O_RDONLY);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	CHECK(n > 0);
	CHECK_INT(rfs_proc_stat_parse(buf, n > 0 ? (size_t)n : 0, &sid, &start),
		  0);
	CHECK_INT(sid, getsid(0));
}

/* ---- the files ---- */

static void test_order(void)
{
	struct rfs_discovery *d = new_disc(false, 0, NULL, NULL, NULL);
	char rp[PATH_MAX], tp[PATH_MAX];
	const char *v;
	int rc;

	if (!d)
		return;
	clear_uid(U2);
	v = ask(d, U2, 0, &rc);
	CHECK_INT(rc, -ENOENT);
	CHECK_STR(last_where, "(none)");
	CHECK(put(tmp_file(tp, U2), " tokTMP" MARK "\n", U2, 0600));
	v = ask_fresh(d, U2, 0, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokTMP" MARK);
	CHECK_STR(last_where, tp);
	/* the runtime directory comes first */
	CHECK(put(run_file(rp, U2), "tokRUN" MARK "\n", U2, 0400));
	v = ask_fresh(d, U2, 0, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokRUN" MARK);
	CHECK_STR(last_where, rp);
	/* a blank one sends discovery on (WLCG) */
	CHECK(put(rp, " \n\t", U2, 0600));
	v = ask_fresh(d, U2, 0, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokTMP" MARK);
	/* one no token can be stops it */
	CHECK(put(rp, "tok en" MARK, U2, 0600));
	v = ask_fresh(d, U2, 0, &rc);
	CHECK_INT(rc, -EINVAL);
	CHECK_STR(v, "");
	CHECK_STR(last_where, rp);
	/* other uids see their own, here none */
	v = ask(d, U3, 0, &rc);
	CHECK_INT(rc, -ENOENT);
	clear_uid(U2);
	rfs_discovery_free(d);
}

/*
 * A valid token in /tmp, and in the runtime directory a file that is not
 * to be trusted: -EACCES, and /tmp is not tried.
 */
static void check_refused(struct rfs_discovery *d, const char *what)
{
	char rp[PATH_MAX];
	const char *v;
	int rc;

	v = ask_fresh(d, U1, 0, &rc);
	if (rc != -EACCES)
		printf("# refused: %s\n", what);
	CHECK_INT(rc, -EACCES);
	CHECK_STR(v, "");
	CHECK_STR(last_where, run_file(rp, U1));
}

static void test_unsafe(void)
{
	struct rfs_discovery *d = new_disc(false, 0, NULL, NULL, NULL);
	char rp[PATH_MAX], tp[PATH_MAX];
	const char *v;
	int rc;

	if (!d)
		return;
	clear_uid(U1);
	CHECK(put(tmp_file(tp, U1), "tokTMP" MARK, U1, 0600));
	run_file(rp, U1);
	CHECK(put(rp, "tok0644" MARK, U1, 0644));
	for (int i = 0; i < 3; i++) /* logged once (check_log) */
		check_refused(d, "mode 0644");
	CHECK(put(rp, "tok0640" MARK, U1, 0640));
	check_refused(d, "mode 0640");
	CHECK(put(rp, "tok0604" MARK, U1, 0604));
	check_refused(d, "mode 0604");
	/* another user's: unreadable as U1, or readable but not U1's */
	CHECK(put(rp, "tokU2" MARK, U2, 0600));
	check_refused(d, "owned by U2, 0600");
	CHECK(put(rp, "tokU2r" MARK, U2, 0644));
	check_refused(d, "owned by U2, 0644");
	CHECK(put(rp, "tokroot" MARK, 0, 0600));
	check_refused(d, "owned by root");
	/* a link to U1's own good file is still a link */
	remove(rp);
	CHECK_INT(symlink(tp, rp), 0);
	CHECK_INT(lchown(rp, U1, U1), 0);
	check_refused(d, "a symlink");
	remove(rp);
	CHECK_INT(mkdir(rp, 0700), 0);
	CHECK_INT(chown(rp, U1, U1), 0);
	check_refused(d, "a directory");
	rmdir(rp);
	/* a fifo is not opened at all: that would block */
	CHECK_INT(mkfifo(rp, 0600), 0);
	CHECK_INT(chown(rp, U1, U1), 0);
	check_refused(d, "a fifo");
	remove(rp);

	/* another user plants /tmp/bt_u<uid> before U1 makes one */
	CHECK(put(tp, "tokplanted" MARK, U2, 0600));
	v = ask_fresh(d, U1, 0, &rc);
	CHECK_INT(rc, -EACCES);
	CHECK_STR(v, "");
	CHECK_STR(last_where, tp);
	CHECK(put(tp, "tokplanted" MARK, U2, 0644));
	v = ask_fresh(d, U1, 0, &rc);
	CHECK_INT(rc, -EACCES);
	CHECK_STR(v, "");
	/* U1's own again */
	CHECK(put(tp, "tokmine" MARK, U1, 0600));
	v = ask_fresh(d, U1, 0, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokmine" MARK);
	clear_uid(U1);
	rfs_discovery_free(d);
}

/* Files of exactly the cap and one byte more. */
static void test_oversized(void)
{
	struct rfs_discovery *d = new_disc(false, 0, NULL, NULL, NULL);
	char rp[PATH_MAX], tp[PATH_MAX], *big = malloc(RFS_TOKEN_MAX + 2);
	const char *v;
	int rc;

	CHECK(big != NULL);
	if (!d || !big) {
		free(big);
		rfs_discovery_free(d);
		return;
	}
	memset(big, 'a', RFS_TOKEN_MAX + 1);
	memcpy(big, MARK, strlen(MARK));
	big[RFS_TOKEN_MAX] = '\0';
	CHECK(put(tmp_file(tp, U1), "tokTMP" MARK, U1, 0600));
	CHECK(put(run_file(rp, U1), big, U1, 0600));
	v = ask_fresh(d, U1, 0, &rc);
	CHECK_INT(rc, 0);
	CHECK_INT(strlen(v), RFS_TOKEN_MAX);
	big[RFS_TOKEN_MAX] = 'a';
	big[RFS_TOKEN_MAX + 1] = '\0';
	CHECK(put(rp, big, U1, 0600));
	v = ask_fresh(d, U1, 0, &rc);
	CHECK_INT(rc, -EINVAL);
	CHECK_STR(v, "");
	CHECK_STR(last_where, rp);
	free(big);
	clear_uid(U1);
	rfs_discovery_free(d);
}

/* The mountpoint is the runtime directory: its file is never opened. */
static void test_inside_mount(void)
{
	struct rfs_discovery *d = new_disc(false, 0, run_dir, NULL, NULL);
	char rp[PATH_MAX], tp[PATH_MAX];
	const char *v;
	int rc;

	if (!d)
		return;
	CHECK(put(run_file(rp, U3), "tokRUN" MARK, U3, 0600));
	CHECK(put(tmp_file(tp, U3), "tokTMP" MARK, U3, 0600));
	v = ask_fresh(d, U3, 0, &rc);
	CHECK_INT(rc, -EACCES);
	CHECK_STR(v, "");
	CHECK_STR(last_where, rp);
	clear_uid(U3);
	rfs_discovery_free(d);
}

/*
 * A replaced file is seen within a second: answers are kept that long
 * (the old token right after the change), never much longer.
 */
static void test_replaced(void)
{
	struct rfs_discovery *d = new_disc(false, 0, NULL, NULL, NULL);
	double first, changed, seen = 0;
	char tp[PATH_MAX];
	const char *v;
	int rc;

	if (!d)
		return;
	clear_uid(U1);
	CHECK(put(tmp_file(tp, U1), "tokOLD" MARK, U1, 0600));
	first = rfs_mono_now();
	v = ask(d, U1, 0, &rc);
	CHECK_STR(v, "tokOLD" MARK);
	CHECK(put(tp, "tokNEW" MARK, U1, 0600));
	changed = rfs_mono_now();
	v = ask(d, U1, 0, &rc);
	if (rfs_mono_now() - first < 0.9)
		CHECK_STR(v, "tokOLD" MARK); /* kept, not looked at */
	while (rfs_mono_now() < changed + 5) {
		v = ask(d, U1, 0, &rc);
		if (!strcmp(v, "tokNEW" MARK)) {
			seen = rfs_mono_now();
			break;
		}
		usleep(10 * 1000);
	}
	CHECK(seen > 0);
	printf("# replaced token seen after %.3f s\n", seen - changed);
	/* a second, and what a busy machine adds to it */
	CHECK(seen - changed < 1.5);
	/* and a forgotten uid is looked for at once */
	CHECK(put(tp, "tokNEWER" MARK, U1, 0600));
	v = ask_fresh(d, U1, 0, &rc);
	CHECK_STR(v, "tokNEWER" MARK);
	clear_uid(U1);
	rfs_discovery_free(d);
}

/* ---- the caller's environment ---- */

struct child {
	pid_t pid;
	int in; /* its stdin: closing it ends it */
};

/*
 * A process of its own session running as @uid with exactly @envp, in
 * @cwd: /bin/cat reading a pipe. Returns once it has exec'd (the pipe
 * that closes on exec), so /proc/<pid>/environ is @envp.
 */
static bool spawn(struct child *c, uid_t uid, char *const envp[],
		  const char *cwd)
{
	char *const argv[] = { "cat", NULL };
	int in[2], sync[2], err = 0;
	ssize_t n;

	if (pipe2(in, O_CLOEXEC) || pipe2(sync, O_CLOEXEC))
		return false;
	fflush(stdout);
	c->pid = fork();
	if (c->pid == 0) {
		if (setsid() < 0 || (cwd && chdir(cwd)) || setgid(uid) ||
		    setuid(uid) || dup2(in[0], 0) < 0)
			err = errno;
		else
			execve("/bin/cat", argv, envp);
		err = err ? err : errno;
		n = write(sync[1], &err, sizeof(err));
		_exit(n < 0 ? 126 : 127);
	}
	close(in[0]);
	close(sync[1]);
	n = c->pid > 0 ? read(sync[0], &err, sizeof(err)) : -1;
	close(sync[0]);
	c->in = in[1];
	if (n != 0)
		printf("# spawn: %s\n", strerror(n > 0 ? err : errno));
	return n == 0;
}

static void reap(struct child *c)
{
	close(c->in);
	if (c->pid > 0)
		waitpid(c->pid, NULL, 0);
}

/* What @uid's process with @envp (in @cwd, running as @as) gets. */
static const char *ask_env(uid_t uid, uid_t as, char *const envp[],
			   const char *cwd, int *rc)
{
	struct rfs_discovery *d = new_disc(true, 5, NULL, NULL, NULL);
	static char got[256];
	struct child c = { -1, -1 };
	const char *v = "";

	*rc = -1;
	got[0] = '\0';
	if (d && spawn(&c, as, envp, cwd)) {
		v = ask(d, uid, c.pid, rc);
		snprintf(got, sizeof(got), "%s", v);
	}
	reap(&c);
	rfs_discovery_free(d);
	return got;
}

static void test_env(void)
{
	char files[PATH_MAX], mine[PATH_MAX], theirs[PATH_MAX], xdg[PATH_MAX];
	char e_file[PATH_MAX + 32], e_theirs[PATH_MAX + 32];
	char e_xdg[PATH_MAX + 32], xdg_file[PATH_MAX], where[256];
	char *env_tok[] = { "PATH=/bin", "BEARER_TOKEN= tokENV" MARK " ",
			    "BEARER_TOKEN_FILE=/nonexistent", NULL };
	char *env_blank[] = { "BEARER_TOKEN=  ", NULL };
	char *env_file[] = { e_file, NULL };
	char *env_theirs[] = { e_theirs, NULL };
	char *env_shadow[] = { "BEARER_TOKEN_FILE=/etc/shadow", NULL };
	char *env_rel[] = { "BEARER_TOKEN_FILE=mine", NULL };
	char *env_xdg[] = { e_xdg, NULL };
	char priv[PATH_MAX], hidden[PATH_MAX], e_hidden[PATH_MAX + 32];
	char *env_hidden[] = { e_hidden, NULL };
	char tp[PATH_MAX];
	const char *v;
	int rc;

	path_of(files, "%s/files", tmpdir);
	CHECK(mkdir_as(files, 0, 0755));
	CHECK(put(path_of(mine, "%s/mine", files), "tokMINE" MARK, U1, 0600));
	CHECK(put(path_of(theirs, "%s/theirs", files), "tokTHEIRS" MARK, U2,
		  0600));
	CHECK(put(tmp_file(tp, U1), "tokTMP" MARK, U1, 0600));
	snprintf(e_file, sizeof(e_file), "BEARER_TOKEN_FILE=%s", mine);
	snprintf(e_theirs, sizeof(e_theirs), "BEARER_TOKEN_FILE=%s", theirs);
	CHECK(mkdir_as(path_of(xdg, "%s/xdg1", tmpdir), U1, 0700));
	CHECK(put(path_of(xdg_file, "%s/bt_u%u", xdg, U1), "tokXDG" MARK, U1,
		  0600));
	snprintf(e_xdg, sizeof(e_xdg), "XDG_RUNTIME_DIR=%s", xdg);

	v = ask_env(U1, U1, env_tok, NULL, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokENV" MARK);
	CHECK(strstr(last_where, "$BEARER_TOKEN of pid") != NULL);
	v = ask_env(U1, U1, env_file, NULL, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokMINE" MARK);
	CHECK_STR(last_where, mine);
	/* relative: to the process's own directory */
	v = ask_env(U1, U1, env_rel, files, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokMINE" MARK);
	v = ask_env(U1, U1, env_xdg, NULL, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokXDG" MARK);
	/* blank: on to the files */
	v = ask_env(U1, U1, env_blank, NULL, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokTMP" MARK);

	/* a file of another user, named by the caller: refused, and the
	 * later steps are not tried */
	v = ask_env(U1, U1, env_theirs, NULL, &rc);
	CHECK_INT(rc, -EACCES);
	CHECK_STR(v, "");
	CHECK_STR(last_where, theirs);
	/* no confused deputy: root's file, opened as the caller */
	v = ask_env(U1, U1, env_shadow, NULL, &rc);
	CHECK_INT(rc, -EACCES);
	CHECK_STR(v, "");
	CHECK(put(theirs, "tokTHEIRS" MARK, U2, 0644));
	v = ask_env(U1, U1, env_theirs, NULL, &rc);
	CHECK_INT(rc, -EACCES);
	/* U1's own file where U1 cannot go: root could read it for U1,
	 * but only what U1 could read is read */
	CHECK(mkdir_as(path_of(priv, "%s/private", files), 0, 0700));
	CHECK(put(path_of(hidden, "%s/token", priv), "tokHIDDEN" MARK, U1,
		  0600));
	snprintf(e_hidden, sizeof(e_hidden), "BEARER_TOKEN_FILE=%s", hidden);
	v = ask_env(U1, U1, env_hidden, NULL, &rc);
	CHECK_INT(rc, -EACCES);
	CHECK_STR(v, "");

	/* a process that is not all U1's (a set-uid program, say) asks
	 * as U1: its environment is not U1's to choose from */
	v = ask_env(U1, U2, env_file, NULL, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokTMP" MARK);

	/* no process to read: pid 0 (the kernel), a pid that is gone */
	{
		struct rfs_discovery *d = new_disc(true, 5, NULL, NULL, NULL);
		char *t = NULL;

		if (d) {
			v = ask(d, U1, 0, &rc);
			CHECK_INT(rc, 0);
			CHECK_STR(v, "tokTMP" MARK);
			rc = rfs_discovery_token(d, U1, U1, 0x3ffffff0, &t,
						 where, sizeof(where));
			CHECK_INT(rc, 0);
			rfs_token_free(t);
		}
		rfs_discovery_free(d);
	}
	clear_uid(U1);
}

/* A reader that blocks until released, counting its calls. */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool open;
	int calls, returned;
	const char *env; /* the block it reads */
	size_t envlen;
};

static int gate_read(pid_t pid, uid_t uid, struct rfs_environ *env, void *arg)
{
	struct gate *g = arg;
	int rc;

	pthread_mutex_lock(&g->lock);
	g->calls++;
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->lock);
	pthread_mutex_unlock(&g->lock);
	rc = rfs_environ_feed(env, g->env, g->envlen);
	rfs_environ_end(env);
	pthread_mutex_lock(&g->lock);
	g->returned++;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->lock);
	return rc;
}

static int gate_calls(struct gate *g)
{
	int n;

	pthread_mutex_lock(&g->lock);
	n = g->calls;
	pthread_mutex_unlock(&g->lock);
	return n;
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->lock);
}

/* Waits until the reader has returned @n times (deadline 5 s). */
static bool gate_returned(struct gate *g, int n)
{
	double until = rfs_mono_now() + 5;
	bool ok;

	pthread_mutex_lock(&g->lock);
	while (g->returned < n &&
	       rfs_cond_wait_until(&g->cv, &g->lock, until) == 0)
		;
	ok = g->returned >= n;
	pthread_mutex_unlock(&g->lock);
	return ok;
}

#define GATE_INIT(block)                                                       \
	{                                                                      \
		PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, \
			0, block, sizeof(block) - 1                            \
	}

/*
 * A read of /proc/<pid>/environ that blocks (the target in execve): the
 * caller waits env_timeout and no more, a second caller of the session
 * joins the same read, and once the read returns its answer is used.
 */
static void test_env_timeout(void)
{
	static struct gate g = GATE_INIT("BEARER_TOKEN=tokLATE" MARK);
	struct rfs_discovery *d = new_disc(true, 0.2, NULL, gate_read, &g);
	double t0, took;
	const char *v = "";
	int rc;

	if (!d)
		return;
	clear_uid(U1);
	t0 = rfs_mono_now();
	v = ask(d, U1, getpid(), &rc);
	took = rfs_mono_now() - t0;
	CHECK_INT(rc, -ETIMEDOUT);
	CHECK_STR(v, "");
	printf("# environment read timed out after %.3f s\n", took);
	CHECK(took >= 0.19 && took < 1.0);
	/* not kept: asked again, it waits again, on the same read */
	v = ask(d, U1, getpid(), &rc);
	CHECK_INT(rc, -ETIMEDOUT);
	CHECK_INT(gate_calls(&g), 1);
	gate_open(&g);
	CHECK(gate_returned(&g, 1));
	v = ask(d, U1, getpid(), &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "tokLATE" MARK);
	rfs_discovery_free(d);
}

/* A reader stuck when the discovery is freed: the free does not hang. */
static void test_free_stuck(void)
{
	static struct gate g = GATE_INIT("");
	struct rfs_discovery *d = new_disc(true, 0.05, NULL, gate_read, &g);
	double t0;
	int rc;

	if (!d)
		return;
	ask(d, U3, getpid(), &rc);
	CHECK_INT(rc, -ETIMEDOUT);
	t0 = rfs_mono_now();
	rfs_discovery_free(d);
	CHECK(rfs_mono_now() - t0 < 3);
	/* the reader frees what is left once its read returns */
	gate_open(&g);
	CHECK(gate_returned(&g, 1));
}

struct tid_thread {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	pid_t tid;
	bool done;
};

static void *tid_main(void *arg)
{
	struct tid_thread *t = arg;

	pthread_mutex_lock(&t->lock);
	t->tid = gettid();
	pthread_cond_broadcast(&t->cv);
	while (!t->done)
		pthread_cond_wait(&t->cv, &t->lock);
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/*
 * As the code decides: a session keyed on its leader only when /proc
 * shows that leader. In a pid namespace entered from outside the session
 * getsid() is 0 (and kill(0, 0) would still succeed).
 */
static bool leader_visible(void)
{
	char path[64], buf[1024];
	unsigned long long start;
	pid_t sid = getsid(0), lsid = 0;
	ssize_t n;
	int fd;

	if (sid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)sid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	return n > 0 &&
	       rfs_proc_stat_parse(buf, (size_t)n, &lsid, &start) == 0 &&
	       lsid == sid;
}

/*
 * Another thread of this process (its tid is what FUSE gives) asks after
 * U1's answer left the table: same session, no new read. Only when this
 * session's leader is there to key on (else the key is the thread).
 */
static void other_thread(struct rfs_discovery *d, struct gate *g)
{
	struct tid_thread t = { PTHREAD_MUTEX_INITIALIZER,
				PTHREAD_COND_INITIALIZER, 0, false };
	pthread_t th;
	const char *v;
	int rc;

	if (!leader_visible()) {
		UNIT_SKIP("this session's leader is not in /proc");
		return;
	}
	if (pthread_create(&th, NULL, tid_main, &t)) {
		CHECK(!"pthread_create");
		return;
	}
	pthread_mutex_lock(&t.lock);
	while (!t.tid)
		pthread_cond_wait(&t.cv, &t.lock);
	pthread_mutex_unlock(&t.lock);
	ask(d, U2, getpid(), &rc); /* U1 leaves the table again */
	v = ask(d, U1, t.tid, &rc);
	CHECK(t.tid != getpid());
	CHECK_STR(v, "tokSESSION" MARK);
	CHECK_INT(gate_calls(g), 2);
	pthread_mutex_lock(&t.lock);
	t.done = true;
	pthread_cond_broadcast(&t.cv);
	pthread_mutex_unlock(&t.lock);
	pthread_join(th, NULL);
}

/*
 * Four readers stuck, a fifth read queued behind them whose caller gave
 * up: once the readers are free that read is dropped, not made.
 */
static void test_abandoned(void)
{
	static struct gate g = GATE_INIT("");
	struct rfs_discovery *d = new_disc(true, 0.1, NULL, gate_read, &g);
	double until = rfs_mono_now() + 5;
	int rc;

	if (!d)
		return;
	for (uid_t u = 67000; u < 67005; u++) {
		ask(d, u, getpid(), &rc);
		CHECK_INT(rc, -ETIMEDOUT);
	}
	while (gate_calls(&g) < 4 && rfs_mono_now() < until)
		usleep(1000);
	CHECK_INT(gate_calls(&g), 4); /* ENV_READERS */
	gate_open(&g);
	CHECK(gate_returned(&g, 4));
	do
		ask(d, 67005, getpid(), &rc);
	while (rc == -ETIMEDOUT && rfs_mono_now() < until);
	CHECK_INT(rc, -ENOENT);
	CHECK_INT(gate_calls(&g), 5);
	rfs_discovery_free(d);
}

/*
 * The environment is read once per session: threads of this process
 * (one session) share it, as do later asks once the per-uid answer is
 * gone; forgetting the uid reads it again.
 */
static void test_sessions(void)
{
	static struct gate g = GATE_INIT("BEARER_TOKEN=tokSESSION" MARK);
	struct rfs_discovery *d = new_disc(true, 5, NULL, gate_read, &g);
	struct rfs_discover_hooks h = { NULL, NULL, NULL, NULL, 1, 0 };
	size_t nu, ns;
	const char *v;
	int rc;

	if (!d)
		return;
	CHECK_INT(rfs_discovery_set_hooks(d, &h), 0); /* one uid kept */
	gate_open(&g);
	v = ask(d, U1, getpid(), &rc);
	CHECK_STR(v, "tokSESSION" MARK);
	CHECK_INT(gate_calls(&g), 1);
	v = ask(d, U2, getpid(), &rc); /* U1's answer leaves the table */
	CHECK_STR(v, "tokSESSION" MARK);
	CHECK_INT(gate_calls(&g), 2); /* another uid, another key */
	rfs_discovery_sizes(d, &nu, &ns);
	CHECK_INT(nu, 1);
	CHECK_INT(ns, 2);
	v = ask(d, U1, getpid(), &rc); /* U1 again: its session is kept */
	CHECK_STR(v, "tokSESSION" MARK);
	CHECK_INT(gate_calls(&g), 2);
	other_thread(d, &g);
	rfs_discovery_forget(d, U1);
	v = ask(d, U1, getpid(), &rc);
	CHECK_INT(gate_calls(&g), 3);
	rfs_discovery_free(d);
}

/* Many uids and sessions: the tables stay within their bounds. */
static void test_bounded(void)
{
	static struct gate g = GATE_INIT("XDG_RUNTIME_DIR=/nonexistent");
	struct rfs_discovery *d = new_disc(true, 5, NULL, gate_read, &g);
	struct rfs_discover_hooks h = { NULL, NULL, NULL, NULL, 8, 4 };
	size_t nu = 0, ns = 0;
	int rc;

	if (!d)
		return;
	CHECK_INT(rfs_discovery_set_hooks(d, &h), 0);
	gate_open(&g);
	for (uid_t u = 66000; u < 66100; u++) {
		ask(d, u, getpid(), &rc);
		CHECK_INT(rc, -ENOENT);
	}
	rfs_discovery_sizes(d, &nu, &ns);
	CHECK_INT(nu, 8);
	CHECK_INT(ns, 4);
	rfs_discovery_free(d);
}

#define THREADS 8
#define ROUNDS 400

struct worker {
	pthread_t th;
	struct rfs_discovery *d;
	unsigned seed;
	int bad;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char want[64], got[64];
	int rc;

	for (int i = 0; i < ROUNDS; i++) {
		uid_t u = U1 + (uid_t)(rand_r(&w->seed) % 3);

		if (rand_r(&w->seed) % 16 == 0)
			rfs_discovery_forget(w->d, u);
		w->bad += !ask_into(w->d, u, 0, &rc, got, sizeof(got));
		snprintf(want, sizeof(want), "tok%u" MARK, (unsigned)u);
		w->bad += rc != 0 || strcmp(got, want) != 0;
	}
	return NULL;
}

/* Threads asking for several uids at once each get their own token. */
static void test_threads(void)
{
	struct rfs_discovery *d = new_disc(false, 0, NULL, NULL, NULL);
	struct worker w[THREADS];
	char p[PATH_MAX], text[64];
	int started = 0;

	if (!d)
		return;
	for (uid_t u = U1; u < U1 + 3; u++) {
		snprintf(text, sizeof(text), "tok%u" MARK, (unsigned)u);
		CHECK(put(tmp_file(p, u), text, u, 0600));
	}
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .d = d, .seed = (unsigned)i + 1 };
		started +=
			pthread_create(&w[i].th, NULL, worker_main, &w[i]) == 0;
	}
	CHECK_INT(started, THREADS);
	for (int i = 0; i < started; i++) {
		pthread_join(w[i].th, NULL);
		CHECK_INT(w[i].bad, 0);
	}
	for (uid_t u = U1; u < U1 + 3; u++)
		clear_uid(u);
	rfs_discovery_free(d);
}

/* The log names uids and files, once per interval, never a token. */
static size_t count(const char *text, const char *what)
{
	size_t n = 0;

	for (const char *p = text; (p = strstr(p, what)); p++)
		n++;
	return n;
}

static void check_log(void)
{
	char p[PATH_MAX], want[PATH_MAX + 128], *text;
	size_t n = 0;
	FILE *f = fopen(log_path, "r");

	CHECK(f != NULL);
	if (!f)
		return;
	text = calloc(1, 1 << 20);
	if (text)
		n = fread(text, 1, (1 << 20) - 1, f);
	fclose(f);
	CHECK(text != NULL && n > 0);
	if (!text)
		return;
	CHECK(strstr(text, MARK) == NULL);
	CHECK(strstr(text, "uid 65003 not used: inside the mount") != NULL);
	CHECK(strstr(text, "/etc/shadow' of uid 65001 not used: not readable "
			   "as that uid") != NULL);
	/* one line per uid and file: U1's runtime file was refused eight
	 * times in test_unsafe, first for its mode; the planted /tmp file
	 * twice, first as unreadable */
	snprintf(want, sizeof(want),
		 "'%s' of uid 65001 not used: ", run_file(p, U1));
	CHECK_INT(count(text, want), 1);
	strncat(want, "mode 0644 lets group or others in\n", 64);
	CHECK_INT(count(text, want), 1);
	snprintf(want, sizeof(want),
		 "'%s' of uid 65001 not used: not readable as that uid\n",
		 tmp_file(p, U1));
	CHECK_INT(count(text, want), 1);
	free(text);
}

/* ---- main ---- */

/* Can @uid walk to the scratch directory? (not under a 0700 home) */
static bool reachable_as(uid_t uid)
{
	bool ok;

	syscall(SYS_setfsuid, uid);
	ok = access(tmpdir, X_OK) == 0;
	syscall(SYS_setfsuid, 0);
	return ok;
}

static bool setup(void)
{
	char p[PATH_MAX];
	int fd;

	if (chmod(tmpdir, 0755) || !reachable_as(U1)) {
		UNIT_SKIP("%s: not reachable by other uids", tmpdir);
		return false;
	}
	path_of(run_dir, "%s/run", tmpdir);
	path_of(tmp_dir, "%s/tmp", tmpdir);
	CHECK(mkdir_as(run_dir, 0, 0755));
	CHECK(mkdir_as(tmp_dir, 0, 01777));
	for (uid_t u = U1; u <= U3; u++)
		CHECK(mkdir_as(path_of(p, "%s/%u", run_dir, (unsigned)u), u,
			       0700));
	/* the log lines, kept to be read by check_log */
	path_of(log_path, "%s/log", tmpdir);
	fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	fflush(stderr);
	saved_stderr = dup(2);
	if (fd >= 0) {
		dup2(fd, 2);
		close(fd);
	}
	return true;
}

/* The kept log goes to the real stderr, for whoever reads the test log. */
static void teardown(void)
{
	char buf[4096];
	ssize_t n;
	int fd;

	if (saved_stderr < 0)
		return;
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	fd = open(log_path, O_RDONLY | O_CLOEXEC);
	while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
		if (write(2, buf, (size_t)n) != n)
			break;
	if (fd >= 0)
		close(fd);
}

int main(void)
{
	main_thread = pthread_self();
	/* a session of our own where the one we were started in has its
	 * leader out of sight (a pid namespace entered from outside it), so
	 * the session-keyed checks run there too */
	if (!leader_visible())
		(void)setsid();
	test_environ();
	test_stat_line();
	if (geteuid() != 0) {
		UNIT_SKIP("not root: files cannot be given to other uids");
		return unit_done("discover");
	}
	tmpdir = unit_mkdtemp("discover");
	CHECK(tmpdir != NULL);
	if (tmpdir && setup()) {
		test_order();
		test_unsafe();
		test_oversized();
		test_inside_mount();
		test_replaced();
		test_env();
		test_env_timeout();
		test_sessions();
		test_bounded();
		test_threads();
		test_free_stuck();
		test_abandoned();
		teardown();
		check_log();
	}
	unit_rmtree(tmpdir);
	free(tmpdir);
	return unit_done("discover");
}
