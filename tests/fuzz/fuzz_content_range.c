/*
 * Response header lines as libcurl hands them over, and the Content-Range
 * values the ranged reads trust: whatever a storage server sends, an
 * accepted range is one we can act on.
 */
#include "config.h"

#include <errno.h>

#include "util/http_client.h"
#include "fuzz.h"

static void check_range(const char *v)
{
	uint64_t start = 0, end = 0, total = 0;

	if (rfs_http_parse_content_range(v, &start, &end, &total))
		return;
	FUZZ_CHECK(start <= end);
	FUZZ_CHECK(total == UINT64_MAX || end < total);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size), *line = malloc(size ? size : 1);
	char out[512], small[8];
	struct rfs_http_hdr h[2] = { { .name = "Content-Range" },
				     { .name = "X-Rucio-Auth-Token" } };
	struct rfs_http_hdrs hdrs = { h, 2 };
	size_t vlen;
	int rc;

	if (!line)
		abort();
	check_range(s);

	/* the raw line, not NUL-terminated, as the header callback gets it */
	memcpy(line, data, size);
	rc = rfs_http_header_value(line, size, "Content-Range", out,
				   sizeof(out));
	FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -ENAMETOOLONG);
	if (rc == 0) {
		vlen = strlen(out);
		FUZZ_CHECK(vlen < sizeof(out));
		/* trimmed (a NUL inside the line ends the C string early) */
		if (!memchr(line, '\0', size)) {
			FUZZ_CHECK(vlen == 0 || !strchr(" \t", out[0]));
			FUZZ_CHECK(vlen == 0 ||
				   !strchr(" \t\r\n", out[vlen - 1]));
		}
		check_range(out);
	}
	rc = rfs_http_header_value(line, size, "ETag", small,
				   1 + size % sizeof(small));
	FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -ENAMETOOLONG);
	if (rc == 0)
		FUZZ_CHECK(strlen(small) < 1 + size % sizeof(small));

	FUZZ_CHECK(rfs_http_hdr_cb(line, 1, size, &hdrs) == size);
	for (size_t i = 0; i < 2; i++)
		if (h[i].seen)
			FUZZ_CHECK(strlen(h[i].value) < sizeof(h[i].value));
	free(line);
	free(s);
	return 0;
}
