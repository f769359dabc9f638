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

struct rfs_transport_ops {
	const char *name;
	const char *const *schemes; /* NULL-terminated, e.g. "https" */
	int (*open)(struct rfs_transport **out, const struct rfs_conf *conf);
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

int rfs_transports_open(struct rfs_transports **out,
			const struct rfs_conf *conf);
void rfs_transports_close(struct rfs_transports *ts);

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
