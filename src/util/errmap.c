/*
 * Reasons for log lines: a pure table of errno values, shared by every
 * error space (see errmap.h).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "util/errmap.h"
#include "util/banned.h"

const char *rfs_errno_reason(int neg_errno)
{
	switch (-neg_errno) {
	case ETIMEDOUT:
		return "timed out";
	case ECONNREFUSED:
		return "connection refused";
	case ECONNRESET:
		return "connection reset";
	case EHOSTUNREACH:
		return "host unreachable";
	case ENETUNREACH:
		return "network unreachable";
	case ENETDOWN:
		return "network down";
	case EHOSTDOWN:
		return "host down";
	case EPROTO:
		return "protocol or TLS error";
	case EACCES:
		return "permission denied";
	case ENOENT:
		return "not found";
	case EFBIG:
		return "answer too large";
	case EPIPE:
		return "short body";
	case EBADMSG:
		return "malformed answer";
	case EBUSY:
		return "server busy";
	default:
		return strerror(-neg_errno);
	}
}
