/*
 * The filesystem core: inodes for scopes and DIDs, cached listings, open
 * files with their replicas, the read path. fuse/ is its only caller and
 * speaks to it in inode numbers; nothing here knows about FUSE.
 *
 * All functions return 0 (or a byte count) or a negative errno that is
 * meaningful to a filesystem caller: network and catalogue failures come
 * out as -EIO, after one log line.
 */
#ifndef RFS_FS_H
#define RFS_FS_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "conf/conf.h"
#include "util/buf.h"

#define RFS_ROOT_INO 1

/*
 * Flags of the calls that can reach the network. RFS_NOWAIT: answer only
 * from what is at hand (memory, the cache); RFS_WOULD_BLOCK instead of
 * waiting for the catalogue, storage, or another thread's fetch. The
 * caller then asks again, from a thread that may wait, and nothing was
 * changed meanwhile.
 */
#define RFS_NOWAIT 1
#define RFS_WOULD_BLOCK (-EINPROGRESS)

struct rfs_fs;
struct rfs_dir;
struct rfs_file;
/* Who asks (authz/cred.h): made by rfs_fs_caller, one per request. */
struct rfs_cred;

struct rfs_attr {
	uint64_t ino;
	mode_t mode;
	nlink_t nlink;
	uint64_t size;
	uint64_t blocks; /* of 512 bytes */
	uint32_t blksize;
	time_t mtime;
	time_t ctime;
	uid_t uid;
	gid_t gid;
	double attr_ttl;  /* how long the kernel may keep these attributes */
	double entry_ttl; /* how long the kernel may keep the name */
};

struct rfs_statfs {
	uint64_t bsize;
	uint64_t namemax;
};

/*
 * Once per process, before rfs_fs_new and while only one thread runs:
 * the global state of the libraries the catalogue and the transports
 * use (libcurl). Cleanup after the last rfs_fs_free.
 */
int rfs_fs_global_init(void);
void rfs_fs_global_cleanup(void);
/* Those libraries and their versions, for --version ("libcurl/..."). */
void rfs_fs_versions(char *out, size_t len);

/* Borrows @conf for the lifetime of the fs. Contacts nobody. */
int rfs_fs_new(struct rfs_fs **out, const struct rfs_conf *conf);
void rfs_fs_free(struct rfs_fs *fs);
const struct rfs_conf *rfs_fs_conf(const struct rfs_fs *fs);

/*
 * Before daemonizing: checks what can fail at start (the identity map,
 * the cache directory) and sets up shared-mount callers.
 * Fills @err for the terminal.
 */
int rfs_fs_prepare(struct rfs_fs *fs, char *err, size_t errlen);
/*
 * After daemonizing (LMDB and threads must not cross a fork): starts the
 * transports, opens the block cache, starts the -o metrics file's
 * writer. A cache that fails to open is logged and the mount reads from
 * the network only.
 */
void rfs_fs_start(struct rfs_fs *fs);

/* First contact: logs in and lists the scopes; errors are logged. */
int rfs_fs_check(struct rfs_fs *fs);

/* ---- ruciofs --check (check.c) ---- */

enum rfs_check_result { RFS_CHECK_OK, RFS_CHECK_FAIL, RFS_CHECK_SKIP };

