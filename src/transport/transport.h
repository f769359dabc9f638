/*
 * Transports move bytes from one replica URL. Each is an operations table
 * (curl's vtls model) registered by URL scheme; the read path never asks
 * which protocol it is talking.
 */
#ifndef RFS_TRANSPORT_H
#define RFS_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct rfs_buf;
struct rfs_conf;
struct rfs_transport;
struct rfs_tsession;

/*
 * Whom a transport reads for, borrowed for as long as a file handle
 * opened with it lives. Transports know no identity object: a key that
 * names the identity (sessions are kept per endpoint and key, so two
 * identities never share a logged-in connection) and a way to get the
 * credential to present, asked for when one is needed.
 */
struct rfs_who {
	const char *key;
	/* the bearer token to present now, a string the caller wipes and
	 * frees; *out NULL: present none. 0 or a negative errno. */
	int (*bearer)(void *arg, char **out);
	void *arg;
};

/*
 * One transfer: the limits the read path sets (a transport honours them
 * whatever its protocol), and what it tells the log beyond its errno.
 */
struct rfs_xfer_note {
	/* in: rfs_mono_now() by which it ends, or is given up with
	 * -ETIMEDOUT (0: none); also while connecting */
	double deadline;
	/* in: the read path's slow-transfer policy: asked about once a
	 * second with the body bytes so far and the seconds since the
	 * transfer began; false gives it up with -ETIMEDOUT (NULL: never) */
	bool (*go_on)(void *arg, uint64_t got, double secs);
	void *go_on_arg;
	/* out: body bytes received, and whether the deadline cut it or the
	 * policy gave it up */
	uint64_t got;
	bool past_deadline;
	bool given_up;
	/* out: the redirect target last followed, without its query; "" if
	 * none */
	char target[512];
	/* out: why it was refused without a connection (-EPERM: where it
	 * would have gone, -ELOOP), or "" */
	char why[192];
};

/* One piece of a vector read: @len bytes of the file at @off into @buf. */
struct rfs_tseg {
	uint64_t off;
	size_t len;
	void *buf;
};

/* What a transport can do, for the read path to choose how to ask. */
enum {
	/* several discontiguous ranges in one request (xrootd readv,
	 * HTTP multi-range) */
	RFS_TP_VECTOR = 1u << 0,
	/* it can talk TLS, so a bearer token may go with it */
	RFS_TP_TLS = 1u << 1,
};

/*
 * A session: what a transport keeps per (endpoint, identity), shared by
 * every file handle of that pair (a logged-in xrootd connection). The
 * registry finds or makes one for each open_file and keeps it a while
 * when unused.
 */
struct rfs_tsession {
	struct rfs_transport *tp;
	char endpoint[264]; /* "scheme://host:port", as the URL spelled it */
	char key[96];	    /* rfs_who.key */
	void *priv;	    /* the transport's own */
	/* the registry's, under its lock */
	unsigned refs;
	int state; /* 0: opening, 1: ready, < 0: its open failed */
	double idle_since;
	struct rfs_tsession *next;
};

/* One replica file opened for reading through its session. */
struct rfs_tfile {
	struct rfs_tsession *sess;
	char *url;		   /* as the transport normalised it */
	const struct rfs_who *who; /* borrowed: outlives the handle */
	void *priv;		   /* the transport's own (an xrootd fhandle) */
};

/*
 * A transport's life, in the daemon's start-up order:
 *   global_init    once per process, before anything else of it runs and
 *                  while the process has one thread (libraries' global
 *                  state: curl_global_init);
 *   open           before daemonizing, so its errors reach the terminal:
 *                  no threads (fuse_daemonize forks; they would be lost);
 *   start          after daemonizing: threads may start here (an I/O
 *                  thread, a library's callbacks); one that fails is
 *                  logged, and its reads must then fail;
 *   session_open, open_file, preadv, close_file, session_close
 *                  from any thread, once started;
 *   close          at unmount, after every file handle is closed;
 *   global_cleanup once, after every transport is closed.
 * Only open and preadv are required.
 */
