#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "authz/discover.h"
#include "authz/discover_int.h"
#include "authz/token.h"
#include "authz/token_int.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"
#include "util/banned.h"

/* How long a per-uid answer is served before discovery runs again: a
 * replaced token file must be seen within a second, and an open should
 * not cost two path walks and a read. */
#define RECHECK_SECONDS 1.0
#define MAX_UIDS 4096
/*
 * A session's environment is kept this long: new processes of one
 * session usually share it (CernVM-FS keys on the session for that),
 * but an "export BEARER_TOKEN=..." in the shell must be seen some day
 * even when no storage refuses the old token (that calls _forget).
 */
#define SESSION_SECONDS 60.0
#define MAX_SESSIONS 1024
/* Reader threads for /proc/<pid>/environ: a read that blocks (the target
 * in execve, or faulting on a hung filesystem) holds one; the rest go on.
 * Reads queued or running beyond ENV_PENDING_MAX fail at once. */
#define ENV_READERS 4
#define ENV_PENDING_MAX 64
#define ENV_READ_MAX (4 << 20)
#define ENV_TIMEOUT_DEFAULT 1.0
/* rfs_discovery_free waits this long for the readers, then leaves any
 * stuck one to free the pool when its read returns */
#define FREE_WAIT_SECONDS 1.0

/* ---- a small hash table with least-recently-used eviction ---- */

struct lru_node {
	struct lru_node *hnext;	      /* bucket chain */
	struct lru_node *prev, *next; /* recency ring: next is newer */
	uint64_t hash;
};

struct lru {
	struct lru_node **bucket;
	size_t nbucket; /* a power of two */
	size_t n, max;
	struct lru_node ring; /* ring.prev: the newest, ring.next: oldest */
};

static int lru_init(struct lru *l, size_t max)
{
	size_t nb = 16;

	while (nb < max)
		nb <<= 1;
	l->bucket = calloc(nb, sizeof(*l->bucket));
	if (!l->bucket)
		return -ENOMEM;
	l->nbucket = nb;
	l->n = 0;
	l->max = max;
	l->ring.prev = l->ring.next = &l->ring;
	return 0;
}

static void ring_unlink(struct lru_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
}

static void ring_push(struct lru *l, struct lru_node *n)
{
	n->prev = l->ring.prev;
	n->next = &l->ring;
	l->ring.prev->next = n;
	l->ring.prev = n;
}

static struct lru_node *
lru_find(struct lru *l, uint64_t hash,
	 bool (*match)(const struct lru_node *, const void *), const void *key)
{
	struct lru_node *n = l->bucket[hash & (l->nbucket - 1)];

	for (; n; n = n->hnext)
		if (n->hash == hash && match(n, key))
			return n;
	return NULL;
}

static void lru_touch(struct lru *l, struct lru_node *n)
{
	ring_unlink(n);
	ring_push(l, n);
}

static void lru_del(struct lru *l, struct lru_node *n)
{
	struct lru_node **pp = &l->bucket[n->hash & (l->nbucket - 1)];

	while (*pp != n)
		pp = &(*pp)->hnext;
	*pp = n->hnext;
	ring_unlink(n);
	l->n--;
}

/* Adds @n (its hash set); the oldest node when full goes to *@evicted. */
static void lru_add(struct lru *l, struct lru_node *n,
		    struct lru_node **evicted)
{
	struct lru_node **b = &l->bucket[n->hash & (l->nbucket - 1)];

	*evicted = NULL;
	if (l->n >= l->max && l->ring.next != &l->ring) {
		*evicted = l->ring.next;
		lru_del(l, *evicted);
	}
	n->hnext = *b;
	*b = n;
	ring_push(l, n);
	l->n++;
}

static struct lru_node *lru_oldest(struct lru *l)
{
	return l->ring.next == &l->ring ? NULL : l->ring.next;
}

