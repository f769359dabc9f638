/*
 * The mount's metrics: what other modules count already (the cache's
 * store, endpoints, the catalogue's calls, checks), and what is counted
 * here, on the read path, with atomics only (no lock on a read): the
 * latency of each FUSE read and of each storage transfer, as
 * histograms, and reads per identity. Rendered as Prometheus text
 * (util/prom.h) for ruciofs-ctl metrics and for the -o metrics file,
 * which the rfs-metrics thread rewrites (PATH.tmp, then a rename: a
 * reader never sees half a file).
 */
#ifndef RFS_CORE_METRICS_H
#define RFS_CORE_METRICS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct rfs_fs;

/* latency bounds in seconds, log-spaced (1-2.5-5), 100 us to 60 s */
#define RFS_LAT_BOUNDS 18

/* Counts per bucket (the last past the highest bound), and the sum in
 * nanoseconds; each atomic. */
struct rfs_hist {
	uint64_t counts[RFS_LAT_BOUNDS + 1];
	uint64_t sum_ns;
};

/* Transfers by URL scheme: a fixed set, so labels stay bounded. */
enum rfs_metrics_scheme {
	RFS_MS_HTTPS,
	RFS_MS_HTTP,
	RFS_MS_DAVS,
	RFS_MS_DAV,
	RFS_MS_ROOT,
	RFS_MS_ROOTS,
	RFS_MS_OTHER,
	RFS_MS_COUNT,
};

/* Identities counted by name; past these, they count as "other". */
#define RFS_METRICS_IDS 64

struct rfs_id_count {
	/* atomic: 0 free, else the identity's key plus one (a uid, or
	 * RFS_ID_MOUNT); set last, once name is written */
	uint64_t key;
	char name[64];
	uint64_t reads, bytes; /* atomic */
};

struct rfs_metrics {
	struct rfs_hist read; /* FUSE read requests, arrival to answer */
	struct rfs_hist fetch[RFS_MS_COUNT]; /* each storage transfer */
	/* taken only to add an identity (and never across its NSS lookup);
	 * readers find theirs without it. A leaf. */
	pthread_mutex_t ids_lock;
	struct rfs_id_count ids[RFS_METRICS_IDS + 1]; /* the last: other */

	/* the -o metrics file's writer; lock is a leaf guarding stop */
	pthread_mutex_t lock;
	pthread_cond_t cv;
	pthread_t thread;
	bool running, stop;
	bool unmounted; /* atomic: the last file says ruciofs_mounted 0 */
};

void rfs_metrics_init(struct rfs_metrics *m);
/* After rfs_metrics_file_stop. */
void rfs_metrics_release(struct rfs_metrics *m);

/* One storage transfer of URL @url took @secs (whatever its outcome). */
void rfs_metrics_fetch(struct rfs_fs *fs, const char *url, double secs);

/*
 * With -o metrics: starts the rfs-metrics thread, which writes the file
 * at once and then every metrics_interval. Failures are logged.
 */
void rfs_metrics_file_start(struct rfs_fs *fs);
/* Stops it after one last file (ruciofs_mounted 0). */
void rfs_metrics_file_stop(struct rfs_fs *fs);

/* The bucket of a latency of @secs (exposed for unit tests). */
unsigned rfs_metrics_bucket(double secs);
extern const double rfs_metrics_bounds[RFS_LAT_BOUNDS];

#endif
