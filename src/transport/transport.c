#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "transport/transport.h"
#include "util/errmap.h"
#include "util/log.h"
#include "util/banned.h"

/* The registry: a new transport is one more line here. */
static const struct rfs_transport_ops *const all_ops[] = {
	&rfs_http_transport_ops,
};
#define NOPS (sizeof(all_ops) / sizeof(all_ops[0]))

struct rfs_transports {
	struct rfs_transport *t[NOPS];
};

static void cleanup_first(size_t n)
{
	while (n--)
		if (all_ops[n]->global_cleanup)
			all_ops[n]->global_cleanup();
}

int rfs_transports_global_init(void)
{
	for (size_t i = 0; i < NOPS; i++) {
		int rc =
			all_ops[i]->global_init ? all_ops[i]->global_init() : 0;

		if (rc) {
			cleanup_first(i);
			return rc;
		}
	}
	return 0;
}

void rfs_transports_global_cleanup(void)
{
	cleanup_first(NOPS);
}

int rfs_transports_open(struct rfs_transports **out,
			const struct rfs_conf *conf)
{
	struct rfs_transports *ts = calloc(1, sizeof(*ts));
	int rc = 0;

	if (!ts)
		return -ENOMEM;
	for (size_t i = 0; i < NOPS && !rc; i++)
		rc = all_ops[i]->open(&ts->t[i], conf);
	if (rc) {
		rfs_transports_close(ts);
		return rc;
	}
	*out = ts;
	return 0;
}

int rfs_transports_start(struct rfs_transports *ts)
{
	int first = 0;

	for (size_t i = 0; i < NOPS; i++) {
		int rc = all_ops[i]->start ? all_ops[i]->start(ts->t[i]) : 0;

		if (rc) {
			/* after daemonizing nothing exits: the mount goes
			 * on, and the ranges it fails go to other replicas */
			rfs_err("transport %s cannot start: %s",
				all_ops[i]->name, rfs_errno_reason(rc));
			if (!first)
				first = rc;
		}
	}
	return first;
}

void rfs_transports_close(struct rfs_transports *ts)
{
	if (!ts)
		return;
	for (size_t i = 0; i < NOPS; i++)
		if (ts->t[i])
			ts->t[i]->ops->close(ts->t[i]);
	free(ts);
}

static bool scheme_matches(const char *url, const char *scheme)
{
	size_t n = strlen(scheme);

	return strncasecmp(url, scheme, n) == 0 && !strncmp(url + n, "://", 3);
}

const char *rfs_transports_scheme(size_t i)
{
	for (size_t k = 0; k < NOPS; k++) {
		const char *const *s = all_ops[k]->schemes;

		for (; *s; s++)
			if (i-- == 0)
				return *s;
	}
	return NULL;
}

struct rfs_transport *rfs_transports_find(struct rfs_transports *ts,
					  const char *url)
{
	for (size_t i = 0; i < NOPS; i++) {
		const char *const *s = all_ops[i]->schemes;

		for (; *s; s++)
			if (scheme_matches(url, *s))
				return ts->t[i];
	}
	return NULL;
}

void rfs_transports_versions(char *out, size_t len)
{
	size_t used = 0;

	if (!len)
		return;
	out[0] = '\0';
	for (size_t i = 0; i < NOPS && used < len; i++) {
		const char *v =
			all_ops[i]->version ? all_ops[i]->version() : NULL;
		int n;

		if (!v || !v[0])
			continue;
		n = snprintf(out + used, len - used, "%s%s", used ? ", " : "",
			     v);
		used = n < 0 ? len : used + (size_t)n;
	}
}
