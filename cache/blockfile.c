/*
 * Block bytes live in plain files beside the LMDB index, one sparse file
 * per cached file (blocks/ab/abcd...: the identity in hex), block @idx at
 * idx * block_size. LMDB keeps only each block's header.
 *
 * Why not in LMDB: LMDB writes its pages through the page cache, so a
 * cold stream paid for a copy into freshly allocated page-cache pages
 * (0.8 GB/s after a drop_caches on this VM, against 2.3 GB/s written
 * directly) and for a second copy into LMDB's dirty pages; a long stream
 * also grew the map, which counted in the daemon's RSS. Here the writer
 * hands each whole block from the fetch buffer straight to the disk
 * (O_DIRECT), and readers read with O_DIRECT too: the kernel's page cache
 * above the mount already keeps what was read, and filling a second one
 * below it cost a warm stream a third of the daemon's CPU (page
 * allocation for read-ahead, then a copy). A warm stream's read-ahead is
 * stage.c's, whose runs are read through the page cache.
 *
 * Order makes a crash harmless: bytes are written before their header is
 * committed; a header whose bytes went missing (evicted, punched, lost
 * in a crash) reads as absent or fails its CRC32C, and is dropped.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cache/cache_int.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/banned.h"

#define ALIGN 4096u
#define NAME_LEN (2 + 1 + 2 * RFS_CACHE_ID_LEN) /* "ab/abcd..." */

static size_t round_up(size_t n)
{
	return (n + ALIGN - 1) / ALIGN * ALIGN;
}

/*
 * Not aligned_alloc: glibc carves aligned chunks out of larger ones and
 * the leftovers fragment its heap (peak RSS streaming 10 GiB: 306 MiB,
 * against 79 with plain malloc, and half the speed from fresh pages).
 * A plain malloc of one size a page larger, aligned by hand, keeps
 * reusing the same chunks; the pointer malloc gave sits just below.
 */
void *rfs_cache_buf_alloc(size_t len)
{
	size_t cap = round_up(len ? len : 1);
	char *raw = malloc(cap + ALIGN + sizeof(void *)), *p;

	if (!raw)
		return NULL;
	p = raw + sizeof(void *);
	p += (ALIGN - (uintptr_t)p % ALIGN) % ALIGN;
	memcpy(p - sizeof(void *), &raw, sizeof(raw));
	/* a direct write of a last, short block writes the whole page */
	memset(p + len, 0, cap - len);
	return p;
}

void rfs_cache_buf_free(void *buf)
{
	char *raw;

	if (!buf)
		return;
	memcpy(&raw, (char *)buf - sizeof(void *), sizeof(raw));
	free(raw);
}

static void name_of(char name[NAME_LEN + 1], const struct rfs_cache_id *id)
{
	static const char hex[] = "0123456789abcdef";
	char *p = name + 3;

	for (size_t i = 0; i < RFS_CACHE_ID_LEN; i++) {
		*p++ = hex[id->b[i] >> 4];
		*p++ = hex[id->b[i] & 15];
	}
	*p = '\0';
	name[0] = name[3];
	name[1] = name[4];
	name[2] = '/';
}

