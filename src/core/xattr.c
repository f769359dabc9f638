/* Extended attributes: what the catalogue says of a DID, read-only. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "core/batch.h"
#include "core/authz.h"
#include "core/core.h"
#include "core/file.h"
#include "core/node.h"
#include "core/replicas.h"
#include "util/banned.h"

enum xattr_id {
	X_DID,
	X_TYPE,
	X_BYTES,
	X_ADLER32,
	X_MD5,
	X_REPLICAS,
	X_CACHED,
	X_COUNT,
};

static const char *const xattr_names[X_COUNT] = {
	"user.rucio.did",      "user.rucio.type", "user.rucio.bytes",
	"user.rucio.adler32",  "user.rucio.md5",  "user.rucio.replicas",
	"user.ruciofs.cached",
};

/* Whether @r has attribute @id at all (for listxattr and ENODATA). */
static bool has_xattr(const struct rfs_fs *fs, const struct rfs_did_rec *r,
		      enum xattr_id id)
{
	switch (id) {
	case X_DID:
		return r->type != RFS_DID_ROOT;
	case X_TYPE:
		return r->type != RFS_DID_ROOT;
	case X_BYTES:
		return r->has_bytes;
	case X_ADLER32:
		return r->adler32[0] != '\0';
	case X_MD5:
		return r->md5[0] != '\0';
	case X_REPLICAS:
		return r->type == RFS_DID_FILE;
	case X_CACHED:
		return r->type == RFS_DID_FILE && fs->cache;
	default:
		return false;
	}
}

/* The fraction of the file's bytes in the block cache, "0.000".."1.000" */
static int cached_fraction(struct rfs_fs *fs, const struct rfs_did_rec *r,
			   struct rfs_buf *out)
{
	uint64_t nblocks, total;
	struct rfs_cache_id id;
	bool pinned;
	int rc;

	rfs_cache_id_of(&id, r->scope, r->name, r->adler32);
	rc = rfs_cache_file_state(fs->cache, &id, &nblocks, &pinned);
	if (rc)
		return rc;
	total = rfs_nblocks(fs, r->bytes);
	if (nblocks > total)
		nblocks = total;
	return rfs_buf_printf(out, "%.3f",
			      total ? (double)nblocks / (double)total : 1.0);
}

static int xattr_value(const struct rfs_did_rec *r, enum xattr_id id,
		       struct rfs_buf *out)
{
	switch (id) {
	case X_DID:
		if (r->type == RFS_DID_SCOPE)
			return rfs_buf_addstr(out, r->scope);
		return rfs_buf_printf(out, "%s:%s", r->scope, r->name);
	case X_TYPE:
		return rfs_buf_addstr(out, rfs_did_type_name(r->type));
	case X_BYTES:
		return rfs_buf_printf(out, "%llu",
				      (unsigned long long)r->bytes);
	case X_ADLER32:
		return rfs_buf_addstr(out, r->adler32);
	case X_MD5:
		return rfs_buf_addstr(out, r->md5);
	default:
		return -ENODATA;
	}
}

int rfs_fs_getxattr(struct rfs_fs *fs, struct rfs_cred *who, uint64_t ino,
		    const char *name, struct rfs_buf *out, int flags)
{
	struct rfs_node *n = rfs_node_get(fs, ino);
	struct rfs_did_rec rec = { 0 };
	struct rfs_replicas *r;
	int id, rc = -ENODATA;

	if (!n)
		return -ESTALE;
	/* No SELinux labels, no POSIX ACLs: "not supported" rather than
	 * "none here" lets ls -l stop asking after the first file (coreutils
	 * remembers it per device); ENODATA cost two round trips per file. */
	if (strncmp(name, "user.", 5)) {
		rfs_node_put(fs, n);
		return -EOPNOTSUPP;
	}
	/* hidden (not listed): where ruciofs-ctl finds this mount's socket */
	if (!strcmp(name, "user.ruciofs.ctl")) {
		rc = fs->ctl_path[0] ? rfs_buf_addstr(out, fs->ctl_path)
				     : -ENODATA;
		rfs_node_put(fs, n);
		return rc;
	}
	rc = rfs_authz_names(fs, who);
	if (rc) {
		rfs_node_put(fs, n);
		return rc;
	}
	rc = -ENODATA;
	for (id = 0; id < X_COUNT && strcmp(name, xattr_names[id]); id++)
		;
	pthread_mutex_lock(&fs->table_lock);
	if (id < X_COUNT && has_xattr(fs, &n->rec, id))
		rc = id == X_REPLICAS || id == X_CACHED
			     ? rfs_did_rec_copy(&rec, &n->rec)
			     : xattr_value(&n->rec, id, out);
	pthread_mutex_unlock(&fs->table_lock);
	/* these two read the network or the disk: not under the lock */
	if (!rc && id == X_CACHED) {
		rc = cached_fraction(fs, &rec, out);
	} else if (!rc && id == X_REPLICAS) {
		rc = rfs_node_replicas(fs, who, n, &r, flags & RFS_NOWAIT);
		/* replica URLs only to a caller who may read the bytes */
		if (!rc &&
		    (rc = rfs_node_may_read(fs, who, n, r, flags & RFS_NOWAIT)))
			rfs_replicas_put(r);
		if (!rc) {
			rc = rfs_replicas_describe(r, out);
			rfs_replicas_put(r);
		}
	}
	rfs_did_rec_release(&rec);
	rfs_node_put(fs, n);
	return rfs_fs_errno(rc);
}

int rfs_fs_listxattr(struct rfs_fs *fs, uint64_t ino, struct rfs_buf *out)
{
	struct rfs_node *n;
	int rc = 0;

	pthread_mutex_lock(&fs->table_lock);
	n = rfs_node_find(fs, ino);
	for (int id = 0; n && id < X_COUNT && !rc; id++)
		if (has_xattr(fs, &n->rec, id))
			rc = rfs_buf_add(out, xattr_names[id],
					 strlen(xattr_names[id]) + 1);
	pthread_mutex_unlock(&fs->table_lock);
	return n ? rc : -ESTALE;
}
