/*
 * What the two token finders share: token.c (the daemon's own token) and
 * discover.c (a caller's own, on a shared mount). How a token file's path
 * is resolved without entering the mount, how an open token file is
 * checked and read, and how its contents are cleaned. Private to
 * src/authz/.
 */
#ifndef RFS_AUTHZ_TOKEN_INT_H
#define RFS_AUTHZ_TOKEN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/*
 * Resolves @path as realpath(3) would (links, ".", "..", "//"; relative
 * to the current directory), a component at a time, into @out. Returns
 * -EXDEV as soon as the path reaches @forbidden (a real path; NULL: none),
 * before anything below it is looked up: a token file inside our own
 * mount would need the daemon to serve the read that finds its token.
 * The last component is not looked at (the caller opens it without
 * following a link). Else 0 or the -errno of a lookup.
 */
int rfs_token_real_path(const char *forbidden, const char *path, char *out,
			size_t outlen);

/*
 * Checks the open file @fd (its fstat in *@st): a regular file owned by
 * @owner (or by root when @or_root), with no group or other permission
 * bits, of at most RFS_TOKEN_MAX bytes. Then reads it into *@out, a NUL
 * terminated copy to free with rfs_token_free(). Returns 0, -EACCES for
 * an unsafe file, -EFBIG for a larger one, -EINVAL for one holding a NUL
 * byte, or the -errno of fstat or read.
 */
int rfs_token_read_fd(int fd, uid_t owner, bool or_root, struct stat *st,
		      char **out);

/*
 * WLCG discovery's view of a raw value (a file's contents, a variable):
 * a cleaned copy in *@out (rfs_token_clean, free with rfs_token_free);
 * -ENOENT when it is blank once stripped (discovery goes on to the next
 * step), -EINVAL when it holds bytes a token cannot (discovery stops).
 */
int rfs_token_dup_clean(const char *raw, char **out);

#endif
