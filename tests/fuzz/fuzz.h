/*
 * Shared bits of the fuzz harnesses. Each harness is a libFuzzer entry
 * point (git's oss-fuzz/ style); tests/fuzz/replay.c supplies main() when
 * it is built without libFuzzer, so the same harness replays its corpus in
 * every "make check".
 */
#ifndef RFS_FUZZ_H
#define RFS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * An invariant of the code under test: a violation is a finding, so it
 * aborts like a sanitizer would and libFuzzer keeps the input.
 */
#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: invariant failed: %s\n",       \
				__FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

/*
 * The input as a C string, for the APIs that take one. Allocated to the
 * exact size so that ASan sees any read past the terminator.
 */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
