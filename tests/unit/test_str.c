/*
 * Unit tests for src/util/str.c, src/util/buf.c and src/util/log.c: the
 * URL encoders, the value parsers behind every option and catalogue date,
 * the capped buffer that holds every answer we read from the network, and
 * how long a log line may be.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"
#include "unit.h"

typedef int (*encoder)(struct rfs_buf *out, const char *in);

/*
 * Runs an encoder on a fresh buffer and returns its text in static storage
 * (NULL on error), so a check reads as one line.
 */
static const char *enc(encoder fn, const char *in)
{
	static char out[4096];
	struct rfs_buf b;
	int rc;

	rfs_buf_init(&b, sizeof(out) - 1);
	rc = fn(&b, in);
	if (rc) {
		rfs_buf_release(&b);
		return NULL;
	}
	snprintf(out, sizeof(out), "%s", b.data ? b.data : "");
	rfs_buf_release(&b);
	return out;
}

static void test_url_escape(void)
{
	struct rfs_buf b;

	CHECK_STR(enc(rfs_url_escape, "a/b"), "a%2Fb");
	/* a '+' would not be decoded as a space in a path */
	CHECK_STR(enc(rfs_url_escape, "my file.dat"), "my%20file.dat");
	CHECK_STR(enc(rfs_url_escape, "a+b"), "a%2Bb");
	CHECK_STR(enc(rfs_url_escape, "ABCXYZabcxyz0189-._~"),
		  "ABCXYZabcxyz0189-._~");
	CHECK_STR(enc(rfs_url_escape, "\xc3\xa9t\xc3\xa9"), "%C3%A9t%C3%A9");
	CHECK_STR(enc(rfs_url_escape, "\xf0\x9f\x98\x80"), "%F0%9F%98%80");
	CHECK_STR(enc(rfs_url_escape, "%"), "%25");
	CHECK_STR(enc(rfs_url_escape, "?#&=:@"), "%3F%23%26%3D%3A%40");
	CHECK_STR(enc(rfs_url_escape, "\x01\x7f"), "%01%7F");
	CHECK_STR(enc(rfs_url_escape, ""), "");
	CHECK_STR(enc(rfs_url_escape, "user.jdoe"), "user.jdoe");

	/* it appends, as the catalogue client builds a path piece by piece */
	rfs_buf_init(&b, 64);
	CHECK_INT(rfs_buf_addstr(&b, "/dids/"), 0);
	CHECK_INT(rfs_url_escape(&b, "user.jdoe"), 0);
	CHECK_INT(rfs_buf_addstr(&b, "/"), 0);
	CHECK_INT(rfs_url_escape(&b, "a/b c"), 0);
	CHECK_STR(b.data, "/dids/user.jdoe/a%2Fb%20c");
	rfs_buf_release(&b);

	/* the cap applies: an escape that does not fit fails as a whole */
	rfs_buf_init(&b, 3);
	CHECK_INT(rfs_url_escape(&b, "a/"), -EFBIG);
	CHECK_STR(b.data, "a");
	CHECK_INT(b.len, 1);
	rfs_buf_release(&b);
}

static void test_url_normalize(void)
{
	CHECK_STR(
		enc(rfs_url_normalize,
		    "https://127.0.0.1:28472/rucio/user/jdoe/f2/fc/file1.dat"),
		"https://127.0.0.1:28472/rucio/user/jdoe/f2/fc/file1.dat");
	CHECK_STR(enc(rfs_url_normalize, "https://h:443/p/my file.dat"),
		  "https://h:443/p/my%20file.dat");
	CHECK_STR(enc(rfs_url_normalize, "root://h:1094//eos/\xc3\xa9.root"),
		  "root://h:1094//eos/%C3%A9.root");
	/* a '#' in a DID name is not a fragment */
	CHECK_STR(enc(rfs_url_normalize, "davs://h/a#b"), "davs://h/a%23b");
	/* existing escapes are kept, whatever the case of their digits */
	CHECK_STR(enc(rfs_url_normalize, "https://h/a%20b%2fc%C3%A9"),
		  "https://h/a%20b%2fc%C3%A9");
	/* a '%' that starts no escape is a literal percent */
	CHECK_STR(enc(rfs_url_normalize, "https://h/100%"), "https://h/100%25");
	CHECK_STR(enc(rfs_url_normalize, "https://h/%zz"), "https://h/%25zz");
	CHECK_STR(enc(rfs_url_normalize, "https://h/%4"), "https://h/%254");
	CHECK_STR(enc(rfs_url_normalize, "https://h/%4g"), "https://h/%254g");
	/* the query of a signed URL stays a query */
	CHECK_STR(enc(rfs_url_normalize, "https://h/f?authz=a%2Bb&x=1"),
		  "https://h/f?authz=a%2Bb&x=1");
	CHECK_STR(enc(rfs_url_normalize, "https://h/\t\x7f\"<>\\^`{|}"),
		  "https://h/%09%7F%22%3C%3E%5C%5E%60%7B%7C%7D");
	/* characters that are legal in a URL are left alone */
	CHECK_STR(enc(rfs_url_normalize, "https://u@h/a+b;c=d,e!$'()*[]~"),
		  "https://u@h/a+b;c=d,e!$'()*[]~");
	CHECK_STR(enc(rfs_url_normalize, ""), "");
}

