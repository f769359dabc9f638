#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "util/str.h"
#include "util/banned.h"

static const char hexdig[] = "0123456789ABCDEF";

static bool unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static int add_escaped(struct rfs_buf *out, unsigned char c)
{
	char e[3] = { '%', hexdig[c >> 4], hexdig[c & 15] };

	return rfs_buf_add(out, e, 3);
}

int rfs_url_escape(struct rfs_buf *out, const char *s)
{
	int rc = 0;

	for (; *s && !rc; s++) {
		unsigned char c = (unsigned char)*s;

		if (unreserved(c) && c < 0x80)
			rc = rfs_buf_add(out, s, 1);
		else
			rc = add_escaped(out, c);
	}
	return rc;
}

static bool url_unsafe(unsigned char c)
{
	return c <= 0x20 || c >= 0x7f || strchr("\"<>\\^`{|}#", c) != NULL;
}

int rfs_url_normalize(struct rfs_buf *out, const char *url)
{
	const unsigned char *p = (const unsigned char *)url;
	int rc = 0;

	for (; *p && !rc; p++) {
		if (*p == '%' && isxdigit(p[1]) && isxdigit(p[2]))
			rc = rfs_buf_add(out, p, 1);
		else if (*p == '%' || url_unsafe(*p))
			rc = add_escaped(out, *p);
		else
			rc = rfs_buf_add(out, p, 1);
	}
	return rc;
}

/* Skips @word at *@p; true if it was there. */
static bool skip_word(const char **p, const char *word)
{
	size_t n = strlen(word);

	if (strncmp(*p, word, n))
		return false;
	*p += n;
	return true;
}

/* "multirange=(true|false)(&nconnections=DIGITS)?" and nothing after */
static bool multirange_tail(const char *p, bool *no_multirange)
{
	bool off;

	if (!skip_word(&p, "multirange="))
		return false;
	off = skip_word(&p, "false");
	if (!off && !skip_word(&p, "true"))
		return false;
	if (skip_word(&p, "&nconnections=")) {
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p)
		return false;
	*no_multirange = off;
	return true;
}

size_t rfs_url_rucio_fragment(const char *url, bool *no_multirange)
{
	const char *hash = strrchr(url, '#');
	size_t n;

	*no_multirange = false;
	if (!hash || !multirange_tail(hash + 1, no_multirange))
		return strlen(url);
	n = (size_t)(hash - url);
	return n && url[n - 1] == '&' ? n - 1 : n;
}

/*
 * The authority of "scheme://authority/...": its start, and its length
 * in *@len; NULL for a URL without a scheme.
 */
static const char *authority(const char *url, size_t *len)
{
	const char *p = url;

	if (!isalpha((unsigned char)*p))
		return NULL;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' ||
	       *p == '.')
		p++;
	if (strncmp(p, "://", 3))
		return NULL;
	p += 3;
	*len = strcspn(p, "/?#");
	return p;
}

/* Where the host starts: past the last '@' of the authority, if any. */
static const char *past_userinfo(const char *url, const char **auth)
{
	size_t len = 0;
	const char *a = authority(url, &len), *at;

	*auth = a;
	if (!a)
		return NULL;
	at = memrchr(a, '@', len);
	return at ? at + 1 : NULL;
}

int rfs_url_strip_userinfo(char *url)
{
	const char *auth, *host = past_userinfo(url, &auth);
	size_t gone, rest;

	if (!host)
		return 0;
	gone = (size_t)(host - auth);
	rest = strlen(host);
	memmove((char *)auth, host, rest + 1);
	/* the tail of the old string may still hold bytes of it */
	rfs_wipe((char *)auth + rest + 1, gone);
	return 1;
}

void rfs_url_for_log(char *out, size_t outlen, const char *url)
{
	const char *auth, *host = past_userinfo(url, &auth);
	size_t used = 0, n;

	if (outlen == 0)
		return;
	if (host) { /* "scheme://" first, then what follows the userinfo */
		n = (size_t)(auth - url);
		n = n < outlen - 1 ? n : outlen - 1;
		memcpy(out, url, n);
		used = n;
		url = host;
	}
	n = strcspn(url, "?#");
	if (n > outlen - 1 - used)
		n = outlen - 1 - used;
	memcpy(out + used, url, n);
	out[used + n] = '\0';
}

