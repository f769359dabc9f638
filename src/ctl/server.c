/*
 * The control socket: <cache_dir>/ctl.sock, mode 0600, served by one
 * accept thread and a thread per client. Only the mounting user and root
 * may talk to it (SO_PEERCRED). A client sends one JSON request line and
 * reads JSON lines back, the last one {"done": true, ...}.
 *
 *   {"op": "status"}       one object, docs/status-json.md
 *   {"op": "metrics"}      {"metrics": "<Prometheus text>"}
 *   {"op": "prefetch", "did": "scope:name", "pin": true|false}
 *   {"op": "unpin", "did": "scope:name"}
 *   {"op": "evict", "did": "scope:name"}
 *   {"op": "verify", "did": "scope:name"}   (no did: every cached file)
 *
 * It only carries requests: what they do is the core's (core/fs.h,
 * tasks.c). A prefetch skips the blocks already cached, so an
 * interrupted one resumes where it stopped; it stops when the client
 * goes away.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "core/fs.h"
#include "ctl/server.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/banned.h"

#define REQ_MAX (64 * 1024)
/* the metrics text; the client reads lines of up to 1 MiB */
#define METRICS_MAX (768 * 1024)
/* what status --json promises: docs/status-json.md */
#define STATUS_VERSION 1
#define PROGRESS_EVERY 0.25 /* seconds between progress lines */

#define MAX_CLIENTS 32

struct rfs_ctl {
	struct rfs_fs *fs;
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
	struct rfs_ctl *ctl;
	int fd;
	int slot;
	double last;	      /* the last progress line */
	struct rfs_cred *who; /* the peer, owned; NULL until checked */
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
	struct rfs_fs_stats st;
	json_t *eps = json_object(), *o;

	if (rfs_fs_stats(fs, &st)) {
		json_decref(eps);
		return NULL;
	}
	for (size_t i = 0; eps && i < st.nendpoints; i++)
		json_object_set_new(
			eps, st.endpoints[i].rse,
			json_pack("{s:I,s:I,s:I,s:I,s:b}", "bytes",
				  (json_int_t)st.endpoints[i].bytes, "errors",
				  (json_int_t)st.endpoints[i].errors, "slow",
				  (json_int_t)st.endpoints[i].slow, "rate",
				  (json_int_t)st.endpoints[i].rate,
				  "last_resort", st.endpoints[i].last_resort));
	o = json_pack(
		"{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
		"s:I,s:I,s:I,s:I}",
		"cache_dir", st.cache_dir, "block_size",
		(json_int_t)st.block_size, "quota", (json_int_t)st.quota,
		"used", (json_int_t)st.used, "pinned", (json_int_t)st.pinned,
		"files", (json_int_t)st.files, "hits", (json_int_t)st.hits,
		"misses", (json_int_t)st.misses, "cache_bytes",
		(json_int_t)st.cache_bytes, "net_bytes",
		(json_int_t)st.net_bytes, "corrupt", (json_int_t)st.corrupt,
		"evicted", (json_int_t)st.evicted, "dropped",
		(json_int_t)st.dropped, "whole_opens",
		(json_int_t)st.whole_opens, "written", (json_int_t)st.written,
		"write_us", (json_int_t)st.write_us, "wait_us",
		(json_int_t)st.wait_us);
	if (!o) {
		json_decref(eps);
		return NULL;
	}
	json_object_set_new(o, "endpoints", eps);
	json_object_set_new(o, "offline", json_boolean(st.offline));
	json_object_set_new(o, "checksums",
			    json_pack("{s:I,s:I}", "matched",
				      (json_int_t)st.matched, "wrong",
				      (json_int_t)st.wrong));
	json_object_set_new(o, "staged", json_integer((json_int_t)st.staged));
	json_object_set_new(o, "sessions",
			    json_pack("{s:I,s:I}", "busy",
				      (json_int_t)st.sessions_busy, "idle",
				      (json_int_t)st.sessions_idle));
	json_object_set_new(o, "evicted_files",
			    json_integer((json_int_t)st.evicted_files));
	json_object_set_new(o, "version", json_integer(STATUS_VERSION));
	return o;
}

/* The Prometheus text as one JSON string; the client prints it. */
static void send_metrics(struct client *c)
{
	struct rfs_buf b;
	int rc;

	rfs_buf_init(&b, METRICS_MAX);
	rc = rfs_fs_metrics(c->ctl->fs, &b);
	if (!rc)
		send_json(c->fd, json_pack("{s:s%}", "metrics",
					   b.data ? b.data : "", b.len));
	send_done(c->fd, rc, rc ? "cannot render the metrics" : NULL);
	rfs_buf_release(&b);
}

/* A task's progress, as a line to its client (not more often than
 * PROGRESS_EVERY unless a file is done). */
static bool on_progress(void *arg, const struct rfs_task_progress *p,
			bool force)
{
	struct client *c = arg;
	double now = rfs_mono_now();

	if (!force && now - c->last < PROGRESS_EVERY)
		return true;
	c->last = now;
	return send_json(c->fd,
			 json_pack("{s:{s:I,s:I,s:I,s:I}}", "progress", "files",
				   (json_int_t)p->files, "files_done",
				   (json_int_t)p->files_done, "bytes",
				   (json_int_t)p->bytes, "bytes_done",
				   (json_int_t)p->bytes_done));
}

static bool on_bad(void *arg, const char *did, const char *why)
{
	struct client *c = arg;

	return send_json(c->fd, json_pack("{s:s,s:s}", "bad", did, "why", why));
}