static uint64_t mix(uint64_t x)
{
	/* splitmix64's finalizer: uids and pids are small and dense */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* ---- the environment block ---- */

static const struct {
	const char *name;
	size_t cap;
} env_vars[RFS_ENV_NVARS] = {
	[RFS_ENV_TOKEN] = { "BEARER_TOKEN", RFS_TOKEN_MAX },
	[RFS_ENV_TOKEN_FILE] = { "BEARER_TOKEN_FILE", PATH_MAX - 1 },
	[RFS_ENV_XDG] = { "XDG_RUNTIME_DIR", PATH_MAX - 1 },
};

#define VAR_UNKNOWN -1
#define VAR_SKIP -2

void rfs_environ_init(struct rfs_environ *e)
{
	memset(e, 0, sizeof(*e));
	e->var = VAR_UNKNOWN;
}

void rfs_environ_release(struct rfs_environ *e)
{
	for (int i = 0; i < RFS_ENV_NVARS; i++) {
		if (e->val[i])
			rfs_wipe(e->val[i], env_vars[i].cap + 1);
		free(e->val[i]);
	}
	free(e->cwd);
	rfs_environ_init(e);
}

/* The '=' of an entry: which variable it starts, if one we want. */
static int start_value(struct rfs_environ *e)
{
	e->var = VAR_SKIP;
	for (int i = 0; i < RFS_ENV_NVARS; i++) {
		if (strlen(env_vars[i].name) != e->pos ||
		    memcmp(env_vars[i].name, e->name, e->pos))
			continue;
		/* the first of a name counts, as with getenv(3) */
		if (e->val[i] || e->over[i])
			return 0;
		e->val[i] = calloc(1, env_vars[i].cap + 1);
		if (!e->val[i])
			return -ENOMEM;
		e->var = i;
		e->vlen = 0;
		return 0;
	}
	return 0;
}

static void add_value(struct rfs_environ *e, const char *p, size_t n)
{
	size_t cap = env_vars[e->var].cap;
	size_t room = e->vlen < cap ? cap - e->vlen : 0;

	if (room)
		memcpy(e->val[e->var] + e->vlen, p, n < room ? n : room);
	/* one past the cap means "too long", however long */
	e->vlen = n > room ? cap + 1 : e->vlen + n;
}

static void end_entry(struct rfs_environ *e)
{
	int v = e->var;

	if (v >= 0 && e->vlen > env_vars[v].cap) {
		rfs_wipe(e->val[v], env_vars[v].cap + 1);
		free(e->val[v]);
		e->val[v] = NULL;
		e->over[v] = true;
	} else if (v >= 0) {
		e->val[v][e->vlen] = '\0';
	}
	e->pos = 0;
	e->var = VAR_UNKNOWN;
	e->vlen = 0;
}

int rfs_environ_feed(struct rfs_environ *e, const char *buf, size_t len)
{
	while (len) {
		const char *nul;
		size_t n;

		if (e->var == VAR_UNKNOWN) {
			char c = *buf++;

			len--;
			if (c == '\0')
				end_entry(e);
			else if (c == '=' && start_value(e))
				return -ENOMEM;
			else if (c != '=' && e->pos == sizeof(e->name))
				e->var = VAR_SKIP; /* longer than any we want */
			else if (c != '=')
				e->name[e->pos++] = c;
			continue;
		}
		nul = memchr(buf, '\0', len);
		n = nul ? (size_t)(nul - buf) : len;
		if (e->var >= 0)
			add_value(e, buf, n);
		buf += n;
		len -= n;
		if (nul) {
			end_entry(e);
			buf++;
			len--;
		}
	}
	return 0;
}

int rfs_environ_end(struct rfs_environ *e)
{
	end_entry(e);
	return 0;
}

/* ---- /proc/<pid>/stat ---- */

/* The decimal number at *@p (up to @end, then a blank or the end). */
static int parse_ull(const char **p, const char *end, unsigned long long *out)
{
	unsigned long long v = 0;
	const char *s = *p;

	if (s == end || *s < '0' || *s > '9')
		return -EINVAL;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (v > (ULLONG_MAX - (unsigned)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (s < end && *s != ' ' && *s != '\n')
		return -EINVAL;
	*p = s;
	*out = v;
	return 0;
}

int rfs_proc_stat_parse(const char *buf, size_t len, pid_t *sid,
			unsigned long long *start)
{
	const char *end = buf + len, *p = NULL;
	unsigned long long v = 0;

	for (size_t i = len; i > 0 && !p; i--)
		if (buf[i - 1] == ')')
			p = buf + i;
	if (!p)
		return -EINVAL;
	/* fields 3 (the state) to 22, each after one blank */
	for (int field = 3; field <= 22; field++) {
		const char *f;

		if (p == end || *p != ' ')
			return -EINVAL;
		f = ++p;
		if (field == 6 || field == 22) {
			if (parse_ull(&p, end, &v))
				return -EINVAL;
		} else {
			while (p < end && *p != ' ' && *p != '\n')
				p++;
		}
		if (p == f)
			return -EINVAL;
		if (field == 6 && v > INT_MAX)
			return -EINVAL;
		if (field == 6)
			*sid = (pid_t)v;
	}
	*start = v;
	return 0;
}

static int proc_stat(pid_t pid, pid_t *sid, unsigned long long *start)
{
	char path[64], buf[1024];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		return -errno;
	return rfs_proc_stat_parse(buf, (size_t)n, sid, start);
}

/*
 * Whose environment: the session (its id and its leader's start time,
 * so a reused pid is another session) and the uid asking, as CernVM-FS
 * keys it. While a session has members its id is never handed to a new
 * process, so a /proc/<sid> that leads session <sid> is that leader.
 * Without one (the leader is gone) the process itself is the key.
 */
struct session_key {
	unsigned long long start;
	pid_t id;
	uid_t uid;
	bool by_pid;
};

static int session_key(pid_t pid, uid_t uid, struct session_key *k)
{
	unsigned long long start, lstart;
	pid_t sid, lsid;
	int rc = proc_stat(pid, &sid, &start);

	if (rc)
		return rc;
	memset(k, 0, sizeof(*k));
	k->uid = uid;
	if (sid > 0 && proc_stat(sid, &lsid, &lstart) == 0 && lsid == sid) {
		k->id = sid;
		k->start = lstart;
	} else {
		k->id = pid;
		k->start = start;
		k->by_pid = true;
	}
	return 0;
}

static bool same_key(const struct session_key *a, const struct session_key *b)
{
	return a->id == b->id && a->start == b->start && a->uid == b->uid &&
	       a->by_pid == b->by_pid;
}

static uint64_t key_hash(const struct session_key *k)
{
	return mix(((uint64_t)(uint32_t)k->id << 32 | k->uid) ^
		   mix(k->start + k->by_pid));
}

/* ---- reading environments off the caller's thread ---- */

struct env_job {
	unsigned refs; /* the reader's and each waiter's; pool lock */
	struct session_key key;
	pid_t pid;
	bool done;
	int rc;
	struct rfs_environ env; /* the reader's until done, then read-only */
	struct env_job *next;	/* in the queue, until a reader takes it */
	struct env_job *pnext;	/* among the jobs not done */
};

/*
 * Lock order: pool->lock is a leaf, never held with the tables' locks nor
 * across a read. It lives apart from the discovery: a reader stuck in a
 * read outlives rfs_discovery_free and frees the pool when it returns.
 */
struct env_pool {
	pthread_mutex_t lock;
	pthread_cond_t work; /* a job was queued, or stop */
	pthread_cond_t done; /* a job finished, or a reader left */
	struct env_job *head, *tail;
	struct env_job *pending;
	size_t npending;
	unsigned refs; /* the discovery's and one per reader */
	unsigned readers, idle;
	bool stop;
	rfs_env_reader read;
	void *arg;
};

static void job_put(struct env_job *j)
{
	if (--j->refs)
		return;
	rfs_environ_release(&j->env);
	free(j);
}

static void unlink_pending(struct env_pool *p, struct env_job *j)
{
	struct env_job **pp = &p->pending;

	while (*pp && *pp != j)
		pp = &(*pp)->pnext;
	if (*pp) {
		*pp = j->pnext;
		p->npending--;
	}
}

static void pool_destroy(struct env_pool *p)
{
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	free(p);
}

static void *reader_main(void *arg)
{
	struct env_pool *p = arg;
	struct env_job *j;
	bool last;
	int rc;

	pthread_setname_np(pthread_self(), "rfs-environ");
	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		j = p->head;
		if (!j) {
			p->idle++;
			pthread_cond_wait(&p->work, &p->lock);
			p->idle--;
			continue;
		}
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		/* everyone who asked gave up waiting: no read for nobody */
		rc = -ETIMEDOUT;
		if (j->refs > 1) {
			pthread_mutex_unlock(&p->lock);
			rc = p->read(j->pid, j->key.uid, &j->env, p->arg);
			pthread_mutex_lock(&p->lock);
		}
		j->rc = rc;
		j->done = true;
		unlink_pending(p, j);
		pthread_cond_broadcast(&p->done);
		job_put(j);
	}
	p->readers--;
	pthread_cond_broadcast(&p->done);
	last = --p->refs == 0;
	pthread_mutex_unlock(&p->lock);
	if (last)
		pool_destroy(p);
	return NULL;
}

/* One more reader, with every signal blocked (they are the main
 * thread's business). Called with the pool lock held. */
static void add_reader(struct env_pool *p)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t th;

	if (pthread_attr_init(&attr))
		return;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&th, &attr, reader_main, p) == 0) {
		p->readers++;
		p->refs++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
}

