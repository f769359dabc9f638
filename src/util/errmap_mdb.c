/*
 * LMDB's error space, for cache/: its own negative codes and system
 * errors it passes through.
 */
#include "config.h"

#include <errno.h>

#include <lmdb.h>

#include "util/errmap.h"
#include "util/banned.h"

int rfs_errno_from_mdb(int rc)
{
	if (rc == 0)
		return 0;
	if (rc > 0) /* LMDB passes system errors through as they are */
		return -rc;
	switch (rc) {
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
		return -ENOSPC;
	case MDB_READERS_FULL:
		return -EAGAIN;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
		return -EBADMSG;
	default:
		return -EIO;
	}
}
