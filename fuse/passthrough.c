/*
 * Passthrough negotiated on the wire (see passthrough.h). The few parts
 * of the FUSE protocol touched are defined here, from the kernel's ABI
 * (include/uapi/linux/fuse.h, 7.40), as Debian 12's headers predate them.
 *
 * One session per process, so the state is this file's own.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuse/passthrough.h"
#include "util/log.h"
#include "util/banned.h"

/* ---- the wire ---- */

#define OP_INIT 26
#define INIT_EXT (1u << 30)	    /* flags2 is valid */
#define INIT2_PASSTHROUGH (1u << 5) /* FUSE_PASSTHROUGH, bit 37 */
#define FOPEN_PASSTHROUGH_BIT (1u << 7)

struct wire_in_header {
	uint32_t len;
	uint32_t opcode;
	uint64_t unique;
	uint64_t nodeid;
	uint32_t uid, gid, pid;
	uint16_t total_extlen, padding;
};

struct wire_init_in {
	uint32_t major, minor, max_readahead, flags;
	uint32_t flags2;
};

struct wire_out_header {
	uint32_t len;
	int32_t error;
	uint64_t unique;
};

struct wire_init_out {
	uint32_t major, minor, max_readahead, flags;
	uint16_t max_background, congestion_threshold;
	uint32_t max_write, time_gran;
	uint16_t max_pages, map_alignment;
	uint32_t flags2;
	uint32_t max_stack_depth;
};

struct wire_open_out {
	uint64_t fh;
	uint32_t open_flags;
	int32_t backing_id;
};

struct wire_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};

#define IOC_BACKING_OPEN _IOW(229, 1, struct wire_backing_map)
#define IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

_Static_assert(sizeof(struct wire_in_header) == 40, "fuse_in_header");
_Static_assert(offsetof(struct wire_init_out, flags2) == 32, "flags2");
_Static_assert(offsetof(struct wire_init_out, max_stack_depth) == 36,
	       "max_stack_depth");
_Static_assert(sizeof(struct wire_open_out) == 16, "fuse_open_out");

/* ---- state ---- */

#define BUCKETS 1024

struct inode_io {
	struct inode_io *next;
	uint64_t ino;
	unsigned daemon; /* opens served by the daemon */
	unsigned direct; /* opens read by the kernel from the backing file */
	int backing_id;	 /* registered while direct > 0 */
};

static struct {
	int devfd;
	/* the flags are read and written with __atomic: the reading and
	 * the answering thread of INIT differ */
	bool init_seen;
	bool init_pending;    /* INIT read, not answered yet */
	uint64_t init_unique; /* published by init_pending */
	bool offered;	      /* the INIT offered passthrough; the same */
	bool usable;	      /* negotiated, and not given up */
	unsigned ndirect;     /* inodes read from a backing file now */
	pthread_mutex_t lock; /* the table, ndirect's writes; a leaf lock */
	struct inode_io *table[BUCKETS];
} pt = { .devfd = -1, .lock = PTHREAD_MUTEX_INITIALIZER };

/* the backing id the open reply being sent by this thread names */
static __thread int reply_backing_id;

/* ---- the hooks ---- */

static void saw_init(const char *buf, size_t n)
{
	struct wire_in_header h;
	struct wire_init_in in;

	/* the first request decides, whatever it is: no header checked on
	 * every later one */
	__atomic_store_n(&pt.init_seen, true, __ATOMIC_RELAXED);
	if (n < sizeof(h))
		return;
	memcpy(&h, buf, sizeof(h));
	if (h.opcode != OP_INIT)
		return;
	pt.init_unique = h.unique;
	/* a short INIT (a kernel before protocol 7.36): no flags2, no
	 * passthrough */
	if (n >= sizeof(h) + sizeof(in)) {
		memcpy(&in, buf + sizeof(h), sizeof(in));
		pt.offered = (in.flags & INIT_EXT) &&
			     (in.flags2 & INIT2_PASSTHROUGH);
	}
	__atomic_store_n(&pt.init_pending, true, __ATOMIC_RELEASE);
}

static ssize_t hook_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n = read(fd, buf, len);

	(void)userdata;
	/* INIT comes first, and alone: nothing else is sent before its
	 * answer */
	if (n > 0 && !__atomic_load_n(&pt.init_seen, __ATOMIC_RELAXED))
		saw_init(buf, (size_t)n);
	return n;
}

/* The kernel takes passthrough only if the INIT reply asks for it, with
 * how deep filesystems may stack on the backing file's (ours: one). */
static void patch_init(struct iovec *iov, int count)
{
	struct wire_out_header h;
	struct wire_init_out o;

	if (count < 2 || iov[0].iov_len != sizeof(h) ||
	    iov[1].iov_len < sizeof(o))
		return;
	memcpy(&h, iov[0].iov_base, sizeof(h));
	if (h.unique != pt.init_unique)
		return;
	__atomic_store_n(&pt.init_pending, false, __ATOMIC_RELAXED);
	if (h.error)
		return;
	if (!pt.offered) {
		rfs_info("passthrough: not offered by this kernel (Linux 6.9 "
			 "and later); cached files are read through the "
			 "daemon");
		return;
	}
	memcpy(&o, iov[1].iov_base, sizeof(o));
	o.flags |= INIT_EXT;
	o.flags2 |= INIT2_PASSTHROUGH;
	o.max_stack_depth = 1;
	memcpy(iov[1].iov_base, &o, sizeof(o));
	__atomic_store_n(&pt.usable, true, __ATOMIC_RELEASE);
	rfs_info("passthrough: whole cached files are read by the kernel");
}