/* A job for @k in *@out, queued now or already pending; -ETIMEDOUT when
 * too many are (the readers are stuck), or -ENOMEM. */
static int job_get(struct env_pool *p, const struct session_key *k, pid_t pid,
		   struct env_job **out)
{
	struct env_job *j;

	for (j = p->pending; j; j = j->pnext)
		if (same_key(&j->key, k)) {
			j->refs++;
			*out = j;
			return 0;
		}
	if (p->npending >= ENV_PENDING_MAX)
		return -ETIMEDOUT;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->refs = 2; /* the reader's and ours */
	j->key = *k;
	j->pid = pid;
	rfs_environ_init(&j->env);
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	j->pnext = p->pending;
	p->pending = j;
	p->npending++;
	/* threads start on first use: never before the daemon forks */
	if (p->idle == 0 && p->readers < ENV_READERS)
		add_reader(p);
	pthread_cond_signal(&p->work);
	*out = j;
	return 0;
}

/*
 * The environment of @pid (session @k) read by a reader, waiting at most
 * @timeout seconds; one read per session however many ask at once. The
 * finished job in *@out, for job_done().
 */
static int env_read(struct env_pool *p, const struct session_key *k, pid_t pid,
		    double timeout, struct env_job **out)
{
	double deadline = rfs_mono_now() + timeout;
	struct env_job *j = NULL;
	int rc;

	pthread_mutex_lock(&p->lock);
	rc = job_get(p, k, pid, &j);
	while (!rc && !j->done &&
	       rfs_cond_wait_until(&p->done, &p->lock, deadline) == 0)
		;
	if (!rc && !j->done) {
		job_put(j);
		rc = -ETIMEDOUT;
	}
	pthread_mutex_unlock(&p->lock);
	*out = rc ? NULL : j;
	return rc;
}

