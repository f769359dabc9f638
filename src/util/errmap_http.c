/*
 * HTTP statuses, as the catalogue and storage send them: a pure table,
 * no library.
 */
#include "config.h"

#include <errno.h>

#include "util/errmap.h"
#include "util/banned.h"

int rfs_errno_from_http(long status)
{
	switch (status) {
	case 400:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
	case 410:
		return -ENOENT;
	case 406:
	case 415:
		return -EPROTO;
	case 408:
	case 504:
		return -ETIMEDOUT;
	case 409:
		return -EEXIST;
	case 413:
		return -EFBIG;
	case 416:
		return -ERANGE;
	case 429:
	case 503:
		return -EBUSY;
	default:
		return -EIO;
	}
}
