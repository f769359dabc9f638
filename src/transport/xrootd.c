/*
 * XRootD transport (root://, roots://): our own client for the read-only
 * subset of the protocol (frames in xrd_wire.c), so that a connection
 * logged in with one caller's token never carries another's request and
 * the bytes land in the cache's buffers with no copy.
 *
 * A session (endpoint, identity key) is a small pool of logged-in
 * connections. Each connection has one receive thread that demultiplexes
 * answers by stream id, so the read-ahead's requests are in flight
 * together; callers send their own frames (a frame goes out whole under
 * the connection's write lock) and wait on their request's slot. Data is
 * read by the receive thread straight into the caller's iovecs; a caller
 * that gives up while its bytes are arriving breaks the connection first,
 * so no late byte lands in a buffer it has handed back.
 *
 * A file lives on the connection its open was answered on: a pooled one,
 * or after a redirect one of its own to the data server. A broken
 * connection fails every request on it; the read path then moves to the
 * next replica.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "conf/conf.h"
#include "transport/transport.h"
#include "transport/xrd_wire.h"
#include "util/clock.h"
#include "util/errmap.h"
#include "util/log.h"
#include "util/net.h"
#include "util/str.h"
#include "util/banned.h"

#define POOL_MAX 4		 /* connections per session */
#define POOL_BUSY 8		 /* requests in flight before another opens */
#define HOPS_MAX 8		 /* redirects followed by one open */
#define BODY_MAX (64 << 10)	 /* any answer that is not file data */
#define READ_MAX (8u << 20)	 /* bytes asked by one kXR_read */
#define READV_PIECE (1u << 20)	 /* a vector segment's piece */
#define READV_TOTAL (256u << 20) /* bytes asked by one kXR_readv */
#define PATH_MAX_XRD 8192
#define FRAME_MAX (RFS_XRD_REQ_HDR + PATH_MAX_XRD + 4096)

struct xrd_transport {
	struct rfs_transport base;
	struct rfs_netpol pol;
	SSL_CTX *ssl_ctx;
	double connect_timeout;
	double io_timeout;
	char user[33];
	char group[33];
};

enum sink_kind { SINK_NONE, SINK_IOV, SINK_RV };

/* One request in flight on a connection. */
struct slot {
	uint16_t sid;
	bool done;	/* its final answer is in (or the connection broke) */
	bool abandoned; /* its caller left: the receiver frees it */
	bool busy;	/* the receiver is writing into its sink */
	bool async;	/* a waitresp came: the answer comes as an attn */
	bool is_open;	/* a late successful open is closed again */
	int rc;		/* the connection's error, or 0 */
	struct rfs_xrd_hdr hdr;
	uint8_t *body; /* a non-data answer's body */
	size_t blen;
	enum sink_kind kind;
	/* SINK_IOV: the file bytes go here, in order */
	const struct iovec *iov;
	int iovcnt, cur;
	size_t used, want;
	/* SINK_RV: a vector answer, checked segment by segment */
	struct rfs_xrd_rv *rv;
	uint8_t *const *bufs;
	uint64_t got;	    /* data bytes so far (atomic: read for go_on) */
	unsigned frames;    /* answers so far (atomic): signs of life */
	uint32_t wait_secs; /* what a waitresp said it may take */
	struct slot *next;
};

struct conn {
	struct xrd_transport *t;
	int fd;
	SSL *ssl;
	char host[256];
	int port;
	/* lock: slots, broken, refs, inflight; a leaf, never held across
	 * a network wait */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* wlock: one frame goes out whole (held while it is written, under
	 * the connection's io_timeout); slock: the SSL object, held only
	 * for one non-blocking call */
	pthread_mutex_t wlock;
	pthread_mutex_t slock;
	struct slot *slots;
	uint16_t next_sid;
	int broken;
	bool stop;
	unsigned refs;
	unsigned inflight;
	pthread_t rx;
	bool rx_started;
	bool ztn; /* logged in with a caller's token */
};

struct xsess {
	pthread_mutex_t lock;
	struct conn *conns[POOL_MAX];
	size_t n;
	bool tls;
	char host[256];
	int port;
};

/* A remote open: the connection it lives on, its handle. */
struct xfile {
	struct conn *c;
	uint8_t fh[4];
	bool redirected;
	char where[300]; /* the data server, for log lines */
};

/*
 * An rfs_tfile's: its current remote open, replaced when its connection
 * dies (a server's idle timeout, a read given up): readers take a copy
 * with a reference on the connection, so none waits on another's reopen.
 */
struct xopen {
	pthread_mutex_t lock; /* a leaf: only copies and swaps under it */
	struct xfile h;
};

/* ---- the socket, plain or TLS, non-blocking ---- */

/* Waits for @events until @deadline (0: none, but c->stop is seen). */
static int io_wait(struct conn *c, short events, double deadline)
{
	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = events };
		double left = deadline ? deadline - rfs_mono_now() : 1.0;
		int ms, rc;

		if (left <= 0)
			return -ETIMEDOUT;
		ms = left > 1.0 ? 1000 : (int)(left * 1000) + 1;
		rc = poll(&p, 1, ms);
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -errno;
		if (__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE))
			return -ECANCELED;
	}
}

/* One non-blocking TLS call's verdict: -EAGAIN with *@ev to wait for. */
static ssize_t ssl_result(SSL *ssl, int n, short *ev)
{
	switch (SSL_get_error(ssl, n)) {
	case SSL_ERROR_NONE:
		return n;
	case SSL_ERROR_WANT_READ:
		*ev = POLLIN;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		*ev = POLLOUT;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		ERR_clear_error();
		return -ECONNRESET;
	}
}

/*
 * OpenSSL writes with write(2) (data, and alerts when a read or a
 * handshake fails), which raises SIGPIPE on a socket the server closed:
 * it is blocked for this thread around each TLS call, and a pending one
 * taken, so a program that does not ignore it lives.
 */
static void pipe_block(sigset_t *old)
{
	sigset_t pipe;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, old);
}

