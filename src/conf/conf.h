/*
 * Configuration: the Rucio client's own rucio.cfg plus -o overrides,
 * parsed once before mounting, validated, then passed around as const.
 */
#ifndef RFS_CONF_H
#define RFS_CONF_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

/* A NULL-terminated, owned vector of owned strings. */
struct rfs_strv {
	char **v;
	size_t n;
};
void rfs_strv_init(struct rfs_strv *sv);
int rfs_strv_push(struct rfs_strv *sv, const char *s);
void rfs_strv_release(struct rfs_strv *sv);

enum rfs_auth_type {
	RFS_AUTH_USERPASS,
	RFS_AUTH_TOKEN, /* "oidc": a WLCG bearer token used directly */
};

struct rfs_conf {
	/* [client] keys of rucio.cfg; every one can be set with -o too */
	char *rucio_host;
	char *auth_host;
	char *auth_type_name;
	char *account;
	char *username;
	char *password; /* secret: wiped on release, never logged */
	char *ca_cert;
	char *vo;

	/* ruciofs's own -o options */
	char *rucio_config; /* explicit rucio.cfg path */
	char *config_path;  /* the file actually read, or NULL */
	char *token_file;
	char *replica_sort;   /* NULL: the catalogue's default order */
	char *rse_expression; /* NULL: replicas on every RSE */
	/* replica schemes to ask for; none: every one the build reads */
	struct rfs_strv schemes;
	/* storage hosts that may be connected to (none: any) and address
	 * ranges that may not, beyond the link-local ones (util/net.h) */
	struct rfs_strv storage_hosts;
	struct rfs_strv deny_nets;
	double connect_timeout;	  /* seconds */
	double io_timeout;	  /* seconds below low_speed_limit that fail */
	uint64_t low_speed_limit; /* bytes/s */
	uint64_t min_rate;	  /* bytes/s: a slower replica goes last */
	double read_timeout;	  /* seconds a read may take, all tries */
	double dir_ttl;		  /* collection listings */
	double file_ttl;	  /* kernel attribute timeout for files */
	double replica_ttl;	  /* how long an open reuses a replica list */
	double negative_ttl;	  /* kernel negative-entry timeout */
	/* after a failed contact, how long to serve from the cache before
	 * trying the catalogue again */
	double offline_retry;
	uint64_t max_answer; /* cap on one catalogue answer, bytes */
	unsigned max_threads;
	bool allow_other;
	char *cache_dir;     /* NULL: the default for this user */
	uint64_t cache_size; /* quota of block data */
	uint64_t block_size;
	bool cache;	   /* false: -o cache=no, read from the network only */
	bool readahead;	   /* parallel read-ahead for sequential readers */
	bool vector_reads; /* sparse misses of a file grouped in one request */
	/* whole cached files read by the kernel from the block file */
	bool passthrough;
	char *verify;	    /* "complete" (default) or "always" */
	bool verify_always; /* derived by validate */

	/* shared mounts (issue 17) */
	char *identity;	 /* "caller" or "mount"; NULL: derived */
	bool per_caller; /* derived: each caller reads as their own token */
	struct rfs_strv token_issuers;	 /* accepted issuers, exact "iss" */
	struct rfs_strv token_audiences; /* accepted beyond WLCG's "any" */
	bool token_env;	      /* the caller's environment may name a token */
	double authz_offline; /* an online "yes" kept this long offline */
	char *idmap;	      /* the identity map file */
	char *anonymous;      /* callers without a token: "none", "names" */
	char *check_did;      /* --check reads this DID's replicas */
	bool anonymous_names; /* derived */

	/* observability (issue 19) */
	char *log_level;	 /* error, warning, info (default), debug */
	int log_max;		 /* derived: its syslog level; debug with -d */
	char *metrics;		 /* the Prometheus textfile; NULL: none */
	double metrics_interval; /* seconds between its rewrites */

	/* command line */
	char *source; /* fstab's first field, a label; NULL if not given */
	char *mountpoint;
	bool foreground;
	bool debug;
	bool singlethread;
	/* --check: probe the set-up and report, mount nothing; the
	 * mountpoint is optional then */
	bool check;

	uint64_t cli_mask; /* options given on the command line win */
	enum rfs_auth_type auth_type; /* derived by validate */
	uid_t uid;		      /* owner shown for every inode */
	gid_t gid;
};

enum rfs_conf_action {
	RFS_CONF_RUN,
	RFS_CONF_HELP,
	RFS_CONF_VERSION,
};

/* Sets every default. */
void rfs_conf_init(struct rfs_conf *conf);
/* Frees every string, wiping secrets. */
void rfs_conf_release(struct rfs_conf *conf);

/*
 * Parses argv. Options ruciofs does not know are appended to @fuse_opts
 * (as "name" or "name=value") for the FUSE mount. Fills @err on failure.
 */
int rfs_conf_parse_args(struct rfs_conf *conf, int argc, char **argv,
			struct rfs_strv *fuse_opts,
			enum rfs_conf_action *action, char *err, size_t errlen);

/*
 * Overwrites with 'x' the value of every -o password= in @argv (which
 * must be writable, as main()'s is), in every spelling the parser takes
 * for one (escaped commas, backslashes, escapes in the key, "-oLIST"):
 * /proc/PID/cmdline is readable by everyone. Call after
 * rfs_conf_parse_args has copied it.
 */
void rfs_conf_hide_secrets(int argc, char **argv);

/*
 * Sets one option by name (also used for the rucio.cfg keys). Returns
 * -ENOENT for an unknown name, -EINVAL for a bad value. @from_file keeps
 * values already given with -o.
 */
int rfs_conf_set(struct rfs_conf *conf, const char *key, const char *value,
		 bool from_file);

/* Finds and reads rucio.cfg the way the Rucio client does. */
int rfs_conf_load_file(struct rfs_conf *conf, char *err, size_t errlen);

/* Checks the whole configuration; derives auth_type. */
int rfs_conf_validate(struct rfs_conf *conf, char *err, size_t errlen);

/* Prints the option list. */
void rfs_conf_usage(const char *progname);

/*
 * INI parsing as Python's configparser reads rucio.cfg: [section], "key =
 * value" or "key: value", '#'/';' comment lines, indented continuation
 * lines, keys lower-cased. Calls @cb for each key; a non-zero return stops.
 * Returns 0, or -EINVAL with the 1-based line in *@errline.
 */
typedef int (*rfs_ini_cb)(const char *section, const char *key,
			  const char *value, void *ctx);
int rfs_ini_parse(const char *text, size_t len, rfs_ini_cb cb, void *ctx,
		  int *errline);

#endif
