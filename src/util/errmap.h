/*
 * Foreign error spaces become negative errno values here, and nowhere
 * else. Every function returns a value < 0 unless it says otherwise.
 *
 * One space, one file: util/errmap_<space>.c holds one switch from the
 * space's codes to -errno and includes only that space's own header, so
 * a module links no library it does not use (cache/ takes the LMDB map
 * without libcurl). The code is passed as a plain int or long, so this
 * header includes none of them. A new space (xrootd's kXR_* codes, say)
 * is: util/errmap_xrootd.c beside its siblings, one declaration below,
 * the file in librfscore_a_SOURCES, and its table in
 * tests/unit/test_errmap.c. rfs_errno_reason stays a pure table.
 */
#ifndef RFS_ERRMAP_H
#define RFS_ERRMAP_H

/* errmap_curl.c: a libcurl CURLcode. */
int rfs_errno_from_curl(int curlcode);

/*
 * errmap_curl.c: what the system said of a connect that failed
 * (CURLINFO_OS_ERRNO of a CURLE_COULDNT_CONNECT): refused, network or
 * host unreachable or down, timed out; anything else (or 0) is
 * -ECONNREFUSED.
 */
int rfs_errno_from_connect(long os_errno);

/* errmap_xrd.c: an XRootD kXR_error number (3000...). */
int rfs_errno_from_xrd(int errnum);

/* errmap_http.c: an HTTP status that is not a success for the request. */
int rfs_errno_from_http(long status);

/*
 * errmap_mdb.c: an LMDB return code (its own negative codes, and system
 * errors passed through positive); 0 stays 0.
 */
int rfs_errno_from_mdb(int rc);

/* errmap.c: a short human reason for an errno, for log lines. */
const char *rfs_errno_reason(int neg_errno);

#endif