static void test_rucio_fragment(void)
{
	static const char base[] = "https://h:443/rucio/cta/a1/b2/f.fits";
	bool nomr = true;
	char url[256];

	/* what Rucio appends for simulate_multirange, core/replica.py */
	snprintf(url, sizeof(url), "%s&#multirange=false&nconnections=3", base);
	CHECK_INT(rfs_url_rucio_fragment(url, &nomr), strlen(base));
	CHECK(nomr);
	snprintf(url, sizeof(url), "%s#multirange=false&nconnections=1", base);
	CHECK_INT(rfs_url_rucio_fragment(url, &nomr), strlen(base));
	CHECK(nomr);
	snprintf(url, sizeof(url), "%s&#multirange=false", base);
	CHECK_INT(rfs_url_rucio_fragment(url, &nomr), strlen(base));
	CHECK(nomr);
	snprintf(url, sizeof(url), "%s&#multirange=true&nconnections=2", base);
	CHECK_INT(rfs_url_rucio_fragment(url, &nomr), strlen(base));
	CHECK(!nomr);
	/* after a query, only the tail goes */
	snprintf(url, sizeof(url), "%s?a=b&#multirange=false&nconnections=1",
		 base);
	CHECK_INT(rfs_url_rucio_fragment(url, &nomr), strlen(base) + 4);
	/* a '#' of the DID name stays, with or without the tail */
	snprintf(url, sizeof(url), "%s#2&#multirange=false&nconnections=1",
		 base);
	CHECK_INT(rfs_url_rucio_fragment(url, &nomr), strlen(base) + 2);
	CHECK(nomr);
	CHECK_INT(rfs_url_rucio_fragment("https://h/a#b", &nomr), 13);
	CHECK(!nomr);
	CHECK_INT(rfs_url_rucio_fragment("https://h/a#multirange", &nomr), 22);
	/* anything but exactly that tail is part of the name */
	CHECK_INT(rfs_url_rucio_fragment("https://h/a#multirange=no", &nomr),
		  25);
	CHECK_INT(rfs_url_rucio_fragment(
			  "https://h/a#multirange=false&nconnections=", &nomr),
		  42);
	CHECK_INT(
		rfs_url_rucio_fragment(
			"https://h/a#multirange=false&nconnections=2x", &nomr),
		44);
	CHECK_INT(rfs_url_rucio_fragment("https://h/a#multirange=false&x=1",
					 &nomr),
		  32);
	CHECK(!nomr);
	CHECK_INT(rfs_url_rucio_fragment("#multirange=false", &nomr), 0);
	CHECK(nomr);
	CHECK_INT(rfs_url_rucio_fragment("", &nomr), 0);
}

static void test_url_for_log(void)
{
	char out[64];
	char small[8];

	rfs_url_for_log(out, sizeof(out), "https://h/f?authz=secret");
	CHECK_STR(out, "https://h/f");
	rfs_url_for_log(out, sizeof(out), "https://h/f#frag?x");
	CHECK_STR(out, "https://h/f");
	rfs_url_for_log(out, sizeof(out), "root://h//data/f.root");
	CHECK_STR(out, "root://h//data/f.root");
	rfs_url_for_log(out, sizeof(out), "?only=query");
	CHECK_STR(out, "");

	/* userinfo never reaches a log line, however it is spelled */
	rfs_url_for_log(out, sizeof(out), "https://user:pass@h:443/f?q");
	CHECK_STR(out, "https://h:443/f");
	rfs_url_for_log(out, sizeof(out), "davs://tok@h/f");
	CHECK_STR(out, "davs://h/f");
	rfs_url_for_log(out, sizeof(out), "https://u:p@ss@h/f@g");
	CHECK_STR(out, "https://h/f@g");
	rfs_url_for_log(out, sizeof(out), "https://@h/f");
	CHECK_STR(out, "https://h/f");
	rfs_url_for_log(out, sizeof(out), "http://h?u:p@x/");
	CHECK_STR(out, "http://h");
	rfs_url_for_log(out, sizeof(out), "no-scheme@h/f");
	CHECK_STR(out, "no-scheme@h/f");
	rfs_url_for_log(small, sizeof(small), "https://u:secret@h/f");
	CHECK_STR(small, "https:/");
	rfs_url_for_log(small, sizeof(small), "h://u:secret@ab/f");
	CHECK_STR(small, "h://ab/");

	/* truncated to the buffer, still terminated */
	memset(small, 'X', sizeof(small));
	rfs_url_for_log(small, sizeof(small), "https://host/x?y");
	CHECK_STR(small, "https:/");
	rfs_url_for_log(small, 1, "https://host/x");
	CHECK_STR(small, "");
	/* a zero-sized buffer is not written */
	small[0] = 'X';
	rfs_url_for_log(small, 0, "https://host/x");
	CHECK_INT(small[0], 'X');
}

