/*
 * The filesystem's life: made from the configuration, checked against
 * the catalogue before mounting, started after daemonizing (the cache,
 * its workers, the control socket), freed at unmount.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authz/cred.h"
#include "authz/identity.h"
#include "authz/token.h"
#include "core/authz.h"
#include "core/core.h"
#include "core/file.h"
#include "core/listing.h"
#include "core/node.h"
#include "core/prefetch.h"
#include "core/verify.h"
#include "util/errmap.h"
#include "util/log.h"
#include "util/banned.h"

int rfs_fs_errno(int rc)
{
	switch (-rc) {
	case 0:
	case ENOENT:
	case EACCES:
	case EPERM:
	case ENOMEM:
	case ENOTDIR:
	case EISDIR:
	case EROFS:
	case ENODATA:
	case ERANGE:
	case ESTALE:
	case EINVAL:
	case ENOTSUP:
	case EINPROGRESS: /* RFS_WOULD_BLOCK */
		return rc;
	default:
		return -EIO;
	}
}

/* Errors that say the catalogue could not be reached, not that it said no */
bool rfs_unreachable(int rc)
{
	/* -EHOSTUNREACH also while the catalogue's offline window is open */
	return rc == -ECONNREFUSED || rc == -ETIMEDOUT || rc == -EHOSTUNREACH ||
	       rc == -ENETUNREACH || rc == -ENETDOWN || rc == -EHOSTDOWN ||
	       rc == -ECONNRESET;
}

/*
 * With no -o schemes, the catalogue is asked for every scheme this build
 * reads: Rucio returns no PFN of a scheme left out, so a lake whose RSEs
 * speak plain http would list every file and read none. A scheme no
 * transport reads (root:// today) is not asked for.
 */
static int ask_readable_schemes(struct rfs_catalog *cat)
{
	struct rfs_strv sv;
	const char *s;
	int rc = 0;

	rfs_strv_init(&sv);
	for (size_t i = 0; !rc && (s = rfs_transports_scheme(i)); i++)
		rc = rfs_strv_push(&sv, s);
	if (!rc)
		rc = rfs_catalog_set_schemes(cat, &sv);
	rfs_strv_release(&sv);
	return rc;
}

/* The catalogue's libcurl is the HTTP transport's: set up with it. */
int rfs_fs_global_init(void)
{
	return rfs_transports_global_init();
}

void rfs_fs_global_cleanup(void)
{
	rfs_transports_global_cleanup();
}

void rfs_fs_versions(char *out, size_t len)
{
	rfs_transports_versions(out, len);
}

/* The login exchange of identities that log in is the catalogue's. */
static int login_via_catalog(void *arg, char **token, time_t *renew)
{
	struct rfs_fs *fs = arg;

	return rfs_catalog_userpass(fs->cat, token, renew);
}

int rfs_fs_new(struct rfs_fs **out, const struct rfs_conf *conf)
{
	struct rfs_fs *fs = calloc(1, sizeof(*fs));
	int rc = -ENOMEM;

	if (!fs)
		return -ENOMEM;
	fs->conf = conf;
	fs->bs = conf->block_size;
	fs->start = time(NULL);
	pthread_mutex_init(&fs->table_lock, NULL);
	pthread_cond_init(&fs->list_cv, NULL);
	pthread_mutex_init(&fs->inflight_lock, NULL);
	pthread_cond_init(&fs->inflight_cv, NULL);
	pthread_mutex_init(&fs->gather_lock, NULL);
	pthread_mutex_init(&fs->stats_lock, NULL);
	pthread_mutex_init(&fs->open_lock, NULL);
	pthread_mutex_init(&fs->verify_lock, NULL);
	rfs_metrics_init(&fs->metrics);
	fs->nbuckets = 1024;
	fs->buckets = calloc(fs->nbuckets, sizeof(*fs->buckets));
	fs->root = calloc(1, sizeof(*fs->root));
	if (!fs->buckets || !fs->root)
		goto fail;
	fs->root->ino = RFS_ROOT_INO;
	fs->root->nlookup = 1;
	fs->root->rec.type = RFS_DID_ROOT;
	fs->root->rec.scope = strdup("");
	if (!fs->root->rec.scope)
		goto fail;
	rfs_node_insert(fs, fs->root);
	rc = rfs_catalog_new(&fs->cat, conf);
	if (!rc)
		rc = rfs_identity_new(
			&fs->mount_id, conf, "mount",
			&(struct rfs_login){ login_via_catalog, fs });
	if (!rc)
		rc = rfs_transports_open(&fs->tps, conf);
	if (!rc && !conf->schemes.n)
		rc = ask_readable_schemes(fs->cat);
	if (!rc) {
		*out = fs;
		return 0;
	}
fail:
	rfs_fs_free(fs);
	return rc;
}