static void job_done(struct env_pool *p, struct env_job *j)
{
	pthread_mutex_lock(&p->lock);
	job_put(j);
	pthread_mutex_unlock(&p->lock);
}

static void pool_release(struct env_pool *p)
{
	double deadline = rfs_mono_now() + FREE_WAIT_SECONDS;
	bool last;

	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	while (p->readers &&
	       rfs_cond_wait_until(&p->done, &p->lock, deadline) == 0)
		;
	/* jobs no reader took: nobody waits for them any more */
	while (p->head) {
		struct env_job *j = p->head;

		p->head = j->next;
		unlink_pending(p, j);
		job_put(j);
	}
	p->tail = NULL;
	last = --p->refs == 0;
	pthread_mutex_unlock(&p->lock);
	if (last)
		pool_destroy(p);
}

/* Feeds /proc/<pid>/environ to @env, at most ENV_READ_MAX bytes. */
static int feed_environ(pid_t pid, struct rfs_environ *env)
{
	char path[64], buf[4096];
	size_t total = 0;
	ssize_t n = 0;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (!rc && total < ENV_READ_MAX &&
	       (n = read(fd, buf, sizeof(buf))) > 0) {
		rc = rfs_environ_feed(env, buf, (size_t)n);
		total += (size_t)n;
	}
	if (!rc && n < 0)
		rc = -errno;
	close(fd);
	rfs_wipe(buf, sizeof(buf)); /* it held BEARER_TOKEN, maybe */
	return rc ? rc : rfs_environ_end(env);
}

/*
 * True when every uid of @pid (real, effective, saved, filesystem) is
 * @uid: a set-uid program asks as its owner but runs with its user's
 * environment, and that user must not pick the owner's token file.
 */
static bool uids_are(pid_t pid, uid_t uid)
{
	char path[64], buf[2048], *p;
	unsigned u[4];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	p = strstr(buf, "\nUid:");
	if (!p || sscanf(p + 5, "%u %u %u %u", &u[0], &u[1], &u[2], &u[3]) != 4)
		return false;
	return u[0] == uid && u[1] == uid && u[2] == uid && u[3] == uid;
}

static int proc_read_env(pid_t pid, uid_t uid, struct rfs_environ *env,
			 void *arg)
{
	const char *file;
	char path[64], cwd[PATH_MAX];
	ssize_t n;
	int rc;

	(void)arg;
	if (!uids_are(pid, uid))
		return -EPERM;
	rc = feed_environ(pid, env);
	file = env->val[RFS_ENV_TOKEN_FILE];
	if (rc || !file || !*file || file[0] == '/')
		return rc;
	/* relative: to the process's directory, as its own open would be */
	snprintf(path, sizeof(path), "/proc/%d/cwd", (int)pid);
	n = readlink(path, cwd, sizeof(cwd) - 1);
	if (n > 0 && cwd[0] == '/') {
		cwd[n] = '\0';
		env->cwd = strdup(cwd);
	}
	return 0;
}

/* ---- the discovery ---- */

/* What a session's environment says, kept per session. */
struct env_answer {
	char *token;  /* BEARER_TOKEN as set (wiped on release), or NULL */
	char *file;   /* BEARER_TOKEN_FILE, an absolute path, or NULL */
	char *xdg;    /* XDG_RUNTIME_DIR when absolute, or NULL */
	int token_rc; /* -EINVAL: set, but too long to be a token */
	int file_rc;  /* -EINVAL: too long, or relative to an unknown cwd */
	pid_t pid;    /* whose environment it is */
};

struct session_entry {
	struct lru_node node; /* first: the table's view */
	struct session_key key;
	struct env_answer ans;
	double until; /* monotonic */
};

struct uid_entry {
	struct lru_node node; /* first */
	uid_t uid;
	int rc;
	bool env_known; /* the caller's environment was looked at */
	double until;	/* monotonic */
	char *token;	/* wiped on free */
	char *where;
};

struct rfs_discovery {
	bool token_env;
	double env_timeout;
	char *forbid;
	char *run_user; /* "/run/user" but in tests */
	char *tmp;	/* "/tmp" but in tests */
	struct env_pool *pool;

	/* leaves, never held together nor across I/O */
	pthread_mutex_t uid_lock;
	struct lru uids;
	pthread_mutex_t sess_lock;
	struct lru sessions;
};

/* Who asks. */
struct caller {
	uid_t uid;
	gid_t gid;
	pid_t pid;
};

static void answer_release(struct env_answer *a)
{
	rfs_token_free(a->token);
	free(a->file);
	free(a->xdg);
	memset(a, 0, sizeof(*a));
}

static int dup_or_null(const char *s, char **out)
{
	*out = s ? strdup(s) : NULL;
	return s && !*out ? -ENOMEM : 0;
}

static int answer_copy(const struct env_answer *a, struct env_answer *out)
{
	int rc;

	*out = *a;
	out->token = out->file = out->xdg = NULL;
	rc = dup_or_null(a->token, &out->token);
	if (!rc)
		rc = dup_or_null(a->file, &out->file);
	if (!rc)
		rc = dup_or_null(a->xdg, &out->xdg);
	if (rc)
		answer_release(out);
	return rc;
}