/* @url after rfs_url_strip_userinfo, and what it returned in *@rc. */
static const char *strip(const char *url, int *rc)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s", url);
	*rc = rfs_url_strip_userinfo(buf);
	return buf;
}

static void test_url_strip_userinfo(void)
{
	char buf[64];
	int rc;

	CHECK_STR(strip("https://user:pass@host:8443/a/b?x=1", &rc),
		  "https://host:8443/a/b?x=1");
	CHECK_INT(rc, 1);
	CHECK_STR(strip("davs://only-user@h/f", &rc), "davs://h/f");
	CHECK_INT(rc, 1);
	/* the last '@' of the authority ends the userinfo */
	CHECK_STR(strip("https://a@b:c@h/f", &rc), "https://h/f");
	CHECK_INT(rc, 1);
	CHECK_STR(strip("https://u:p@[::1]:443/f", &rc), "https://[::1]:443/f");
	CHECK_INT(rc, 1);
	/* an '@' in the path, query or fragment is not userinfo */
	CHECK_STR(strip("https://h/f@x", &rc), "https://h/f@x");
	CHECK_INT(rc, 0);
	CHECK_STR(strip("https://h?x=u:p@y", &rc), "https://h?x=u:p@y");
	CHECK_INT(rc, 0);
	CHECK_STR(strip("https://h#u@y", &rc), "https://h#u@y");
	CHECK_INT(rc, 0);
	CHECK_STR(strip("/path/u:p@h", &rc), "/path/u:p@h");
	CHECK_INT(rc, 0);
	CHECK_STR(strip("", &rc), "");
	CHECK_INT(rc, 0);

	/* no byte of the credentials is left past the new end */
	memset(buf, 0, sizeof(buf));
	snprintf(buf, sizeof(buf), "http://a-long-secret-here@h/");
	CHECK_INT(rfs_url_strip_userinfo(buf), 1);
	CHECK_STR(buf, "http://h/");
	CHECK(memmem(buf, sizeof(buf), "secret", 6) == NULL);
}

static void test_escape_controls(void)
{
	char out[64], small[8];
	char all[33];

	CHECK_INT(rfs_escape_controls(out, sizeof(out), "plain name"), 10);
	CHECK_STR(out, "plain name");
	rfs_escape_controls(out, sizeof(out), "a\nruciofs: error: forged\r\tb");
	CHECK_STR(out, "a\\nruciofs: error: forged\\r\\tb");
	rfs_escape_controls(out, sizeof(out), "\x01\x1b[31m\x7f\x1f");
	CHECK_STR(out, "\\x01\\x1B[31m\\x7F\\x1F");
	/* UTF-8 is kept; so is a backslash */
	rfs_escape_controls(out, sizeof(out), "caf\xc3\xa9 \xef\xbc\x8f a\\b");
	CHECK_STR(out, "caf\xc3\xa9 \xef\xbc\x8f a\\b");
	/* every control byte */
	for (int c = 1; c < 32; c++)
		all[c - 1] = (char)c;
	all[31] = 0x7f;
	all[32] = '\0';
	{
		char wide[256];
		size_t n = rfs_escape_controls(wide, sizeof(wide), all);

		CHECK_INT(n, 3 * 2 + 29 * 4);
		for (size_t i = 0; i < n; i++)
			CHECK((unsigned char)wide[i] >= 0x20 &&
			      (unsigned char)wide[i] < 0x7f);
	}
	/* truncated, terminated, never in the middle of an escape */
	CHECK_INT(rfs_escape_controls(small, sizeof(small), "abcde\nf"), 7);
	CHECK_STR(small, "abcde\\n");
	CHECK_INT(rfs_escape_controls(small, sizeof(small), "abcdef\ng"), 6);
	CHECK_STR(small, "abcdef");
	CHECK_INT(rfs_escape_controls(small, sizeof(small), "abcde\x01"), 5);
	CHECK_STR(small, "abcde");
	CHECK_INT(rfs_escape_controls(small, 1, "abc"), 0);
	CHECK_STR(small, "");
	small[0] = 'X';
	CHECK_INT(rfs_escape_controls(small, 0, "abc"), 0);
	CHECK_INT(small[0], 'X');
}

