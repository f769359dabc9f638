/*
 * Transports move bytes from one replica URL. Each is an operations table
 * (curl's vtls model) registered by URL scheme; the read path never asks
 * which protocol it is talking.
 */
#ifndef RFS_TRANSPORT_H
#define RFS_TRANSPORT_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

struct rfs_conf;
struct rfs_transport;

struct rfs_transport_ops {
	const char *name;
	const char *const *schemes; /* NULL-terminated, e.g. "https" */
	int (*open)(struct rfs_transport **out, const struct rfs_conf *conf);
	/*
	 * Reads exactly @len bytes at @off of a file of @file_size bytes
	 * (the caller clamps, so off + len <= file_size). Returns @len, or
	 * a negative errno: a wrong, short or long answer is -EIO, never a
	 * partial count. @bearer (may be NULL) is borrowed for the call.
	 */
	ssize_t (*pread)(struct rfs_transport *t, const char *url,
			 const char *bearer, void *buf, size_t len,
			 uint64_t off, uint64_t file_size);
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

/* The transport for @url's scheme, or NULL if none serves it. */
struct rfs_transport *rfs_transports_find(struct rfs_transports *ts,
					  const char *url);

extern const struct rfs_transport_ops rfs_http_transport_ops;

#endif
