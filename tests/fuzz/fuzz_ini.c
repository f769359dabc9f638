/*
 * rucio.cfg as rfs_ini_parse reads it, and every [client] value through
 * the option setters the daemon uses on it (sizes, durations, lists).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>

#include "conf/conf.h"
#include "fuzz.h"

static int on_key(const char *section, const char *key, const char *value,
		  void *ctx)
{
	struct rfs_conf *conf = ctx;
	size_t n = strlen(value);

	FUZZ_CHECK(strlen(section) < 128);
	FUZZ_CHECK(*key && strlen(key) < 128);
	for (const char *p = key; *p; p++)
		FUZZ_CHECK(!isupper((unsigned char)*p));
	/* values arrive trimmed */
	FUZZ_CHECK(n == 0 || (!isspace((unsigned char)value[0]) &&
			      !isspace((unsigned char)value[n - 1])));
	/* errors in values are not the parser's: keep going */
	if (!strcmp(section, "client"))
		rfs_conf_set(conf, key, value, true);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rfs_conf conf;
	int rc, line = -1, lines = 1;

	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	rfs_conf_init(&conf);
	rc = rfs_ini_parse((const char *)data, size, on_key, &conf, &line);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -EFBIG || rc == -ENOMEM);
	if (rc == -EINVAL)
		FUZZ_CHECK(line >= 1 && line <= lines);
	rfs_conf_release(&conf);
	return 0;
}