size_t rfs_escape_controls(char *out, size_t outlen, const char *in)
{
	size_t used = 0;

	if (outlen == 0)
		return 0;
	for (; *in; in++) {
		unsigned char c = (unsigned char)*in;
		char e[5] = { c, '\0' };
		size_t n = 1;

		if (c == '\n' || c == '\r' || c == '\t') {
			e[0] = '\\';
			e[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
			n = 2;
		} else if (c < 0x20 || c == 0x7f) {
			e[0] = '\\';
			e[1] = 'x';
			e[2] = hexdig[c >> 4];
			e[3] = hexdig[c & 15];
			n = 4;
		}
		if (used + n >= outlen)
			break; /* never half an escape */
		memcpy(out + used, e, n);
		used += n;
	}
	out[used] = '\0';
	return used;
}

static int month_index(const char *m)
{
	static const char *const names[] = { "Jan", "Feb", "Mar", "Apr",
					     "May", "Jun", "Jul", "Aug",
					     "Sep", "Oct", "Nov", "Dec" };
	for (int i = 0; i < 12; i++)
		if (strncasecmp(m, names[i], 3) == 0)
			return i;
	return -1;
}

static bool tm_valid(const struct tm *tm)
{
	return tm->tm_mon >= 0 && tm->tm_mon < 12 && tm->tm_mday >= 1 &&
	       tm->tm_mday <= 31 && tm->tm_hour >= 0 && tm->tm_hour < 24 &&
	       tm->tm_min >= 0 && tm->tm_min < 60 && tm->tm_sec >= 0 &&
	       tm->tm_sec <= 60 && tm->tm_year >= 0 && tm->tm_year < 8100;
}

/* "Tue, 24 Nov 2026 07:56:16 UTC" */
static int parse_rfc1123(const char *s, struct tm *tm)
{
	char wday[4], mon[4], zone[5];
	int n = 0;

	if (sscanf(s, "%3[A-Za-z], %d %3s %d %d:%d:%d %4s%n", wday,
		   &tm->tm_mday, mon, &tm->tm_year, &tm->tm_hour, &tm->tm_min,
		   &tm->tm_sec, zone, &n) != 8)
		return -EINVAL;
	if (s[n] != '\0' || (strcmp(zone, "UTC") && strcmp(zone, "GMT")))
		return -EINVAL;
	/* checked before the subtraction, which could overflow */
	if (tm->tm_year < 1900 || tm->tm_year > 9999)
		return -EINVAL;
	tm->tm_mon = month_index(mon);
	tm->tm_year -= 1900;
	return 0;
}

/* "2026-11-24T07:55:41", optional ".ffffff" and "Z" or "+00:00" */
static int parse_iso(const char *s, struct tm *tm)
{
	int n = 0;
	const char *rest;

	if (sscanf(s, "%4d-%2d-%2d%*1[T ]%2d:%2d:%2d%n", &tm->tm_year,
		   &tm->tm_mon, &tm->tm_mday, &tm->tm_hour, &tm->tm_min,
		   &tm->tm_sec, &n) != 6 ||
	    n == 0)
		return -EINVAL;
	rest = s + n;
	if (*rest == '.')
		for (rest++; isdigit((unsigned char)*rest);)
			rest++;
	if (*rest && strcmp(rest, "Z") && strcmp(rest, "+00:00"))
		return -EINVAL;
	tm->tm_year -= 1900;
	tm->tm_mon -= 1;
	return 0;
}

int rfs_parse_time(const char *s, time_t *out)
{
	struct tm tm;
	int rc;

	if (!s)
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	if (isdigit((unsigned char)s[0]))
		rc = parse_iso(s, &tm);
	else
		rc = parse_rfc1123(s, &tm);
	if (rc || !tm_valid(&tm))
		return -EINVAL;
	*out = timegm(&tm);
	return 0;
}

static int parse_u64(const char *s, uint64_t *out, char **end)
{
	unsigned long long v;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, end, 10);
	if (errno)
		return -ERANGE;
	*out = v;
	return 0;
}

int rfs_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGTPE";
	uint64_t v, mult = 1;
	const char *u;
	char *end;
	int rc;

	rc = parse_u64(s, &v, &end);
	if (rc)
		return rc;
	if (*end) {
		u = strchr(units, toupper((unsigned char)*end));
		if (!u)
			return -EINVAL;
		for (const char *q = units; q <= u; q++)
			mult *= 1024;
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end)
			return -EINVAL;
	}
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

int rfs_parse_duration(const char *s, double *out)
{
	double v, mult = 1;
	char *end;

	if (!isdigit((unsigned char)*s) && *s != '.')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || v < 0)
		return -EINVAL;
	switch (*end) {
	case '\0':
	case 's':
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = 86400;
		break;
	default:
		return -EINVAL;
	}
	if (*end && end[1])
		return -EINVAL;
	*out = v * mult;
	return 0;
}

int rfs_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "yes", "true", "on" };
	static const char *const no[] = { "0", "no", "false", "off" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

char *rfs_strip(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

void rfs_wipe(void *p, size_t n)
{
	if (p)
		OPENSSL_cleanse(p, n);
}
