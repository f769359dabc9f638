#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "authz/idmap.h"
#include "authz/idmap_int.h"
#include "util/banned.h"

/* getpwnam_r's buffer grows to this for a huge group or user entry. */
#define NSS_BUF_MAX (1 << 20)

struct rule_set {
	struct rfs_idmap_rule *v;
	size_t n, alloc;
};

struct rfs_idmap {
	struct rule_set set[RFS_IDMAP_NKINDS];
};

static const char *const kind_names[RFS_IDMAP_NKINDS] = {
	[RFS_IDMAP_GROUP] = "group",
	[RFS_IDMAP_USER] = "user",
	[RFS_IDMAP_ACCOUNT] = "account",
	[RFS_IDMAP_SCOPE] = "scope",
};

void rfs_idmap_free(struct rfs_idmap *m)
{
	if (!m)
		return;
	for (int k = 0; k < RFS_IDMAP_NKINDS; k++) {
		for (size_t i = 0; i < m->set[k].n; i++) {
			free(m->set[k].v[i].key);
			free(m->set[k].v[i].group);
		}
		free(m->set[k].v);
	}
	free(m);
}

/* ---- names ---- */

/*
 * A user's or a group's id by name, growing the buffer as the _r calls
 * ask (ERANGE): the two lookups differ only in the call.
 */
static int nss_id(const char *name, bool group, unsigned *out)
{
	size_t len = 1024;
	struct passwd pw, *pwr = NULL;
	struct group gr, *grr = NULL;
	char *buf = NULL;
	int rc = ERANGE;

	while (rc == ERANGE && len <= NSS_BUF_MAX) {
		char *nb = realloc(buf, len);

		if (!nb) {
			rc = ENOMEM;
			break;
		}
		buf = nb;
		rc = group ? getgrnam_r(name, &gr, buf, len, &grr)
			   : getpwnam_r(name, &pw, buf, len, &pwr);
		len *= 2;
	}
	free(buf);
	if (rc == 0 && (pwr || grr))
		*out = group ? gr.gr_gid : pw.pw_uid;
	/* getpwnam_r(3): these too mean "no such name" */
	if ((rc == 0 && !pwr && !grr) || rc == ENOENT || rc == ESRCH ||
	    rc == EBADF || rc == EPERM)
		return -ENOENT;
	return -rc;
}

static int nss_user(const char *name, uid_t *out, void *arg)
{
	unsigned id;
	int rc = nss_id(name, false, &id);

	(void)arg;
	if (!rc)
		*out = id;
	return rc;
}

static int nss_group(const char *name, gid_t *out, void *arg)
{
	unsigned id;
	int rc = nss_id(name, true, &id);

	(void)arg;
	if (!rc)
		*out = id;
	return rc;
}

static const struct rfs_idmap_names nss_names = { nss_user, nss_group, NULL };

/* ---- parsing ---- */

struct parse {
	const struct rfs_idmap_names *names;
	struct rfs_idmap *m;
	unsigned line;
	char *err;
	size_t errlen;
};