/* rfs_parse_time's result, or a sentinel that no test expects. */
static long long ptime(const char *s)
{
	time_t t = (time_t)-7777;
	int rc = rfs_parse_time(s, &t);

	if (rc)
		return rc == -EINVAL ? -1000000000000LL : -2000000000000LL;
	return (long long)t;
}

#define BAD_TIME (-1000000000000LL)

static void test_parse_time(void)
{
	time_t t;

	/* Rucio's render_json dates and X-Rucio-Auth-Token-Expires */
	CHECK_INT(ptime("Tue, 24 Nov 2026 07:56:16 UTC"), 1795506976LL);
	CHECK_INT(ptime("Tue, 24 Nov 2026 08:55:32 GMT"), 1795510532LL);
	CHECK_INT(ptime("Thu, 01 Jan 1970 00:00:00 UTC"), 0);
	CHECK_INT(ptime("Tue, 29 Feb 2000 12:00:00 UTC"), 951825600LL);
	CHECK_INT(ptime("tue, 24 nov 2026 07:56:16 UTC"), 1795506976LL);
	CHECK_INT(ptime("Fri, 31 Dec 9999 23:59:59 UTC"), 253402300799LL);

	/* jsonify's ISO dates, with and without fraction and zone */
	CHECK_INT(ptime("2026-11-24T07:55:41"), 1795506941LL);
	CHECK_INT(ptime("2026-11-24T07:55:41.501464"), 1795506941LL);
	CHECK_INT(ptime("2026-11-24T07:55:41Z"), 1795506941LL);
	CHECK_INT(ptime("2026-11-24T07:55:41.5Z"), 1795506941LL);
	CHECK_INT(ptime("2026-11-24T07:55:41+00:00"), 1795506941LL);
	CHECK_INT(ptime("2026-11-24 07:55:41"), 1795506941LL);
	CHECK_INT(ptime("1970-01-01T00:00:00"), 0);
	CHECK_INT(ptime("2000-02-29T12:00:00"), 951825600LL);
	CHECK_INT(ptime("2024-12-31T23:59:59Z"), 1735689599LL);
	CHECK_INT(ptime("2038-01-19T03:14:08"), 2147483648LL);
	CHECK_INT(ptime("1900-01-01T00:00:00"), -2208988800LL);
	CHECK_INT(ptime("9999-12-31T23:59:59"), 253402300799LL);

	/* garbage */
	CHECK_INT(ptime(""), BAD_TIME);
	CHECK_INT(ptime("yesterday"), BAD_TIME);
	CHECK_INT(ptime("2026-11-24"), BAD_TIME);
	CHECK_INT(ptime("2026-11-24T07:55"), BAD_TIME);
	CHECK_INT(ptime("2026-11-24X07:55:41"), BAD_TIME);
	CHECK_INT(ptime("2026-11-24T07:55:41+01:00"), BAD_TIME);
	CHECK_INT(ptime("2026-11-24T07:55:41 junk"), BAD_TIME);
	CHECK_INT(ptime("2026-11-24T07:55:41.x"), BAD_TIME);
	CHECK_INT(ptime("Tue, 24 Nov 2026 07:56:16 CET"), BAD_TIME);
	CHECK_INT(ptime("Tue, 24 Nov 2026 07:56:16 UTC junk"), BAD_TIME);
	CHECK_INT(ptime("Tue, 24 Foo 2026 07:56:16 UTC"), BAD_TIME);
	CHECK_INT(ptime("Tue, 24 Nov 2026 07:56 UTC"), BAD_TIME);
	CHECK_INT(rfs_parse_time(NULL, &t), -EINVAL);

	/* out-of-range fields */
	CHECK_INT(ptime("2026-13-01T00:00:00"), BAD_TIME);
	CHECK_INT(ptime("2026-00-10T00:00:00"), BAD_TIME);
	CHECK_INT(ptime("2026-11-32T00:00:00"), BAD_TIME);
	CHECK_INT(ptime("2026-11-00T00:00:00"), BAD_TIME);
	CHECK_INT(ptime("2026-11-24T24:00:00"), BAD_TIME);
	CHECK_INT(ptime("2026-11-24T07:60:00"), BAD_TIME);
	CHECK_INT(ptime("2026-11-24T07:00:61"), BAD_TIME);
	CHECK_INT(ptime("1899-12-31T23:59:59"), BAD_TIME);
	CHECK_INT(ptime("Tue, 32 Nov 2026 07:56:16 UTC"), BAD_TIME);
	CHECK_INT(ptime("Tue, 24 Nov 2026 25:56:16 UTC"), BAD_TIME);
	CHECK_INT(ptime("Tue, 24 Nov 2026 07:61:16 UTC"), BAD_TIME);

	/* the output is left alone on failure */
	t = 42;
	CHECK(rfs_parse_time("nonsense", &t) < 0);
	CHECK_INT(t, 42);
}

