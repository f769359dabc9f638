/*
 * ceiling: the fastest read-only FUSE filesystem we know how to write, so
 * the benchmark can tell how much of ruciofs's cost is FUSE itself.
 *
 *	ceiling [-s] [--size BYTES] [--from FILE] MOUNTPOINT
 *
 * Serves one regular file, /data (0444), straight out of memory: either
 * BYTES of a pattern (default 1 GiB; K, M and G suffixes are powers of
 * 1024) or the whole content of FILE. Each 8-byte word of the pattern is
 * (offset * PATTERN_MUL) in little-endian order, offset being the word's
 * own byte offset, so any byte can be checked knowing only where it is.
 *
 * Everything a well-tuned FUSE filesystem would do is done: 1 MiB read
 * requests, 1 MiB readahead, asynchronous reads, page cache kept across
 * opens, hour-long attribute and entry timeouts, and replies that point
 * into the served memory instead of copying it.
 *
 * Runs in the foreground until unmounted or sent SIGTERM/SIGINT, then
 * exits 0. -s serves from one thread, otherwise up to 10.
 *
 * Build: gcc -O2 -Wall -Wextra -Werror bench/ceiling.c \
 *		$(pkg-config --cflags --libs fuse3) -o ceiling
 */
#define FUSE_USE_VERSION 35
#define _GNU_SOURCE

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DATA_NAME "data"
#define DATA_INO 2
#define TIMEOUT 3600.0
#define MIB (1024 * 1024)
#define READAHEAD_KB 1024
#define PATTERN_MUL 0x9e3779b97f4a7c15ULL
#define DEFAULT_SIZE (1024ULL * MIB)

struct ceiling {
	const char *data;
	uint64_t size;
	time_t start; /* one timestamp, so attributes never change */
};

static struct ceiling ceil_fs;

/* ------------------------------------------------------------------ */
/* The served bytes                                                    */
/* ------------------------------------------------------------------ */

static char *make_pattern(uint64_t size)
{
	char *p = malloc(size ? size : 1);
	uint64_t off, word;

	if (!p)
		return NULL;
	/*
	 * Writing every byte now also faults the pages in, so the first
	 * timed read does not pay for it.
	 */
	for (off = 0; off < size; off += sizeof(word)) {
		uint64_t n =
			size - off < sizeof(word) ? size - off : sizeof(word);

		word = htole64(off * PATTERN_MUL);
		memcpy(p + off, &word, n);
	}
	return p;
}

/* Grows by doubling so a FILE that is a pipe or lies about its size works. */
static char *slurp(const char *path, uint64_t *sizep)
{
	uint64_t cap = MIB, len = 0;
	struct stat st;
	char *buf, *nbuf;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_size > 0)
		cap = (uint64_t)st.st_size;
	buf = malloc(cap);
	if (!buf)
		goto fail;
	for (;;) {
		/* read() moves at most ~2 GiB at a time on Linux anyway. */
		size_t want = cap - len < INT_MAX ? cap - len : INT_MAX;
		ssize_t n;

		if (!want) {
			nbuf = realloc(buf, cap * 2);
			if (!nbuf)
				goto fail;
			buf = nbuf;
			cap *= 2;
			continue;
		}
		n = read(fd, buf + len, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		len += (uint64_t)n;
	}
	close(fd);
	*sizep = len;
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* FUSE operations                                                     */
/* ------------------------------------------------------------------ */

static void fill_attr(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_atime = st->st_mtime = st->st_ctime = ceil_fs.start;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return;
	}
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_size = (off_t)ceil_fs.size;
	st->st_blocks = (blkcnt_t)((ceil_fs.size + 511) / 512);
	/* Hints cp/cat to read in 1 MiB pieces, matching our requests. */
	st->st_blksize = MIB;
}

static void ceil_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->max_read = 0; /* no limit beyond the kernel's own */
	conn->max_readahead = READAHEAD_KB * 1024;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
}

