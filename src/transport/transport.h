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

struct rfs_conf;
struct rfs_transport;

/*
 * One transfer: the limits the read path sets (a transport honours them
 * whatever its protocol), and what it tells the log beyond its errno.
 */
struct rfs_xfer_note {
	/* in: a transfer still under this many bytes/s after a second of
	 * it is given up with -ETIMEDOUT (0: never) */
	uint64_t min_rate;
	/* in: rfs_mono_now() by which it ends, or is given up with
	 * -ETIMEDOUT (0: none) */
	double deadline;
	/* out: body bytes received, and whether the deadline cut it */
	uint64_t got;
	bool past_deadline;
	/* out: the redirect target last followed, without its query; "" if
	 * none */
	char target[512];
	/* out: why it was refused without a connection (-EPERM: where it
	 * would have gone, -ELOOP), or "" */
	char why[192];
};

/*
 * A transport's life, in the daemon's start-up order (every hook but
 * open, preadv and close may be NULL):
 *   global_init    once per process, before anything else of it runs and
 *                  while the process has one thread (libraries' global
 *                  state: curl_global_init);
 *   open           before daemonizing, so its errors reach the terminal:
 *                  no threads (fuse_daemonize forks; they would be lost);
 *   start          after daemonizing: threads may start here (an I/O
 *                  thread, a library's callbacks); one that fails is
 *                  logged, and its preadv must then fail every read;
 *   preadv         from any thread, once started;
 *   close          at unmount, after every read has returned;
 *   global_cleanup once, after every transport is closed.
 */
struct rfs_transport_ops {
	const char *name;
	const char *const *schemes; /* NULL-terminated, e.g. "https" */
	int (*global_init)(void);
	void (*global_cleanup)(void);
	/* its library and version for --version, e.g. "libcurl/7.88.1" */
	const char *(*version)(void);
	int (*open)(struct rfs_transport **out, const struct rfs_conf *conf);
	int (*start)(struct rfs_transport *t);
	/*
	 * Reads the bytes at @off of a file of @file_size bytes into the
	 * @iovcnt buffers of @iov, in order, in one request: a run of cache
	 * blocks crosses the network once, each into its own buffer. The
	 * caller clamps, so off + their total <= file_size. Returns the
	 * total, or a negative errno: a wrong, short or long answer is an
	 * error, never a partial count. @bearer (may be NULL) is borrowed.
	 * The limits in @note (min_rate, deadline) are honoured, so another
	 * replica can take the range. Redirects are followed by the
	 * transport itself, each hop checked against the connection policy
	 * and given the token only when allowed; @note says where the last
	 * one went, why a hop was refused, and how much came.
	 */
	ssize_t (*preadv)(struct rfs_transport *t, const char *url,
			  const char *bearer, const struct iovec *iov,
			  int iovcnt, uint64_t off, uint64_t file_size,
			  struct rfs_xfer_note *note);
	void (*close)(struct rfs_transport *t);
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
 * catalogue's libcurl is set up here too (util/http.c is shared).
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

extern const struct rfs_transport_ops rfs_http_transport_ops;

#endif
