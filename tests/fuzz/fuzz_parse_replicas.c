/*
 * POST /replicas/list answers: every PFN list comes out sorted by priority,
 * and a malformed answer leaves nothing behind.
 */
#include "config.h"

#include <errno.h>

#include "catalog/parse.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rfs_replica_list l;
	int rc;

	rc = rfs_parse_replicas((const char *)data, size, &l);
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -ENOMEM);
	if (rc) {
		FUZZ_CHECK(l.n == 0 && l.v == NULL);
		return 0;
	}
	for (size_t i = 0; i < l.n; i++) {
		const struct rfs_replica_rec *r = &l.v[i];

		FUZZ_CHECK(r->did.scope && *r->did.scope);
		FUZZ_CHECK(r->did.name && *r->did.name);
		FUZZ_CHECK(r->npfn == 0 || r->pfn);
		for (size_t j = 0; j < r->npfn; j++) {
			FUZZ_CHECK(r->pfn[j].url && *r->pfn[j].url);
			FUZZ_CHECK(r->pfn[j].rse);
			if (j)
				FUZZ_CHECK(r->pfn[j - 1].priority <=
					   r->pfn[j].priority);
		}
	}
	rfs_replica_list_release(&l);
	FUZZ_CHECK(l.n == 0 && l.v == NULL);
	return 0;
}
