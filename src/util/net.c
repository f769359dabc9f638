#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/net.h"
#include "util/banned.h"

/* Link-local: where cloud metadata services and their tokens live. */
static const char *const builtin_deny[] = { "169.254.0.0/16", "fe80::/10" };
#define NBUILTIN (sizeof(builtin_deny) / sizeof(builtin_deny[0]))

static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0,    0,
					    0, 0, 0, 0, 0xff, 0xff };

static int parse_bits(const char *s, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (!*s || strlen(s) > 3)
		return -EINVAL;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* True if any bit of @a at or past @bits is set. */
static bool host_bits_set(const unsigned char *a, size_t len, unsigned bits)
{
	for (size_t i = 0; i < len; i++) {
		unsigned keep = bits >= 8 * (i + 1) ? 8
				: bits > 8 * i	    ? bits - 8 * i
						    : 0;
		unsigned char mask = (unsigned char)(0xff >> keep);

		if (a[i] & mask)
			return true;
	}
	return false;
}

/* "[v6]" or "a.b.c.d" (no prefix) into @c with all bits. */
static int parse_addr(const char *s, struct rfs_cidr *c)
{
	char buf[64];
	size_t n = strlen(s);

	if (n >= sizeof(buf))
		return -EINVAL;
	if (s[0] == '[') {
		if (n < 3 || s[n - 1] != ']')
			return -EINVAL;
		s++;
		n -= 2;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, buf, c->addr) == 1) {
		c->family = AF_INET;
		c->bits = 32;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, c->addr) == 1) {
		c->family = AF_INET6;
		c->bits = 128;
		return 0;
	}
	return -EINVAL;
}

int rfs_cidr_parse(const char *s, struct rfs_cidr *out)
{
	char buf[80];
	char *slash;
	struct rfs_cidr c;
	unsigned bits;
	size_t n = strlen(s);

	if (n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n + 1);
	slash = strrchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (parse_addr(buf, &c))
		return -EINVAL;
	bits = c.bits;
	if (slash && parse_bits(slash + 1, c.bits, &bits))
		return -EINVAL;
	if (host_bits_set(c.addr, c.family == AF_INET ? 4 : 16, bits))
		return -EINVAL;
	c.bits = bits;
	if (c.family == AF_INET6 && bits >= 96 &&
	    !memcmp(c.addr, v4mapped, sizeof(v4mapped))) {
		memmove(c.addr, c.addr + 12, 4);
		memset(c.addr + 4, 0, 12);
		c.family = AF_INET;
		c.bits = bits - 96;
	}
	*out = c;
	return 0;
}

/* @sa as 4 bytes (IPv4, or IPv4-mapped) and as 16 (IPv4 mapped). */
static bool sa_bytes(const struct sockaddr *sa, size_t salen,
		     unsigned char v4[4], bool *has_v4, unsigned char v6[16])
{
	if (sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)sa;

		memcpy(v4, &in->sin_addr, 4);
		memcpy(v6, v4mapped, 12);
		memcpy(v6 + 12, v4, 4);
		*has_v4 = true;
		return true;
	}
	if (sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		memcpy(v6, &in6->sin6_addr, 16);
		*has_v4 = !memcmp(v6, v4mapped, 12);
		if (*has_v4)
			memcpy(v4, v6 + 12, 4);
		return true;
	}
	return false;
}

static bool prefix_equal(const unsigned char *a, const unsigned char *b,
			 unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));

	if (memcmp(a, b, whole))
		return false;
	return !rest || ((a[whole] ^ b[whole]) & mask) == 0;
}

bool rfs_cidr_contains(const struct rfs_cidr *c, const struct sockaddr *sa,
		       size_t salen)
{
	unsigned char v4[4], v6[16];
	bool has_v4 = false;

	if (!sa_bytes(sa, salen, v4, &has_v4, v6))
		return false;
	if (c->family == AF_INET)
		return has_v4 && prefix_equal(c->addr, v4, c->bits);
	return c->family == AF_INET6 && prefix_equal(c->addr, v6, c->bits);
}

/* Length of @s without one final dot. */
static size_t name_len(const char *s)
{
	size_t n = strlen(s);

	return n && s[n - 1] == '.' ? n - 1 : n;
}

static bool same_name(const char *a, const char *b)
{
	size_t n = name_len(a);

	return n == name_len(b) && !strncasecmp(a, b, n);
}

bool rfs_host_matches(const char *pattern, const char *host)
{
	size_t plen, hlen = name_len(host);

	if (strncmp(pattern, "*.", 2))
		return same_name(pattern, host);
	pattern++; /* ".example.org" */
	plen = name_len(pattern);
	return plen > 1 && hlen > plen &&
	       !strncasecmp(host + hlen - plen, pattern, plen);
}

/* A host name or "*." pattern: letters, digits, '-', '_', '.'. */
static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (!strncmp(s, "*.", 2)) {
		s += 2;
		n -= 2;
	}
	if (n == 0 || n > 253 || s[0] == '.')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("-_.", *s))
			return false;
	return true;
}

static int add_cidr(struct rfs_cidr **v, size_t *n, const char *s)
{
	struct rfs_cidr c, *nv;

	if (rfs_cidr_parse(s, &c))
		return -EINVAL;
	nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = c;
	*v = nv;
	return 0;
}

