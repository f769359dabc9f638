/*
 * The one place where foreign error spaces become negative errno values.
 * Every function here returns a value < 0.
 */
#ifndef RFS_ERRMAP_H
#define RFS_ERRMAP_H

/* A libcurl CURLcode (passed as int so this header needs no curl.h). */
int rfs_errno_from_curl(int curlcode);

/*
 * What the system said of a connect that failed (CURLINFO_OS_ERRNO of a
 * CURLE_COULDNT_CONNECT): refused, network or host unreachable or down,
 * timed out; anything else (or 0) is -ECONNREFUSED.
 */
int rfs_errno_from_connect(long os_errno);

/* An HTTP status that is not a success for the request made. */
int rfs_errno_from_http(long status);

/* An LMDB return code: its own negative codes and positive errno. */
int rfs_errno_from_mdb(int rc);

/* A short human reason for an errno, for log lines ("timed out"). */
const char *rfs_errno_reason(int neg_errno);

#endif