/* rfs_parse_size's result, or the negative errno cast to uint64_t. */
static uint64_t psize(const char *s)
{
	uint64_t v = 12345;
	int rc = rfs_parse_size(s, &v);

	return rc ? (uint64_t)(int64_t)rc : v;
}

#define SIZE_ERR(e) ((uint64_t)(int64_t) - (e))

static void test_parse_size(void)
{
	uint64_t v;

	CHECK_U64(psize("0"), 0);
	CHECK_U64(psize("1048576"), 1048576);
	CHECK_U64(psize("4K"), 4096);
	CHECK_U64(psize("4k"), 4096);
	CHECK_U64(psize("4KiB"), 4096);
	CHECK_U64(psize("4KB"), 4096);
	CHECK_U64(psize("4Ki"), 4096);
	CHECK_U64(psize("512M"), 512ULL << 20);
	CHECK_U64(psize("20G"), 20ULL << 30);
	CHECK_U64(psize("3T"), 3ULL << 40);
	CHECK_U64(psize("2P"), 2ULL << 50);
	CHECK_U64(psize("15E"), 15ULL << 60);
	CHECK_U64(psize("18446744073709551615"), UINT64_MAX);

	/* overflow */
	CHECK_U64(psize("16E"), SIZE_ERR(ERANGE));
	CHECK_U64(psize("17179869184G"), SIZE_ERR(ERANGE));
	CHECK_U64(psize("18446744073709551616"), SIZE_ERR(ERANGE));
	CHECK_U64(psize("99999999999999999999999K"), SIZE_ERR(ERANGE));

	/* garbage */
	CHECK_U64(psize(""), SIZE_ERR(EINVAL));
	CHECK_U64(psize("K"), SIZE_ERR(EINVAL));
	CHECK_U64(psize("-1"), SIZE_ERR(EINVAL));
	CHECK_U64(psize(" 4"), SIZE_ERR(EINVAL));
	CHECK_U64(psize("4 K"), SIZE_ERR(EINVAL));
	CHECK_U64(psize("4X"), SIZE_ERR(EINVAL));
	CHECK_U64(psize("4i"), SIZE_ERR(EINVAL));
	CHECK_U64(psize("4KiBB"), SIZE_ERR(EINVAL));
	CHECK_U64(psize("4Kx"), SIZE_ERR(EINVAL));
	CHECK_U64(psize("1.5G"), SIZE_ERR(EINVAL));
	CHECK_U64(psize("0x10"), SIZE_ERR(EINVAL));

	v = 7;
	CHECK(rfs_parse_size("bad", &v) < 0);
	CHECK_U64(v, 7);
}

/* rfs_parse_duration's result, or -1 for an error. */
static double pdur(const char *s)
{
	double v = -5;

	return rfs_parse_duration(s, &v) ? -1 : v;
}

static void test_parse_duration(void)
{
	double v;

	CHECK(pdur("30") == 30);
	CHECK(pdur("30s") == 30);
	CHECK(pdur("5m") == 300);
	CHECK(pdur("2h") == 7200);
	CHECK(pdur("1d") == 86400);
	CHECK(pdur("0") == 0);
	CHECK(pdur("0.5") == 0.5);
	CHECK(pdur(".25") == 0.25);
	CHECK(pdur("1.5m") == 90);

	CHECK(pdur("") == -1);
	CHECK(pdur("-1") == -1);
	CHECK(pdur("abc") == -1);
	CHECK(pdur(".") == -1);
	CHECK(pdur("5x") == -1);
	CHECK(pdur("5ms") == -1);
	CHECK(pdur("5 m") == -1);
	CHECK(pdur(" 5") == -1);
	CHECK(pdur("inf") == -1);
	CHECK(pdur("nan") == -1);
	CHECK(pdur("1e999") == -1);

	v = 3;
	CHECK_INT(rfs_parse_duration("x", &v), -EINVAL);
	CHECK(v == 3);
}

static int pbool(const char *s)
{
	bool b = false;
	int rc = rfs_parse_bool(s, &b);

	return rc ? rc : b;
}

static void test_parse_bool(void)
{
	bool b;

	CHECK_INT(pbool("1"), 1);
	CHECK_INT(pbool("yes"), 1);
	CHECK_INT(pbool("TRUE"), 1);
	CHECK_INT(pbool("On"), 1);
	CHECK_INT(pbool("0"), 0);
	CHECK_INT(pbool("no"), 0);
	CHECK_INT(pbool("False"), 0);
	CHECK_INT(pbool("OFF"), 0);
	CHECK_INT(pbool(""), -EINVAL);
	CHECK_INT(pbool("2"), -EINVAL);
	CHECK_INT(pbool("y"), -EINVAL);
	CHECK_INT(pbool("yes "), -EINVAL);
	CHECK_INT(pbool("enable"), -EINVAL);

	/* "0" must really store false, not just leave the output alone */
	b = true;
	CHECK_INT(rfs_parse_bool("off", &b), 0);
	CHECK(b == false);
	b = true;
	CHECK_INT(rfs_parse_bool("maybe", &b), -EINVAL);
	CHECK(b == true);
}