/* One step's line: "[ ok ] step: detail", "[FAIL] ...", "[skip] ...". */
void rfs_check_line(FILE *out, enum rfs_check_result r, const char *step,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Instead of mounting: probes what a mount needs through the code a mount
 * runs, one line per step on @out (the configuration as read; FUSE, the
 * mountpoint, the cache directory; the catalogue's /ping; logging in and
 * whoami; one file's replicas, -o check_did or the first found; one byte
 * from each endpoint among them). Returns 0 when every step run passed,
 * 1 otherwise. Call on a new fs, in place of prepare and start.
 */
int rfs_fs_self_check(struct rfs_fs *fs, FILE *out);

/*
 * Whether a failed first contact (@rc) may still mount: the catalogue is
 * out of reach, not refusing us, and a cache from earlier mounts exists.
 */
bool rfs_fs_can_start_offline(struct rfs_fs *fs, int rc);

/*
 * The credential of a caller (its uid, gid and pid from the request):
 * every entry point below that can reach the network or serve bytes is
 * handed one. Today every caller presents the mount's own identity; this
 * is the one place that decides it. Release with rfs_fs_cred_put.
 */
int rfs_fs_caller(struct rfs_fs *fs, uid_t uid, gid_t gid, pid_t pid,
		  struct rfs_cred **out);
struct rfs_cred *rfs_fs_cred_get(struct rfs_cred *who);
/* NULL is fine. */
void rfs_fs_cred_put(struct rfs_cred *who);

/* Counts one kernel reference on success, released by rfs_fs_forget. */
int rfs_fs_lookup(struct rfs_fs *fs, struct rfs_cred *who, uint64_t parent,
		  const char *name, struct rfs_attr *out, int flags);
void rfs_fs_forget(struct rfs_fs *fs, uint64_t ino, uint64_t nlookup);
int rfs_fs_getattr(struct rfs_fs *fs, struct rfs_cred *who, uint64_t ino,
		   struct rfs_attr *out);

/* A snapshot of a directory, stable while open (readdir offsets). */
/* The directory keeps @who for its readdirs. */
int rfs_fs_opendir(struct rfs_fs *fs, struct rfs_cred *who, uint64_t ino,
		   struct rfs_dir **out, int flags);
/*
 * Entry @idx ("." and ".." first). @name is valid until releasedir.
 * Returns -ENOENT past the end.
 */
int rfs_fs_dir_entry(struct rfs_dir *d, size_t idx, const char **name,
		     struct rfs_attr *attr);
/*
 * As rfs_fs_dir_entry, and counts one kernel reference on the entry (not
 * on "." and "..") as a lookup would: readdirplus answers the lookups an
 * `ls -l` would make, with the listing already at hand. 1: a name only,
 * no reference taken, as the entry's times are not asked for yet (a
 * lookup asks).
 */
int rfs_fs_dir_lookup(struct rfs_dir *d, size_t idx, const char **name,
		      struct rfs_attr *attr);
void rfs_fs_releasedir(struct rfs_dir *d);

/*
 * access(2) for @who: W_OK is -EROFS; a collection's R_OK/X_OK, and F_OK,
 * follow the namespace; a file's R_OK is what open would decide (on a
 * shared mount: may the storage give this caller the bytes); X_OK on a
 * file -EACCES.
 */
int rfs_fs_access(struct rfs_fs *fs, struct rfs_cred *who, uint64_t ino,
		  int mask, int flags);

/* Resolves replicas for a file: -EISDIR for a collection. */
/* The file keeps @who: its bytes are fetched for the one who opened it. */
int rfs_fs_open(struct rfs_fs *fs, struct rfs_cred *who, uint64_t ino,
		struct rfs_file **out, int flags);
/* Exactly min(size, file_size - off) bytes, 0 at or past EOF, fetched
 * as the file's opener. */
ssize_t rfs_fs_read(struct rfs_fs *fs, struct rfs_file *f, void *buf,
		    size_t size, uint64_t off, int flags);
void rfs_fs_release(struct rfs_fs *fs, struct rfs_file *f);
/*
 * Whether the kernel may keep @f's pages from earlier opens (file DIDs
 * never change); not when bytes it may hold were found wrong since.
 */
bool rfs_fs_keep_pages(struct rfs_fs *fs, struct rfs_file *f);
/*
 * A read-only fd of @f's bytes whole, for the kernel to read directly,
 * when the cache holds all of them verified and -o passthrough is on
 * (the caller closes it); -ENOENT otherwise.
 */
int rfs_fs_open_whole(struct rfs_fs *fs, const struct rfs_file *f);
/* Counts an open the kernel reads from such an fd (for status). */
void rfs_fs_count_whole(struct rfs_fs *fs);
/*
 * Counts one read request of @f (NULL: no open file) answered after
 * @secs from its arrival with @n bytes or a negative errno: the read
 * latency histogram and the opener's identity's counts. No lock taken.
 */
void rfs_fs_count_read(struct rfs_fs *fs, const struct rfs_file *f, ssize_t n,
		       double secs);

/* The value of attribute @name in @out; -ENODATA if it has none. */
int rfs_fs_getxattr(struct rfs_fs *fs, struct rfs_cred *who, uint64_t ino,
		    const char *name, struct rfs_buf *out, int flags);
/* NUL-separated names, as listxattr(2) wants them. */
int rfs_fs_listxattr(struct rfs_fs *fs, uint64_t ino, struct rfs_buf *out);

void rfs_fs_statfs(struct rfs_fs *fs, struct rfs_statfs *out);

/* ---- what ruciofs-ctl asks of a mount (tasks.c) ---- */

/* How far a long task (prefetch, scrub) got. */
struct rfs_task_progress {
	uint64_t files, files_done;
	uint64_t bytes, bytes_done;
	uint64_t cached_before; /* bytes a prefetch found cached already */
};

/* Who hears of a task's progress; false from either: the client went
 * away, and the task stops. */
struct rfs_task_cb {
	/* @force: a file is done (else it may be said less often) */
	bool (*progress)(void *arg, const struct rfs_task_progress *p,
			 bool force);
	/* a cached file a scrub found wrong (and dropped) */
	bool (*bad)(void *arg, const char *did, const char *why);
	void *arg;
};

/*
 * Fills the cache with every file below "scope:name" not there yet,
 * pinned with @pin, each checked whole; *@out: what was done. Fills @msg
 * on an error (-EIO: some files failed; -ECONNABORTED: stopped).
 */
int rfs_fs_prefetch(struct rfs_fs *fs, struct rfs_cred *who, const char *did,
		    bool pin, const struct rfs_task_cb *cb,
		    struct rfs_task_progress *out, char *msg, size_t mlen);
int rfs_fs_unpin(struct rfs_fs *fs, struct rfs_cred *who, const char *did,
		 char *msg, size_t mlen);
int rfs_fs_evict(struct rfs_fs *fs, struct rfs_cred *who, const char *did,
		 char *msg, size_t mlen);

struct rfs_scrub_result {
	uint64_t good, bad, incomplete;
};
/*
 * Checks the cached files below "scope:name" (NULL: every cached file)
 * against the catalogue's checksums again; a copy that does not match is
 * dropped and told to @cb. -EBADMSG when one did not.
 */
int rfs_fs_scrub(struct rfs_fs *fs, struct rfs_cred *who, const char *did,
		 const struct rfs_task_cb *cb, struct rfs_scrub_result *out,
		 char *msg, size_t mlen);

/* A snapshot for ruciofs-ctl status. */
struct rfs_endpoint_info {
	char rse[64];
	uint64_t bytes, errors, slow;
	double rate; /* bytes/s, 0: not measured */
	bool last_resort;
};
struct rfs_fs_stats {
	const char *cache_dir; /* the mount's, valid while it is */
	uint64_t block_size, quota, used, pinned, files;
	uint64_t hits, misses, cache_bytes, net_bytes;
	uint64_t corrupt, evicted, dropped, staged;
	uint64_t evicted_files;
	uint64_t whole_opens;
	uint64_t written, write_us, wait_us;
	uint64_t matched, wrong; /* whole-file checks */
	/* transport sessions (endpoint, identity): with files open on them,
	 * and kept for the next */
	size_t sessions_busy, sessions_idle;
	bool offline;
	size_t nendpoints;
	struct rfs_endpoint_info endpoints[32];
};
/* -ENOTSUP without a cache. */
int rfs_fs_stats(struct rfs_fs *fs, struct rfs_fs_stats *out);
/*
 * The mount's metrics as Prometheus text (format 0.0.4), appended to
 * @out (docs/metrics.md lists the families). With or without a cache.
 */
int rfs_fs_metrics(struct rfs_fs *fs, struct rfs_buf *out);
bool rfs_fs_has_cache(const struct rfs_fs *fs);
/* Where the control socket listens, told in the hidden xattr
 * user.ruciofs.ctl; NULL: none. */
void rfs_fs_set_ctl_path(struct rfs_fs *fs, const char *path);

/*
 * DID name -> one POSIX path component: '/' (allowed in names since Rucio
 * 38) becomes U+FF0F FULLWIDTH SOLIDUS. Returns -EINVAL for names that
 * cannot be shown ("", ".", "..", longer than NAME_MAX once mapped).
 */
int rfs_name_to_posix(const char *did_name, char *out, size_t outlen);

/* Stable inode number of a DID or scope (name NULL), never 0 or 1. */
uint64_t rfs_ino_of(const char *scope, const char *name);

#endif
