#include "config.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "core/fs.h"
#include "util/banned.h"

/* U+FF0F FULLWIDTH SOLIDUS, the stand-in rclone users already know. */
static const char slash_standin[] = "\xef\xbc\x8f";

int rfs_name_to_posix(const char *did_name, char *out, size_t outlen)
{
	size_t n = 0;

	if (!strcmp(did_name, "") || !strcmp(did_name, ".") ||
	    !strcmp(did_name, ".."))
		return -EINVAL;
	for (const char *p = did_name; *p; p++) {
		const char *piece = *p == '/' ? slash_standin : p;
		size_t len = *p == '/' ? 3 : 1;

		if (n + len >= outlen || n + len > NAME_MAX)
			return -EINVAL;
		memcpy(out + n, piece, len);
		n += len;
	}
	out[n] = '\0';
	return 0;
}

uint64_t rfs_ino_of(const char *scope, const char *name)
{
	/* FNV-1a: stable across runs and remounts, cheap, 64 bits */
	uint64_t h = 14695981039346656037ull;

	for (const char *p = scope; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h = (h ^ (name ? ':' : '\001')) * 1099511628211ull;
	for (const char *p = name ? name : ""; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h < 2 ? h + 2 : h;
}