static void patch_open(struct iovec *iov, int count)
{
	struct wire_open_out o;

	if (count < 2 || iov[1].iov_len != sizeof(o))
		return;
	memcpy(&o, iov[1].iov_base, sizeof(o));
	o.open_flags |= FOPEN_PASSTHROUGH_BIT;
	o.backing_id = reply_backing_id;
	memcpy(iov[1].iov_base, &o, sizeof(o));
}

static ssize_t hook_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	(void)userdata;
	if (__atomic_load_n(&pt.init_pending, __ATOMIC_ACQUIRE))
		patch_init(iov, count);
	else if (reply_backing_id > 0)
		patch_open(iov, count);
	return writev(fd, iov, count);
}

int rfs_pt_install(struct fuse_session *se)
{
	/* no splice hooks: ruciofs asks libfuse for no splicing (it
	 * would splice around these hooks, after INIT) */
	static const struct fuse_custom_io io = {
		.read = hook_read,
		.writev = hook_writev,
	};
	int fd = fuse_session_fd(se);
	int rc;

	pt.devfd = fd;
	rc = fuse_session_custom_io(se, &io, fd);
	return rc > 0 ? -rc : rc;
}

bool rfs_pt_usable(void)
{
	return __atomic_load_n(&pt.usable, __ATOMIC_ACQUIRE);
}

/* ---- the table ---- */

static struct inode_io **slot_of(uint64_t ino)
{
	struct inode_io **p = &pt.table[ino % BUCKETS];

	while (*p && (*p)->ino != ino)
		p = &(*p)->next;
	return p;
}

/* Under pt.lock. */
static void drop_if_idle(struct inode_io **p)
{
	struct inode_io *e = *p;

	if (e->daemon || e->direct)
		return;
	*p = e->next;
	free(e);
}

/* Under pt.lock: a backing id for @fd, or 0 if the kernel refuses it. */
static int register_backing(int fd)
{
	struct wire_backing_map m = { .fd = fd };
	int id = ioctl(pt.devfd, IOC_BACKING_OPEN, &m);

	if (id > 0)
		return id;
	/* EPERM: passthrough wants CAP_SYS_ADMIN; others (a cache on a
	 * stacked filesystem, say) are about this file only */
	if (errno == EPERM) {
		__atomic_store_n(&pt.usable, false, __ATOMIC_RELEASE);
		rfs_warn("passthrough: the kernel refuses backing files "
			 "(%s); every read goes through the daemon",
			 strerror(errno));
	} else {
		rfs_log_limited(LOG_WARNING, "pt-backing",
				"passthrough: a cached file cannot back "
				"reads (%s); read through the daemon",
				strerror(errno));
	}
	return 0;
}

bool rfs_pt_wants_fd(uint64_t ino)
{
	struct inode_io *e;
	bool wants;

	if (!rfs_pt_usable())
		return false;
	pthread_mutex_lock(&pt.lock);
	e = *slot_of(ino);
	wants = !e || (!e->direct && !e->daemon);
	pthread_mutex_unlock(&pt.lock);
	return wants;
}

int rfs_pt_open(uint64_t ino, int fd, bool *counted)
{
	struct inode_io **p, *e;
	int id = 0;

	*counted = false;
	/* given up (or never negotiated), an inode still read from a
	 * backing file must go on so: the kernel fails a daemon open of it */
	if (!rfs_pt_usable() && !__atomic_load_n(&pt.ndirect, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&pt.lock);
	p = slot_of(ino);
	e = *p;
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			pthread_mutex_unlock(&pt.lock);
			return -ENOMEM;
		}
		e->ino = ino;
		*p = e;
	}
	/* the kernel's rule: one mode per inode while any open lasts */
	if (e->direct)
		id = e->backing_id;
	else if (!e->daemon && fd >= 0 && rfs_pt_usable())
		id = register_backing(fd);
	if (id > 0) {
		e->backing_id = id;
		if (e->direct++ == 0)
			__atomic_add_fetch(&pt.ndirect, 1, __ATOMIC_RELEASE);
	} else if (rfs_pt_usable()) {
		e->daemon++;
	} else {
		/* no mode to keep for later opens */
		drop_if_idle(p);
		pthread_mutex_unlock(&pt.lock);
		return 0;
	}
	*counted = true;
	pthread_mutex_unlock(&pt.lock);
	return id;
}

int rfs_pt_reply_open(fuse_req_t req, struct fuse_file_info *fi, int backing_id)
{
	int rc;

	reply_backing_id = backing_id;
	rc = fuse_reply_open(req, fi);
	reply_backing_id = 0;
	return rc;
}

void rfs_pt_release(uint64_t ino, bool passthrough)
{
	struct inode_io **p, *e;
	uint32_t id;

	pthread_mutex_lock(&pt.lock);
	p = slot_of(ino);
	e = *p;
	if (!e) {
		pthread_mutex_unlock(&pt.lock);
		return;
	}
	if (passthrough && e->direct && --e->direct == 0) {
		/* the kernel keeps its own reference for files still
		 * open; the id only served new opens */
		id = (uint32_t)e->backing_id;
		if (ioctl(pt.devfd, IOC_BACKING_CLOSE, &id))
			rfs_dbg("passthrough: closing backing id %u: %s", id,
				strerror(errno));
		e->backing_id = 0;
		__atomic_sub_fetch(&pt.ndirect, 1, __ATOMIC_RELEASE);
	} else if (!passthrough && e->daemon) {
		e->daemon--;
	}
	drop_if_idle(p);
	pthread_mutex_unlock(&pt.lock);
}

void rfs_pt_clear(void)
{
	pthread_mutex_lock(&pt.lock);
	for (size_t i = 0; i < BUCKETS; i++)
		while (pt.table[i]) {
			struct inode_io *e = pt.table[i];

			pt.table[i] = e->next;
			free(e);
		}
	__atomic_store_n(&pt.ndirect, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&pt.lock);
}