static void pipe_restore(const sigset_t *old, bool failed)
{
	static const struct timespec now = { 0, 0 };
	sigset_t pipe;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	if (failed && !sigismember(old, SIGPIPE))
		while (sigtimedwait(&pipe, NULL, &now) == SIGPIPE)
			;
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

enum ssl_op { SSL_OP_READ, SSL_OP_WRITE, SSL_OP_CONNECT };

/* A receive thread keeps SIGPIPE blocked for good: two system calls
 * less per TLS record */
static __thread bool pipe_off;

/* One TLS call and its verdict under c->slock, SIGPIPE held off. */
static ssize_t ssl_call(struct conn *c, enum ssl_op op, void *buf, size_t n,
			short *ev)
{
	int len = n > INT32_MAX ? INT32_MAX : (int)n, r;
	ssize_t v;
	sigset_t old;

	if (!pipe_off)
		pipe_block(&old);
	pthread_mutex_lock(&c->slock);
	if (op == SSL_OP_READ)
		r = SSL_read(c->ssl, buf, len);
	else if (op == SSL_OP_WRITE)
		r = SSL_write(c->ssl, buf, len);
	else
		r = SSL_connect(c->ssl);
	v = ssl_result(c->ssl, r, ev);
	pthread_mutex_unlock(&c->slock);
	if (!pipe_off)
		pipe_restore(&old, r <= 0);
	return v;
}

static ssize_t raw_recv(struct conn *c, void *buf, size_t n, short *ev)
{
	ssize_t r;

	*ev = POLLIN;
	if (!c->ssl) {
		r = recv(c->fd, buf, n, 0);
		if (r < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ||
					       errno == EINTR
				       ? -EAGAIN
				       : -errno;
		return r;
	}
	return ssl_call(c, SSL_OP_READ, buf, n, ev);
}

static ssize_t raw_send(struct conn *c, const void *buf, size_t n, short *ev)
{
	ssize_t r;

	*ev = POLLOUT;
	if (!c->ssl) {
		r = send(c->fd, buf, n, MSG_NOSIGNAL);
		if (r < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ||
					       errno == EINTR
				       ? -EAGAIN
				       : -errno;
		return r;
	}
	r = ssl_call(c, SSL_OP_WRITE, (void *)buf, n, ev);
	return r <= 0 && r != -EAGAIN ? -ECONNRESET : r;
}

/* Exactly @n bytes, by @deadline (0: none, while the connection lives). */
static int recv_exact(struct conn *c, void *buf, size_t n, double deadline)
{
	uint8_t *p = buf;

	while (n) {
		short ev;
		ssize_t r = raw_recv(c, p, n, &ev);

		if (r == 0)
			return -ECONNRESET;
		if (r == -EAGAIN) {
			int rc = io_wait(c, ev, deadline);

			if (rc)
				return rc;
			continue;
		}
		if (r < 0)
			return (int)r;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int send_all(struct conn *c, const void *buf, size_t n, double deadline)
{
	const uint8_t *p = buf;

	while (n) {
		short ev;
		ssize_t r = raw_send(c, p, n, &ev);

		if (r == -EAGAIN) {
			int rc = io_wait(c, ev, deadline);

			if (rc)
				return rc;
			continue;
		}
		if (r <= 0)
			return r ? (int)r : -ECONNRESET;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* ---- connecting: socket, handshake, TLS, login, authentication ---- */

static int connect_addr(struct conn *c, const struct addrinfo *ai,
			double deadline)
{
	int fd = socket(ai->ai_family,
			SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1, err = 0, rc;
	socklen_t len = sizeof(err);

	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS) {
		rc = -errno;
		goto fail;
	}
	rc = io_wait(c, POLLOUT, deadline);
	if (!rc && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
		rc = -err;
	if (!rc)
		return 0;
fail:
	close(fd);
	c->fd = -1;
	return rc;
}

/* Every address of c->host the policy allows, until one connects. */
static int connect_host(struct conn *c, double deadline, char *why,
			size_t whylen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	char port[16];
	bool need_range = false;
	int rc = rfs_netpol_check_host(&c->t->pol, c->host, &need_range, why,
				       whylen);

	if (rc)
		return rc;
	snprintf(port, sizeof(port), "%d", c->port);
	if (getaddrinfo(c->host, port, &hints, &res))
		return -EHOSTUNREACH;
	rc = -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		if (rfs_netpol_check_addr(&c->t->pol, ai->ai_addr,
					  ai->ai_addrlen, need_range, why,
					  whylen)) {
			rc = -EPERM;
			continue;
		}
		rc = connect_addr(c, ai, deadline);
		if (!rc)
			break;
	}
	freeaddrinfo(res);
	return rc;
}

/* One answer during set-up (before the receive thread runs). */
static int sync_answer(struct conn *c, struct rfs_xrd_hdr *h, uint8_t *body,
		       size_t cap, double deadline)
{
	uint8_t hb[RFS_XRD_RSP_HDR];
	int rc = recv_exact(c, hb, sizeof(hb), deadline);

	if (!rc)
		rc = rfs_xrd_parse_hdr(hb, sizeof(hb), h);
	if (!rc && h->dlen > cap)
		rc = -EPROTO;
	if (!rc)
		rc = recv_exact(c, body, h->dlen, deadline);
	return rc;
}

/* An error answer's errno, its message logged up to any query string. */
static int answer_errno(const struct conn *c, const uint8_t *b, size_t n,
			const char *what)
{
	char msg[256], safe[256];
	int32_t num;

	if (rfs_xrd_parse_error(b, n, &num, msg, sizeof(msg)))
		return -EPROTO;
	/* a path's CGI (a redirect's opaque, a signed URL) is not logged */
	msg[strcspn(msg, "?")] = '\0';
	rfs_escape_controls(safe, sizeof(safe), msg);
	rfs_info("xrootd %s:%d %s: [%d] %s", c->host, c->port, what, num, safe);
	return rfs_errno_from_xrd(num);
}

static int start_tls(struct conn *c, double deadline)
{
	struct in6_addr a6;
	X509_VERIFY_PARAM *vp;
	int rc;

	c->ssl = SSL_new(c->t->ssl_ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->fd))
		return -ENOMEM;
	SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
				     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	vp = SSL_get0_param(c->ssl);
	if (inet_pton(AF_INET, c->host, &a6) == 1 ||
	    inet_pton(AF_INET6, c->host, &a6) == 1) {
		if (!X509_VERIFY_PARAM_set1_ip_asc(vp, c->host))
			return -EINVAL;
	} else if (!SSL_set1_host(c->ssl, c->host) ||
		   !SSL_set_tlsext_host_name(c->ssl, c->host)) {
		return -EINVAL;
	}
	for (;;) {
		short ev = POLLIN;
		ssize_t r;

		r = ssl_call(c, SSL_OP_CONNECT, NULL, 0, &ev);
		if (r > 0)
			return 0;
		if (r != -EAGAIN) {
			long v = SSL_get_verify_result(c->ssl);

			if (v != X509_V_OK)
				rfs_warn("xrootd %s:%d: TLS certificate not "
					 "trusted: %s",
					 c->host, c->port,
					 X509_verify_cert_error_string(v));
			return v != X509_V_OK ? -EACCES : -ECONNRESET;
		}
		rc = io_wait(c, ev, deadline);
		if (rc)
			return rc;
	}
}

/* The handshake and kXR_protocol; TLS when the server says so. */
static int hello(struct conn *c, bool want_tls, double deadline)
{
	uint8_t frame[64], body[1024];
	struct rfs_xrd_hdr h;
	uint32_t pv, kind, flags;
	ssize_t n = rfs_xrd_req_hello(
		frame, sizeof(frame), 0,
		RFS_XRD_ABLE_TLS | (want_tls ? RFS_XRD_WANT_TLS : 0));
	int rc = send_all(c, frame, (size_t)n, deadline);

	if (!rc)
		rc = sync_answer(c, &h, body, sizeof(body), deadline);
	if (!rc && (h.status != RFS_XRD_OK ||
		    rfs_xrd_parse_handshake(body, h.dlen, &pv, &kind)))
		rc = -EPROTO;
	if (!rc)
		rc = sync_answer(c, &h, body, sizeof(body), deadline);
	if (!rc && h.status != RFS_XRD_OK)
		rc = h.status == RFS_XRD_ERROR
			     ? answer_errno(c, body, h.dlen, "protocol")
			     : -EPROTO;
	if (!rc && rfs_xrd_parse_protocol(body, h.dlen, &pv, &flags))
		rc = -EPROTO;
	if (rc)
		return rc;
	if (flags & RFS_XRD_GOTO_TLS)
		return start_tls(c, deadline);
	/* roots:// is TLS or nothing */
	return want_tls ? -EPROTONOSUPPORT : 0;
}

/* The caller's token, asked only for a TLS connection it may go to. */
static int take_bearer(struct conn *c, const struct rfs_who *who,
		       const char *origin, char **tok)
{
	*tok = NULL;
	if (!c->ssl || !who || !who->bearer ||
	    !rfs_netpol_token_ok(&c->t->pol, origin, c->host, true))
		return 0;
	return who->bearer(who->arg, tok);
}

/* Sends one authentication frame and reads its verdict. */
static int auth_round(struct conn *c, const uint8_t *frame, size_t n,
		      double deadline)
{
	uint8_t body[1024];
	struct rfs_xrd_hdr h;
	int rc = send_all(c, frame, n, deadline);

	if (!rc)
		rc = sync_answer(c, &h, body, sizeof(body), deadline);
	if (rc)
		return rc;
	if (h.status == RFS_XRD_OK)
		return 0;
	if (h.status == RFS_XRD_ERROR)
		return answer_errno(c, body, h.dlen, "auth");
	return -EACCES; /* authmore: no protocol of ours needs it */
}

static int auth_ztn(struct conn *c, const char *tok, double deadline)
{
	size_t tl = strlen(tok), cap = tl + 64;
	uint8_t *frame = malloc(cap);
	ssize_t n;
	int rc;

	if (!frame)
		return -ENOMEM;
	n = rfs_xrd_req_auth_ztn(frame, cap, 0, tok, tl);
	rc = n < 0 ? (int)n : auth_round(c, frame, (size_t)n, deadline);
	rfs_wipe(frame, cap);
	free(frame);
	return rc;
}

/*
 * Authentication as the login's security string asks: ztn with the
 * caller's token (TLS only: -EAGAIN asks for a TLS connection), else
 * unix as the daemon's user.
 */
static int authenticate(struct conn *c, const char *sec,
			const struct rfs_who *who, const char *origin,
			double deadline)
{
	uint8_t frame[RFS_XRD_REQ_HDR + 600];
	char *tok = NULL;
	ssize_t n;
	int rc;

	if (!sec[0])
		return 0;
	if (rfs_xrd_sec_offers(sec, "ztn", NULL, 0)) {
		if (!c->ssl)
			return -EAGAIN;
		rc = take_bearer(c, who, origin, &tok);
		if (rc)
			return rc;
		if (tok) {
			rc = auth_ztn(c, tok, deadline);
			rfs_wipe(tok, strlen(tok));
			free(tok);
			c->ztn = !rc;
			return rc;
		}
	}
	if (!rfs_xrd_sec_offers(sec, "unix", NULL, 0))
		return -EACCES;
	n = rfs_xrd_req_auth_unix(frame, sizeof(frame), 0, c->t->user,
				  c->t->group);
	return n < 0 ? (int)n : auth_round(c, frame, (size_t)n, deadline);
}

static int login(struct conn *c, const struct rfs_who *who, const char *origin,
		 double deadline)
{
	uint8_t frame[RFS_XRD_REQ_HDR + 64], sessid[16];
	/* gsi lists its CAs' hashes here: room for a long string */
	uint8_t body[8192];
	char sec[4096];
	struct rfs_xrd_hdr h;
	ssize_t n = rfs_xrd_req_login(frame, sizeof(frame), 0,
				      (int32_t)getpid(), c->t->user, NULL);
	int rc = n < 0 ? (int)n : send_all(c, frame, (size_t)n, deadline);

	if (!rc)
		rc = sync_answer(c, &h, body, sizeof(body), deadline);
	if (!rc && h.status == RFS_XRD_ERROR)
		return answer_errno(c, body, h.dlen, "login");
	if (!rc &&
	    (h.status != RFS_XRD_OK ||
	     rfs_xrd_parse_login(body, h.dlen, sessid, sec, sizeof(sec))))
		rc = -EPROTO;
	if (!rc)
		rc = authenticate(c, sec, who, origin, deadline);
	return rc;
}

static void *rx_main(void *arg);

static void conn_free(struct conn *c)
{
	struct slot *s;

	if (c->rx_started) {
		__atomic_store_n(&c->stop, true, __ATOMIC_RELEASE);
		shutdown(c->fd, SHUT_RDWR);
		pthread_join(c->rx, NULL);
	}
	while ((s = c->slots)) { /* only abandoned ones remain */
		c->slots = s->next;
		free(s->body);
		free(s);
	}
	if (c->ssl)
		SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->wlock);
	pthread_mutex_destroy(&c->slock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

static void conn_put(struct conn *c)
{
	bool last;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	last = --c->refs == 0;
	pthread_mutex_unlock(&c->lock);
	if (last)
		conn_free(c);
}

static void conn_ref(struct conn *c)
{
	pthread_mutex_lock(&c->lock);
	c->refs++;
	pthread_mutex_unlock(&c->lock);
}

static struct conn *conn_new(struct xrd_transport *t, const char *host,
			     int port)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->t = t;
	c->fd = -1;
	c->refs = 1;
	c->next_sid = 1;
	snprintf(c->host, sizeof(c->host), "%s", host);
	c->port = port;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->wlock, NULL);
	pthread_mutex_init(&c->slock, NULL);
	pthread_cond_init(&c->cond, NULL);
	return c;
}

/* One attempt: TCP, hello (TLS), login and authentication. */
static int conn_try(struct conn *c, bool tls, const struct rfs_who *who,
		    const char *origin, char *why, size_t whylen)
{
	struct xrd_transport *t = c->t;
	double start = rfs_mono_now();
	int rc = connect_host(c, start + t->connect_timeout, why, whylen);

	if (!rc)
		rc = hello(c, tls, start + t->connect_timeout + t->io_timeout);
	if (!rc)
		rc = login(c, who, origin,
			   start + t->connect_timeout + t->io_timeout);
	return rc;
}

/*
 * A logged-in connection to @host:@port for @who, its receive thread
 * running. A server that offers ztn to a plain connection gets a TLS
 * one instead: a token never goes in clear.
 */
static int conn_open(struct xrd_transport *t, const char *host, int port,
		     bool tls, const struct rfs_who *who, const char *origin,
		     struct conn **out, char *why, size_t whylen)
{
	struct conn *c = conn_new(t, host, port);
	int rc;

	if (!c)
		return -ENOMEM;
	rc = conn_try(c, tls, who, origin, why, whylen);
	if (rc == -EAGAIN && !tls) {
		conn_free(c);
		c = conn_new(t, host, port);
		if (!c)
			return -ENOMEM;
		rc = conn_try(c, true, who, origin, why, whylen);
	}
	if (rc == -EAGAIN)
		rc = -EACCES;
	if (!rc) {
		rc = -pthread_create(&c->rx, NULL, rx_main, c);
		c->rx_started = !rc;
	}
	if (rc) {
		conn_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* ---- the receive thread ---- */

/* Where an answer's body comes from: the socket, or an attn's body. */
struct src {
	struct conn *c;
	const uint8_t *mem;
	size_t left;
};

static int src_read(struct src *s, void *buf, size_t n)
{
	if (!s->mem)
		return recv_exact(s->c, buf, n, 0);
	if (n > s->left)
		return -EPROTO;
	memcpy(buf, s->mem, n);
	s->mem += n;
	s->left -= n;
	return 0;
}

static int src_drop(struct src *s, size_t n)
{
	uint8_t junk[16384];

	while (n) {
		size_t k = n < sizeof(junk) ? n : sizeof(junk);
		int rc = src_read(s, junk, k);

		if (rc)
			return rc;
		n -= k;
	}
	return 0;
}

/* Under c->lock. */
static struct slot *find_slot(struct conn *c, uint16_t sid)
{
	for (struct slot *s = c->slots; s; s = s->next)
		if (s->sid == sid)
			return s;
	return NULL;
}

/* Under c->lock. */
static void unlink_slot(struct conn *c, struct slot *s)
{
	for (struct slot **pp = &c->slots; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			c->inflight--;
			return;
		}
}

/* @n bytes of file data into the slot's buffers, in place. */
static int sink_iov(struct src *src, struct slot *s, size_t n)
{
	if (n > s->want - s->got)
		return -EPROTO; /* more than was asked: never written */
	while (n) {
		const struct iovec *v;
		size_t k;
		int rc;

		while (s->used == s->iov[s->cur].iov_len &&
		       s->cur + 1 < s->iovcnt) {
			s->cur++;
			s->used = 0;
		}
		v = &s->iov[s->cur];
		k = v->iov_len - s->used < n ? v->iov_len - s->used : n;
		rc = src_read(src, (char *)v->iov_base + s->used, k);
		if (rc)
			return rc;
		s->used += k;
		n -= k;
		__atomic_add_fetch(&s->got, k, __ATOMIC_RELAXED);
	}
	return 0;
}

/* @n bytes of a vector answer, every segment header checked. */
static int sink_rv(struct src *src, struct slot *s, size_t n)
{
	while (n) {
		ssize_t seg;
		uint32_t at;
		uint8_t *where;
		size_t k = rfs_xrd_rv_next(s->rv, &seg, &at, &where);
		int rc;

		if (k == 0)
			return -EPROTO;
		if (k > n)
			k = n;
		if (seg >= 0)
			where = s->bufs[seg] + at;
		rc = src_read(src, where, k);
		if (!rc)
			rc = rfs_xrd_rv_took(s->rv, k);
		if (rc)
			return rc;
		n -= k;
		if (seg >= 0)
			__atomic_add_fetch(&s->got, k, __ATOMIC_RELAXED);
	}
	return 0;
}

static int body_keep(struct src *src, struct slot *s, size_t n)
{
	uint8_t *b;
	int rc;

	if (n > BODY_MAX || s->blen + n > BODY_MAX)
		return -EPROTO;
	b = realloc(s->body, s->blen + n + 1);
	if (!b)
		return -ENOMEM;
	s->body = b;
	rc = src_read(src, b + s->blen, n);
	s->blen += n;
	return rc;
}

static void send_close(struct conn *c, const uint8_t fh[4]);

/*
 * An answer for a request whose caller left (or none): dropped, and a
 * late successful open is closed at once (its handle would leak).
 */
static int orphan_answer(struct conn *c, bool is_open,
			 const struct rfs_xrd_hdr *h, struct src *src)
{
	uint8_t body[256], fh[4];
	struct rfs_xrd_stat st;
	bool has_stat;
	int rc;

	if (!is_open || h->status != RFS_XRD_OK || h->dlen > sizeof(body))
		return src_drop(src, h->dlen);
	rc = src_read(src, body, h->dlen);
	if (!rc && !rfs_xrd_parse_open(body, h->dlen, fh, &st, &has_stat))
		send_close(c, fh);
	return rc;
}

/* Under c->lock: an abandoned slot goes with its final answer. */
static bool orphan_take(struct conn *c, struct slot *s,
			const struct rfs_xrd_hdr *h)
{
	bool is_open = s->is_open;

	if (h->status != RFS_XRD_OKSOFAR && h->status != RFS_XRD_WAITRESP) {
		unlink_slot(c, s);
		free(s->body);
		free(s);
	}
	return is_open;
}

static bool is_data(const struct rfs_xrd_hdr *h)
{
	return h->status == RFS_XRD_OK || h->status == RFS_XRD_OKSOFAR;
}

/* The body of one answer for @h->sid, from @src. */
static int dispatch(struct conn *c, const struct rfs_xrd_hdr *h,
		    struct src *src)
{
	struct slot *s;
	int rc;

	pthread_mutex_lock(&c->lock);
	s = find_slot(c, h->sid);
	if (!s || s->abandoned) {
		bool is_open = s && orphan_take(c, s, h);

		pthread_mutex_unlock(&c->lock);
		return orphan_answer(c, is_open, h, src);
	}
	s->busy = true;
	pthread_mutex_unlock(&c->lock);

	if (is_data(h) && s->kind == SINK_IOV)
		rc = sink_iov(src, s, h->dlen);
	else if (is_data(h) && s->kind == SINK_RV)
		rc = sink_rv(src, s, h->dlen);
	else
		rc = body_keep(src, s, h->dlen);

	pthread_mutex_lock(&c->lock);
	s->busy = false;
	__atomic_add_fetch(&s->frames, 1, __ATOMIC_RELAXED);
	if (h->status == RFS_XRD_WAITRESP) {
		s->async = true;
		if (!rc && rfs_xrd_parse_wait(s->body, s->blen, &s->wait_secs))
			rc = -EPROTO;
		free(s->body); /* the real answer comes in an attn */
		s->body = NULL;
		s->blen = 0;
	} else if (h->status != RFS_XRD_OKSOFAR) {
		s->hdr = *h;
		s->done = true;
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* kXR_attn: an asynresp carries the answer a waitresp promised. */
static int on_attn(struct conn *c, const struct rfs_xrd_hdr *h)
{
	struct rfs_xrd_hdr inner;
	const uint8_t *body;
	uint8_t *b;
	int32_t action;
	int rc;

	if (h->dlen > READ_MAX + BODY_MAX)
		return -EPROTO;
	b = malloc(h->dlen ? h->dlen : 1);
	if (!b)
		return -ENOMEM;
	rc = recv_exact(c, b, h->dlen, 0);
	if (!rc)
		rc = rfs_xrd_parse_attn(b, h->dlen, &action, &inner, &body);
	if (!rc && action == RFS_XRD_ASYNRESP) {
		struct src src = { .c = c, .mem = body, .left = inner.dlen };

		rc = inner.status == RFS_XRD_ATTN ? -EPROTO
						  : dispatch(c, &inner, &src);
	}
	free(b);
	return rc;
}

/* Every request on a dead connection fails with @err. */
static void conn_break(struct conn *c, int err)
{
	pthread_mutex_lock(&c->lock);
	if (!c->broken)
		c->broken = err;
	for (struct slot **pp = &c->slots; *pp;) {
		struct slot *s = *pp;

		if (s->abandoned && !s->busy) {
			*pp = s->next;
			c->inflight--;
			free(s->body);
			free(s);
			continue;
		}
		s->rc = err;
		s->done = true;
		pp = &s->next;
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	shutdown(c->fd, SHUT_RDWR);
}

static void *rx_main(void *arg)
{
	struct conn *c = arg;
	sigset_t pipe;
	int rc;

	/* a SIGPIPE raised here stays pending, and goes with the thread */
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);
	pipe_off = true;
	pthread_setname_np(pthread_self(), "rfs-xrd");
	for (;;) {
		uint8_t hb[RFS_XRD_RSP_HDR];
		struct rfs_xrd_hdr h;
		struct src src = { .c = c };

		rc = recv_exact(c, hb, sizeof(hb), 0);
		if (!rc)
			rc = rfs_xrd_parse_hdr(hb, sizeof(hb), &h);
		if (!rc)
			rc = h.status == RFS_XRD_ATTN ? on_attn(c, &h)
						      : dispatch(c, &h, &src);
		if (rc)
			break;
	}
	if (rc == -EPROTO)
		rfs_warn("xrootd %s:%d: broken answer, connection dropped",
			 c->host, c->port);
	conn_break(c, rc == -EPROTO ? -EPROTO : -ECONNRESET);
	return NULL;
}

/* ---- requests ---- */

/* A new slot in flight on @c, its id written into @frame. */
static int slot_add(struct conn *c, struct slot *s, uint8_t *frame)
{
	pthread_mutex_lock(&c->lock);
	if (c->broken) {
		pthread_mutex_unlock(&c->lock);
		return -ECONNRESET; /* whatever broke it: this one never went */
	}
	do
		s->sid = c->next_sid++;
	while (s->sid == 0 || find_slot(c, s->sid));
	s->next = c->slots;
	c->slots = s;
	c->inflight++;
	pthread_mutex_unlock(&c->lock);
	frame[0] = (uint8_t)(s->sid >> 8);
	frame[1] = (uint8_t)s->sid;
	return 0;
}

static int frame_send(struct conn *c, const uint8_t *frame, size_t n)
{
	int rc;

	pthread_mutex_lock(&c->wlock);
	rc = send_all(c, frame, n, rfs_mono_now() + c->t->io_timeout);
	pthread_mutex_unlock(&c->wlock);
	if (rc)
		conn_break(c, rc);
	return rc;
}

/* A request nobody waits for (a close); its answer is dropped. */
static void send_close(struct conn *c, const uint8_t fh[4])
{
	uint8_t frame[RFS_XRD_REQ_HDR];
	struct slot *s = calloc(1, sizeof(*s));

	if (!s)
		return;
	s->abandoned = true;
	rfs_xrd_req_close(frame, sizeof(frame), 0, fh);
	if (slot_add(c, s, frame)) {
		free(s);
		return;
	}
	/* from the receive thread too: a frame this small never waits */
	frame_send(c, frame, sizeof(frame));
}

struct waiter {
	double deadline; /* 0: none */
	struct rfs_xfer_note *note;
	double start;
	double next_ask;
	/* no sign of life for this long (plus a waitresp's own time) is a
	 * dead server, deadline or not: io_timeout */
	double stall;
	uint64_t life;
	double last_life;
};

/* Under c->lock: the caller gives up on @s (which stays for the receiver). */
static void slot_abandon(struct conn *c, struct slot *s)
{
	if (s->busy) {
		/* its bytes are landing in our buffers: stop them first */
		pthread_mutex_unlock(&c->lock);
		conn_break(c, -ETIMEDOUT);
		pthread_mutex_lock(&c->lock);
		while (s->busy)
			pthread_cond_wait(&c->cond, &c->lock);
	}
	s->kind = SINK_NONE;
	if (s->done) {
		unlink_slot(c, s);
		free(s->body);
		free(s);
	} else {
		s->abandoned = true;
	}
}

/* Under c->lock: whether the caller goes on waiting. */
static int keep_waiting(struct slot *s, struct waiter *w)
{
	double now = rfs_mono_now();
	struct rfs_xfer_note *note = w->note;
	uint64_t life = __atomic_load_n(&s->got, __ATOMIC_RELAXED) +
			__atomic_load_n(&s->frames, __ATOMIC_RELAXED);

	if (life != w->life || !w->last_life) {
		w->life = life;
		w->last_life = now;
	}
	if (now - w->last_life > w->stall + s->wait_secs)
		return -ETIMEDOUT;
	if (w->deadline && now >= w->deadline) {
		if (note)
			note->past_deadline = true;
		return -ETIMEDOUT;
	}
	if (note && note->go_on && now >= w->next_ask) {
		w->next_ask = now + 1.0;
		if (!note->go_on(note->go_on_arg,
				 __atomic_load_n(&s->got, __ATOMIC_RELAXED),
				 now - w->start)) {
			note->given_up = true;
			return -ETIMEDOUT;
		}
	}
	return 0;
}

/*
 * Sends @frame for @s and waits for its final answer. 0: the answer is
 * in s->hdr (and s->body); the caller owns @s again. Otherwise @s is
 * the connection's (or freed) and the caller must not touch it.
 */
static int call(struct conn *c, struct slot *s, uint8_t *frame, size_t n,
		struct waiter *w)
{
	int rc = slot_add(c, s, frame);

	if (rc) {
		free(s->body);
		free(s);
		return rc;
	}
	rc = frame_send(c, frame, n);
	pthread_mutex_lock(&c->lock);
	w->next_ask = w->start + 1.0;
	w->stall = c->t->io_timeout;
	w->last_life = 0;
	while (!s->done && !rc) {
		double until = rfs_mono_now() + 1.0;

		if (w->deadline && w->deadline < until)
			until = w->deadline;
		rfs_cond_wait_until(&c->cond, &c->lock, until);
		if (!s->done)
			rc = keep_waiting(s, w);
	}
	if (!rc && s->rc)
		rc = s->rc;
	if (rc) {
		slot_abandon(c, s);
		pthread_mutex_unlock(&c->lock);
		return rc;
	}
	unlink_slot(c, s);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Sleeps @secs of a kXR_wait, unless that passes the deadline. */
static int wait_then(uint32_t secs, const struct waiter *w)
{
	double until = rfs_mono_now() + (secs ? secs : 1);

	if (w->deadline && until > w->deadline)
		return -ETIMEDOUT;
	while (rfs_mono_now() < until)
		usleep(100000);
	return 0;
}

/*
 * After a data request's answer *@rc: true when it was a kXR_wait and
 * the @secs asked have passed, so the same request goes again; a wait
 * past the deadline turns *@rc into -ETIMEDOUT.
 */
static bool again_after_wait(int *rc, uint32_t secs, const struct waiter *w)
{
	if (*rc != -EAGAIN)
		return false;
	if (wait_then(secs, w)) {
		*rc = -ETIMEDOUT;
		return false;
	}
	return true;
}

/* ---- the transport ---- */

static int xrd_open(struct rfs_transport **out, const struct rfs_conf *conf)
{
	struct xrd_transport *t = calloc(1, sizeof(*t));
	struct passwd *pw;
	struct group *gr;
	struct stat st;
	char err[256];
	int rc, ok;

	if (!t)
		return -ENOMEM;
	t->base.ops = &rfs_xrootd_transport_ops;
	t->connect_timeout = conf->connect_timeout;
	t->io_timeout = conf->io_timeout;
	pw = getpwuid(geteuid());
	gr = getgrgid(getegid());
	snprintf(t->user, sizeof(t->user), "%s", pw ? pw->pw_name : "nobody");
	snprintf(t->group, sizeof(t->group), "%s",
		 gr ? gr->gr_name : "nogroup");
	rc = rfs_netpol_init(&t->pol, conf->storage_hosts.v, conf->deny_nets.v,
			     err, sizeof(err));
	if (rc) {
		free(t);
		return rc;
	}
	t->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (!t->ssl_ctx) {
		rfs_netpol_release(&t->pol);
		free(t);
		return -ENOMEM;
	}
	SSL_CTX_set_min_proto_version(t->ssl_ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(t->ssl_ctx, SSL_VERIFY_PEER, NULL);
	if (conf->ca_cert && !stat(conf->ca_cert, &st) && S_ISDIR(st.st_mode))
		ok = SSL_CTX_load_verify_locations(t->ssl_ctx, NULL,
						   conf->ca_cert);
	else if (conf->ca_cert)
		ok = SSL_CTX_load_verify_locations(t->ssl_ctx, conf->ca_cert,
						   NULL);
	else
		ok = SSL_CTX_set_default_verify_paths(t->ssl_ctx);
	if (!ok)
		rfs_warn("xrootd: CA certificates '%s' unusable: roots:// "
			 "servers will not be trusted",
			 conf->ca_cert ? conf->ca_cert : "(system)");
	ERR_clear_error();
	*out = &t->base;
	return 0;
}

static void xrd_close(struct rfs_transport *base)
{
	struct xrd_transport *t = (struct xrd_transport *)base;

	SSL_CTX_free(t->ssl_ctx);
	rfs_netpol_release(&t->pol);
	free(t);
}

/*
 * "root[s]://host[:port]" of an endpoint or URL: host (no brackets),
 * port, TLS, and where the path starts.
 */
static int split_url(const char *url, char *host, size_t hostlen, int *port,
		     bool *tls, const char **path)
{
	const char *p, *end, *colon;
	long v = 0;

	if (!strncasecmp(url, "roots://", 8)) {
		*tls = true;
		p = url + 8;
	} else if (!strncasecmp(url, "root://", 7)) {
		*tls = false;
		p = url + 7;
	} else {
		return -EPROTONOSUPPORT;
	}
	end = p + strcspn(p, "/?#");
	if (memchr(p, '@', (size_t)(end - p))) /* no user names */
		p = (const char *)memchr(p, '@', (size_t)(end - p)) + 1;
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(end - p));

		if (!rb)
			return -EINVAL;
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
		if ((size_t)(rb - p - 1) >= hostlen)
			return -ENAMETOOLONG;
		memcpy(host, p + 1, (size_t)(rb - p - 1));
		host[rb - p - 1] = '\0';
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
		if ((size_t)((colon ? colon : end) - p) >= hostlen)
			return -ENAMETOOLONG;
		memcpy(host, p, (size_t)((colon ? colon : end) - p));
		host[(colon ? colon : end) - p] = '\0';
	}
	for (const char *d = colon ? colon + 1 : end; d < end; d++) {
		if (*d < '0' || *d > '9' || v > 65535)
			return -EINVAL;
		v = v * 10 + (*d - '0');
	}
	*port = colon ? (int)v : 1094;
	if (!host[0] || *port <= 0 || *port > 65535)
		return -EINVAL;
	/* root://h//abs is "/abs"; root://h/abs (no server takes a
	 * relative path) is "abs", made absolute by the caller */
	*path = *end == '/' ? end + 1 : end;
	return 0;
}

static int xrd_session_open(struct rfs_transport *base, struct rfs_tsession *s,
			    const struct rfs_who *who)
{
	struct xrd_transport *t = (struct xrd_transport *)base;
	struct xsess *x = calloc(1, sizeof(*x));
	const char *path;
	char why[192] = "";
	int rc;

	if (!x)
		return -ENOMEM;
	pthread_mutex_init(&x->lock, NULL);
	rc = split_url(s->endpoint, x->host, sizeof(x->host), &x->port, &x->tls,
		       &path);
	/* the first login now: a refused credential shows at open */
	if (!rc)
		rc = conn_open(t, x->host, x->port, x->tls, who, x->host,
			       &x->conns[0], why, sizeof(why));
	if (rc) {
		if (why[0])
			rfs_info("xrootd %s: %s", s->endpoint, why);
		pthread_mutex_destroy(&x->lock);
		free(x);
		return rc;
	}
	x->n = 1;
	s->priv = x;
	return 0;
}

static void xrd_session_close(struct rfs_transport *base,
			      struct rfs_tsession *s)
{
	struct xsess *x = s->priv;

	(void)base;
	for (size_t i = 0; i < x->n; i++)
		conn_put(x->conns[i]);
	pthread_mutex_destroy(&x->lock);
	free(x);
	s->priv = NULL;
}

static bool conn_dead(struct conn *c)
{
	bool dead;

	pthread_mutex_lock(&c->lock);
	dead = c->broken != 0;
	pthread_mutex_unlock(&c->lock);
	return dead;
}

/* Under x->lock: drops broken connections, returns the least busy. */
static struct conn *pool_pick(struct xsess *x, unsigned *busy)
{
	struct conn *best = NULL;

	for (size_t i = 0; i < x->n;) {
		struct conn *c = x->conns[i];

		if (conn_dead(c)) {
			x->conns[i] = x->conns[--x->n];
			conn_put(c);
			continue;
		}
		pthread_mutex_lock(&c->lock);
		if (!best || c->inflight < *busy) {
			best = c;
			*busy = c->inflight;
		}
		pthread_mutex_unlock(&c->lock);
		i++;
	}
	return best;
}

/* A pooled connection of the session (a reference), opened if needed. */
static int pool_get(struct xrd_transport *t, struct xsess *x,
		    const struct rfs_who *who, struct conn **out)
{
	struct conn *c, *fresh = NULL;
	unsigned busy = 0;
	char why[192] = "";
	int rc;

	pthread_mutex_lock(&x->lock);
	c = pool_pick(x, &busy);
	if (c && (busy < POOL_BUSY || x->n == POOL_MAX)) {
		pthread_mutex_lock(&c->lock);
		c->refs++;
		pthread_mutex_unlock(&c->lock);
		pthread_mutex_unlock(&x->lock);
		*out = c;
		return 0;
	}
	pthread_mutex_unlock(&x->lock);
	rc = conn_open(t, x->host, x->port, x->tls, who, x->host, &fresh, why,
		       sizeof(why));
	if (rc) {
		if (why[0])
			rfs_info("xrootd %s:%d: %s", x->host, x->port, why);
		return rc;
	}
	pthread_mutex_lock(&x->lock);
	if (x->n < POOL_MAX) {
		x->conns[x->n++] = fresh;
		fresh->refs++;
	}
	pthread_mutex_unlock(&x->lock);
	*out = fresh;
	return 0;
}

/* The open's path plus @opaque as CGI, into @out. */
static int path_with(char *out, size_t len, const char *path,
		     const char *opaque, const char *tried, const char *triedrc)
{
	const char *sep = strchr(path, '?') ? "&" : "?";
	int n;

	n = snprintf(out, len, "%s", path);
	if (n >= 0 && opaque[0] && (size_t)n < len) {
		n += snprintf(out + n, len - (size_t)n, "%s%s", sep, opaque);
		sep = "&";
	}
	if (n >= 0 && tried && tried[0] && (size_t)n < len)
		n += snprintf(out + n, len - (size_t)n, "%stried=%s&triedrc=%s",
			      sep, tried, triedrc);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The answer to one open: 0 (handle in @fh), 1 redirected, 2 wait. */
static int open_answer(struct conn *c, struct slot *s, uint8_t fh[4],
		       struct rfs_xrd_redirect *rd, uint32_t *secs)
{
	struct rfs_xrd_stat st;
	bool has_stat;

	switch (s->hdr.status) {
	case RFS_XRD_OK:
		return rfs_xrd_parse_open(s->body, s->blen, fh, &st, &has_stat)
			       ? -EPROTO
			       : 0;
	case RFS_XRD_ERROR:
		return answer_errno(c, s->body, s->blen, "open");
	case RFS_XRD_REDIRECT:
		return rfs_xrd_parse_redirect(s->body, s->blen, rd) ? -EPROTO
								    : 1;
	case RFS_XRD_WAIT:
		return rfs_xrd_parse_wait(s->body, s->blen, secs) ? -EPROTO : 2;
	default:
		return -EPROTO;
	}
}

/*
 * The open's frame for @path, with "authz=Bearer%20<token>" in its CGI
 * when @tok is given; *@cap is its size (the caller wipes it).
 */
static ssize_t open_frame(uint8_t **out, size_t *cap, const char *path,
			  const char *tok)
{
	size_t plen = strlen(path), tlen = tok ? strlen(tok) : 0;
	char *full = malloc(plen + tlen + 32);
	ssize_t n;

	*cap = RFS_XRD_REQ_HDR + plen + tlen + 32;
	*out = malloc(*cap);
	if (!full || !*out) {
		free(full);
		free(*out);
		*out = NULL;
		return -ENOMEM;
	}
	if (tok)
		snprintf(full, plen + tlen + 32, "%s%sauthz=Bearer%%20%s", path,
			 strchr(path, '?') ? "&" : "?", tok);
	else
		memcpy(full, path, plen + 1);
	n = rfs_xrd_req_open(*out, *cap, 0, full);
	rfs_wipe(full, plen + tlen + 32);
	free(full);
	return n;
}

/* One kXR_open of @path on @c, with the caller's token @tok in its CGI. */
static int open_once(struct conn *c, const char *path, const char *tok,
		     struct waiter *w, uint8_t fh[4],
		     struct rfs_xrd_redirect *rd, uint32_t *secs)
{
	struct slot *s = calloc(1, sizeof(*s));
	uint8_t *frame = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc;

	if (!s)
		return -ENOMEM;
	s->is_open = true;
	n = open_frame(&frame, &cap, path, tok);
	if (n < 0) {
		free(frame);
		free(s);
		return n == -ENOBUFS ? -ENAMETOOLONG : (int)n;
	}
	rc = call(c, s, frame, (size_t)n, w);
	rfs_wipe(frame, cap);
	free(frame);
	if (rc)
		return rc;
	rc = open_answer(c, s, fh, rd, secs);
	free(s->body);
	free(s);
	return rc;
}

/* What one open keeps across redirects. */
struct hops {
	struct conn *first; /* where the open began: retries go back there */
	char *tok;	    /* the caller's token, once asked */
	bool asked;
	char tried[512]; /* data servers that failed it, ","-joined */
	const char *triedrc;
	int n;
	int retries;
};

/* The redirector's word for why a data server failed (triedrc=). */
static const char *triedrc_of(int rc)
{
	switch (rc) {
	case -ENOENT:
		return "enoent";
	case -EIO:
	case -EPIPE:
		return "ioerr";
	case -ENOSPC:
	case -EROFS:
		return "fserr";
	default:
		return "srverr";
	}
}

/*
 * A data server a redirect led to failed the open with @rc: if another
 * may have the file, the open goes back to where it began with
 * tried=<host>, so a redirector picks another one.
 */
static bool retry_elsewhere(struct hops *h, struct xfile *xf, int rc)
{
	size_t used = strlen(h->tried);
	int n;

	if (xf->c == h->first || h->retries >= 2 || rc == -EACCES ||
	    rc == -ETIMEDOUT || rc == -ENOMEM || rc == -ENAMETOOLONG)
		return false;
	n = snprintf(h->tried + used, sizeof(h->tried) - used, "%s%s",
		     used ? "," : "", xf->c->host);
	if (n < 0 || (size_t)n >= sizeof(h->tried) - used)
		return false;
	h->retries++;
	h->triedrc = triedrc_of(rc);
	conn_put(xf->c);
	conn_ref(h->first);
	xf->c = h->first;
	xf->redirected = false;
	xf->where[0] = '\0';
	return true;
}

/* Follows one redirect: @xf moves to a connection to its target. */
static int follow(struct xrd_transport *t, struct xsess *x, struct rfs_tfile *f,
		  struct xfile *xf, const struct rfs_xrd_redirect *rd)
{
	char why[192] = "";
	struct conn *next = NULL;
	int rc = conn_open(t, rd->host, rd->port, x->tls || xf->c->ssl, f->who,
			   x->host, &next, why, sizeof(why));

	if (rc) {
		if (why[0])
			rfs_info("xrootd redirect to %s:%d: %s", rd->host,
				 rd->port, why);
		return rc;
	}
	conn_put(xf->c);
	xf->c = next;
	xf->redirected = true;
	snprintf(xf->where, sizeof(xf->where), "%s://%s:%d",
		 next->ssl ? "roots" : "root", rd->host, rd->port);
	return 0;
}

/*
 * The token for an open's CGI on @xf's connection: only over TLS, to a
 * host the policy lets it go to, and only where the login did not carry
 * one already (ztn): servers that authorise by CGI (authz=). NULL: none.
 */
static const char *cgi_token(struct hops *h, struct xfile *xf,
			     const struct rfs_who *who, const char *origin)
{
	struct conn *c = xf->c;

	if (!c->ssl || c->ztn || !who || !who->bearer ||
	    !rfs_netpol_token_ok(&c->t->pol, origin, c->host, true))
		return NULL;
	if (!h->asked) {
		h->asked = true;
		if (who->bearer(who->arg, &h->tok))
			h->tok = NULL;
	}
	return h->tok;
}

/* Follows redirects and waits until a server opens @f's file. */
static int open_follow(struct xrd_transport *t, struct xsess *x,
		       struct rfs_tfile *f, struct xfile *xf, const char *path)
{
	struct waiter w = { .start = rfs_mono_now() };
	struct rfs_xrd_redirect *rd = malloc(sizeof(*rd));
	char *cur = malloc(PATH_MAX_XRD);
	struct hops h = { .first = xf->c };
	uint32_t secs = 0;
	int rc = rd && cur ? 0 : -ENOMEM;

	conn_ref(h.first);
	w.deadline = w.start + t->connect_timeout + t->io_timeout;
	if (!rc)
		rc = path_with(cur, PATH_MAX_XRD, path, "", NULL, NULL);
	while (!rc) {
		rc = open_once(xf->c, cur, cgi_token(&h, xf, f->who, x->host),
			       &w, xf->fh, rd, &secs);
		if (rc == 2) {
			rc = wait_then(secs, &w);
			continue;
		}
		if (rc < 0 && retry_elsewhere(&h, xf, rc)) {
			rc = path_with(cur, PATH_MAX_XRD, path, "", h.tried,
				       h.triedrc);
			continue;
		}
		if (rc != 1)
			break;
		if (++h.n > HOPS_MAX) {
			rc = -ELOOP;
			break;
		}
		rc = path_with(cur, PATH_MAX_XRD, path, rd->opaque, NULL, NULL);
		if (!rc)
			rc = follow(t, x, f, xf, rd);
	}
	conn_put(h.first);
	if (h.tok) {
		rfs_wipe(h.tok, strlen(h.tok));
		free(h.tok);
	}
	free(rd);
	free(cur);
	return rc;
}

/* A remote open of @f's file into @xf: a pooled connection, redirects. */
static int file_open_handle(struct xrd_transport *t, struct rfs_tfile *f,
			    struct xfile *xf)
{
	struct xsess *x = f->sess->priv;
	char host[256], abs[PATH_MAX_XRD];
	const char *path;
	bool tls;
	int port, rc;

	memset(xf, 0, sizeof(*xf));
	rc = split_url(f->url, host, sizeof(host), &port, &tls, &path);
	if (!rc && (!path[0] || path[0] == '?'))
		rc = -EINVAL;
	if (!rc && snprintf(abs, sizeof(abs), "%s%s", path[0] == '/' ? "" : "/",
			    path) >= (int)sizeof(abs))
		rc = -ENAMETOOLONG;
	if (!rc)
		rc = pool_get(t, x, f->who, &xf->c);
	if (!rc)
		rc = open_follow(t, x, f, xf, abs);
	if (rc) {
		conn_put(xf->c);
		xf->c = NULL;
	}
	return rc;
}

static int xrd_open_file(struct rfs_transport *base, struct rfs_tfile *f)
{
	struct xopen *o = calloc(1, sizeof(*o));
	int rc;

	if (!o)
		return -ENOMEM;
	rc = file_open_handle((struct xrd_transport *)base, f, &o->h);
	if (rc) {
		free(o);
		return rc;
	}
	pthread_mutex_init(&o->lock, NULL);
	f->priv = o;
	return 0;
}

static void xrd_close_file(struct rfs_transport *base, struct rfs_tfile *f)
{
	struct xopen *o = f->priv;

	(void)base;
	if (!o)
		return;
	if (!conn_dead(o->h.c))
		send_close(o->h.c, o->h.fh);
	conn_put(o->h.c);
	pthread_mutex_destroy(&o->lock);
	free(o);
	f->priv = NULL;
}

/* A copy of @o's current open, holding a reference on its connection. */
static void handle_take(struct xopen *o, struct xfile *out)
{
	pthread_mutex_lock(&o->lock);
	*out = o->h;
	conn_ref(out->c);
	pthread_mutex_unlock(&o->lock);
}

/*
 * @use's connection died: the file is opened again (once for all its
 * readers: the first to swap wins, a later one closes its own) and
 * @use becomes the new open.
 */
static int handle_revive(struct xrd_transport *t, struct rfs_tfile *f,
			 struct xfile *use)
{
	struct xopen *o = f->priv;
	struct xfile nh;
	struct conn *old = NULL;
	int rc = file_open_handle(t, f, &nh);

	if (rc)
		return rc;
	pthread_mutex_lock(&o->lock);
	if (o->h.c == use->c) {
		old = o->h.c;
		o->h = nh;
		nh.c = NULL;
	}
	pthread_mutex_unlock(&o->lock);
	if (nh.c) {
		send_close(nh.c, nh.fh);
		conn_put(nh.c);
	}
	conn_put(old);
	conn_put(use->c);
	handle_take(o, use);
	return 0;
}

static void note_start(struct rfs_xfer_note *note, const struct xfile *xf)
{
	note->got = 0;
	note->past_deadline = note->given_up = false;
	note->why[0] = '\0';
	snprintf(note->target, sizeof(note->target), "%s",
		 xf->redirected ? xf->where : "");
}

/*
 * A data request's answer: 0 when every byte asked for came; -EAGAIN
 * with the seconds in *@wait for a kXR_wait (nothing came yet).
 */
static int data_answer(struct conn *c, struct slot *s, size_t want,
		       const char *what, uint32_t *wait)
{
	if (s->hdr.status == RFS_XRD_ERROR)
		return answer_errno(c, s->body, s->blen, what);
	if (s->hdr.status == RFS_XRD_WAIT)
		return rfs_xrd_parse_wait(s->body, s->blen, wait) || s->got
			       ? -EPROTO
			       : -EAGAIN;
	if (s->hdr.status != RFS_XRD_OK)
		return -EPROTO;
	return s->got == want ? 0 : -EPIPE; /* short: not the file we know */
}

/*
 * One kXR_read of @len bytes at @off into @iov (from piece *@cur, byte
 * *@used of it); a kXR_wait is obeyed and the read sent again.
 */
static int read_once(struct conn *c, const uint8_t fh[4], uint64_t off,
		     size_t len, const struct iovec *iov, int iovcnt, int *cur,
		     size_t *used, struct waiter *w, uint64_t *got)
{
	for (;;) {
		uint8_t frame[RFS_XRD_REQ_HDR];
		struct slot *s = calloc(1, sizeof(*s));
		uint32_t secs = 0;
		int rc;

		if (!s)
			return -ENOMEM;
		*s = (struct slot){ .kind = SINK_IOV,
				    .iov = iov,
				    .iovcnt = iovcnt,
				    .cur = *cur,
				    .used = *used,
				    .want = len };
		rfs_xrd_req_read(frame, sizeof(frame), 0, fh, off,
				 (uint32_t)len);
		rc = call(c, s, frame, sizeof(frame), w);
		if (rc)
			return rc;
		rc = data_answer(c, s, len, "read", &secs);
		*got += s->got;
		*cur = s->cur;
		*used = s->used;
		free(s->body);
		free(s);
		if (!again_after_wait(&rc, secs, w))
			return rc;
	}
}

static ssize_t preadv_on(struct xfile *xf, const struct iovec *iov, int iovcnt,
			 uint64_t off, struct rfs_xfer_note *note)
{
	struct waiter w = { .deadline = note->deadline,
			    .note = note,
			    .start = rfs_mono_now() };
	size_t total = rfs_iov_len(iov, iovcnt), done = 0, used = 0;
	int cur = 0, rc = 0;

	note_start(note, xf);
	while (done < total && !rc) {
		size_t len = total - done < READ_MAX ? total - done : READ_MAX;

		rc = read_once(xf->c, xf->fh, off + done, len, iov, iovcnt,
			       &cur, &used, &w, &note->got);
		done += len;
	}
	return rc ? rc : (ssize_t)total;
}

/* The pieces of @segs[*i..] (from byte *@at of the first) for one readv. */
static size_t readv_pieces(const struct rfs_tseg *segs, size_t n, size_t *i,
			   size_t *at, struct rfs_xrd_seg *out, uint8_t **bufs,
			   size_t *bytes)
{
	size_t k = 0;

	*bytes = 0;
	while (*i < n && k < RFS_XRD_READV_MAX_SEGS && *bytes < READV_TOTAL) {
		const struct rfs_tseg *s = &segs[*i];
		size_t left = s->len - *at;
		size_t len = left < READV_PIECE ? left : READV_PIECE;

		if (len) {
			out[k].off = s->off + *at;
			out[k].len = (uint32_t)len;
			bufs[k] = (uint8_t *)s->buf + *at;
			k++;
			*bytes += len;
		}
		*at += len;
		if (*at == s->len) {
			++*i;
			*at = 0;
		}
	}
	return k;
}

static int readv_once(struct conn *c, const uint8_t fh[4],
		      const struct rfs_xrd_seg *segs, uint8_t *const *bufs,
		      size_t k, size_t bytes, struct waiter *w, uint64_t *got,
		      uint32_t *wait)
{
	size_t cap = RFS_XRD_REQ_HDR + k * RFS_XRD_READV_SEG_HDR;
	uint8_t *frame = malloc(cap);
	struct rfs_xrd_rv rv;
	struct slot *s = calloc(1, sizeof(*s));
	ssize_t n;
	int rc;

	if (!frame || !s) {
		free(frame);
		free(s);
		return -ENOMEM;
	}
	rfs_xrd_rv_init(&rv, fh, segs, k);
	s->kind = SINK_RV;
	s->rv = &rv;
	s->bufs = bufs;
	n = rfs_xrd_req_readv(frame, cap, 0, fh, segs, k);
	rc = n < 0 ? (int)n : call(c, s, frame, (size_t)n, w);
	free(frame);
	if (n < 0)
		free(s);
	if (n < 0 || rc)
		return n < 0 ? (int)n : rc;
	rc = data_answer(c, s, bytes, "readv", wait);
	if (!rc && !rfs_xrd_rv_done(&rv))
		rc = -EPIPE;
	*got += s->got;
	free(s->body);
	free(s);
	return rc;
}

static ssize_t readv_on(struct xfile *xf, const struct rfs_tseg *segs, size_t n,
			uint64_t file_size, struct rfs_xfer_note *note)
{
	struct waiter w = { .deadline = note->deadline,
			    .note = note,
			    .start = rfs_mono_now() };
	struct rfs_xrd_seg *pieces =
		calloc(RFS_XRD_READV_MAX_SEGS, sizeof(*pieces));
	uint8_t **bufs = calloc(RFS_XRD_READV_MAX_SEGS, sizeof(*bufs));
	size_t i = 0, at = 0, total = 0;
	uint32_t secs = 0;
	int rc = pieces && bufs ? 0 : -ENOMEM;

	note_start(note, xf);
	for (size_t k = 0; k < n && !rc; k++)
		if (segs[k].off > file_size ||
		    segs[k].len > file_size - segs[k].off)
			rc = -EINVAL;
	while (!rc && i < n) {
		size_t bytes, k = readv_pieces(segs, n, &i, &at, pieces, bufs,
					       &bytes);

		if (k == 0)
			break;
		do
			rc = readv_once(xf->c, xf->fh, pieces, bufs, k, bytes,
					&w, &note->got, &secs);
		while (again_after_wait(&rc, secs, &w));
		total += bytes;
	}
	free(pieces);
	free(bufs);
	return rc ? rc : (ssize_t)total;
}

/*
 * Whether a read that failed on @xf may go again on a new open: its
 * connection is dead, nothing came, and the read path's limits were
 * not what stopped it.
 */
static bool worth_reviving(struct xfile *xf, ssize_t rc,
			   const struct rfs_xfer_note *note)
{
	return rc < 0 && rc != -ETIMEDOUT && !note->got && !note->given_up &&
	       !note->past_deadline && conn_dead(xf->c);
}

static ssize_t xrd_preadv(struct rfs_transport *base, struct rfs_tfile *f,
			  const struct iovec *iov, int iovcnt, uint64_t off,
			  uint64_t file_size, struct rfs_xfer_note *note)
{
	struct xrd_transport *t = (struct xrd_transport *)base;
	struct xfile h;
	ssize_t rc = 0;

	(void)file_size;
	handle_take(f->priv, &h);
	if (conn_dead(h.c))
		rc = handle_revive(t, f, &h);
	if (!rc)
		rc = preadv_on(&h, iov, iovcnt, off, note);
	if (worth_reviving(&h, rc, note) && !handle_revive(t, f, &h))
		rc = preadv_on(&h, iov, iovcnt, off, note);
	conn_put(h.c);
	return rc;
}

static ssize_t xrd_readv(struct rfs_transport *base, struct rfs_tfile *f,
			 const struct rfs_tseg *segs, size_t n,
			 uint64_t file_size, struct rfs_xfer_note *note)
{
	struct xrd_transport *t = (struct xrd_transport *)base;
	struct xfile h;
	ssize_t rc = 0;

	handle_take(f->priv, &h);
	if (conn_dead(h.c))
		rc = handle_revive(t, f, &h);
	if (!rc)
		rc = readv_on(&h, segs, n, file_size, note);
	if (worth_reviving(&h, rc, note) && !handle_revive(t, f, &h))
		rc = readv_on(&h, segs, n, file_size, note);
	conn_put(h.c);
	return rc;
}

/* The file's path as the server knows it: "/abs[?cgi]". */
static int file_path(const struct rfs_tfile *f, char *out, size_t len)
{
	char host[256];
	const char *path;
	bool tls;
	int port,
		rc = split_url(f->url, host, sizeof(host), &port, &tls, &path);

	if (!rc && snprintf(out, len, "%s%s", path[0] == '/' ? "" : "/",
			    path) >= (int)len)
		rc = -ENAMETOOLONG;
	return rc;
}

/* kXR_query checksum on @xf's server, the answer into @hex. */
static int checksum_on(struct xfile *xf, const char *path, const char *type,
		       char *hex, size_t hexlen, struct rfs_xfer_note *note)
{
	struct waiter w = { .deadline = note->deadline,
			    .note = note,
			    .start = rfs_mono_now() };
	uint8_t *frame = malloc(FRAME_MAX);
	struct slot *s = calloc(1, sizeof(*s));
	char got_type[32];
	ssize_t n;
	int rc;

	if (!frame || !s) {
		free(frame);
		free(s);
		return -ENOMEM;
	}
	n = rfs_xrd_req_cksum(frame, FRAME_MAX, 0, path, type);
	rc = n < 0 ? (int)n : call(xf->c, s, frame, (size_t)n, &w);
	free(frame);
	if (n < 0)
		free(s);
	if (n < 0 || rc)
		return n < 0 ? (int)n : rc;
	if (s->hdr.status == RFS_XRD_ERROR)
		rc = answer_errno(xf->c, s->body, s->blen, "checksum");
	else if (s->hdr.status != RFS_XRD_OK ||
		 rfs_xrd_parse_cksum(s->body, s->blen, got_type,
				     sizeof(got_type), hex, hexlen) ||
		 strcasecmp(got_type, type))
		rc = -EOPNOTSUPP; /* not a checksum we can use */
	free(s->body);
	free(s);
	return rc;
}

static int xrd_checksum(struct rfs_transport *base, struct rfs_tfile *f,
			const char *type, char *hex, size_t hexlen,
			struct rfs_xfer_note *note)
{
	struct xfile h;
	char *path = malloc(PATH_MAX_XRD);
	int rc = path ? file_path(f, path, PATH_MAX_XRD) : -ENOMEM;

	(void)base;
	if (rc) {
		free(path);
		return rc;
	}
	handle_take(f->priv, &h);
	note_start(note, &h);
	rc = checksum_on(&h, path, type, hex, hexlen, note);
	conn_put(h.c);
	free(path);
	return rc;
}

static const char *xrd_version(void)
{
	return "xrootd-client/ruciofs (protocol 5.1)";
}

static const char *const xrd_schemes[] = { "root", "roots", NULL };

const struct rfs_transport_ops rfs_xrootd_transport_ops = {
	.name = "xrootd",
	.schemes = xrd_schemes,
	.caps = RFS_TP_VECTOR | RFS_TP_TLS,
	.version = xrd_version,
	.open = xrd_open,
	.session_open = xrd_session_open,
	.session_close = xrd_session_close,
	.open_file = xrd_open_file,
	.preadv = xrd_preadv,
	.readv = xrd_readv,
	.close_file = xrd_close_file,
	.close = xrd_close,
	.checksum = xrd_checksum,
};