void rfs_fs_free(struct rfs_fs *fs)
{
	if (!fs)
		return;
	/* its last file, while every count is still there */
	rfs_metrics_file_stop(fs);
	while (fs->open_files)
		rfs_fs_release(fs, fs->open_files);
	while (fs->open_dirs)
		rfs_fs_releasedir(fs->open_dirs);
	for (size_t i = 0; fs->buckets && i < fs->nbuckets; i++) {
		struct rfs_node *n = fs->buckets[i], *next;

		for (; n; n = next) {
			next = n->next;
			rfs_node_free(n);
		}
	}
	if (fs->root && !fs->nnodes)
		rfs_node_free(fs->root);
	free(fs->buckets);
	rfs_prefetch_stop(fs);
	rfs_verify_stop(fs);
	rfs_cache_close(fs->cache);
	rfs_transports_close(fs->tps);
	rfs_authz_free(fs);
	rfs_identity_put(fs->mount_id);
	rfs_catalog_free(fs->cat);
	pthread_cond_destroy(&fs->inflight_cv);
	pthread_mutex_destroy(&fs->inflight_lock);
	pthread_mutex_destroy(&fs->gather_lock);
	pthread_mutex_destroy(&fs->stats_lock);
	pthread_mutex_destroy(&fs->open_lock);
	pthread_mutex_destroy(&fs->verify_lock);
	rfs_metrics_release(&fs->metrics);
	pthread_cond_destroy(&fs->list_cv);
	pthread_mutex_destroy(&fs->table_lock);
	free(fs);
}

const struct rfs_conf *rfs_fs_conf(const struct rfs_fs *fs)
{
	return fs->conf;
}

int rfs_fs_prepare(struct rfs_fs *fs, char *err, size_t errlen)
{
	int rc = rfs_authz_new(fs, err, errlen);

	if (rc || !fs->conf->cache)
		return rc;
	return rfs_cache_check_dir(fs->conf->cache_dir, err, errlen);
}

void rfs_fs_start(struct rfs_fs *fs)
{
	struct rfs_cache_conf cc = {
		.dir = fs->conf->cache_dir,
		.quota = fs->conf->cache_size,
		.block_size = (uint32_t)fs->bs,
	};
	int rc;

	rfs_transports_start(fs->tps); /* a failure is logged there */
	if (rfs_verify_start(fs))
		rfs_err("no verify workers: whole files are not checked "
			"against the catalogue's checksums");
	if (fs->conf->cache) {
		rc = rfs_cache_open(&fs->cache, &cc);
		if (rc) {
			rfs_err("cache '%s' cannot be opened (%s); reading "
				"from the network only",
				cc.dir, rfs_errno_reason(rc));
			fs->cache = NULL;
		}
	}
	if (fs->cache && fs->conf->readahead && rfs_prefetch_start(fs))
		rfs_err("no read-ahead workers: reads fetch only what they "
			"need");
	/* the first file once the cache's counts are there */
	rfs_metrics_file_start(fs);
}

bool rfs_fs_can_start_offline(struct rfs_fs *fs, int rc)
{
	char path[4096];

	if (!rfs_unreachable_or_busy(rc) || !fs->conf->cache)
		return false;
	snprintf(path, sizeof(path), "%s/data.mdb", fs->conf->cache_dir);
	return access(path, R_OK) == 0;
}

int rfs_fs_check(struct rfs_fs *fs)
{
	struct rfs_did_list dl;
	unsigned gen;
	char *token;
	int rc = rfs_identity_catalog_token(fs->mount_id, &token, &gen);

	rfs_token_free(token);
	if (rc)
		return rc;
	rc = rfs_catalog_list_scopes(fs->cat, fs->mount_id, &dl);
	if (!rc)
		rfs_did_list_release(&dl);
	return rc;
}

void rfs_fs_statfs(struct rfs_fs *fs, struct rfs_statfs *out)
{
	out->bsize = 4096;
	out->namemax = NAME_MAX;
}

bool rfs_fs_has_cache(const struct rfs_fs *fs)
{
	return fs->cache != NULL;
}

void rfs_fs_set_ctl_path(struct rfs_fs *fs, const char *path)
{
	/* before the session serves, or after it stopped: no reader */
	snprintf(fs->ctl_path, sizeof(fs->ctl_path), "%s", path ? path : "");
}

int rfs_fs_caller(struct rfs_fs *fs, uid_t uid, gid_t gid, pid_t pid,
		  struct rfs_cred **out)
{
	struct rfs_identity *id = NULL;
	int rc = 0;

	/* a shared mount: each caller's own token (or none); else every
	 * caller presents the mount's identity */
	if (fs->authz)
		rc = rfs_authz_caller(fs, uid, gid, pid, &id);
	else
		id = rfs_identity_get(fs->mount_id);
	*out = rc ? NULL : rfs_cred_new(uid, gid, pid, id);
	rfs_identity_put(id);
	return rc ? rc : *out ? 0 : -ENOMEM;
}

struct rfs_cred *rfs_fs_cred_get(struct rfs_cred *who)
{
	return rfs_cred_get(who);
}

void rfs_fs_cred_put(struct rfs_cred *who)
{
	rfs_cred_put(who);
}
