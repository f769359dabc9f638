/*
 * $NOTIFY_SOCKET into a sockaddr_un (src/util/notify.c): whatever the
 * environment holds, the address stays inside sun_path, its length
 * counts what was written, and only a path or an "@name" is taken.
 */
#include "config.h"

#include <stddef.h>

#include "util/notify.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size);
	struct sockaddr_un sa;
	socklen_t len = 0;
	size_t n = strlen(s);

	if (rfs_notify_addr(s, &sa, &len) == 0) {
		FUZZ_CHECK(s[0] == '/' || s[0] == '@');
		FUZZ_CHECK(len <= sizeof(sa));
		FUZZ_CHECK(len >= offsetof(struct sockaddr_un, sun_path) + n);
		FUZZ_CHECK(sa.sun_family == AF_UNIX);
		FUZZ_CHECK(!memcmp(sa.sun_path + 1, s + 1, n - 1));
	}
	free(s);
	return 0;
}
