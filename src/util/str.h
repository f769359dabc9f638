/* Small parsers and encoders shared by the modules; all pure functions. */
#ifndef RFS_STR_H
#define RFS_STR_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <time.h>

#include "util/buf.h"

/*
 * Percent-encode one URL path segment: everything but ALPHA DIGIT "-._~"
 * becomes %XX (so '/' in a DID name becomes %2F and ' ' becomes %20,
 * never '+', which a server would not decode in a path).
 */
int rfs_url_escape(struct rfs_buf *out, const char *s);

/*
 * Make a replica URL safe for libcurl without changing what it names:
 * bytes that may not appear in a URL (controls, space, non-ASCII, "<>\^`{|}#)
 * are percent-encoded, and '%' is encoded unless it already starts a %XX
 * escape. Rucio builds PFNs by plain concatenation, so a DID name with a
 * space reaches us raw.
 */
int rfs_url_normalize(struct rfs_buf *out, const char *url);

/*
 * Rucio appends "&#multirange=false&nconnections=N" to every PFN of an
 * RSE with the attribute simulate_multirange (a fragment for davix,
 * which must not reach the server). Returns the length of @url without
 * exactly that tail ("#multirange=..." with or without the '&'), or
 * strlen(@url) when it has none: any other '#' belongs to the DID name.
 * *@no_multirange says whether the tail asked for no multi-range
 * requests (false when there is no tail).
 */
size_t rfs_url_rucio_fragment(const char *url, bool *no_multirange);

/*
 * Copies @url into @out for log lines and xattrs: without its userinfo
 * ("user:password@"), query and fragment, which may hold credentials or
 * signatures. Truncated to fit, always terminated (unless @outlen is 0).
 */
void rfs_url_for_log(char *out, size_t outlen, const char *url);

/*
 * Removes the userinfo of @url's authority ("https://u:p@h/x" becomes
 * "https://h/x") in place, wiping the bytes freed. Returns 1 if there
 * was one, 0 if not (or @url has no "scheme://").
 */
int rfs_url_strip_userinfo(char *url);

/*
 * Copies @in to @out with every control byte (below 0x20, and DEL)
 * escaped as \n, \r, \t or \xNN, so that a name from a server cannot
 * start a line of its own in a log; bytes from 0x80 (UTF-8) are kept.
 * Truncated to fit, never inside an escape; returns the length written.
 */
size_t rfs_escape_controls(char *out, size_t outlen, const char *in);

/* RFC 1123 ("Tue, 24 Nov 2026 07:56:16 UTC"/"GMT") or ISO 8601. */
int rfs_parse_time(const char *s, time_t *out);

/* "20G", "512M", "1048576", "4KiB": binary multiples. */
int rfs_parse_size(const char *s, uint64_t *out);

/* "30", "30s", "5m", "2h", "1d"; fractional seconds allowed ("0.5"). */
int rfs_parse_duration(const char *s, double *out);

/* yes/no, true/false, on/off, 1/0 (case-insensitive). */
int rfs_parse_bool(const char *s, bool *out);

/* Strips C99 isspace from both ends in place; returns @s. */
char *rfs_strip(char *s);

/* Constant-time-ish wipe that the compiler may not drop. */
void rfs_wipe(void *p, size_t n);

#endif
