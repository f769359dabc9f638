/*
 * The insides of discover.c that its tests and fuzz target reach: the
 * parsers of /proc/<pid>/environ and /proc/<pid>/stat, and hooks that
 * put the test's own directories and environment reader in place of
 * /run/user, /tmp and /proc. The daemon includes discover.h only and
 * never calls a hook (tests/check-style.sh lets nothing outside
 * src/authz/discover.c and tests/ include this header).
 */
#ifndef RFS_AUTHZ_DISCOVER_INT_H
#define RFS_AUTHZ_DISCOVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "authz/discover.h"

/* The variables discovery takes from a caller's environment. */
enum rfs_env_var {
	RFS_ENV_TOKEN,	    /* BEARER_TOKEN */
	RFS_ENV_TOKEN_FILE, /* BEARER_TOKEN_FILE */
	RFS_ENV_XDG,	    /* XDG_RUNTIME_DIR */
	RFS_ENV_NVARS,
};

/*
 * What an environment block ("NAME=value" entries, each ended by a NUL)
 * says about those variables. Fed in pieces of any size, so the block is
 * never held whole; the first entry of a name counts, as with getenv(3).
 * A value longer than its cap (RFS_TOKEN_MAX for the token, PATH_MAX - 1
 * for the paths) is not kept: over[] says so.
 */
struct rfs_environ {
	char *val[RFS_ENV_NVARS]; /* NUL terminated; NULL: not set */
	bool over[RFS_ENV_NVARS]; /* set, but longer than its cap */
	/* the process's working directory, for a relative
	 * BEARER_TOKEN_FILE; NULL when not known */
	char *cwd;

	/* the entry being read: its first bytes, and which variable it is
	 * (-1: not known yet, -2: none we want) */
	char name[24];
	size_t pos;
	int var;
	size_t vlen;
};

void rfs_environ_init(struct rfs_environ *e);
/* Wipes the values (BEARER_TOKEN is a token) and frees them. */
void rfs_environ_release(struct rfs_environ *e);
/* The next @len bytes of the block; 0 or -ENOMEM. */
int rfs_environ_feed(struct rfs_environ *e, const char *buf, size_t len);
/* The block ended (an entry without its final NUL counts). */
int rfs_environ_end(struct rfs_environ *e);

/*
 * From one line of /proc/<pid>/stat: the session id (field 6) and the
 * start time (field 22, clock ticks after boot). The command (field 2)
 * may hold blanks and parentheses: fields are counted from its last ')'.
 * Returns 0 or -EINVAL.
 */
int rfs_proc_stat_parse(const char *buf, size_t len, pid_t *sid,
			unsigned long long *start);

/*
 * Reads the environment of process @pid, which asks as @uid, into @env
 * (rfs_environ_feed, then rfs_environ_end; cwd as wanted). Returns 0, or
 * a negative errno when there is no environment to use (go on with the
 * files). Runs on a reader thread, never on the caller's.
 */
typedef int (*rfs_env_reader)(pid_t pid, uid_t uid, struct rfs_environ *env,
			      void *arg);

/* For tests only: what they put in place of the system's. */
struct rfs_discover_hooks {
	const char *run_user;	 /* for /run/user; NULL: unchanged */
	const char *tmp;	 /* for /tmp; NULL: unchanged */
	rfs_env_reader read_env; /* for /proc/<pid>/environ; NULL: same */
	void *arg;
	size_t max_uids;     /* per-uid table bound; 0: unchanged */
	size_t max_sessions; /* per-session table bound; 0: unchanged */
};

/* Before any other call on @d; copies what @h points to. */
int rfs_discovery_set_hooks(struct rfs_discovery *d,
			    const struct rfs_discover_hooks *h);

/* How many uids and sessions @d keeps now. */
void rfs_discovery_sizes(struct rfs_discovery *d, size_t *uids,
			 size_t *sessions);

#endif