static void test_strip(void)
{
	char a[] = "  a b \t\n";
	char b[] = "";
	char c[] = " \t\r\n\v\f";
	char d[] = "x";

	CHECK_STR(rfs_strip(a), "a b");
	/* trimmed in place: the original buffer ends after "a b" */
	CHECK_INT(a[5], '\0');
	CHECK(rfs_strip(a) == a + 2);
	CHECK_STR(rfs_strip(b), "");
	CHECK_STR(rfs_strip(c), "");
	CHECK_STR(rfs_strip(d), "x");
	CHECK(rfs_strip(d) == d);
}

static void test_wipe(void)
{
	char s[] = "secret";
	static const char zero[sizeof(s)];

	rfs_wipe(s, sizeof(s));
	CHECK_MEM(s, sizeof(s), zero, sizeof(zero));
	rfs_wipe(NULL, 10); /* must not crash */
	CHECK(1);
}

static void test_buf_cap(void)
{
	struct rfs_buf b;

	rfs_buf_init(&b, 10);
	CHECK(b.data == NULL);
	CHECK_INT(rfs_buf_addstr(&b, "hello"), 0);
	CHECK_INT(b.len, 5);
	CHECK_INT(rfs_buf_addstr(&b, "world"), 0); /* exactly at the cap */
	CHECK_STR(b.data, "helloworld");
	CHECK_INT(rfs_buf_addstr(&b, "!"), -EFBIG);
	CHECK_INT(rfs_buf_add(&b, "", 0), 0);
	/* what was there survives the failure, terminated */
	CHECK_INT(b.len, 10);
	CHECK_STR(b.data, "helloworld");
	CHECK_INT(b.data[10], '\0');
	CHECK(b.alloc >= b.len + 1);
	CHECK_INT(rfs_buf_printf(&b, "%d", 1), -EFBIG);
	CHECK_STR(b.data, "helloworld");

	rfs_buf_reset(&b);
	CHECK_INT(b.len, 0);
	CHECK_STR(b.data, "");
	CHECK_INT(rfs_buf_add(&b, "abc\0def", 7), 0);
	CHECK_MEM(b.data, b.len, "abc\0def", 7);
	CHECK_INT(b.data[7], '\0');
	rfs_buf_release(&b);
	CHECK(b.data == NULL);
	CHECK_INT(b.len, 0);
	CHECK_INT(b.max, 10); /* the cap survives release */

	/* one add larger than the cap leaves the buffer empty */
	rfs_buf_init(&b, 4);
	CHECK_INT(rfs_buf_add(&b, "12345", 5), -EFBIG);
	CHECK_INT(b.len, 0);
	CHECK_INT(rfs_buf_add(&b, "1234", 4), 0);
	CHECK_STR(b.data, "1234");
	rfs_buf_release(&b);

	/* a zero cap accepts nothing but empty appends */
	rfs_buf_init(&b, 0);
	CHECK_INT(rfs_buf_add(&b, "x", 1), -EFBIG);
	CHECK_INT(rfs_buf_add(&b, "", 0), 0);
	CHECK_STR(b.data, "");
	rfs_buf_release(&b);
}

static void test_buf_grow(void)
{
	struct rfs_buf b;
	char chunk[1000];
	bool same = true;

	rfs_buf_init(&b, 1 << 20);
	for (int i = 0; i < 300; i++) {
		memset(chunk, 'a' + i % 26, sizeof(chunk));
		if (rfs_buf_add(&b, chunk, sizeof(chunk))) {
			same = false;
			break;
		}
	}
	CHECK(same);
	CHECK_INT(b.len, 300000);
	for (size_t i = 0; same && i < b.len; i++)
		if (b.data[i] != 'a' + (int)(i / 1000) % 26)
			same = false;
	CHECK(same);
	CHECK_INT(b.data[b.len], '\0');
	rfs_buf_release(&b);

	/* printf: the short path and the one past its 256-byte scratch */
	rfs_buf_init(&b, 4096);
	CHECK_INT(rfs_buf_printf(&b, "%s=%d;", "n", 42), 0);
	CHECK_STR(b.data, "n=42;");
	memset(chunk, 'z', 999);
	chunk[999] = '\0';
	CHECK_INT(rfs_buf_printf(&b, "[%s]", chunk), 0);
	CHECK_INT(b.len, 5 + 1001);
	CHECK_INT(b.data[5], '[');
	CHECK_INT(b.data[6 + 999], ']');
	CHECK_INT(b.data[b.len], '\0');
	rfs_buf_release(&b);
}