static int add_name(struct rfs_netpol *p, const char *s)
{
	char **nv;

	if (!valid_name(s))
		return -EINVAL;
	nv = realloc(p->names, (p->nnames + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	p->names = nv;
	nv[p->nnames] = strdup(s);
	if (!nv[p->nnames])
		return -ENOMEM;
	p->nnames++;
	return 0;
}

static int bad_entry(const char *what, const char *s, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: '%s' is not %s", what, s,
		 strcmp(what, "deny_nets") ? "a host name, *.pattern or range"
					   : "an address range");
	return -EINVAL;
}

int rfs_netpol_init(struct rfs_netpol *p, char *const *storage_hosts,
		    char *const *deny_nets, char *err, size_t errlen)
{
	struct rfs_cidr c;
	int rc = 0;

	memset(p, 0, sizeof(*p));
	for (size_t i = 0; i < NBUILTIN && !rc; i++)
		rc = add_cidr(&p->deny, &p->ndeny, builtin_deny[i]);
	p->nbuiltin = p->ndeny;
	for (; !rc && deny_nets && *deny_nets; deny_nets++) {
		rc = add_cidr(&p->deny, &p->ndeny, *deny_nets);
		if (rc == -EINVAL)
			rc = bad_entry("deny_nets", *deny_nets, err, errlen);
	}
	for (; !rc && storage_hosts && *storage_hosts; storage_hosts++) {
		p->restricted = true;
		if (rfs_cidr_parse(*storage_hosts, &c) == 0)
			rc = add_cidr(&p->allow, &p->nallow, *storage_hosts);
		else
			rc = add_name(p, *storage_hosts);
		if (rc == -EINVAL)
			rc = bad_entry("storage_hosts", *storage_hosts, err,
				       errlen);
	}
	if (rc)
		rfs_netpol_release(p);
	return rc;
}

void rfs_netpol_release(struct rfs_netpol *p)
{
	for (size_t i = 0; i < p->nnames; i++)
		free(p->names[i]);
	free(p->names);
	free(p->deny);
	free(p->allow);
	memset(p, 0, sizeof(*p));
}

/* A URL host that is an address ("[v6]", "a.b.c.d") as a sockaddr. */
static bool literal(const char *host, struct sockaddr_storage *ss, size_t *len)
{
	char buf[64];
	const char *zone;
	struct rfs_cidr c;
	size_t n = strlen(host);

	/* curl keeps a zone apart, but "[fe80::1%25eth0]" may come too */
	zone = host[0] == '[' ? strchr(host, '%') : NULL;
	if (zone && (size_t)(zone - host) + 2 <= sizeof(buf)) {
		n = (size_t)(zone - host);
		memcpy(buf, host, n);
		memcpy(buf + n, "]", 2);
		host = buf;
	}
	if (parse_addr(host, &c))
		return false;
	memset(ss, 0, sizeof(*ss));
	if (c.family == AF_INET) {
		struct sockaddr_in *in = (void *)ss;

		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, c.addr, 4);
		*len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (void *)ss;

		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, c.addr, 16);
		*len = sizeof(*in6);
	}
	return true;
}

static void addr_text(const struct sockaddr *sa, char *out, size_t outlen)
{
	const void *a =
		sa->sa_family == AF_INET
			? (const void *)&(
				  (const struct sockaddr_in *)(const void *)sa)
				  ->sin_addr
			: (const void *)&(
				  (const struct sockaddr_in6 *)(const void *)sa)
				  ->sin6_addr;

	if (!inet_ntop(sa->sa_family, a, out, (socklen_t)outlen))
		snprintf(out, outlen, "?");
}

int rfs_netpol_check_addr(const struct rfs_netpol *p, const struct sockaddr *sa,
			  size_t salen, bool need_range, char *why,
			  size_t whylen)
{
	char text[INET6_ADDRSTRLEN];
	size_t i;

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) {
		snprintf(why, whylen, "refused: not an IP address");
		return -EPERM;
	}
	addr_text(sa, text, sizeof(text));
	for (i = 0; i < p->ndeny; i++)
		if (rfs_cidr_contains(&p->deny[i], sa, salen)) {
			snprintf(why, whylen, "refused: address %s is %s", text,
				 i < p->nbuiltin ? "link-local"
						 : "in deny_nets");
			return -EPERM;
		}
	if (!need_range)
		return 0;
	for (i = 0; i < p->nallow; i++)
		if (rfs_cidr_contains(&p->allow[i], sa, salen))
			return 0;
	snprintf(why, whylen, "refused: address %s is not in storage_hosts",
		 text);
	return -EPERM;
}

static bool named(const struct rfs_netpol *p, const char *host)
{
	for (size_t i = 0; i < p->nnames; i++)
		if (rfs_host_matches(p->names[i], host))
			return true;
	return false;
}

int rfs_netpol_check_host(const struct rfs_netpol *p, const char *host,
			  bool *need_range, char *why, size_t whylen)
{
	struct sockaddr_storage ss;
	size_t len;

	*need_range = false;
	if (literal(host, &ss, &len))
		return rfs_netpol_check_addr(p, (struct sockaddr *)&ss, len,
					     p->restricted, why, whylen);
	if (!p->restricted || named(p, host))
		return 0;
	if (p->nallow) {
		*need_range = true;
		return 0;
	}
	snprintf(why, whylen, "refused: host %s is not in storage_hosts", host);
	return -EPERM;
}

bool rfs_netpol_token_ok(const struct rfs_netpol *p, const char *origin,
			 const char *host, bool tls)
{
	struct sockaddr_storage ss;
	size_t len;
	char why[8];

	if (!tls)
		return false;
	if (same_name(origin, host))
		return true;
	if (!p->restricted)
		return false;
	if (literal(host, &ss, &len))
		return rfs_netpol_check_addr(p, (struct sockaddr *)&ss, len,
					     true, why, sizeof(why)) == 0;
	return named(p, host);
}