static void ceil_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (parent != FUSE_ROOT_ID || strcmp(name, DATA_NAME)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = DATA_INO;
	e.generation = 1;
	e.attr_timeout = TIMEOUT;
	e.entry_timeout = TIMEOUT;
	fill_attr(DATA_INO, &e.attr);
	fuse_reply_entry(req, &e);
}

static void ceil_getattr(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (ino != FUSE_ROOT_ID && ino != DATA_INO) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(ino, &st);
	fuse_reply_attr(req, &st, TIMEOUT);
}

static void ceil_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != DATA_INO) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	/* The bytes never change: what is cached stays valid across opens. */
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void ceil_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	uint64_t left;

	(void)ino;
	(void)fi;
	if (off < 0 || (uint64_t)off >= ceil_fs.size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	left = ceil_fs.size - (uint64_t)off;
	if (size > left)
		size = (size_t)left;
	/* libfuse writev()s from here: the only copy is the kernel's. */
	fuse_reply_buf(req, ceil_fs.data + off, size);
}

/* Appends one entry; returns the new length, unchanged if it did not fit. */
static size_t add_dirent(fuse_req_t req, char *buf, size_t len, size_t cap,
			 const char *name, fuse_ino_t ino, off_t next)
{
	struct stat st;
	size_t need;

	memset(&st, 0, sizeof(st));
	st.st_ino = ino;
	st.st_mode = ino == DATA_INO ? S_IFREG : S_IFDIR;
	need = fuse_add_direntry(req, buf + len, cap - len, name, &st, next);
	return need > cap - len ? len : len + need;
}

/* Three entries; off is the index of the next one to return. */
static void ceil_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			 struct fuse_file_info *fi)
{
	static const char *const names[] = { ".", "..", DATA_NAME };
	static const fuse_ino_t inos[] = { FUSE_ROOT_ID, FUSE_ROOT_ID,
					   DATA_INO };
	size_t len = 0, n;
	char *buf;

	(void)fi;
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (; off >= 0 && off < 3; off++) {
		n = add_dirent(req, buf, len, size, names[off], inos[off],
			       off + 1);
		if (n == len)
			break;
		len = n;
	}
	fuse_reply_buf(req, buf, len);
	free(buf);
}

static const struct fuse_lowlevel_ops ceil_ops = {
	.init = ceil_init,
	.lookup = ceil_lookup,
	.getattr = ceil_getattr,
	.open = ceil_open,
	.read = ceil_read,
	.readdir = ceil_readdir,
};

/* ------------------------------------------------------------------ */
/* Readahead                                                           */
/* ------------------------------------------------------------------ */

/* Undoes mountinfo's octal escapes (\040 for space and so on) in place. */
static void unescape(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
				      (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
}

/*
 * Finds "major:minor" of the topmost fuse mount on mnt. Reads mountinfo
 * rather than stat()ing mnt: nobody serves the mount until the session
 * loop runs, so a stat() now would hang.
 */
static int mount_dev(const char *mnt, char *dev, size_t devlen)
{
	char *line = NULL, *f[5], *sep, *save;
	size_t cap = 0;
	int found = 0, i;
	FILE *fp;

	fp = fopen("/proc/self/mountinfo", "re");
	if (!fp)
		return -errno;
	while (getline(&line, &cap, fp) > 0) {
		sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "fuse", 4))
			continue;
		f[0] = strtok_r(line, " ", &save);
		for (i = 1; i < 5 && f[i - 1]; i++)
			f[i] = strtok_r(NULL, " ", &save);
		if (i < 5 || !f[4])
			continue;
		unescape(f[4]);
		/* Later lines are mounted on top: the last match wins. */
		if (!strcmp(f[4], mnt) && strlen(f[2]) < devlen) {
			strcpy(dev, f[2]);
			found = 1;
		}
	}
	free(line);
	fclose(fp);
	return found ? 0 : -ENOENT;
}

/*
 * The kernel never reads ahead more than the bdi's read_ahead_kb (128 KiB
 * by default) and max_readahead from init can only lower it, so 1 MiB
 * requests need the bdi raised. Needs root; without it we still work,
 * just slower, hence only a warning.
 */
