/*
 * GET /ping and GET /accounts/whoami, as ruciofs --check reads them: the
 * input is a Location header up to the first newline (empty: none), then
 * the body. What comes out is a short printable word, shown on a
 * terminal, or -EBADMSG.
 */
#include "config.h"

#include <errno.h>

#include "catalog/parse.h"
#include "fuzz.h"

static void check_word(const char *w, size_t cap)
{
	size_t n = strlen(w);

	FUZZ_CHECK(n > 0 && n < cap);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)w[i] >= 0x20 && w[i] != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	size_t loclen = nl ? (size_t)(nl - (const char *)data) : 0;
	const char *body = nl ? nl + 1 : (const char *)data;
	size_t blen = size - (size_t)(body - (const char *)data);
	char *loc = strndup((const char *)data, loclen);
	char out[64];
	int rc;

	if (!loc)
		return 0;
	memset(out, 0, sizeof(out));
	rc = rfs_parse_ping(body, blen, out, sizeof(out));
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
	if (!rc)
		check_word(out, sizeof(out));
	memset(out, 0, sizeof(out));
	rc = rfs_parse_whoami(loclen ? loc : NULL, body, blen, out, 16);
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
	if (!rc)
		check_word(out, 16);
	FUZZ_CHECK(out[16] == '\0'); /* nothing past the size given */
	free(loc);
	return 0;
}
