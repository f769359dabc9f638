/*
 * multipart/byteranges answers as a storage server might send them, fed
 * to the parser in pieces whose sizes the input chooses: whatever comes,
 * an accepted answer filled every asked range exactly once, and never a
 * byte outside the segments' buffers (ASan sees each one allocated to
 * its exact length).
 *
 * Input: byte 0 picks the piece size, byte 1 the asked ranges (one of
 * four sets, of a 64-byte file), the rest is the body; the boundary is
 * always "B0undary".
 */
#include "config.h"

#include <errno.h>

#include "transport/multipart.h"
#include "fuzz.h"

#define FILE_SIZE 64

static const struct {
	uint64_t off;
	size_t len;
} sets[4][3] = {
	{ { 0, 4 }, { 10, 4 }, { 0, 0 } },
	{ { 1, 1 }, { 2, 1 }, { 63, 1 } },
	{ { 0, 64 }, { 0, 0 }, { 0, 0 } },
	{ { 5, 10 }, { 20, 30 }, { 60, 4 } },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rfs_tseg segs[3];
	struct rfs_multipart m;
	size_t n = 0, step, set;
	int rc;

	if (size < 2)
		return 0;
	step = 1 + data[0] % 64;
	set = data[1] % 4;
	for (size_t i = 0; i < 3 && sets[set][i].len; i++, n++) {
		segs[i].off = sets[set][i].off;
		segs[i].len = sets[set][i].len;
		segs[i].buf = malloc(segs[i].len);
		if (!segs[i].buf)
			abort();
	}
	data += 2;
	size -= 2;
	rc = rfs_mp_init(&m, "multipart/byteranges; boundary=B0undary", segs, n,
			 FILE_SIZE);
	FUZZ_CHECK(rc == 0);
	for (size_t i = 0; !rc && i < size; i += step)
		rc = rfs_mp_feed(&m, (const char *)data + i,
				 size - i < step ? size - i : step);
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
	if (!rc && rfs_mp_finish(&m) == 0) {
		FUZZ_CHECK(m.nfilled == n);
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK(m.filled[i] == 1);
	}
	if (rc) /* a refusal sticks */
		FUZZ_CHECK(rfs_mp_feed(&m, "x", 1) == -EBADMSG);
	rfs_mp_release(&m);
	for (size_t i = 0; i < n; i++)
		free(segs[i].buf);
	return 0;
}