static int unhex(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* The identity a file name in blocks/ab/ spells; false if none. */
static bool id_of_name(const char *s, struct rfs_cache_id *id)
{
	if (strlen(s) != 2 * RFS_CACHE_ID_LEN)
		return false;
	for (size_t i = 0; i < RFS_CACHE_ID_LEN; i++) {
		int hi = unhex(s[2 * i]), lo = unhex(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		id->b[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}

/*
 * One daemon per cache directory: a second one would count the quota
 * twice and sweep away the first one's new files. The lock goes with the
 * process, also when it is killed. A daemon still closing after an
 * unmount gets a few seconds to let go.
 */
static int lock_dir(struct rfs_cache *c, const char *dir)
{
	char path[4096];

	if (snprintf(path, sizeof(path), "%s/lock.ruciofs", dir) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	c->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (c->lockfd < 0)
		return -errno;
	for (int i = 0; i < 50; i++) {
		if (flock(c->lockfd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK)
			return -errno;
		usleep(100 * 1000);
	}
	rfs_err("cache: '%s' is in use by another ruciofs", dir);
	return -EBUSY;
}

int rfs_bf_open(struct rfs_cache *c, const char *dir)
{
	char path[4096];
	int rc = lock_dir(c, dir);

	if (rc)
		return rc;
	if (snprintf(path, sizeof(path), "%s/blocks", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (mkdir(path, 0700) && errno != EEXIST)
		return -errno;
	c->dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->dfd < 0)
		return -errno;
	c->direct = c->block_size % ALIGN == 0;
	return 0;
}

void rfs_bf_close(struct rfs_cache *c)
{
	for (size_t i = 0; i < READER_SLOTS; i++)
		if (c->rd[i].fd >= 0)
			close(c->rd[i].fd);
	if (c->dfd >= 0)
		close(c->dfd);
	if (c->lockfd >= 0)
		close(c->lockfd);
	c->dfd = c->lockfd = -1;
}

static void forget_reader(struct rfs_cache *c, const struct rfs_cache_id *id);

/* ---- the writer's side ---- */

/* The open file for @id (the writer's single slot), created if need be. */
static int writer_fd(struct rfs_cache *c, struct rfs_bf_writer *w,
		     const struct rfs_cache_id *id)
{
	char name[NAME_LEN + 1];
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC;

	if (w->fd >= 0 && !memcmp(w->id.b, id->b, RFS_CACHE_ID_LEN))
		return w->fd;
	rfs_bf_writer_close(w);
	name_of(name, id);
	if (c->direct)
		flags |= O_DIRECT;
	w->fd = openat(c->dfd, name, flags, 0600);
	if (w->fd < 0 && errno == ENOENT) {
		name[2] = '\0';
		if (mkdirat(c->dfd, name, 0700) && errno != EEXIST)
			return -errno;
		name[2] = '/';
		w->fd = openat(c->dfd, name, flags, 0600);
	}
	if (w->fd < 0 && errno == EINVAL && c->direct) {
		/* a filesystem without O_DIRECT: through the page cache */
		rfs_info("cache: no direct I/O here; blocks are written "
			 "through the page cache");
		c->direct = false;
		return writer_fd(c, w, id);
	}
	if (w->fd < 0)
		return -errno;
	w->id = *id;
	return w->fd;
}

/* @len bytes at @off, all of them or an error. */
static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf = (const char *)buf + n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

int rfs_bf_write(struct rfs_cache *c, struct rfs_bf_writer *w,
		 const struct rfs_cache_id *id, uint64_t idx, const void *data,
		 size_t len)
{
	off_t off = (off_t)(idx * c->block_size);
	int fd = writer_fd(c, w, id);

	if (fd < 0)
		return fd;
	/* a direct write needs whole pages: a short last block's buffer
	 * (rfs_cache_buf_alloc) is padded with zeros to its page */
	return pwrite_all(fd, data, c->direct ? round_up(len) : len, off);
}

void rfs_bf_writer_close(struct rfs_bf_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

void rfs_bf_punch(struct rfs_cache *c, const struct rfs_cache_id *id,
		  uint64_t idx, size_t len)
{
	char name[NAME_LEN + 1];
	int fd;

	name_of(name, id);
	fd = openat(c->dfd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	/* a filesystem that cannot punch keeps the bytes until the file
	 * is evicted; the header is gone either way */
	fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		  (off_t)(idx * c->block_size), (off_t)len);
	close(fd);
}

void rfs_bf_remove(struct rfs_cache *c, struct rfs_bf_writer *w,
		   const struct rfs_cache_id *id)
{
	char name[NAME_LEN + 1];

	/* a block put after this must create a new file, not write into
	 * the unlinked one */
	if (w && w->fd >= 0 && !memcmp(w->id.b, id->b, RFS_CACHE_ID_LEN))
		rfs_bf_writer_close(w);
	name_of(name, id);
	if (unlinkat(c->dfd, name, 0) && errno != ENOENT)
		rfs_log_limited(LOG_WARNING, "cache-unlink",
				"cache: cannot remove blocks/%s: %s", name,
				strerror(errno));
	/* after the unlink: a reader opening the file until now is told
	 * not to keep it (get_reader) */
	forget_reader(c, id);
}

/*
 * A file whose every block is stored and matched the catalogue's checksums
 * is sealed: cut to its exact size (a direct write pads the last block to
 * its page) and its size and mtime recorded in an xattr of the file. Any
 * later write, a block fetched again or a byte changed by hand, moves the
 * mtime and breaks the seal; rfs_bf_open_sealed then refuses the file.
 */
#define SEAL_XATTR "user.ruciofs.seal"
#define SEAL_MAGIC 0x31534652u /* "RFS1" */

struct seal {
	uint32_t magic;
	uint32_t zero;
	uint64_t size;
	int64_t mtime_sec;
	int64_t mtime_nsec;
};

static void seal_of(struct seal *s, const struct stat *st)
{
	memset(s, 0, sizeof(*s));
	s->magic = SEAL_MAGIC;
	s->size = (uint64_t)st->st_size;
	s->mtime_sec = st->st_mtim.tv_sec;
	s->mtime_nsec = st->st_mtim.tv_nsec;
}

void rfs_bf_seal(struct rfs_cache *c, const struct rfs_cache_id *id,
		 uint64_t size)
{
	char name[NAME_LEN + 1];
	struct stat st;
	struct seal s;
	int fd;

	name_of(name, id);
	fd = openat(c->dfd, name, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st)) {
		close(fd);
		return;
	}
	if ((uint64_t)st.st_size > size && ftruncate(fd, (off_t)size) == 0 &&
	    fstat(fd, &st))
		st.st_size = -1; /* unknown now: not sealed */
	/* a filesystem without user xattrs: never sealed, always read
	 * through the daemon */
	if ((uint64_t)st.st_size == size) {
		seal_of(&s, &st);
		fsetxattr(fd, SEAL_XATTR, &s, sizeof(s), 0);
	}
	close(fd);
}

int rfs_bf_open_sealed(struct rfs_cache *c, const struct rfs_cache_id *id,
		       uint64_t size)
{
	char name[NAME_LEN + 1];
	struct seal want, got;
	struct stat st;
	int fd;

	name_of(name, id);
	fd = openat(c->dfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -EIO;
	/* no seal (a cache of an older version, a filesystem without user
	 * xattrs): never handed out whole, and nothing to say about it */
	if (fstat(fd, &st) ||
	    fgetxattr(fd, SEAL_XATTR, &got, sizeof(got)) != sizeof(got)) {
		close(fd);
		return -ENOENT;
	}
	seal_of(&want, &st);
	if (want.size == size && !memcmp(&want, &got, sizeof(want)))
		return fd;
	close(fd);
	return -ESTALE;
}

/* ---- the readers' side ---- */

/* @id's block file, read-only; with O_DIRECT if @want and the
 * filesystem has it, which *@direct (if not NULL) then says. */
static int open_read(struct rfs_cache *c, const struct rfs_cache_id *id,
		     bool want, bool *direct)
{
	bool try_direct = want && c->block_size % ALIGN == 0;
	char name[NAME_LEN + 1];
	int fd = -1;

	name_of(name, id);
	if (try_direct)
		fd = openat(c->dfd, name, O_RDONLY | O_CLOEXEC | O_DIRECT);
	/* EINVAL: a filesystem without O_DIRECT, read through its cache */
	if (fd < 0 && (!try_direct || errno == EINVAL)) {
		try_direct = false;
		fd = openat(c->dfd, name, O_RDONLY | O_CLOEXEC);
	}
	if (direct)
		*direct = try_direct;
	return fd;
}

/* Under rd_lock: the slot open on @id, or -1. */
static int find_reader(struct rfs_cache *c, const struct rfs_cache_id *id)
{
	for (int i = 0; i < READER_SLOTS; i++)
		if (c->rd[i].fd >= 0 && !c->rd[i].stale &&
		    !memcmp(c->rd[i].id.b, id->b, RFS_CACHE_ID_LEN))
			return i;
	return -1;
}

/* Under rd_lock: a free slot, or the least recently used idle one (its
 * file to be closed by the caller in *@old), or -1. */
static int take_slot(struct rfs_cache *c, int *old)
{
	int best = -1;

	*old = -1;
	for (int i = 0; i < READER_SLOTS; i++) {
		if (c->rd[i].fd < 0)
			return i;
		if (!c->rd[i].refs &&
		    (best < 0 || c->rd[i].used < c->rd[best].used))
			best = i;
	}
	if (best >= 0)
		*old = c->rd[best].fd;
	return best;
}

/*
 * An open file on @id's block file, its slot (-1: not kept, the caller
 * closes it) and whether it reads directly; or -ENOENT. Opened outside
 * the lock.
 */
static int get_reader(struct rfs_cache *c, const struct rfs_cache_id *id,
		      int *slot, bool *direct)
{
	int fd, old = -1;
	uint64_t forgotten;

	pthread_mutex_lock(&c->rd_lock);
	*slot = find_reader(c, id);
	if (*slot >= 0) {
		c->rd[*slot].refs++;
		c->rd[*slot].used = ++c->rd_clock;
		fd = c->rd[*slot].fd;
		*direct = c->rd[*slot].direct;
		pthread_mutex_unlock(&c->rd_lock);
		return fd;
	}
	forgotten = c->rd_forgotten;
	pthread_mutex_unlock(&c->rd_lock);
	fd = open_read(c, id, true, direct);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -EIO;
	pthread_mutex_lock(&c->rd_lock);
	/* another reader may have opened it meanwhile: keep one; a file
	 * removed meanwhile (its forget found no slot) is not kept, or the
	 * slot would serve the unlinked file instead of its successor */
	*slot = find_reader(c, id) >= 0 || c->rd_forgotten != forgotten
			? -1
			: take_slot(c, &old);
	if (*slot >= 0) {
		c->rd[*slot] =
			(struct rfs_bf_reader){ *id,	       fd,     1, false,
						++c->rd_clock, *direct };
	}
	pthread_mutex_unlock(&c->rd_lock);
	if (*slot >= 0 && old >= 0)
		close(old);
	return fd;
}

static void put_reader(struct rfs_cache *c, int slot, int fd)
{
	bool last;

	if (slot < 0) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&c->rd_lock);
	last = --c->rd[slot].refs == 0 && c->rd[slot].stale;
	if (last)
		c->rd[slot].fd = -1;
	pthread_mutex_unlock(&c->rd_lock);
	if (last)
		close(fd);
}

/* The file is being unlinked: readers must not go on reading it. */
static void forget_reader(struct rfs_cache *c, const struct rfs_cache_id *id)
{
	int i, fd = -1;

	pthread_mutex_lock(&c->rd_lock);
	c->rd_forgotten++;
	i = find_reader(c, id);
	if (i >= 0 && c->rd[i].refs) {
		c->rd[i].stale = true;
	} else if (i >= 0) {
		fd = c->rd[i].fd;
		c->rd[i].fd = -1;
	}
	pthread_mutex_unlock(&c->rd_lock);
	if (fd >= 0)
		close(fd);
}

/* Whole @len bytes at @off, or up to the end of the file when it ends
 * sooner (a direct read asks for whole pages): the bytes read. */
static ssize_t pread_full(int fd, const struct iovec *iov, int n, off_t off)
{
	size_t want = rfs_iov_len(iov, n), done = 0;
	struct iovec v[RFS_STAGE_RUN];
	int first = 0;

	if (n > RFS_STAGE_RUN)
		return -EINVAL;
	memcpy(v, iov, sizeof(*v) * (size_t)n);
	while (done < want) {
		ssize_t got =
			preadv(fd, v + first, n - first, off + (off_t)done);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		done += (size_t)got;
		/* a short read: go on after what came */
		while (first < n && (size_t)got >= v[first].iov_len)
			got -= (ssize_t)v[first++].iov_len;
		if (first < n) {
			v[first].iov_base = (char *)v[first].iov_base + got;
			v[first].iov_len -= (size_t)got;
		}
	}
	return (ssize_t)done;
}

static bool aligned(const void *p, uint64_t off, size_t len)
{
	return (uintptr_t)p % ALIGN == 0 && off % ALIGN == 0 &&
	       len % ALIGN == 0;
}

int rfs_bf_read(struct rfs_cache *c, const struct rfs_cache_id *id,
		uint64_t off, void *buf, size_t len)
{
	uint64_t from = off / ALIGN * ALIGN;
	size_t span = round_up((size_t)(off - from) + len);
	bool direct;
	int slot, fd = get_reader(c, id, &slot, &direct);
	struct iovec v = { buf, len };
	char *tmp = NULL;
	ssize_t got;
	bool ok;

	if (fd < 0)
		return fd;
	if (direct && !aligned(buf, off, len)) {
		/* a direct read wants whole aligned pages */
		tmp = rfs_cache_buf_alloc(span);
		if (!tmp) {
			put_reader(c, slot, fd);
			return -ENOMEM;
		}
		v = (struct iovec){ tmp, span };
	} else {
		from = off;
	}
	got = pread_full(fd, &v, 1, (off_t)from);
	put_reader(c, slot, fd);
	ok = got >= 0 && (size_t)got >= (size_t)(off - from) + len;
	if (ok && tmp)
		memcpy(buf, tmp + (off - from), len);
	rfs_cache_buf_free(tmp);
	return ok ? 0 : -ENOENT;
}

int rfs_bf_readv(struct rfs_cache *c, const struct rfs_cache_id *id,
		 uint64_t off, const struct iovec *iov, int n, size_t need)
{
	int fd = open_read(c, id, false, NULL);
	ssize_t got;

	/* not a kept reader: those read directly, and a run read through
	 * the page cache goes faster here (see stage.c) */
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -EIO;
	got = pread_full(fd, iov, n, (off_t)off);
	close(fd);
	if (got < 0)
		return (int)got;
	return (size_t)got >= need ? 0 : -ENOENT;
}

/* ---- the syncer's side ---- */

void rfs_bf_sync(struct rfs_cache *c, const struct rfs_cache_id *ids, size_t n,
		 bool all)
{
	if (all) {
		syncfs(c->dfd);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		int fd = open_read(c, &ids[i], false, NULL);

		if (fd >= 0) {
			fdatasync(fd);
			close(fd);
		}
	}
}

/* ---- opening ---- */

static void sweep_subdir(struct rfs_cache *c, const char *sub,
			 bool (*known)(struct rfs_cache *,
				       const struct rfs_cache_id *),
			 unsigned *removed)
{
	int fd = openat(c->dfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct rfs_cache_id id;
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (id_of_name(de->d_name, &id) && known(c, &id))
			continue;
		if (unlinkat(fd, de->d_name, 0) == 0)
			(*removed)++;
	}
	closedir(d);
}

void rfs_bf_sweep(struct rfs_cache *c,
		  bool (*known)(struct rfs_cache *,
				const struct rfs_cache_id *))
{
	unsigned removed = 0;
	char sub[3];

	for (unsigned i = 0; i < 256; i++) {
		snprintf(sub, sizeof(sub), "%02x", i);
		sweep_subdir(c, sub, known, &removed);
	}
	if (removed)
		rfs_info("cache: removed %u block files no record names "
			 "(left by a crash or an emptied cache)",
			 removed);
}
