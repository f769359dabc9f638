/*
 * Metrics: counted here with atomics on the read path, gathered from the
 * other modules when asked, rendered as Prometheus text. Every family
 * is listed in docs/metrics.md.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "authz/cred.h"
#include "core/core.h"
#include "core/file.h"
#include "core/metrics.h"
#include "core/replicas.h"
#include "core/verify.h"
#include "util/clock.h"
#include "util/errmap.h"
#include "util/log.h"
#include "util/prom.h"
#include "util/banned.h"

const double rfs_metrics_bounds[RFS_LAT_BOUNDS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1,	0.25,	 0.5,	 1,	2.5,	5,     10,   30,    60,
};

/* the mount's own identity, among uids in the identity table */
#define RFS_ID_MOUNT (1ull << 32)
/* a whole metrics text: 64 identities and 32 endpoints fit many times */
#define METRICS_MAX (4u << 20)

void rfs_metrics_init(struct rfs_metrics *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->ids_lock, NULL);
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cv, NULL);
	snprintf(m->ids[RFS_METRICS_IDS].name,
		 sizeof(m->ids[RFS_METRICS_IDS].name), "other");
}

void rfs_metrics_release(struct rfs_metrics *m)
{
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->lock);
	pthread_mutex_destroy(&m->ids_lock);
}

unsigned rfs_metrics_bucket(double secs)
{
	unsigned i = 0;

	while (i < RFS_LAT_BOUNDS && secs > rfs_metrics_bounds[i])
		i++;
	return i;
}

static void observe(struct rfs_hist *h, double secs)
{
	if (secs < 0)
		secs = 0;
	__atomic_add_fetch(&h->counts[rfs_metrics_bucket(secs)], 1,
			   __ATOMIC_RELAXED);
	__atomic_add_fetch(&h->sum_ns, (uint64_t)(secs * 1e9),
			   __ATOMIC_RELAXED);
}

static const char *const scheme_names[RFS_MS_COUNT] = {
	[RFS_MS_HTTPS] = "https", [RFS_MS_HTTP] = "http",
	[RFS_MS_DAVS] = "davs",	  [RFS_MS_DAV] = "dav",
	[RFS_MS_ROOT] = "root",	  [RFS_MS_ROOTS] = "roots",
	[RFS_MS_OTHER] = "other",
};

static enum rfs_metrics_scheme scheme_of(const char *url)
{
	const char *sep = strstr(url, "://");
	size_t n = sep ? (size_t)(sep - url) : 0;

	for (int i = 0; n && i < RFS_MS_OTHER; i++)
		if (strlen(scheme_names[i]) == n &&
		    !strncasecmp(url, scheme_names[i], n))
			return (enum rfs_metrics_scheme)i;
	return RFS_MS_OTHER;
}

void rfs_metrics_fetch(struct rfs_fs *fs, const char *url, double secs)
{
	observe(&fs->metrics.fetch[scheme_of(url)], secs);
}

/* ---- reads by identity ---- */

/*
 * What a reader is counted as: the mount's identity (every reader of a
 * mount that is not shared; root reading as the mount on a shared one),
 * or the local user whose own token it presents. Never anything of the
 * token itself.
 */
static uint64_t id_key(const struct rfs_fs *fs, const struct rfs_cred *who)
{
	if (!fs->authz || !who || !who->id || who->id == fs->mount_id)
		return RFS_ID_MOUNT;
	return who->uid;
}

static void id_name(uint64_t key, char *out, size_t len)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (key == RFS_ID_MOUNT) {
		snprintf(out, len, "mount");
		return;
	}
	if (getpwuid_r((uid_t)key, &pw, buf, sizeof(buf), &res) || !res)
		snprintf(out, len, "uid:%u", (unsigned)key);
	else
		snprintf(out, len, "%s", pw.pw_name);
}

/* The slot counting @key, or NULL when none is yet; @free: the first
 * free one (slots fill in order and are never emptied). */