/* BEARER_TOKEN_FILE made absolute: a blank one is not set (WLCG). */
static int answer_file(const struct rfs_environ *e, struct env_answer *a)
{
	const char *f = e->val[RFS_ENV_TOKEN_FILE];
	size_t nc, nf;

	if (e->over[RFS_ENV_TOKEN_FILE]) {
		a->file_rc = -EINVAL;
		return 0;
	}
	if (!f || !*f || f[0] == '/')
		return dup_or_null(f && *f ? f : NULL, &a->file);
	if (!e->cwd) {
		a->file_rc = -EINVAL;
		return 0;
	}
	nc = strlen(e->cwd);
	nf = strlen(f);
	if (nc + 1 + nf + 1 > PATH_MAX) {
		a->file_rc = -EINVAL;
		return 0;
	}
	a->file = malloc(nc + 1 + nf + 1);
	if (!a->file)
		return -ENOMEM;
	memcpy(a->file, e->cwd, nc);
	a->file[nc] = '/';
	memcpy(a->file + nc + 1, f, nf + 1);
	return 0;
}

static int answer_of(const struct rfs_environ *e, pid_t pid,
		     struct env_answer *a)
{
	const char *xdg = e->val[RFS_ENV_XDG];
	int rc;

	memset(a, 0, sizeof(*a));
	a->pid = pid;
	a->token_rc = e->over[RFS_ENV_TOKEN] ? -EINVAL : 0;
	rc = dup_or_null(e->val[RFS_ENV_TOKEN], &a->token);
	if (!rc)
		rc = answer_file(e, a);
	/* the XDG base directory spec: a relative one is ignored */
	if (!rc && xdg && xdg[0] == '/')
		rc = dup_or_null(xdg, &a->xdg);
	if (rc)
		answer_release(a);
	return rc;
}

static bool session_match(const struct lru_node *n, const void *key)
{
	return same_key(&((const struct session_entry *)n)->key, key);
}

static void session_free(struct session_entry *e)
{
	if (!e)
		return;
	answer_release(&e->ans);
	free(e);
}

static int session_cached(struct rfs_discovery *d, const struct session_key *k,
			  struct env_answer *out)
{
	struct session_entry *e;
	int rc = -ENOENT;

	pthread_mutex_lock(&d->sess_lock);
	e = (struct session_entry *)lru_find(&d->sessions, key_hash(k),
					     session_match, k);
	if (e && rfs_mono_now() < e->until) {
		lru_touch(&d->sessions, &e->node);
		rc = answer_copy(&e->ans, out);
	}
	pthread_mutex_unlock(&d->sess_lock);
	return rc;
}

static void session_store(struct rfs_discovery *d, const struct session_key *k,
			  const struct env_answer *a)
{
	struct session_entry *e = calloc(1, sizeof(*e)), *old;
	struct lru_node *evicted;

	if (!e || answer_copy(a, &e->ans)) {
		free(e);
		return;
	}
	e->key = *k;
	e->node.hash = key_hash(k);
	e->until = rfs_mono_now() + SESSION_SECONDS;
	pthread_mutex_lock(&d->sess_lock);
	old = (struct session_entry *)lru_find(&d->sessions, e->node.hash,
					       session_match, k);
	if (old)
		lru_del(&d->sessions, &old->node);
	lru_add(&d->sessions, &e->node, &evicted);
	pthread_mutex_unlock(&d->sess_lock);
	session_free(old);
	session_free((struct session_entry *)evicted);
}

/*
 * What the environment of the caller's session says: 0 with *@a filled
 * (all NULL when there is no environment to read: no /proc entry, one we
 * may not use), -ETIMEDOUT, -ENOMEM.
 */
static int env_answer_get(struct rfs_discovery *d, const struct caller *c,
			  struct env_answer *a)
{
	struct session_key k;
	struct env_job *j;
	int rc;

	memset(a, 0, sizeof(*a));
	if (session_key(c->pid, c->uid, &k))
		return 0;
	if (session_cached(d, &k, a) == 0)
		return 0;
	rc = env_read(d->pool, &k, c->pid, d->env_timeout, &j);
	if (rc == -ETIMEDOUT) {
		rfs_log_limited(LOG_WARNING, "discover-env-timeout",
				"environment of pid %d (uid %u) not read "
				"within %.1f s",
				(int)c->pid, (unsigned)c->uid, d->env_timeout);
	}
	if (rc)
		return rc;
	rc = j->rc ? 0 : answer_of(&j->env, c->pid, a);
	if (!rc && !j->rc)
		session_store(d, &k, a);
	job_done(d->pool, j);
	return rc;
}

/* ---- token files, opened as their owner ---- */

