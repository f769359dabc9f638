#include "config.h"

#include <errno.h>
#include <string.h>

#include <curl/curl.h>
#include <lmdb.h>

#include "util/errmap.h"
#include "util/banned.h"

int rfs_errno_from_curl(int curlcode)
{
	switch ((CURLcode)curlcode) {
	case CURLE_OK:
		return -EIO; /* a caller asked about a failure that was not */
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
		return -ECONNRESET;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
		return -EPROTO;
	case CURLE_WRITE_ERROR:
		/* our write callback refused: body too long or too big */
		return -EFBIG;
	case CURLE_PARTIAL_FILE:
		return -EPIPE;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		return -EINVAL;
	default:
		return -EIO;
	}
}

int rfs_errno_from_connect(long os_errno)
{
	switch (os_errno) {
	case ECONNREFUSED:
	case ENETUNREACH:
	case EHOSTUNREACH:
	case ETIMEDOUT:
	case ENETDOWN:
	case EHOSTDOWN:
		return -(int)os_errno;
	default: /* what curl's own code says */
		return -ECONNREFUSED;
	}
}

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
