/*
 * Whole-file checks: every file's bytes are summed in file order (adler32
 * and, when the catalogue has one, md5) as they reach the cache, by a
 * verify worker, never on a reader's thread. The read that ends a file
 * is answered only once the sums matched, so a whole-file reader never
 * gets exit status 0 with bytes the catalogue contradicts. On a mismatch
 * the file's blocks are dropped, the replica that served them is found
 * and tried last for that file, and every handle that was served bytes of
 * that generation fails its later reads.
 *
 * One verifier per file identity, shared by the file's open handles, its
 * read-ahead and prefetch jobs; kept after the last one goes while it
 * remembers a replica that lied about the file.
 */
#ifndef RFS_VERIFY_H
#define RFS_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct iovec;
struct rfs_cache_id;
struct rfs_fs;
struct rfs_file;
struct rfs_target;
struct rfs_source;

int rfs_verify_start(struct rfs_fs *fs);
/* Stops the workers; frees every verifier (no handle may hold one). */
void rfs_verify_stop(struct rfs_fs *fs);

/*
 * Gives @f (its DID, replicas and cache identity set) the verifier of its
 * bytes, made if needed; none when the catalogue has no checksum for it.
 */
int rfs_verify_attach(struct rfs_fs *fs, struct rfs_file *f);
/* Shares @from's verifier with @to, a job's own target; let go of it
 * with rfs_verify_unshare. */
void rfs_verify_share(struct rfs_fs *fs, struct rfs_target *to,
		      const struct rfs_target *from);
void rfs_verify_unshare(struct rfs_fs *fs, struct rfs_target *t);
void rfs_verify_detach(struct rfs_fs *fs, struct rfs_file *f);

/*
 * Before a read of @len bytes at @off of @f: -EIO when @f was served
 * bytes of a generation found wrong since (its reader must not take the
 * rest as good); waits (until @deadline) while a mismatch of the file is
 * being looked into. On 0, rfs_verify_after_read must follow, with the
 * bytes read (0 if the read failed).
 */
int rfs_verify_before_read(struct rfs_fs *fs, struct rfs_file *f, uint64_t off,
			   size_t len, double deadline);
/*
 * After @len bytes at @off (@buf) were read for @f: notes them (without a
 * cache, hands them to the worker). A read that reaches the end of the
 * file waits for the file's verdict: -EIO if it does not match (with
 * @nowait: RFS_WOULD_BLOCK while there is none yet). A file that cannot
 * be summed whole (a reader of its tail only) is answered unchecked.
 */
int rfs_verify_after_read(struct rfs_fs *fs, struct rfs_file *f, uint64_t off,
			  const void *buf, size_t len, double deadline,
			  bool nowait);
/* Whether reads of @f wait now (a mismatch is being looked into). */
bool rfs_verify_busy(const struct rfs_file *f);
/* Whether @f's bytes matched the catalogue's checksums (or have none). */
bool rfs_verify_is_good(const struct rfs_file *f);
/*
 * The @n buffers of @iov, the bytes at @off of @f just fetched: a copy of
 * those the sums still need is kept for them, up to a bound (with @wait,
 * until @deadline for room: background fetches keep pace with the sums),
 * so the sums need not read them back from the disk.
 */
void rfs_verify_offer(struct rfs_fs *fs, struct rfs_target *f, uint64_t off,
		      const struct iovec *iov, int n, bool wait,
		      double deadline);
/* Blocks @idx..@idx + @n - 1 of @f came from @src: said before the sums
 * can see them (offered, or in the cache), so that a mismatch they are
 * part of knows who served every block. */
void rfs_verify_source(struct rfs_fs *fs, struct rfs_target *f, uint64_t idx,
		       size_t n, const struct rfs_source *src);
/* Blocks @idx..@idx + @n - 1 of @f were fetched from @src and queued for
 * the cache: the worker goes on summing. */
void rfs_verify_fetched(struct rfs_fs *fs, struct rfs_target *f, uint64_t idx,
			size_t n, const struct rfs_source *src);
/* Whether @url served bytes of @f's file that did not match: such a
 * replica is tried last for this file. */
bool rfs_verify_demoted(const struct rfs_target *f, const char *url);
/*
 * Whether an open of @f may let the kernel keep the file's pages: not
 * once a generation was found wrong (the kernel may hold its pages);
 * the open that says no drops them, and clears it.
 */
bool rfs_verify_keep_pages(struct rfs_fs *fs, struct rfs_file *f);

/*
 * verify=always: fetches every block of @f not cached and waits until
 * the whole matched (0); -EIO when no replica gives bytes that match.
 */
int rfs_verify_whole(struct rfs_fs *fs, struct rfs_file *f);

/*
 * A scrub: sums the cached copy of @id, all @size bytes stored, against
 * @adler32 and @md5 ("": none): 0 when it matches, -EBADMSG when it does
 * not (@why says how), -EIO when a block failed its CRC32Cs (dropped),
 * -ENOENT when a block is missing.
 */
int rfs_verify_cached(struct rfs_fs *fs, const struct rfs_cache_id *id,
		      uint64_t size, const char *adler32, const char *md5,
		      char *why, size_t len);
/* @id's cached copy was found wrong and dropped behind the verifier's
 * back: its next open drops the kernel's pages, its bytes are checked
 * anew. */
void rfs_verify_forget(struct rfs_fs *fs, const struct rfs_cache_id *id);

/* For status: files checked, and found wrong, since the mount. */
void rfs_verify_counts(struct rfs_fs *fs, uint64_t *good, uint64_t *bad);

#endif
