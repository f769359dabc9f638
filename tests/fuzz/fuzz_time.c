/*
 * The value parsers of rucio.cfg, -o and catalogue answers: dates (RFC 1123
 * and ISO 8601), sizes, durations, booleans.
 */
#include "config.h"

#include <ctype.h>
#include <math.h>
#include <strings.h>

#include "util/str.h"
#include "fuzz.h"

/* 1900-01-01 and just past 9999-12-31 (a leap second may roll over) */
#define MIN_TIME (-2208988800LL)
#define MAX_TIME (253402300800LL + 86400)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size), *copy = fuzz_str(data, size), *t;
	time_t when;
	uint64_t bytes;
	double secs;
	bool b;

	if (rfs_parse_time(s, &when) == 0)
		FUZZ_CHECK((long long)when >= MIN_TIME &&
			   (long long)when <= MAX_TIME);

	if (rfs_parse_size(s, &bytes) == 0) {
		FUZZ_CHECK(isdigit((unsigned char)s[0]));
		/* plain digits are plain bytes */
		if (strspn(s, "0123456789") == strlen(s))
			FUZZ_CHECK(bytes == strtoull(s, NULL, 10));
	}

	if (rfs_parse_duration(s, &secs) == 0)
		FUZZ_CHECK(!isnan(secs) && secs >= 0);

	if (rfs_parse_bool(s, &b) == 0)
		FUZZ_CHECK(!strcasecmp(s, b ? "yes" : "no") ||
			   !strcasecmp(s, b ? "true" : "false") ||
			   !strcasecmp(s, b ? "on" : "off") ||
			   !strcmp(s, b ? "1" : "0"));

	t = rfs_strip(copy);
	FUZZ_CHECK(t >= copy && t <= copy + strlen(s));
	FUZZ_CHECK(!*t || (!isspace((unsigned char)t[0]) &&
			   !isspace((unsigned char)t[strlen(t) - 1])));
	free(copy);
	free(s);
	return 0;
}
