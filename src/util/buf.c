#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/banned.h"

void rfs_buf_init(struct rfs_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	/* room for the NUL must not wrap: no buffer is allowed half the
	 * address space anyway */
	b->max = max < SIZE_MAX / 2 ? max : SIZE_MAX / 2;
}

void rfs_buf_release(struct rfs_buf *b)
{
	free(b->data);
	rfs_buf_init(b, b->max);
}

void rfs_buf_reset(struct rfs_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

static int grow(struct rfs_buf *b, size_t need)
{
	size_t n = b->alloc ? b->alloc : 256;
	char *p;

	while (n < need + 1)
		n *= 2;
	if (n > b->max + 1)
		n = b->max + 1;
	p = realloc(b->data, n);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->alloc = n;
	return 0;
}

int rfs_buf_add(struct rfs_buf *b, const void *p, size_t n)
{
	int rc;

	if (n > b->max - b->len)
		return -EFBIG;
	if (b->len + n + 1 > b->alloc) {
		rc = grow(b, b->len + n);
		if (rc)
			return rc;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int rfs_buf_addstr(struct rfs_buf *b, const char *s)
{
	return rfs_buf_add(b, s, strlen(s));
}

int rfs_buf_printf(struct rfs_buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	char *big;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n < sizeof(small))
		return rfs_buf_add(b, small, n);
	big = malloc((size_t)n + 1);
	if (!big)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rc = rfs_buf_add(b, big, n);
	free(big);
	return rc;
}

char *rfs_buf_take(struct rfs_buf *b)
{
	char *p = b->data;

	if (!p)
		p = strdup("");
	rfs_buf_init(b, b->max);
	return p;
}