static void test_buf_take(void)
{
	struct rfs_buf b;
	char *p;

	rfs_buf_init(&b, 100);
	CHECK_INT(rfs_buf_addstr(&b, "payload"), 0);
	p = rfs_buf_take(&b);
	CHECK_STR(p, "payload");
	/* the buffer is empty and reusable with the same cap */
	CHECK(b.data == NULL);
	CHECK_INT(b.len, 0);
	CHECK_INT(b.max, 100);
	CHECK_INT(rfs_buf_addstr(&b, "next"), 0);
	CHECK_STR(b.data, "next");
	CHECK(b.data != p);
	free(p);
	rfs_buf_release(&b);

	/* taking from an empty buffer still gives a string to free */
	p = rfs_buf_take(&b);
	CHECK_STR(p, "");
	free(p);
}

/*
 * A cap of SIZE_MAX ("no limit", e.g. -o max_answer=18446744073709551615)
 * must still give a buffer that holds what was added. If it does not, the
 * append writes past the block, hence the child process.
 */
static void buf_unbounded_child(void)
{
	struct rfs_buf b;

	rfs_buf_init(&b, SIZE_MAX);
	if (rfs_buf_addstr(&b, "abc") || b.len != 3 || b.alloc < 4)
		_exit(1);
	rfs_buf_release(&b);
}

static void test_buf_unbounded(void)
{
	CHECK(unit_in_child(buf_unbounded_child));
}

/*
 * A year of INT_MIN must be rejected, and without signed overflow in the
 * "tm_year -= 1900": every build checks the answer, and in a sanitizer
 * build UBSan also aborts the child on the overflow. So the check counts
 * the same everywhere.
 */
static void time_int_min_child(void)
{
	time_t t;

	if (rfs_parse_time("Tue, 24 Nov -2147483648 07:56:16 UTC", &t) !=
	    -EINVAL)
		_exit(1);
}

static void test_parse_time_overflow(void)
{
	CHECK(unit_in_child(time_int_min_child));
}

/*
 * What rfs_log writes to stderr for one line of @text at @level, in
 * @out (NUL-terminated, cut to @outlen); returns its length or -1.
 */
static long log_line(int level, const char *text, char *out, size_t outlen)
{
	int fd = memfd_create("log", 0), saved;
	ssize_t n;

	if (fd < 0)
		return -1;
	fflush(stderr);
	saved = dup(2);
	if (saved < 0 || dup2(fd, 2) < 0) {
		close(fd);
		return -1;
	}
	rfs_log(level, "%s", text);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, out, outlen - 1, 0);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	return n;
}

/*
 * A debug line shows a whole request (a bulk POST's body is tens of KiB)
 * up to 64 KiB, and says how much it left out past that; other lines stay
 * short, and say so too.
 */
static void test_log_lengths(void)
{
	size_t big = 100000, out_len = 2 * big;
	char *text = malloc(big + 1), *out = malloc(out_len), want[64];
	long n;

	if (!text || !out) {
		CHECK(!"no memory");
		goto out;
	}
	rfs_log_init(RFS_LOG_STDERR, LOG_DEBUG);
	memset(text, 'a', big);
	text[big] = '\0';
	text[5000] = '\n'; /* escaped: one byte more in the line */

	text[10000] = '\0';
	n = log_line(LOG_DEBUG, text, out, out_len);
	CHECK_INT(n, strlen("ruciofs: debug: ") + 10001 + 1);
	CHECK(!strncmp(out, "ruciofs: debug: aaa", 19));
	CHECK(strstr(out, "a\\na") && !strstr(out, "more)"));
	CHECK(n > 0 && out[n - 2] == 'a' && out[n - 1] == '\n');
	text[10000] = 'a';

	n = log_line(LOG_DEBUG, text, out, out_len);
	snprintf(want, sizeof(want), "a... (%zu bytes more)\n",
		 big - (64 * 1024 - 1));
	CHECK_INT(n, strlen("ruciofs: debug: ") + 64 * 1024 - 1 + 1 +
			     strlen(want) - 1);
	CHECK(n > 0 && !strcmp(out + n - strlen(want), want));

	text[2000] = '\0';
	n = log_line(LOG_INFO, text, out, out_len);
	CHECK_STR(out + strlen("ruciofs: info: ") + 1023,
		  "... (977 bytes more)\n");
	CHECK_INT(n, strlen("ruciofs: info: ") + 1023 +
			     strlen("... (977 bytes more)\n"));

	n = log_line(LOG_INFO, "short", out, out_len);
	CHECK_STR(out, "ruciofs: info: short\n");
out:
	free(text);
	free(out);
}