static void raise_readahead(const char *mnt)
{
	char dev[64], path[128], val[16];
	int fd, rc, len;

	rc = mount_dev(mnt, dev, sizeof(dev));
	if (rc) {
		fprintf(stderr, "ceiling: no mountinfo entry for %s: %s\n", mnt,
			strerror(-rc));
		return;
	}
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
	len = snprintf(val, sizeof(val), "%d\n", READAHEAD_KB);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, val, (size_t)len) != len)
		fprintf(stderr, "ceiling: cannot set %s: %s\n", path,
			strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* ------------------------------------------------------------------ */
/* Setup                                                               */
/* ------------------------------------------------------------------ */

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: ceiling [-s] [--size BYTES] [--from FILE] MOUNTPOINT\n"
		"  -s            single-threaded session loop\n"
		"  --size BYTES  size of the pattern file (K/M/G suffixes)\n"
		"  --from FILE   serve FILE's content instead of a pattern\n");
}

static int parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'G':
	case 'g':
		v <<= 10;
		/* fall through */
	case 'M':
	case 'm':
		v <<= 10;
		/* fall through */
	case 'K':
	case 'k':
		v <<= 10;
		end++;
		break;
	}
	if (*end)
		return -1;
	*out = v;
	return 0;
}

struct opts {
	int single;
	uint64_t size;
	const char *from;
	char mnt[PATH_MAX];
};

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 'S' },
		{ "from", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->single = 0;
	o->size = DEFAULT_SIZE;
	o->from = NULL;
	while ((c = getopt_long(argc, argv, "sh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->single = 1;
			break;
		case 'S':
			if (parse_size(optarg, &o->size)) {
				fprintf(stderr, "ceiling: bad size '%s'\n",
					optarg);
				return -1;
			}
			break;
		case 'F':
			o->from = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return -1;
	}
	/* Resolved now, while looking at the path cannot hang. */
	if (!realpath(argv[optind], o->mnt)) {
		fprintf(stderr, "ceiling: %s: %s\n", argv[optind],
			strerror(errno));
		return -1;
	}
	return 0;
}

static int load_data(const struct opts *o)
{
	char *p;

	if (o->from) {
		p = slurp(o->from, &ceil_fs.size);
		if (!p) {
			fprintf(stderr, "ceiling: %s: %s\n", o->from,
				strerror(errno));
			return -1;
		}
	} else {
		ceil_fs.size = o->size;
		p = make_pattern(o->size);
		if (!p) {
			fprintf(stderr, "ceiling: cannot allocate %llu bytes\n",
				(unsigned long long)o->size);
			return -1;
		}
	}
	ceil_fs.data = p;
	ceil_fs.start = time(NULL);
	return 0;
}

static int serve(struct fuse_session *se, int single)
{
	/*
	 * Under API 3.5 the config only carries clone_fd and the idle
	 * limit; libfuse caps the pool at its default of 10 threads.
	 */
	struct fuse_loop_config cfg = {
		.clone_fd = 0,
		.max_idle_threads = 10,
	};

	return single ? fuse_session_loop(se) : fuse_session_loop_mt(se, &cfg);
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se;
	struct opts o;
	int rc = 1;

	if (parse_args(argc, argv, &o) || load_data(&o))
		return 1;

	/* Read-only like ruciofs, so the kernel treats both the same. */
	if (fuse_opt_add_arg(&args, argv[0]) || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, "ro,fsname=ceiling,subtype=ceiling"))
		goto out_free;
	se = fuse_session_new(&args, &ceil_ops, sizeof(ceil_ops), NULL);
	if (!se)
		goto out_free;
	if (fuse_set_signal_handlers(se))
		goto out_destroy;
	if (fuse_session_mount(se, o.mnt))
		goto out_signals;

	raise_readahead(o.mnt);
	printf("ceiling: ready\n");
	fflush(stdout);

	/* Positive means a signal ended the loop: a normal way to stop. */
	rc = serve(se, o.single) < 0;

	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
out_free:
	free((void *)ceil_fs.data);
	fuse_opt_free_args(&args);
	return rc;
}