struct rfs_transport_ops {
	const char *name;
	const char *const *schemes; /* NULL-terminated, e.g. "https" */
	unsigned caps;		    /* RFS_TP_* */
	int (*global_init)(void);
	void (*global_cleanup)(void);
	/* its library and version for --version, e.g. "libcurl/7.88.1" */
	const char *(*version)(void);
	int (*open)(struct rfs_transport **out, const struct rfs_conf *conf);
	int (*start)(struct rfs_transport *t);
	/* A catalogue PFN as this transport wants to be handed it (HTTP
	 * percent-encodes what a URL may not hold); NULL: as it is. */
	int (*normalize)(struct rfs_buf *out, const char *pfn);
	/* @s->endpoint and @s->key are set; fills @s->priv (a login). May
	 * wait on the network: the registry holds no lock meanwhile. */
	int (*session_open)(struct rfs_transport *t, struct rfs_tsession *s,
			    const struct rfs_who *who);
	void (*session_close)(struct rfs_transport *t, struct rfs_tsession *s);
	/* @f->sess, url and who are set; fills @f->priv (a remote open). */
	int (*open_file)(struct rfs_transport *t, struct rfs_tfile *f);
	/*
	 * Reads the bytes at @off of a file of @file_size bytes into the
	 * @iovcnt buffers of @iov, in order, in one request: a run of cache
	 * blocks crosses the network once, each into its own buffer. The
	 * caller clamps, so off + their total <= file_size. Returns the
	 * total, or a negative errno: a wrong, short or long answer is an
	 * error, never a partial count. The limits in @note (deadline,
	 * go_on) are honoured, so another replica can take the range.
	 * Redirects are followed by the transport itself, each hop checked
	 * against the connection policy and given the credential only when
	 * allowed; @note says where the last one went, why a hop was
	 * refused, and how much came.
	 */
	ssize_t (*preadv)(struct rfs_transport *t, struct rfs_tfile *f,
			  const struct iovec *iov, int iovcnt, uint64_t off,
			  uint64_t file_size, struct rfs_xfer_note *note);
	/*
	 * Reads the @n segments of @segs (sorted by offset, none
	 * overlapping, each within @file_size) in as few requests as the
	 * protocol allows (xrootd kXR_readv: at most 1024 segments each
	 * under 2 MiB; HTTP: multipart/byteranges), splitting longer lists
	 * itself. Returns the total, or a negative errno: as for preadv, a
	 * wrong, short or long answer is an error, never a partial count.
	 * -EOPNOTSUPP when this file's server cannot (the read path then
	 * reads the segments one by one). Optional; only with RFS_TP_VECTOR.
	 */
	ssize_t (*readv)(struct rfs_transport *t, struct rfs_tfile *f,
			 const struct rfs_tseg *segs, size_t n,
			 uint64_t file_size, struct rfs_xfer_note *note);
	void (*close_file)(struct rfs_transport *t, struct rfs_tfile *f);
	void (*close)(struct rfs_transport *t);
	/*
	 * The storage's own checksum of @f's file, of @type ("adler32"),
	 * as lower-case hex into @hex (xrootd kXR_query): 0, -EOPNOTSUPP
	 * when the server keeps none or answers what cannot be read, or
	 * another negative errno. Never a reason to fail a read. Optional.
	 */
	int (*checksum)(struct rfs_transport *t, struct rfs_tfile *f,
			const char *type, char *hex, size_t hexlen,
			struct rfs_xfer_note *note);
};

/* Every transport embeds this first. */
struct rfs_transport {
	const struct rfs_transport_ops *ops;
};

/* All transports of this build, opened together. */
struct rfs_transports;

/*
 * Every transport's global_init, in registry order; on a failure, those
 * done are cleaned up again. Once per process, before any open; the
 * catalogue's libcurl is set up here too (util/http_client.c is shared).
 */
int rfs_transports_global_init(void);
void rfs_transports_global_cleanup(void);

int rfs_transports_open(struct rfs_transports **out,
			const struct rfs_conf *conf);
/*
 * After daemonizing: starts each transport. One that fails is logged and
 * the others are started still; returns the first error.
 */
int rfs_transports_start(struct rfs_transports *ts);
void rfs_transports_close(struct rfs_transports *ts);

/* "libcurl/7.88.1 OpenSSL/3.0.11 ..." for every transport, ", "-joined. */
void rfs_transports_versions(char *out, size_t len);

/*
 * The @i-th URL scheme some transport of this build reads (a static
 * string), or NULL past the last: what the catalogue is asked for when
 * -o schemes does not say.
 */
const char *rfs_transports_scheme(size_t i);

/* The transport for @url's scheme, or NULL if none serves it. */
struct rfs_transport *rfs_transports_find(struct rfs_transports *ts,
					  const char *url);

/* @pfn as @t wants it into @out (appended). */
int rfs_transport_normalize(const struct rfs_transport *t, struct rfs_buf *out,
			    const char *pfn);

/*
 * A handle on @url (normalised for @t) for @who, through the session of
 * (its endpoint, who->key), made if there is none. Several threads may
 * open handles at once; one session is opened once for all of them.
 */
int rfs_transport_open_file(struct rfs_transports *ts, struct rfs_transport *t,
			    const char *url, const struct rfs_who *who,
			    struct rfs_tfile **out);
ssize_t rfs_transport_preadv(struct rfs_tfile *f, const struct iovec *iov,
			     int iovcnt, uint64_t off, uint64_t file_size,
			     struct rfs_xfer_note *note);
/*
 * A vector read through @f's transport (see rfs_transport_ops.readv);
 * -EOPNOTSUPP if it has none.
 */
ssize_t rfs_transport_readv(struct rfs_tfile *f, const struct rfs_tseg *segs,
			    size_t n, uint64_t file_size,
			    struct rfs_xfer_note *note);
/* The storage's checksum (see rfs_transport_ops.checksum); -EOPNOTSUPP
 * if the transport has none. */
int rfs_transport_checksum(struct rfs_tfile *f, const char *type, char *hex,
			   size_t hexlen, struct rfs_xfer_note *note);
/* Closes the handle; its session stays a while for the next one. */
void rfs_transport_close_file(struct rfs_transports *ts, struct rfs_tfile *f);
/* Sessions in use and kept (for status). */
void rfs_transports_sessions(struct rfs_transports *ts, size_t *busy,
			     size_t *idle);

extern const struct rfs_transport_ops rfs_http_transport_ops;
extern const struct rfs_transport_ops rfs_xrootd_transport_ops;

#endif