static void set_where(char *where, size_t wlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_where(char *where, size_t wlen, const char *fmt, ...)
{
	va_list ap;

	if (!wlen)
		return;
	va_start(ap, fmt);
	vsnprintf(where, wlen, fmt, ap);
	va_end(ap);
}

struct fsids {
	uid_t uid;
	gid_t gid;
	bool changed;
};

/*
 * This thread's filesystem ids become the caller's: the path walk and the
 * open are checked as the caller's own would be, so a path the caller
 * chose (BEARER_TOKEN_FILE=/etc/shadow) opens nothing the caller could
 * not. The raw system calls: they change this thread only, where glibc's
 * set*id() would change every thread of the daemon.
 */
static int become(const struct caller *c, struct fsids *saved)
{
	saved->uid = (uid_t)syscall(SYS_setfsuid, -1);
	saved->gid = (gid_t)syscall(SYS_setfsgid, -1);
	saved->changed = saved->uid != c->uid || saved->gid != c->gid;
	if (!saved->changed)
		return 0;
	/* the group first: it needs CAP_SETGID, which a non-zero fsuid
	 * would not take away, but keep the order plain anyway */
	syscall(SYS_setfsgid, c->gid);
	syscall(SYS_setfsuid, c->uid);
	if ((uid_t)syscall(SYS_setfsuid, -1) == c->uid &&
	    (gid_t)syscall(SYS_setfsgid, -1) == c->gid)
		return 0;
	syscall(SYS_setfsuid, saved->uid);
	syscall(SYS_setfsgid, saved->gid);
	return -EPERM;
}

static void restore(const struct fsids *saved)
{
	if (!saved->changed)
		return;
	syscall(SYS_setfsuid, saved->uid);
	syscall(SYS_setfsgid, saved->gid);
}

/*
 * @path has no link left in it (rfs_token_real_path): openat2 refuses to
 * follow one, so a directory swapped for a link into the mount after the
 * walk finds nothing. Before Linux 5.6, O_NOFOLLOW guards the last name.
 */
static int open_resolved(const char *path)
{
	int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
	struct open_how how = {
		.flags = (uint64_t)flags,
		.resolve = RESOLVE_NO_SYMLINKS,
	};
	long fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));

	if (fd < 0 && errno == ENOSYS)
		fd = open(path, flags);
	return fd < 0 ? -errno : (int)fd;
}

/* Opens @path as the caller; *@why says why not, for the log line. */
static int open_as(const struct rfs_discovery *d, const struct caller *c,
		   const char *path, int *fd, const char **why)
{
	char real[PATH_MAX];
	struct fsids saved;
	struct stat st;
	int rc;

	if (path[0] != '/') {
		*why = "not an absolute path";
		return -EINVAL;
	}
	if (become(c, &saved)) {
		*why = "the daemon cannot act as that uid";
		return -EACCES;
	}
	rc = rfs_token_real_path(d->forbid, path, real, sizeof(real));
	/* no open at all of a device or a fifo: it may have side effects */
	if (!rc && lstat(real, &st))
		rc = -errno;
	else if (!rc && S_ISLNK(st.st_mode))
		rc = -ELOOP;
	else if (!rc && !S_ISREG(st.st_mode))
		rc = -EISDIR;
	if (!rc) {
		*fd = open_resolved(real);
		rc = *fd < 0 ? *fd : 0;
	}
	restore(&saved);
	if (rc == -ENOENT || rc == -ENOTDIR || rc == 0 || rc == -ENOMEM)
		return rc == -ENOTDIR ? -ENOENT : rc;
	*why = rc == -EXDEV    ? "inside the mount"
	       : rc == -ELOOP  ? "a symbolic link"
	       : rc == -EISDIR ? "not a regular file"
	       : rc == -EACCES ? "not readable as that uid"
	       : rc == -EPERM  ? "not readable as that uid"
			       : "cannot be opened";
	return -EACCES;
}

/* Why rfs_token_read_fd refused the file @st describes. */
static const char *unsafe_why(const struct stat *st, uid_t uid, char *buf,
			      size_t len)
{
	if (!S_ISREG(st->st_mode))
		return "not a regular file";
	if (st->st_uid != uid) {
		snprintf(buf, len, "owned by uid %u", (unsigned)st->st_uid);
		return buf;
	}
	snprintf(buf, len, "mode %04o lets group or others in",
		 (unsigned)(st->st_mode & 07777));
	return buf;
}

static void log_refusal(uid_t uid, const char *path, const char *why)
{
	char key[PATH_MAX + 48];

	/* one line per uid and file and interval: a user cannot flood */
	snprintf(key, sizeof(key), "token-refused:%u:%s", (unsigned)uid, path);
	rfs_log_limited(LOG_WARNING, key,
			"token file '%s' of uid %u not used: %s", path,
			(unsigned)uid, why);
}

static int read_as(const struct rfs_discovery *d, const struct caller *c,
		   const char *path, char **out)
{
	const char *why = NULL;
	char *raw = NULL, buf[64];
	struct stat st;
	int fd = -1, rc;

	rc = open_as(d, c, path, &fd, &why);
	if (!rc) {
		rc = rfs_token_read_fd(fd, c->uid, false, &st, &raw);
		close(fd);
		why = rc == -EACCES  ? unsafe_why(&st, c->uid, buf, sizeof(buf))
		      : rc == -EFBIG ? "larger than a token may be"
		      : rc == -EINVAL ? "holds a NUL byte"
				      : NULL;
	}
	if (!rc) {
		rc = rfs_token_dup_clean(raw, out);
		rfs_token_free(raw);
		why = rc == -EINVAL ? "holds bytes a token cannot" : NULL;
	}
	if (rc == -EFBIG)
		rc = -EINVAL;
	if (rc && rc != -ENOENT && rc != -EACCES && rc != -EINVAL &&
	    rc != -ENOMEM) {
		why = "cannot be read";
		rc = -EACCES;
	}
	if (why)
		log_refusal(c->uid, path, why);
	return rc;
}

