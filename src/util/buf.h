/* A growable byte buffer with a hard cap (curl's dynbuf "toobig" idea). */
#ifndef RFS_BUF_H
#define RFS_BUF_H

#include <stddef.h>
#include <sys/uio.h>

struct rfs_buf {
	char *data; /* always NUL-terminated when non-NULL */
	size_t len;
	size_t alloc;
	size_t max; /* appending past this fails with -EFBIG */
};

void rfs_buf_init(struct rfs_buf *b, size_t max);
/* Frees the bytes; the struct can be reused after rfs_buf_init. */
void rfs_buf_release(struct rfs_buf *b);
void rfs_buf_reset(struct rfs_buf *b);
/* Returns 0, -ENOMEM, or -EFBIG when the cap would be passed. */
int rfs_buf_add(struct rfs_buf *b, const void *p, size_t n);
int rfs_buf_addstr(struct rfs_buf *b, const char *s);
int rfs_buf_printf(struct rfs_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Hands the bytes to the caller (free()), leaving @b empty. */
char *rfs_buf_take(struct rfs_buf *b);

/* The bytes @iovcnt buffers of @iov hold together. */
static inline size_t rfs_iov_len(const struct iovec *iov, int iovcnt)
{
	size_t n = 0;

	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return n;
}

#endif