static struct rfs_id_count *id_find(struct rfs_metrics *m, uint64_t key,
				    size_t *free)
{
	size_t i;

	for (i = 0; i < RFS_METRICS_IDS; i++) {
		uint64_t k = __atomic_load_n(&m->ids[i].key, __ATOMIC_ACQUIRE);

		if (k == key + 1)
			return &m->ids[i];
		if (!k)
			break;
	}
	*free = i;
	return NULL;
}

static struct rfs_id_count *id_slot(struct rfs_metrics *m, uint64_t key)
{
	struct rfs_id_count *c;
	char name[64];
	size_t free;

	c = id_find(m, key, &free);
	if (c)
		return c;
	if (free == RFS_METRICS_IDS)
		return &m->ids[RFS_METRICS_IDS];
	/* a user's first read: their name looked up once, without the
	 * lock (NSS may ask the network) */
	id_name(key, name, sizeof(name));
	pthread_mutex_lock(&m->ids_lock);
	c = id_find(m, key, &free);
	if (!c && free < RFS_METRICS_IDS) {
		c = &m->ids[free];
		snprintf(c->name, sizeof(c->name), "%s", name);
		__atomic_store_n(&c->key, key + 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&m->ids_lock);
	return c ? c : &m->ids[RFS_METRICS_IDS];
}

void rfs_fs_count_read(struct rfs_fs *fs, const struct rfs_file *f, ssize_t n,
		       double secs)
{
	struct rfs_id_count *c;

	observe(&fs->metrics.read, secs);
	if (!f)
		return;
	c = id_slot(&fs->metrics, id_key(fs, f->t.who));
	__atomic_add_fetch(&c->reads, 1, __ATOMIC_RELAXED);
	if (n > 0)
		__atomic_add_fetch(&c->bytes, (uint64_t)n, __ATOMIC_RELAXED);
}

/* ---- rendering ---- */

#define L(n, v)                                                                \
	(struct rfs_prom_label)                                                \
	{                                                                      \
		n, v                                                           \
	}

static void counter(struct rfs_prom *p, const char *name, const char *help,
		    uint64_t v)
{
	rfs_prom_family(p, name, RFS_PROM_COUNTER, help);
	rfs_prom_u64(p, NULL, 0, v);
}

static void gauge(struct rfs_prom *p, const char *name, const char *help,
		  double v)
{
	rfs_prom_family(p, name, RFS_PROM_GAUGE, help);
	rfs_prom_value(p, NULL, 0, v);
}

static void hist(struct rfs_prom *p, const struct rfs_prom_label *l, size_t nl,
		 const struct rfs_hist *h)
{
	uint64_t counts[RFS_LAT_BOUNDS + 1];
	struct rfs_prom_hist ph = { rfs_metrics_bounds, RFS_LAT_BOUNDS, counts,
				    0 };

	for (size_t i = 0; i <= RFS_LAT_BOUNDS; i++)
		counts[i] = __atomic_load_n(&h->counts[i], __ATOMIC_RELAXED);
	ph.sum = (double)__atomic_load_n(&h->sum_ns, __ATOMIC_RELAXED) / 1e9;
	rfs_prom_histogram(p, l, nl, &ph);
}

static void render_bytes(struct rfs_prom *p, const struct rfs_fs_stats *st,
			 bool cache)
{
	rfs_prom_family(p, "ruciofs_read_bytes_total", RFS_PROM_COUNTER,
			"Bytes by source: served to reads from the cache, or "
			"fetched from a storage endpoint (\"RSE\", or \"RSE "
			"scheme\" for a non-HTTP door)");
	if (cache)
		rfs_prom_u64(p,
			     (struct rfs_prom_label[]){ L("source", "cache") },
			     1, st->cache_bytes);
	for (size_t i = 0; i < st->nendpoints; i++)
		rfs_prom_u64(p,
			     (struct rfs_prom_label[]){
				     L("source", "endpoint"),
				     L("endpoint", st->endpoints[i].rse) },
			     2, st->endpoints[i].bytes);
}

static void render_endpoints(struct rfs_prom *p, const struct rfs_fs_stats *st)
{
	static const char *const names[] = {
		"ruciofs_endpoint_errors_total",
		"ruciofs_endpoint_slow_total",
		"ruciofs_endpoint_last_resort",
		"ruciofs_endpoint_rate_bytes_per_second",
	};
	static const char *const helps[] = {
		"Failed transfers from a storage endpoint",
		"Transfers slower than min_rate (finished or given up)",
		"1 while the endpoint is penalised (tried after the others)",
		"Measured streaming rate (EWMA of large transfers; 0: none)",
	};

	for (size_t k = 0; k < 4; k++) {
		rfs_prom_family(p, names[k],
				k < 2 ? RFS_PROM_COUNTER : RFS_PROM_GAUGE,
				helps[k]);
		for (size_t i = 0; i < st->nendpoints; i++) {
			const struct rfs_endpoint_info *e = &st->endpoints[i];
			struct rfs_prom_label l = L("endpoint", e->rse);
			double v = k == 0   ? (double)e->errors
				   : k == 1 ? (double)e->slow
				   : k == 2 ? (double)e->last_resort
					    : e->rate;

			if (k < 2)
				rfs_prom_u64(p, &l, 1, (uint64_t)v);
			else
				rfs_prom_value(p, &l, 1, v);
		}
	}
}

static void render_latency(struct rfs_prom *p, struct rfs_metrics *m)
{
	rfs_prom_family(p, "ruciofs_read_duration_seconds", RFS_PROM_HISTOGRAM,
			"FUSE read requests, from arrival to answer (reads "
			"the kernel serves through passthrough are not seen)");
	hist(p, NULL, 0, &m->read);
	rfs_prom_family(p, "ruciofs_fetch_duration_seconds", RFS_PROM_HISTOGRAM,
			"Transfers from storage (each attempt, whatever its "
			"outcome), by URL scheme");
	for (int i = 0; i < RFS_MS_COUNT; i++)
		if (__atomic_load_n(&m->fetch[i].sum_ns, __ATOMIC_RELAXED) ||
		    i == RFS_MS_HTTPS)
			hist(p,
			     (struct rfs_prom_label[]){
				     L("scheme", scheme_names[i]) },
			     1, &m->fetch[i]);
}

static void render_catalog(struct rfs_prom *p, struct rfs_fs *fs)
{
	struct rfs_catalog_counts cc;

	rfs_catalog_counts(fs->cat, &cc);
	for (int e = 0; e < 2; e++) {
		rfs_prom_family(p,
				e ? "ruciofs_catalogue_errors_total"
				  : "ruciofs_catalogue_requests_total",
				RFS_PROM_COUNTER,
				e ? "Catalogue calls that failed (no answer, "
				    "or an HTTP error other than 404)"
				  : "Catalogue calls sent, by kind");
		for (int k = 0; k < RFS_CAT_CALLS; k++)
			rfs_prom_u64(
				p,
				(struct rfs_prom_label[]){
					L("call", rfs_catalog_call_name(k)) },
				1, e ? cc.errors[k] : cc.calls[k]);
	}
	gauge(p, "ruciofs_offline",
	      "1 from the 'offline' event (the catalogue out of reach) to "
	      "the 'online' one",
	      rfs_catalog_unreachable(fs->cat));
}

static void render_cache(struct rfs_prom *p, const struct rfs_fs_stats *st)
{
	gauge(p, "ruciofs_cache_quota_bytes", "The cache's quota (cache_size)",
	      (double)st->quota);
	gauge(p, "ruciofs_cache_size_bytes", "Block bytes stored",
	      (double)st->used);
	gauge(p, "ruciofs_cache_pinned_bytes", "Block bytes of pinned files",
	      (double)st->pinned);
	gauge(p, "ruciofs_cache_files", "Files with a record in the cache",
	      (double)st->files);
	counter(p, "ruciofs_cache_hits_total",
		"Blocks reads found in the cache", st->hits);
	counter(p, "ruciofs_cache_misses_total",
		"Blocks reads had to wait for (fetched, or being fetched)",
		st->misses);
	counter(p, "ruciofs_cache_evicted_bytes_total",
		"Block bytes evicted (quota, or ruciofs-ctl evict)",
		st->evicted);
	counter(p, "ruciofs_cache_evicted_files_total",
		"Files evicted (quota, or ruciofs-ctl evict)",
		st->evicted_files);
	counter(p, "ruciofs_cache_corrupt_blocks_total",
		"Stored blocks that failed their CRC32C, dropped", st->corrupt);
	counter(p, "ruciofs_cache_dropped_blocks_total",
		"Fetched blocks the cache could not store", st->dropped);
	counter(p, "ruciofs_cache_written_bytes_total",
		"Block bytes the writer stored", st->written);
	counter(p, "ruciofs_passthrough_opens_total",
		"Opens the kernel reads from the cache directly",
		st->whole_opens);
}

static void render_checks(struct rfs_prom *p, const struct rfs_fs_stats *st)
{
	rfs_prom_family(p, "ruciofs_checksum_checks_total", RFS_PROM_COUNTER,
			"Whole files checked against the catalogue's "
			"checksums, by result");
	rfs_prom_u64(p, (struct rfs_prom_label[]){ L("result", "matched") }, 1,
		     st->matched);
	rfs_prom_u64(p, (struct rfs_prom_label[]){ L("result", "wrong") }, 1,
		     st->wrong);
	rfs_prom_family(p, "ruciofs_sessions", RFS_PROM_GAUGE,
			"Transport sessions (endpoint, identity): with files "
			"open on them, or kept idle for the next");
	rfs_prom_u64(p, (struct rfs_prom_label[]){ L("state", "busy") }, 1,
		     st->sessions_busy);
	rfs_prom_u64(p, (struct rfs_prom_label[]){ L("state", "idle") }, 1,
		     st->sessions_idle);
}

static void render_ids(struct rfs_prom *p, struct rfs_metrics *m)
{
	for (int b = 0; b < 2; b++) {
		rfs_prom_family(p,
				b ? "ruciofs_identity_read_bytes_total"
				  : "ruciofs_identity_reads_total",
				RFS_PROM_COUNTER,
				b ? "Bytes read, by identity"
				  : "Read requests, by identity: \"mount\", a "
				    "local user presenting their own token on "
				    "a shared mount, or \"other\" past 64");
		for (size_t i = 0; i <= RFS_METRICS_IDS; i++) {
			struct rfs_id_count *c = &m->ids[i];
			uint64_t v = __atomic_load_n(b ? &c->bytes : &c->reads,
						     __ATOMIC_RELAXED);

			if (i < RFS_METRICS_IDS &&
			    !__atomic_load_n(&c->key, __ATOMIC_ACQUIRE))
				break;
			if (i == RFS_METRICS_IDS && !v)
				continue;
			rfs_prom_u64(p,
				     (struct rfs_prom_label[]){
					     L("identity", c->name) },
				     1, v);
		}
	}
}

static size_t open_files(struct rfs_fs *fs)
{
	size_t n = 0;

	pthread_mutex_lock(&fs->open_lock);
	for (struct rfs_file *f = fs->open_files; f; f = f->next)
		n++;
	pthread_mutex_unlock(&fs->open_lock);
	return n;
}

/* What is known without a cache too. */
static void snapshot(struct rfs_fs *fs, struct rfs_fs_stats *st)
{
	if (rfs_fs_stats(fs, st)) {
		memset(st, 0, sizeof(*st));
		rfs_verify_counts(fs, &st->matched, &st->wrong);
		rfs_transports_sessions(fs->tps, &st->sessions_busy,
					&st->sessions_idle);
		rfs_endpoints_snapshot(fs, st);
	}
}

int rfs_fs_metrics(struct rfs_fs *fs, struct rfs_buf *out)
{
	struct rfs_fs_stats *st = malloc(sizeof(*st));
	bool cache = fs->cache != NULL;
	struct rfs_prom p;

	if (!st)
		return -ENOMEM;
	snapshot(fs, st);
	rfs_prom_init(&p, out);
	rfs_prom_family(&p, "ruciofs_info", RFS_PROM_GAUGE,
			"1, labelled with the version");
	rfs_prom_value(
		&p, (struct rfs_prom_label[]){ L("version", PACKAGE_VERSION) },
		1, 1);
	gauge(&p, "ruciofs_mounted", "1 while mounted; 0 in the last file",
	      !__atomic_load_n(&fs->metrics.unmounted, __ATOMIC_RELAXED));
	gauge(&p, "ruciofs_start_time_seconds",
	      "When the mount started, in seconds since the epoch",
	      (double)fs->start);
	render_bytes(&p, st, cache);
	render_endpoints(&p, st);
	render_latency(&p, &fs->metrics);
	render_catalog(&p, fs);
	if (cache)
		render_cache(&p, st);
	render_checks(&p, st);
	gauge(&p, "ruciofs_open_files", "Files open through the daemon",
	      (double)open_files(fs));
	render_ids(&p, &fs->metrics);
	free(st);
	return rfs_prom_finish(&p);
}

/* ---- the -o metrics file ---- */

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The text to PATH.tmp, then renamed over PATH: never half a file. */
static int write_file(struct rfs_fs *fs, const char *path)
{
	char tmp[4200];
	struct rfs_buf b;
	int fd, rc;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	rfs_buf_init(&b, METRICS_MAX);
	rc = rfs_fs_metrics(fs, &b);
	fd = rc ? -1
		: open(tmp,
		       O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		       0644);
	if (!rc && fd < 0)
		rc = -errno;
	/* node-exporter reads it as another user, whatever our umask */
	if (!rc && fchmod(fd, 0644))
		rc = -errno;
	if (!rc)
		rc = write_all(fd, b.data ? b.data : "", b.len);
	if (fd >= 0 && close(fd) && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc && fd >= 0)
		unlink(tmp);
	rfs_buf_release(&b);
	return rc;
}

static void write_logged(struct rfs_fs *fs)
{
	const char *path = fs->conf->metrics;
	int rc = write_file(fs, path);

	if (rc)
		rfs_log_limited(LOG_WARNING, "metrics-file",
				"metrics: cannot write '%s': %s", path,
				rfs_errno_reason(rc));
}

static void *file_main(void *arg)
{
	struct rfs_fs *fs = arg;
	struct rfs_metrics *m = &fs->metrics;

	pthread_setname_np(pthread_self(), "rfs-metrics");
	pthread_mutex_lock(&m->lock);
	while (!m->stop) {
		double next = rfs_mono_now() + fs->conf->metrics_interval;

		pthread_mutex_unlock(&m->lock);
		write_logged(fs);
		pthread_mutex_lock(&m->lock);
		while (!m->stop &&
		       rfs_cond_wait_until(&m->cv, &m->lock, next) == 0)
			;
	}
	pthread_mutex_unlock(&m->lock);
	__atomic_store_n(&m->unmounted, true, __ATOMIC_RELAXED);
	write_logged(fs);
	return NULL;
}

void rfs_metrics_file_start(struct rfs_fs *fs)
{
	struct rfs_metrics *m = &fs->metrics;
	int rc;

	if (!fs->conf->metrics || m->running)
		return;
	rc = pthread_create(&m->thread, NULL, file_main, fs);
	if (rc)
		rfs_err("metrics: no thread to write '%s': %s",
			fs->conf->metrics, rfs_errno_reason(-rc));
	m->running = rc == 0;
}

void rfs_metrics_file_stop(struct rfs_fs *fs)
{
	struct rfs_metrics *m = &fs->metrics;

	if (!m->running)
		return;
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->lock);
	pthread_join(m->thread, NULL);
	m->running = false;
}