/* WLCG steps 1 and 2, from the session's environment */
static int from_env(const struct rfs_discovery *d, const struct caller *c,
		    const struct env_answer *a, char **out, char *where,
		    size_t wlen)
{
	int rc = -ENOENT;

	set_where(where, wlen, "$BEARER_TOKEN of pid %d", (int)a->pid);
	if (a->token_rc)
		return a->token_rc;
	if (a->token)
		rc = rfs_token_dup_clean(a->token, out);
	if (rc != -ENOENT)
		return rc;
	set_where(where, wlen, "$BEARER_TOKEN_FILE of pid %d", (int)a->pid);
	if (a->file_rc)
		return a->file_rc;
	if (!a->file)
		return -ENOENT;
	set_where(where, wlen, "%s", a->file);
	return read_as(d, c, a->file, out);
}

/* WLCG steps 3 and 4: files the caller owns */
static int from_files(const struct rfs_discovery *d, const struct caller *c,
		      const char *xdg, char **out, char *where, size_t wlen)
{
	char path[PATH_MAX];
	int n, rc = -ENOENT;

	if (xdg)
		n = snprintf(path, sizeof(path), "%s/bt_u%u", xdg,
			     (unsigned)c->uid);
	else
		n = snprintf(path, sizeof(path), "%s/%u/bt_u%u", d->run_user,
			     (unsigned)c->uid, (unsigned)c->uid);
	if (n > 0 && (size_t)n < sizeof(path)) {
		set_where(where, wlen, "%s", path);
		rc = read_as(d, c, path, out);
	}
	if (rc != -ENOENT)
		return rc;
	snprintf(path, sizeof(path), "%s/bt_u%u", d->tmp, (unsigned)c->uid);
	set_where(where, wlen, "%s", path);
	return read_as(d, c, path, out);
}

static int discover(struct rfs_discovery *d, const struct caller *c, char **out,
		    char *where, size_t wlen)
{
	struct env_answer a = { 0 };
	int rc = -ENOENT;

	if (d->token_env && c->pid > 0) {
		rc = env_answer_get(d, c, &a);
		if (rc)
			return rc;
		rc = from_env(d, c, &a, out, where, wlen);
	}
	if (rc == -ENOENT)
		rc = from_files(d, c, a.xdg, out, where, wlen);
	answer_release(&a);
	if (rc == -ENOENT)
		set_where(where, wlen, "(none)");
	return rc;
}

static bool uid_match(const struct lru_node *n, const void *key)
{
	return ((const struct uid_entry *)n)->uid == *(const uid_t *)key;
}

static void uid_free(struct uid_entry *e)
{
	if (!e)
		return;
	rfs_token_free(e->token);
	free(e->where);
	free(e);
}

/* 1 when nothing fresh is kept for the caller; else the kept answer. */
static int uid_cached(struct rfs_discovery *d, const struct caller *c,
		      char **out, char *where, size_t wlen)
{
	struct uid_entry *e;
	int rc = 1;

	pthread_mutex_lock(&d->uid_lock);
	e = (struct uid_entry *)lru_find(&d->uids, mix(c->uid), uid_match,
					 &c->uid);
	/* an answer made without the environment does not stand for one
	 * made with it (a pid 0 request came first) */
	if (e && rfs_mono_now() < e->until &&
	    (e->env_known || !d->token_env || c->pid <= 0)) {
		lru_touch(&d->uids, &e->node);
		rc = e->rc;
		if (!rc && !(*out = strdup(e->token)))
			rc = -ENOMEM;
		set_where(where, wlen, "%s", e->where);
	}
	pthread_mutex_unlock(&d->uid_lock);
	return rc;
}

static void uid_store(struct rfs_discovery *d, const struct caller *c, int rc,
		      const char *token, const char *where)
{
	struct uid_entry *e = calloc(1, sizeof(*e)), *old;
	struct lru_node *evicted;

	if (!e || dup_or_null(token, &e->token) ||
	    !(e->where = strdup(where))) {
		uid_free(e);
		return;
	}
	e->uid = c->uid;
	e->rc = rc;
	e->env_known = d->token_env && c->pid > 0;
	e->node.hash = mix(c->uid);
	e->until = rfs_mono_now() + RECHECK_SECONDS;
	pthread_mutex_lock(&d->uid_lock);
	old = (struct uid_entry *)lru_find(&d->uids, e->node.hash, uid_match,
					   &c->uid);
	if (old)
		lru_del(&d->uids, &old->node);
	lru_add(&d->uids, &e->node, &evicted);
	pthread_mutex_unlock(&d->uid_lock);
	uid_free(old);
	uid_free((struct uid_entry *)evicted);
}

