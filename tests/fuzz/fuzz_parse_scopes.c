/* GET /scopes/: a JSON array of scope names, or nothing. */
#include "config.h"

#include <errno.h>

#include "catalog/parse.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rfs_did_list l;
	int rc;

	rc = rfs_parse_scopes((const char *)data, size, &l);
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -ENOMEM);
	if (rc) {
		FUZZ_CHECK(l.n == 0 && l.v == NULL);
		return 0;
	}
	for (size_t i = 0; i < l.n; i++) {
		FUZZ_CHECK(l.v[i].scope && *l.v[i].scope);
		FUZZ_CHECK(l.v[i].name == NULL);
		FUZZ_CHECK(l.v[i].type == RFS_DID_SCOPE);
	}
	rfs_did_list_release(&l);
	return 0;
}
