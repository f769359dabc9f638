/*
 * The Prometheus text exposition format (version 0.0.4), written into a
 * bounded buffer. Pure: no clock, no I/O, no globals, so that what the
 * daemon exposes can be checked byte for byte by unit tests.
 *
 * A family is declared once (# HELP, # TYPE) and its samples follow it;
 * the sample name is always the family's (plus _bucket, _sum, _count for
 * a histogram), so a sample cannot stray from its header. Names are
 * checked ([a-zA-Z_:][a-zA-Z0-9_:]*, label names without ':' and not
 * starting with "__"), a counter's name must end in "_total", and label
 * values and help texts are escaped as the format says.
 *
 * Every call records the first error in the writer (-EINVAL for a name
 * the format does not allow or a family declared twice, -EFBIG past the
 * buffer's cap, -ENOMEM); later calls then do nothing, and
 * rfs_prom_finish says it.
 */
#ifndef RFS_UTIL_PROM_H
#define RFS_UTIL_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum rfs_prom_type {
	RFS_PROM_COUNTER,
	RFS_PROM_GAUGE,
	RFS_PROM_HISTOGRAM,
};

struct rfs_prom_label {
	const char *name;
	const char *value; /* any bytes; escaped when written */
};

/*
 * A histogram's state: @nbounds upper bounds, increasing, and
 * @nbounds + 1 counts, each of its own bucket only (not cumulative; the
 * last one past the highest bound): the writer sums them into the
 * format's cumulative buckets and the "+Inf" one, which is the _count.
 */
struct rfs_prom_hist {
	const double *bounds;
	size_t nbounds;
	const uint64_t *counts;
	double sum;
};

struct rfs_prom {
	struct rfs_buf *out; /* borrowed */
	const char *family;  /* the current one's name, borrowed */
	enum rfs_prom_type type;
	int err;
};

/* Writes into @out (borrowed; appended to). */
void rfs_prom_init(struct rfs_prom *p, struct rfs_buf *out);
/* Starts family @name; @help may be any text. @name is borrowed until
 * the next family starts. */
void rfs_prom_family(struct rfs_prom *p, const char *name,
		     enum rfs_prom_type type, const char *help);
/* One sample of the current counter or gauge. */
void rfs_prom_value(struct rfs_prom *p, const struct rfs_prom_label *labels,
		    size_t nlabels, double value);
/* The same for an integer (exact past 2^53, as counters of bytes go). */
void rfs_prom_u64(struct rfs_prom *p, const struct rfs_prom_label *labels,
		  size_t nlabels, uint64_t value);
/* One labelled histogram of the current histogram family. */
void rfs_prom_histogram(struct rfs_prom *p, const struct rfs_prom_label *labels,
			size_t nlabels, const struct rfs_prom_hist *h);
/* 0, or the first error met. */
int rfs_prom_finish(const struct rfs_prom *p);

/* Whether @s is a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*). */
bool rfs_prom_name_ok(const char *s);

#endif