static int do_prefetch(struct client *c, const char *did, bool pin, char *msg,
		       size_t mlen)
{
	struct rfs_task_cb cb = { on_progress, NULL, c };
	struct rfs_task_progress p;
	int rc = rfs_fs_prefetch(c->ctl->fs, c->who, did, pin, &cb, &p, msg,
				 mlen);

	if (rc != -ECONNABORTED && p.files)
		send_json(c->fd, json_pack("{s:I}", "cached_before",
					   (json_int_t)p.cached_before));
	return rc;
}

static int do_verify(struct client *c, const char *did, char *msg, size_t mlen)
{
	struct rfs_task_cb cb = { on_progress, on_bad, c };
	struct rfs_scrub_result r;
	int rc = rfs_fs_scrub(c->ctl->fs, c->who, did, &cb, &r, msg, mlen);

	if (rc != -ECONNABORTED && rc != -ENOTSUP && rc != -ENOENT &&
	    rc != -EINVAL)
		send_json(c->fd, json_pack("{s:{s:I,s:I,s:I}}", "verified",
					   "good", (json_int_t)r.good, "bad",
					   (json_int_t)r.bad, "incomplete",
					   (json_int_t)r.incomplete));
	return rc;
}

static void serve(struct client *c, json_t *req)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	const char *did = json_string_value(json_object_get(req, "did"));
	bool pin = json_is_true(json_object_get(req, "pin"));
	struct rfs_fs *fs = c->ctl->fs;
	char msg[512] = "";
	int rc;

	if (op && !strcmp(op, "status")) {
		send_json(c->fd, status_json(fs));
		send_done(c->fd, 0, NULL);
		return;
	}
	if (op && !strcmp(op, "metrics")) {
		send_metrics(c);
		return;
	}
	if (!op || (!did && strcmp(op, "verify"))) {
		send_done(c->fd, -EINVAL, "unknown request");
		return;
	}
	if (!strcmp(op, "prefetch"))
		rc = do_prefetch(c, did, pin, msg, sizeof(msg));
	else if (!strcmp(op, "verify"))
		rc = do_verify(c, did, msg, sizeof(msg));
	else if (!strcmp(op, "unpin"))
		rc = rfs_fs_unpin(fs, c->who, did, msg, sizeof(msg));
	else if (!strcmp(op, "evict"))
		rc = rfs_fs_evict(fs, c->who, did, msg, sizeof(msg));
	else
		rc = -EINVAL, snprintf(msg, sizeof(msg), "unknown request");
	if (rc != -ECONNABORTED)
		send_done(c->fd, rc, msg[0] ? msg : NULL);
}

/* Only root and the mounting user may drive the cache; the work is then
 * done as that peer, so a pin reads with the peer's own credentials. */
static bool peer_allowed(struct client *c)
{
	struct rfs_fs *fs = c->ctl->fs;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		return false;
	if (cred.uid != 0 && cred.uid != rfs_fs_conf(fs)->uid)
		return false;
	return rfs_fs_caller(fs, cred.uid, cred.gid, cred.pid, &c->who) == 0;
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
	rfs_fs_cred_put(c->who);
	free(c);
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct rfs_ctl *ctl = c->ctl;
	json_t *req;

	if (!peer_allowed(c)) {
		send_done(c->fd, -EACCES, "only the mounting user and root");
	} else if ((req = read_request(c->fd))) {
		serve(c, req);
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

static void spawn_client(struct rfs_ctl *ctl, int fd)
{
	struct client *c = calloc(1, sizeof(*c));
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
	c->ctl = ctl;
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
	struct rfs_ctl *ctl = arg;

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
			spawn_client(ctl, fd);
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

int rfs_ctl_start(struct rfs_ctl **out, struct rfs_fs *fs, const char *dir)
{
	struct rfs_ctl *ctl = calloc(1, sizeof(*ctl));
	int n, rc;

	*out = NULL;
	if (!ctl)
		return -ENOMEM;
	ctl->fs = fs;
	ctl->fd = -1;
	ctl->stop_pipe[0] = ctl->stop_pipe[1] = -1;
	pthread_mutex_init(&ctl->lock, NULL);
	pthread_cond_init(&ctl->idle, NULL);
	for (int i = 0; i < MAX_CLIENTS; i++)
		ctl->client_fds[i] = -1;
	n = snprintf(ctl->path, sizeof(ctl->path), "%s/ctl.sock", dir);
	rc = n < 0 || (size_t)n >= sizeof(ctl->path) ? -ENAMETOOLONG : 0;
	if (!rc)
		rc = pipe2(ctl->stop_pipe, O_CLOEXEC) ? -errno : 0;
	if (!rc)
		rc = listen_on(ctl);
	if (!rc)
		rc = -pthread_create(&ctl->thread, NULL, accept_main, ctl);
	if (!rc) {
		rfs_fs_set_ctl_path(fs, ctl->path);
		*out = ctl;
		return 0;
	}
	if (ctl->fd >= 0)
		close(ctl->fd);
	for (int i = 0; i < 2; i++)
		if (ctl->stop_pipe[i] >= 0)
			close(ctl->stop_pipe[i]);
	pthread_cond_destroy(&ctl->idle);
	pthread_mutex_destroy(&ctl->lock);
	free(ctl);
	return rc;
}

void rfs_ctl_stop(struct rfs_ctl *ctl)
{
	if (!ctl)
		return;
	rfs_fs_set_ctl_path(ctl->fs, NULL);
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
}
