/*
 * The URL encoders: what rfs_url_escape makes decodes back to its input,
 * what rfs_url_normalize makes is safe for libcurl and stable, only
 * Rucio's multirange tail is cut from a PFN, and log copies never carry
 * a query.
 */
#include "config.h"

#include <ctype.h>

#include "util/str.h"
#include "fuzz.h"

static int hexval(unsigned char c)
{
	return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
}

/* Percent-decodes @s (checked well-formed) and compares with @want. */
static void check_decodes_to(const char *s, const char *want)
{
	size_t i = 0;

	for (; *s; s++, i++) {
		unsigned char c = (unsigned char)*s;

		if (c == '%') {
			FUZZ_CHECK(isxdigit((unsigned char)s[1]) &&
				   isxdigit((unsigned char)s[2]));
			c = (unsigned char)(hexval(s[1]) * 16 + hexval(s[2]));
			s += 2;
		}
		FUZZ_CHECK(want[i] == (char)c);
	}
	FUZZ_CHECK(want[i] == '\0');
}

static void check_escape(const char *s)
{
	struct rfs_buf b;

	rfs_buf_init(&b, 4 * strlen(s) + 16);
	FUZZ_CHECK(rfs_url_escape(&b, s) == 0);
	for (size_t i = 0; i < b.len; i++) {
		unsigned char c = (unsigned char)b.data[i];

		FUZZ_CHECK(isalnum(c) || strchr("-._~%", c));
		FUZZ_CHECK(c < 0x80);
	}
	check_decodes_to(b.data ? b.data : "", s);
	rfs_buf_release(&b);
}

static void check_normalize(const char *s)
{
	struct rfs_buf a, b;

	rfs_buf_init(&a, 4 * strlen(s) + 16);
	rfs_buf_init(&b, 4 * strlen(s) + 16);
	FUZZ_CHECK(rfs_url_normalize(&a, s) == 0);
	for (size_t i = 0; i < a.len; i++) {
		unsigned char c = (unsigned char)a.data[i];

		FUZZ_CHECK(c > 0x20 && c < 0x7f);
		FUZZ_CHECK(!strchr("\"<>\\^`{|}#", c));
		if (c == '%')
			FUZZ_CHECK(isxdigit((unsigned char)a.data[i + 1]) &&
				   isxdigit((unsigned char)a.data[i + 2]));
	}
	/* normalising twice changes nothing */
	FUZZ_CHECK(rfs_url_normalize(&b, a.data ? a.data : "") == 0);
	FUZZ_CHECK(a.len == b.len &&
		   (!a.len || !memcmp(a.data, b.data, a.len)));
	rfs_buf_release(&a);
	rfs_buf_release(&b);
}

/* Only Rucio's exact tail is cut; the rest of the URL stays as it was. */
static void check_rucio_fragment(const char *s)
{
	bool nomr = true;
	size_t n = rfs_url_rucio_fragment(s, &nomr), len = strlen(s);
	const char *tail = s + n;

	FUZZ_CHECK(n <= len);
	if (n == len) {
		FUZZ_CHECK(!nomr);
		return;
	}
	if (*tail == '&')
		tail++;
	FUZZ_CHECK(!strncmp(tail, "#multirange=", 12));
	FUZZ_CHECK(!strchr(tail + 1, '#'));
	FUZZ_CHECK(nomr == !strncmp(tail + 12, "false", 5));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size);
	size_t outlen = 1 + size % 97;
	char *out = malloc(outlen), *stripped;
	size_t n;

	if (!out)
		abort();
	check_escape(s);
	check_normalize(s);
	check_rucio_fragment(s);

	rfs_url_for_log(out, outlen, s);
	FUZZ_CHECK(strlen(out) < outlen);
	FUZZ_CHECK(!strpbrk(out, "?#"));
	/* what is logged is a prefix of the URL without its userinfo */
	stripped = strdup(s);
	if (!stripped)
		abort();
	n = strlen(stripped);
	FUZZ_CHECK(rfs_url_strip_userinfo(stripped) == (strlen(stripped) < n));
	FUZZ_CHECK(!strncmp(out, stripped, strlen(out)));
	FUZZ_CHECK(rfs_url_strip_userinfo(stripped) == 0);
	free(stripped);
	/* an escaped line holds no control byte, and fits */
	FUZZ_CHECK(rfs_escape_controls(out, outlen, s) < outlen);
	for (const char *p = out; *p; p++)
		FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
	free(out);
	free(s);
	return 0;
}