/* stderr into a memfd until capture_end, which reads it into @out. */
static int capture_begin(int *saved)
{
	int fd = memfd_create("log", 0);

	fflush(stderr);
	*saved = dup(2);
	if (fd < 0 || *saved < 0 || dup2(fd, 2) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void capture_end(int fd, int saved, char *out, size_t len)
{
	ssize_t n;

	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, out, len - 1, 0);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
}

/*
 * -o log_level: the names and what each lets through; events: one line
 * "event NAME: ..." at their level; a rate-limited event's flood is one
 * line and a "suppressed" line with the same prefix.
 */
static void test_log_levels_events(void)
{
	char out[4096];
	int saved, fd;

	CHECK_INT(rfs_log_level_of("error"), LOG_ERR);
	CHECK_INT(rfs_log_level_of("warning"), LOG_WARNING);
	CHECK_INT(rfs_log_level_of("info"), LOG_INFO);
	CHECK_INT(rfs_log_level_of("debug"), LOG_DEBUG);
	CHECK_INT(rfs_log_level_of("warn"), -EINVAL);
	CHECK_INT(rfs_log_level_of("INFO"), -EINVAL);
	CHECK_INT(rfs_log_level_of(""), -EINVAL);
	CHECK_INT(rfs_log_level_of(NULL), -EINVAL);

	fd = capture_begin(&saved);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	unsetenv("JOURNAL_STREAM");
	rfs_log_init(RFS_LOG_STDERR, LOG_WARNING);
	rfs_info("hidden");
	rfs_event(LOG_INFO, "mount", "hidden too");
	rfs_warn("shown");
	rfs_event(LOG_WARNING, "offline", "the catalogue at %s", "h");
	for (int i = 0; i < 5; i++)
		rfs_event_limited(LOG_WARNING, "corrupt-block", "unit-crc",
				  "block %d", i);
	rfs_log_init(RFS_LOG_STDERR, LOG_INFO);
	capture_end(fd, saved, out, sizeof(out));
	CHECK_STR(out, "ruciofs: warning: shown\n"
		       "ruciofs: warning: event offline: the catalogue at h\n"
		       "ruciofs: warning: event corrupt-block: block 0\n");
}

/*
 * Under systemd, stderr is the journal when $JOURNAL_STREAM names its
 * device and inode: lines then carry sd-daemon's "<N>" priority; an
 * inherited variable naming another stream changes nothing.
 */
static void test_log_journal(void)
{
	char out[4096], js[64];
	struct stat st;
	int saved, fd;

	fd = capture_begin(&saved);
	CHECK(fd >= 0);
	if (fd < 0 || fstat(2, &st)) {
		if (fd >= 0)
			capture_end(fd, saved, out, sizeof(out));
		return;
	}
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	CHECK(rfs_log_is_journal(js, 2));
	setenv("JOURNAL_STREAM", js, 1);
	rfs_log_init(RFS_LOG_STDERR, LOG_DEBUG);
	rfs_err("e");
	rfs_warn("w");
	rfs_info("i");
	rfs_dbg("d");
	rfs_event(LOG_WARNING, "offline", "x");
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", js, 1);
	rfs_log_init(RFS_LOG_STDERR, LOG_INFO);
	rfs_info("plain");
	unsetenv("JOURNAL_STREAM");
	capture_end(fd, saved, out, sizeof(out));
	CHECK_STR(out, "<3>ruciofs: error: e\n<4>ruciofs: warning: w\n"
		       "<6>ruciofs: info: i\n<7>ruciofs: debug: d\n"
		       "<4>ruciofs: warning: event offline: x\n"
		       "ruciofs: info: plain\n");
	CHECK(!rfs_log_is_journal(NULL, 2));
	CHECK(!rfs_log_is_journal("", 2));
	CHECK(!rfs_log_is_journal("12", 2));
	CHECK(!rfs_log_is_journal("12:", 2));
	CHECK(!rfs_log_is_journal(":12", 2));
	CHECK(!rfs_log_is_journal("1:2:3", 2));
	CHECK(!rfs_log_is_journal("x:y", 2));
}

int main(void)
{
	test_url_escape();
	test_url_normalize();
	test_rucio_fragment();
	test_url_for_log();
	test_url_strip_userinfo();
	test_escape_controls();
	test_parse_time();
	test_parse_time_overflow();
	test_parse_size();
	test_parse_duration();
	test_parse_bool();
	test_strip();
	test_wipe();
	test_buf_cap();
	test_buf_grow();
	test_buf_take();
	test_buf_unbounded();
	test_log_lengths();
	test_log_levels_events();
	test_log_journal();
	return unit_done("str");
}