int rfs_discovery_token(struct rfs_discovery *d, uid_t uid, gid_t gid,
			pid_t pid, char **out, char *where, size_t wlen)
{
	const struct caller c = { uid, gid, pid };
	char here[256];
	int rc;

	*out = NULL;
	set_where(where, wlen, "(none)");
	rc = uid_cached(d, &c, out, where, wlen);
	if (rc != 1)
		return rc;
	rc = discover(d, &c, out, here, sizeof(here));
	set_where(where, wlen, "%s", here);
	/* a slow /proc or a lack of memory is no answer to keep */
	if (rc != -ETIMEDOUT && rc != -ENOMEM)
		uid_store(d, &c, rc, *out, here);
	return rc;
}

void rfs_discovery_forget(struct rfs_discovery *d, uid_t uid)
{
	struct uid_entry *e;
	struct lru_node *n, *next;

	pthread_mutex_lock(&d->uid_lock);
	e = (struct uid_entry *)lru_find(&d->uids, mix(uid), uid_match, &uid);
	if (e)
		lru_del(&d->uids, &e->node);
	pthread_mutex_unlock(&d->uid_lock);
	uid_free(e);
	/* the environment too: an expired $BEARER_TOKEN is read again */
	pthread_mutex_lock(&d->sess_lock);
	for (n = d->sessions.ring.next; n != &d->sessions.ring; n = next) {
		next = n->next;
		if (((struct session_entry *)n)->key.uid != uid)
			continue;
		lru_del(&d->sessions, n);
		session_free((struct session_entry *)n);
	}
	pthread_mutex_unlock(&d->sess_lock);
}

static void tables_release(struct rfs_discovery *d)
{
	struct lru_node *n;

	while ((n = lru_oldest(&d->uids))) {
		lru_del(&d->uids, n);
		uid_free((struct uid_entry *)n);
	}
	while ((n = lru_oldest(&d->sessions))) {
		lru_del(&d->sessions, n);
		session_free((struct session_entry *)n);
	}
	free(d->uids.bucket);
	free(d->sessions.bucket);
	d->uids.bucket = d->sessions.bucket = NULL;
}

static int tables_init(struct rfs_discovery *d, size_t uids, size_t sessions)
{
	int rc = lru_init(&d->uids, uids);

	if (!rc)
		rc = lru_init(&d->sessions, sessions);
	return rc;
}

static struct env_pool *pool_new(void)
{
	struct env_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	p->refs = 1;
	p->read = proc_read_env;
	return p;
}

int rfs_discovery_new(struct rfs_discovery **out,
		      const struct rfs_discover_opts *o)
{
	struct rfs_discovery *d = calloc(1, sizeof(*d));
	int rc = 0;

	*out = NULL;
	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->uid_lock, NULL);
	pthread_mutex_init(&d->sess_lock, NULL);
	d->token_env = o->token_env;
	/* NaN fails the test too */
	d->env_timeout = o->env_timeout > 0 && o->env_timeout <= 3600
				 ? o->env_timeout
				 : ENV_TIMEOUT_DEFAULT;
	d->forbid = o->forbid_dir ? strdup(o->forbid_dir) : NULL;
	d->run_user = strdup("/run/user");
	d->tmp = strdup("/tmp");
	d->pool = pool_new();
	if ((o->forbid_dir && !d->forbid) || !d->run_user || !d->tmp ||
	    !d->pool)
		rc = -ENOMEM;
	if (!rc)
		rc = tables_init(d, MAX_UIDS, MAX_SESSIONS);
	if (rc) {
		rfs_discovery_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void rfs_discovery_free(struct rfs_discovery *d)
{
	if (!d)
		return;
	if (d->pool)
		pool_release(d->pool);
	tables_release(d);
	free(d->forbid);
	free(d->run_user);
	free(d->tmp);
	pthread_mutex_destroy(&d->uid_lock);
	pthread_mutex_destroy(&d->sess_lock);
	free(d);
}

static int replace_str(char **dst, const char *src)
{
	char *s;

	if (!src)
		return 0;
	s = strdup(src);
	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

int rfs_discovery_set_hooks(struct rfs_discovery *d,
			    const struct rfs_discover_hooks *h)
{
	int rc = replace_str(&d->run_user, h->run_user);

	if (!rc)
		rc = replace_str(&d->tmp, h->tmp);
	if (h->read_env) {
		d->pool->read = h->read_env;
		d->pool->arg = h->arg;
	}
	if (!rc && (h->max_uids || h->max_sessions)) {
		tables_release(d);
		rc = tables_init(d, h->max_uids ? h->max_uids : MAX_UIDS,
				 h->max_sessions ? h->max_sessions
						 : MAX_SESSIONS);
	}
	return rc;
}

void rfs_discovery_sizes(struct rfs_discovery *d, size_t *uids,
			 size_t *sessions)
{
	pthread_mutex_lock(&d->uid_lock);
	*uids = d->uids.n;
	pthread_mutex_unlock(&d->uid_lock);
	pthread_mutex_lock(&d->sess_lock);
	*sessions = d->sessions.n;
	pthread_mutex_unlock(&d->sess_lock);
}