static int fail(struct parse *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct parse *p, const char *fmt, ...)
{
	int n = 0;
	va_list ap;

	if (!p->errlen)
		return -EINVAL;
	n = snprintf(p->err, p->errlen, "idmap line %u: ", p->line);
	if (n >= 0 && (size_t)n < p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* A whole decimal id, as chown(1) takes one; (uid_t)-1 is no id. */
static bool numeric_id(const char *s, unsigned *out)
{
	unsigned long long v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (unsigned)(*s - '0');
		if (v >= 0xffffffffULL)
			return false;
	}
	*out = (unsigned)v;
	return true;
}

static bool all_digits(const char *s)
{
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* The local id @s names (a number, or a name looked up). */
static int local_id(struct parse *p, bool user, const char *s, unsigned *out)
{
	const char *what = user ? "user" : "group";
	uid_t uid = 0;
	gid_t gid = 0;
	int rc;

	if (all_digits(s))
		return numeric_id(s, out)
			       ? 0
			       : fail(p, "%s id '%.64s' is out of range", what,
				      s);
	rc = user ? p->names->user(s, &uid, p->names->arg)
		  : p->names->group(s, &gid, p->names->arg);
	if (rc == -ENOENT)
		return fail(p, "unknown %s '%.64s'", what, s);
	if (rc == -ENOMEM)
		return -ENOMEM;
	if (rc)
		return fail(p, "cannot look up %s '%.64s': %s", what, s,
			    strerror(-rc));
	*out = user ? (unsigned)uid : (unsigned)gid;
	return 0;
}

/*
 * An IAM group, with its leading '/' whether written or not: IAM's "wlcg"
 * profile writes "/escape/cta" in wlcg.groups, its "iam" profile
 * "escape/cta" in groups. Components must not be empty.
 */
static int iam_group(struct parse *p, const char *s, char **out)
{
	const char *g = s[0] == '/' ? s + 1 : s;
	size_t n = strlen(g);

	if (!n || g[n - 1] == '/' || strstr(g, "//") || g[0] == '/')
		return fail(p, "'%.64s' is not an IAM group (like /vo/sub)", s);
	*out = malloc(n + 2);
	if (!*out)
		return -ENOMEM;
	(*out)[0] = '/';
	memcpy(*out + 1, g, n + 1);
	return 0;
}

static int add_rule(struct parse *p, enum rfs_idmap_kind k, char *fields[3])
{
	struct rule_set *set = &p->m->set[k];
	struct rfs_idmap_rule r = { .line = p->line };
	int rc;

	if (set->n == set->alloc) {
		size_t na = set->alloc ? set->alloc * 2 : 16;
		struct rfs_idmap_rule *nv = realloc(set->v, na * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		set->v = nv;
		set->alloc = na;
	}
	if (k == RFS_IDMAP_GROUP)
		rc = iam_group(p, fields[1], &r.key);
	else
		rc = (r.key = strdup(fields[1])) ? 0 : -ENOMEM;
	if (!rc && k == RFS_IDMAP_SCOPE)
		rc = iam_group(p, fields[2], &r.group);
	else if (!rc)
		rc = local_id(p, k != RFS_IDMAP_GROUP, fields[2], &r.id);
	if (rc) {
		free(r.key);
		free(r.group);
		return rc;
	}
	set->v[set->n++] = r;
	return 0;
}

/*
 * Splits @line (NUL terminated, no newline) into at most three fields, in
 * place; a '#' where a field would start begins a comment. Returns how
 * many, or a negative errno.
 */
static int split(struct parse *p, char *line, char *fields[3])
{
	int n = 0;

	for (char *s = line;;) {
		while (is_blank(*s))
			s++;
		if (!*s || *s == '#')
			return n;
		if (n == 3)
			return fail(p, "more than three fields (a key with "
				       "blanks cannot be written)");
		fields[n++] = s;
		while (*s && !is_blank(*s))
			s++;
		if (*s)
			*s++ = '\0';
	}
}

static int check_field(struct parse *p, const char *f, int i)
{
	size_t n = 0;

	for (; f[n]; n++)
		if ((unsigned char)f[n] < 0x21 || (unsigned char)f[n] > 0x7e)
			return fail(p,
				    "field %d has a byte that is not "
				    "printable ASCII",
				    i + 1);
	if (n > RFS_IDMAP_FIELD_MAX)
		return fail(p, "field %d is longer than %d bytes", i + 1,
			    RFS_IDMAP_FIELD_MAX);
	return 0;
}

static int parse_line(struct parse *p, char *line)
{
	char *fields[3] = { NULL, NULL, NULL };
	int n = split(p, line, fields), k, rc = 0;

	if (n <= 0)
		return n;
	for (int i = 0; i < n && !rc; i++)
		rc = check_field(p, fields[i], i);
	if (rc)
		return rc;
	for (k = 0; k < RFS_IDMAP_NKINDS; k++)
		if (!strcmp(fields[0], kind_names[k]))
			break;
	if (k == RFS_IDMAP_NKINDS)
		return fail(p,
			    "unknown rule '%.64s' (group, user, account or "
			    "scope)",
			    fields[0]);
	if (n < 3)
		return fail(p, "'%s' needs a key and a value", kind_names[k]);
	return add_rule(p, (enum rfs_idmap_kind)k, fields);
}

static int by_key_then_line(const void *a, const void *b)
{
	const struct rfs_idmap_rule *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : x->line < y->line ? -1 : x->line > y->line;
}

/* Sorted by key, the last rule of each key kept: a later rule wins. */
static void settle(struct rule_set *set)
{
	size_t o = 0;

	if (set->n)
		qsort(set->v, set->n, sizeof(*set->v), by_key_then_line);
	for (size_t i = 0; i < set->n; i++) {
		if (i + 1 < set->n &&
		    !strcmp(set->v[i].key, set->v[i + 1].key)) {
			free(set->v[i].key);
			free(set->v[i].group);
			continue;
		}
		set->v[o++] = set->v[i];
	}
	set->n = o;
}

static int parse_all(struct parse *p, const char *text, size_t len)
{
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;

	for (size_t pos = 0; pos < len && !rc;) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;

		p->line++;
		if (memchr(text + pos, '\0', n)) {
			rc = fail(p, "NUL byte");
			break;
		}
		if (n + 1 > cap) {
			char *nb = realloc(line, n + 1);

			if (!nb) {
				rc = -ENOMEM;
				break;
			}
			line = nb;
			cap = n + 1;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		rc = parse_line(p, line);
		pos += n + 1;
	}
	free(line);
	return rc;
}

int rfs_idmap_parse_with(const char *text, size_t len,
			 const struct rfs_idmap_names *names,
			 struct rfs_idmap **out, char *err, size_t errlen)
{
	struct parse p = { names, NULL, 0, err, errlen };
	int rc;

	*out = NULL;
	if (errlen)
		err[0] = '\0';
	p.m = calloc(1, sizeof(*p.m));
	if (!p.m)
		return -ENOMEM;
	rc = parse_all(&p, text, len);
	if (rc == -ENOMEM && errlen)
		snprintf(err, errlen, "idmap: out of memory");
	if (rc) {
		rfs_idmap_free(p.m);
		return rc;
	}
	for (int k = 0; k < RFS_IDMAP_NKINDS; k++)
		settle(&p.m->set[k]);
	*out = p.m;
	return 0;
}

int rfs_idmap_parse(const char *text, size_t len, struct rfs_idmap **out,
		    char *err, size_t errlen)
{
	return rfs_idmap_parse_with(text, len, &nss_names, out, err, errlen);
}

/* The whole of @fd, a regular file of at most RFS_IDMAP_FILE_MAX bytes. */
static int read_all(int fd, char **out, size_t *len, const char **why)
{
	struct stat st;
	size_t n = 0;
	ssize_t r = 1;
	char *buf;

	if (fstat(fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode)) {
		*why = "not a regular file";
		return -EINVAL;
	}
	/* whoever may write it decides who owns what in "ls -l" */
	if (st.st_mode & S_IWOTH) {
		*why = "writable by others (chmod o-w)";
		return -EACCES;
	}
	if (st.st_size > RFS_IDMAP_FILE_MAX)
		return -EFBIG;
	buf = malloc(RFS_IDMAP_FILE_MAX + 1);
	if (!buf)
		return -ENOMEM;
	while (r > 0 && n <= RFS_IDMAP_FILE_MAX) {
		r = read(fd, buf + n, RFS_IDMAP_FILE_MAX + 1 - n);
		if (r > 0)
			n += (size_t)r;
		else if (r < 0 && errno == EINTR)
			r = 1;
	}
	if (r < 0 || n > RFS_IDMAP_FILE_MAX) {
		int rc = r < 0 ? -errno : -EFBIG;

		free(buf);
		return rc;
	}
	*out = buf;
	*len = n;
	return 0;
}

int rfs_idmap_load(const char *path, struct rfs_idmap **out, char *err,
		   size_t errlen)
{
	const char *why = NULL;
	char *text = NULL;
	size_t len = 0;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "idmap '%s': %s", path, strerror(-rc));
		return rc;
	}
	rc = read_all(fd, &text, &len, &why);
	close(fd);
	if (rc == -EFBIG)
		why = "larger than 1 MiB";
	if (rc) {
		snprintf(err, errlen, "idmap '%s': %s", path,
			 why ? why : strerror(-rc));
		return rc;
	}
	rc = rfs_idmap_parse(text, len, out, err, errlen);
	free(text);
	return rc;
}

/* ---- lookups ---- */

const struct rfs_idmap_rule *rfs_idmap_rules(const struct rfs_idmap *m,
					     enum rfs_idmap_kind k, size_t *n)
{
	*n = m ? m->set[k].n : 0;
	return m ? m->set[k].v : NULL;
}

/* @key compared with a stored key; @skip: from the stored key's byte 1
 * (an IAM group looked up without its leading '/'). */
static const struct rfs_idmap_rule *find(const struct rfs_idmap *m,
					 enum rfs_idmap_kind k, const char *key,
					 size_t skip)
{
	size_t lo = 0, hi = m ? m->set[k].n : 0;

	if (!key)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct rfs_idmap_rule *r = &m->set[k].v[mid];
		int c = strcmp(key, r->key + skip);

		if (!c)
			return r;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const char *rfs_idmap_scope_group(const struct rfs_idmap *m, const char *scope)
{
	const struct rfs_idmap_rule *r = find(m, RFS_IDMAP_SCOPE, scope, 0);

	return r ? r->group : NULL;
}

bool rfs_idmap_gid(const struct rfs_idmap *m, const char *group, gid_t *out)
{
	const struct rfs_idmap_rule *r;

	/* every stored group starts with '/': "escape" is "/escape" */
	if (group && group[0] == '/')
		group++;
	r = find(m, RFS_IDMAP_GROUP, group, 1);
	if (r)
		*out = (gid_t)r->id;
	return r != NULL;
}

bool rfs_idmap_uid_of_sub(const struct rfs_idmap *m, const char *sub,
			  uid_t *out)
{
	const struct rfs_idmap_rule *r = find(m, RFS_IDMAP_USER, sub, 0);

	if (r)
		*out = (uid_t)r->id;
	return r != NULL;
}

bool rfs_idmap_uid_of_account(const struct rfs_idmap *m, const char *account,
			      uid_t *out)
{
	const struct rfs_idmap_rule *r = find(m, RFS_IDMAP_ACCOUNT, account, 0);

	if (r)
		*out = (uid_t)r->id;
	return r != NULL;
}
