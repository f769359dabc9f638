#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/prom.h"
#include "util/banned.h"

static bool name_char(char c, bool first, bool colon)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
		return true;
	if (c == ':')
		return colon;
	return !first && c >= '0' && c <= '9';
}

static bool name_ok(const char *s, bool colon)
{
	if (!s || !*s)
		return false;
	for (const char *c = s; *c; c++)
		if (!name_char(*c, c == s, colon))
			return false;
	return true;
}

bool rfs_prom_name_ok(const char *s)
{
	return name_ok(s, true);
}

/* Label names: no ':', and "__" is reserved for Prometheus itself. */
static bool label_name_ok(const char *s)
{
	return name_ok(s, false) && strncmp(s, "__", 2) != 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

static void fail(struct rfs_prom *p, int err)
{
	if (!p->err)
		p->err = err;
}

static void add(struct rfs_prom *p, const char *s, size_t n)
{
	int rc = p->err ? 0 : rfs_buf_add(p->out, s, n);

	if (rc)
		fail(p, rc);
}

static void adds(struct rfs_prom *p, const char *s)
{
	add(p, s, strlen(s));
}

/*
 * The format's escapes: in label values backslash, double quote and
 * newline; in help texts backslash and newline. Anything else goes as
 * it is (the format is UTF-8; a value is never cut).
 */
static void add_escaped(struct rfs_prom *p, const char *s, bool quote)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = *s == '\\'	       ? "\\\\"
				  : *s == '\n'	       ? "\\n"
				  : quote && *s == '"' ? "\\\""
						       : NULL;

		if (!esc)
			continue;
		add(p, run, (size_t)(s - run));
		adds(p, esc);
		run = s + 1;
	}
	add(p, run, (size_t)(s - run));
}

/* A float as the format writes it: the shortest that reads back. */
static void fmt_double(char *out, size_t len, double v)
{
	if (isnan(v)) {
		snprintf(out, len, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	snprintf(out, len, "%.15g", v);
	if (strtod(out, NULL) != v)
		snprintf(out, len, "%.17g", v);
}

static const char *type_name(enum rfs_prom_type t)
{
	switch (t) {
	case RFS_PROM_COUNTER:
		return "counter";
	case RFS_PROM_GAUGE:
		return "gauge";
	default:
		return "histogram";
	}
}

void rfs_prom_init(struct rfs_prom *p, struct rfs_buf *out)
{
	p->out = out;
	p->family = NULL;
	p->type = RFS_PROM_GAUGE;
	p->err = 0;
}

/* Whether family @name was declared in this output already. */
static bool declared(const struct rfs_prom *p, const char *name)
{
	size_t n = strlen(name);
	const char *s = p->out->data;

	while (s && (s = strstr(s, "\n# TYPE "))) {
		s += 8;
		if (!strncmp(s, name, n) && s[n] == ' ')
			return true;
	}
	return false;
}

void rfs_prom_family(struct rfs_prom *p, const char *name,
		     enum rfs_prom_type type, const char *help)
{
	if (p->err)
		return;
	/* a counter's samples are all _total; a histogram's own suffixes
	 * must not be spelled by the family */
	if (!rfs_prom_name_ok(name) ||
	    (type == RFS_PROM_COUNTER) != ends_with(name, "_total") ||
	    declared(p, name)) {
		fail(p, -EINVAL);
		return;
	}
	p->family = name;
	p->type = type;
	adds(p, "# HELP ");
	adds(p, name);
	adds(p, " ");
	add_escaped(p, help ? help : "", false);
	adds(p, "\n# TYPE ");
	adds(p, name);
	adds(p, " ");
	adds(p, type_name(type));
	adds(p, "\n");
}

/* "{a="x",b="y"}", with @le appended when not NULL; nothing if empty. */
static void add_labels(struct rfs_prom *p, const struct rfs_prom_label *l,
		       size_t n, const char *le)
{
	if (!n && !le)
		return;
	adds(p, "{");
	for (size_t i = 0; i < n; i++) {
		if (!label_name_ok(l[i].name) || !strcmp(l[i].name, "le") ||
		    !l[i].value) {
			fail(p, -EINVAL);
			return;
		}
		adds(p, i ? "," : "");
		adds(p, l[i].name);
		adds(p, "=\"");
		add_escaped(p, l[i].value, true);
		adds(p, "\"");
	}
	if (le) {
		adds(p, n ? ",le=\"" : "le=\"");
		adds(p, le);
		adds(p, "\"");
	}
	adds(p, "}");
}

static void sample(struct rfs_prom *p, const char *suffix,
		   const struct rfs_prom_label *l, size_t n, const char *le,
		   const char *value)
{
	adds(p, p->family);
	adds(p, suffix);
	add_labels(p, l, n, le);
	adds(p, " ");
	adds(p, value);
	adds(p, "\n");
}

static bool scalar_ok(struct rfs_prom *p)
{
	if (!p->err && (!p->family || p->type == RFS_PROM_HISTOGRAM))
		fail(p, -EINVAL);
	return !p->err;
}

void rfs_prom_value(struct rfs_prom *p, const struct rfs_prom_label *labels,
		    size_t nlabels, double value)
{
	char v[64];

	if (!scalar_ok(p))
		return;
	fmt_double(v, sizeof(v), value);
	sample(p, "", labels, nlabels, NULL, v);
}

void rfs_prom_u64(struct rfs_prom *p, const struct rfs_prom_label *labels,
		  size_t nlabels, uint64_t value)
{
	char v[32];

	if (!scalar_ok(p))
		return;
	snprintf(v, sizeof(v), "%" PRIu64, value);
	sample(p, "", labels, nlabels, NULL, v);
}

static bool bounds_ok(const struct rfs_prom_hist *h)
{
	for (size_t i = 0; i < h->nbounds; i++)
		if (isnan(h->bounds[i]) || isinf(h->bounds[i]) ||
		    (i && h->bounds[i] <= h->bounds[i - 1]))
			return false;
	return true;
}

void rfs_prom_histogram(struct rfs_prom *p, const struct rfs_prom_label *labels,
			size_t nlabels, const struct rfs_prom_hist *h)
{
	uint64_t cum = 0;
	char le[64], v[64];

	if (!p->err &&
	    (!p->family || p->type != RFS_PROM_HISTOGRAM || !bounds_ok(h)))
		fail(p, -EINVAL);
	if (p->err)
		return;
	for (size_t i = 0; i <= h->nbounds; i++) {
		cum += h->counts[i];
		if (i < h->nbounds)
			fmt_double(le, sizeof(le), h->bounds[i]);
		snprintf(v, sizeof(v), "%" PRIu64, cum);
		sample(p, "_bucket", labels, nlabels,
		       i < h->nbounds ? le : "+Inf", v);
	}
	fmt_double(v, sizeof(v), h->sum);
	sample(p, "_sum", labels, nlabels, NULL, v);
	snprintf(v, sizeof(v), "%" PRIu64, cum);
	sample(p, "_count", labels, nlabels, NULL, v);
}

int rfs_prom_finish(const struct rfs_prom *p)
{
	return p->err;
}
