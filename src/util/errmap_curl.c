/*
 * libcurl's error space: a CURLcode, and the system's reason for a
 * connect curl could not make. The only errno table that needs curl.h,
 * linked only by the code that speaks HTTP.
 */
#include "config.h"

#include <errno.h>

#include <curl/curl.h>

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
