#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "util/log.h"
#include "util/net.h"
#include "util/str.h"
#include "util/banned.h"

#define MAX_CONFIG_FILE (1024 * 1024)

/* The system's own rucio.cfg, under the configured sysconfdir */
#ifndef RFS_SYSCONFDIR
#define RFS_SYSCONFDIR "/etc"
#endif
#define RFS_SYSTEM_CONFIG RFS_SYSCONFDIR "/ruciofs/rucio.cfg"

void rfs_strv_init(struct rfs_strv *sv)
{
	sv->v = NULL;
	sv->n = 0;
}

int rfs_strv_push(struct rfs_strv *sv, const char *s)
{
	char **nv = realloc(sv->v, (sv->n + 2) * sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	sv->v = nv;
	sv->v[sv->n] = strdup(s);
	if (!sv->v[sv->n])
		return -ENOMEM;
	sv->v[++sv->n] = NULL;
	return 0;
}

void rfs_strv_release(struct rfs_strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	rfs_strv_init(sv);
}

enum opt_type {
	OPT_STR,
	OPT_SECRET,
	OPT_STRV,
	OPT_URLS, /* separated by blanks or commas: ':' is in a URL */
	OPT_NETLIST,
	OPT_DURATION,
	OPT_SIZE,
	OPT_UINT,
	OPT_BOOL,
};

struct opt {
	const char *name;
	enum opt_type type;
	size_t offset;
};

#define OPT(n, t, field)                                                       \
	{                                                                      \
		n, t, offsetof(struct rfs_conf, field)                         \
	}

/* The single table of options: rucio.cfg keys first, then ours. */
static const struct opt opts[] = {
	OPT("rucio_host", OPT_STR, rucio_host),
	OPT("auth_host", OPT_STR, auth_host),
	OPT("auth_type", OPT_STR, auth_type_name),
	OPT("account", OPT_STR, account),
	OPT("username", OPT_STR, username),
	OPT("password", OPT_SECRET, password),
	OPT("ca_cert", OPT_STR, ca_cert),
	OPT("vo", OPT_STR, vo),
	OPT("rucio_config", OPT_STR, rucio_config),
	OPT("token_file", OPT_STR, token_file),
	OPT("replica_sort", OPT_STR, replica_sort),
	OPT("rse_expression", OPT_STR, rse_expression),
	OPT("schemes", OPT_STRV, schemes),
	OPT("storage_hosts", OPT_NETLIST, storage_hosts),
	OPT("deny_nets", OPT_NETLIST, deny_nets),
	OPT("connect_timeout", OPT_DURATION, connect_timeout),
	OPT("io_timeout", OPT_DURATION, io_timeout),
	OPT("low_speed_limit", OPT_SIZE, low_speed_limit),
	OPT("min_rate", OPT_SIZE, min_rate),
	OPT("read_timeout", OPT_DURATION, read_timeout),
	OPT("dir_ttl", OPT_DURATION, dir_ttl),
	OPT("file_ttl", OPT_DURATION, file_ttl),
	OPT("replica_ttl", OPT_DURATION, replica_ttl),
	OPT("negative_ttl", OPT_DURATION, negative_ttl),
	OPT("offline_retry", OPT_DURATION, offline_retry),
	OPT("max_answer", OPT_SIZE, max_answer),
	OPT("max_threads", OPT_UINT, max_threads),
	OPT("allow_other", OPT_BOOL, allow_other),
	OPT("cache_dir", OPT_STR, cache_dir),
	OPT("cache_size", OPT_SIZE, cache_size),
	OPT("block_size", OPT_SIZE, block_size),
	OPT("cache", OPT_BOOL, cache),
	OPT("readahead", OPT_BOOL, readahead),
	OPT("vector_reads", OPT_BOOL, vector_reads),
	OPT("passthrough", OPT_BOOL, passthrough),
	OPT("verify", OPT_STR, verify),
	OPT("identity", OPT_STR, identity),
	OPT("token_issuer", OPT_URLS, token_issuers),
	OPT("token_audience", OPT_URLS, token_audiences),
	OPT("token_env", OPT_BOOL, token_env),
	OPT("authz_offline", OPT_DURATION, authz_offline),
	OPT("idmap", OPT_STR, idmap),
	OPT("anonymous", OPT_STR, anonymous),
	OPT("check_did", OPT_STR, check_did),
	OPT("log_level", OPT_STR, log_level),
	OPT("metrics", OPT_STR, metrics),
	OPT("metrics_interval", OPT_DURATION, metrics_interval),
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))
_Static_assert(NOPTS <= 64, "cli_mask has a bit per option");

/*
 * Mount options of fstab and mount(8) that mean nothing to FUSE. mount(8)
 * adds "rw" when fstab says neither ro nor rw; mount.fuse3 adds "dev" and
 * "suid" for root, which would lift the nodev,nosuid a FUSE mount gets:
 * a lake's files never need either, so they are dropped too.
 */
static const char *const discarded[] = { "_netdev", "noauto",	"auto",
					 "user",    "users",	"nouser",
					 "nofail",  "defaults", "rw",
					 "dev",	    "suid",	NULL };

void rfs_conf_init(struct rfs_conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	rfs_strv_init(&conf->schemes);
	rfs_strv_init(&conf->storage_hosts);
	rfs_strv_init(&conf->deny_nets);
	rfs_strv_init(&conf->token_issuers);
	rfs_strv_init(&conf->token_audiences);
	conf->authz_offline = 86400;
	conf->connect_timeout = 10;
	conf->io_timeout = 30;
	conf->low_speed_limit = 1024;
	conf->min_rate = 256 << 10;
	conf->read_timeout = 60;
	conf->dir_ttl = 60;
	conf->file_ttl = 86400;
	conf->replica_ttl = 600;
	conf->negative_ttl = 10;
	conf->offline_retry = 5;
	conf->max_answer = 64ull << 20;
	conf->max_threads = 10;
	conf->cache = true;
	conf->readahead = true;
	conf->vector_reads = true;
	conf->passthrough = true;
	conf->cache_size = 10ull << 30;
	conf->log_max = LOG_INFO;
	conf->metrics_interval = 10;
	conf->block_size = 1 << 20;
	conf->uid = getuid();
	conf->gid = getgid();
}

static void free_secret(char **p)
{
	if (*p)
		rfs_wipe(*p, strlen(*p));
	free(*p);
	*p = NULL;
}

void rfs_conf_release(struct rfs_conf *conf)
{
	for (size_t i = 0; i < NOPTS; i++) {
		void *field = (char *)conf + opts[i].offset;

		if (opts[i].type == OPT_STR || opts[i].type == OPT_SECRET)
			free_secret(field);
	}
	rfs_strv_release(&conf->schemes);
	rfs_strv_release(&conf->storage_hosts);
	rfs_strv_release(&conf->deny_nets);
	rfs_strv_release(&conf->token_issuers);
	rfs_strv_release(&conf->token_audiences);
	free(conf->config_path);
	free(conf->mountpoint);
	free(conf->source);
	conf->config_path = conf->mountpoint = conf->source = NULL;
}

static const struct opt *find_opt(const char *key, size_t *idx)
{
	for (size_t i = 0; i < NOPTS; i++) {
		if (strcmp(opts[i].name, key) == 0) {
			*idx = i;
			return &opts[i];
		}
	}
	return NULL;
}

/*
 * Lists accept ',' (rucio.cfg) and ':' (handy inside -o, where ',' splits);
 * lists of hosts and address ranges ';' instead of ':', which IPv6 holds.
 */
static int set_strv(struct rfs_strv *sv, const char *value, const char *sep)
{
	char *copy = strdup(value), *p, *save = NULL;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	rfs_strv_release(sv);
	for (p = strtok_r(copy, sep, &save); p && !rc;
	     p = strtok_r(NULL, sep, &save))
		rc = rfs_strv_push(sv, p);
	free(copy);
	if (!rc && sv->n == 0)
		rc = -EINVAL;
	return rc;
}

static int set_value(struct rfs_conf *conf, const struct opt *o,
		     const char *value)
{
	void *field = (char *)conf + o->offset;
	uint64_t u;
	char *copy;
	int rc;

	switch (o->type) {
	case OPT_STR:
	case OPT_SECRET:
		copy = strdup(value);
		if (!copy)
			return -ENOMEM;
		free_secret(field);
		*(char **)field = copy;
		return 0;
	case OPT_STRV:
		return set_strv(field, value, ",: ");
	case OPT_NETLIST:
		return set_strv(field, value, ",; \t");
	case OPT_URLS:
		return set_strv(field, value, ", \t\n");
	case OPT_DURATION:
		return rfs_parse_duration(value, field);
	case OPT_SIZE:
		return rfs_parse_size(value, field);
	case OPT_UINT:
		rc = rfs_parse_size(value, &u);
		if (rc || u == 0 || u > 1024)
			return -EINVAL;
		*(unsigned *)field = (unsigned)u;
		return 0;
	case OPT_BOOL:
		return rfs_parse_bool(value, field);
	}
	return -EINVAL;
}

int rfs_conf_set(struct rfs_conf *conf, const char *key, const char *value,
		 bool from_file)
{
	const struct opt *o;
	size_t idx;
	int rc;

	o = find_opt(key, &idx);
	if (!o)
		return -ENOENT;
	if (from_file && (conf->cli_mask & (1ull << idx)))
		return 0;
	if (!value)
		value = o->type == OPT_BOOL ? "true" : "";
	rc = set_value(conf, o, value);
	if (!rc && !from_file)
		conf->cli_mask |= 1ull << idx;
	return rc && rc != -ENOMEM ? -EINVAL : rc;
}

static bool is_discarded(const char *opt)
{
	for (size_t i = 0; discarded[i]; i++)
		if (strcmp(opt, discarded[i]) == 0)
			return true;
	return strncmp(opt, "x-", 2) == 0 || strncmp(opt, "comment=", 8) == 0;
}

/* One "key[=value]" of a -o list. */
static int take_option(struct rfs_conf *conf, char *opt,
		       struct rfs_strv *fuse_opts, char *err, size_t errlen)
{
	char *eq = strchr(opt, '=');
	int rc;

	if (is_discarded(opt))
		return 0;
	if (eq)
		*eq = '\0';
	rc = rfs_conf_set(conf, opt, eq ? eq + 1 : NULL, false);
	if (eq)
		*eq = '=';
	if (rc == -ENOENT)
		return rfs_strv_push(fuse_opts, opt);
	if (rc)
		snprintf(err, errlen, "invalid value for option '%.*s'",
			 eq ? (int)(eq - opt) : (int)strlen(opt), opt);
	return rc;
}

/* Splits a -o argument at commas; a backslash escapes the next byte. */
static int take_option_list(struct rfs_conf *conf, const char *list,
			    struct rfs_strv *fuse_opts, char *err,
			    size_t errlen)
{
	size_t n = strlen(list);
	char *cur = malloc(n + 1);
	size_t len = 0;
	int rc = 0;

	if (!cur)
		return -ENOMEM;
	for (size_t i = 0; i <= n && !rc; i++) {
		if (list[i] == '\\' && i + 1 < n) {
			cur[len++] = list[++i];
			continue;
		}
		if (list[i] != ',' && list[i] != '\0') {
			cur[len++] = list[i];
			continue;
		}
		cur[len] = '\0';
		if (len)
			rc = take_option(conf, cur, fuse_opts, err, errlen);
		len = 0;
	}
	rfs_wipe(cur, n + 1); /* the list may have held a password */
	free(cur);
	return rc;
}

static bool is_secret(const char *key)
{
	size_t idx;
	const struct opt *o = find_opt(key, &idx);

	return o && o->type == OPT_SECRET;
}

/*
 * One option of a -o list, @len raw bytes at @p: if its key, unescaped
 * as take_option_list does (an escaped '=' ends the key too, since the
 * key is cut at the first '=' after unescaping), names a secret, every
 * raw byte of its value becomes 'x'.
 */
static void hide_option(char *p, size_t len)
{
	char key[32];
	size_t k = 0, i;

	for (i = 0; i < len; i++) {
		char c = p[i];

		if (c == '\\' && i + 1 < len)
			c = p[++i];
		if (c == '=')
			break;
		if (k + 1 >= sizeof(key))
			return; /* longer than any option name */
		key[k++] = c;
	}
	key[k] = '\0';
	if (i == len || !is_secret(key))
		return;
	memset(p + i + 1, 'x', len - i - 1);
}

/*
 * /proc/PID/cmdline is readable by every local user: a password given
 * with -o is overwritten in argv once copied (rucio.cfg is the better
 * place for it; ruciofs(8) says so). The list is split exactly as
 * take_option_list splits it, so every spelling the parser takes for a
 * password (escaped commas, backslashes, a trailing backslash, escapes
 * in the key) is masked whole.
 */
static void hide_list(char *list)
{
	size_t n, start = 0;

	if (!list)
		return;
	n = strlen(list);
	for (size_t i = 0; i <= n; i++) {
		if (list[i] == '\\' && i + 1 < n) {
			i++;
			continue;
		}
		if (list[i] != ',' && list[i] != '\0')
			continue;
		hide_option(list + start, i - start);
		start = i + 1;
	}
}

/* Walks argv as rfs_conf_parse_args does. */
void rfs_conf_hide_secrets(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc)
			hide_list(argv[++i]);
		else if (!strncmp(argv[i], "-o", 2))
			hide_list(argv[i] + 2);
	}
}

/*
 * "MOUNTPOINT", or "SOURCE MOUNTPOINT" as mount(8) and mount.fuse3 pass
 * an fstab line: its first field is a free label, not a path.
 */
static int take_positional(struct rfs_conf *conf, const char *a, char *err,
			   size_t errlen)
{
	char *copy;

	if (conf->source) {
		snprintf(err, errlen, "more than one mountpoint ('%s')", a);
		return -EINVAL;
	}
	copy = strdup(a);
	if (!copy)
		return -ENOMEM;
	if (conf->mountpoint)
		conf->source = conf->mountpoint;
	conf->mountpoint = copy;
	return 0;
}

int rfs_conf_parse_args(struct rfs_conf *conf, int argc, char **argv,
			struct rfs_strv *fuse_opts,
			enum rfs_conf_action *action, char *err, size_t errlen)
{
	int rc;

	*action = RFS_CONF_RUN;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			*action = RFS_CONF_HELP;
			return 0;
		}
		if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			*action = RFS_CONF_VERSION;
			return 0;
		}
		if (!strcmp(a, "-f")) {
			conf->foreground = true;
		} else if (!strcmp(a, "-d")) {
			conf->debug = conf->foreground = true;
		} else if (!strcmp(a, "-s")) {
			conf->singlethread = true;
		} else if (!strcmp(a, "--check")) {
			conf->check = true;
		} else if (!strncmp(a, "-o", 2)) {
			const char *list = a[2] ? a + 2 : argv[++i];

			if (!list) {
				snprintf(err, errlen, "-o needs an argument");
				return -EINVAL;
			}
			rc = take_option_list(conf, list, fuse_opts, err,
					      errlen);
			if (rc)
				return rc;
		} else if (a[0] == '-') {
			snprintf(err, errlen, "unknown argument '%s'", a);
			return -EINVAL;
		} else {
			rc = take_positional(conf, a, err, errlen);
			if (rc)
				return rc;
		}
	}
	return 0;
}

struct ini_ctx {
	struct rfs_conf *conf;
};

static int ini_key(const char *section, const char *key, const char *value,
		   void *ctx)
{
	struct ini_ctx *c = ctx;
	size_t idx;

	/* [client] is the Rucio client's, which we read too; [ruciofs] is
	 * ours alone; the rest of rucio.cfg is the CLI's */
	if (!strcmp(section, "ruciofs") && !strcmp(key, "token_issuers"))
		key = "token_issuer";
	if (!strcmp(section, "ruciofs") && !strcmp(key, "token_audiences"))
		key = "token_audience";
	if ((strcmp(section, "client") && strcmp(section, "ruciofs")) ||
	    !find_opt(key, &idx))
		return 0;
	if (c->conf->cli_mask & (1ull << idx))
		return 0; /* -o wins over the file */
	return set_value(c->conf, &opts[idx], value);
}

/* Plain read(2): stdio would leave the password in a buffer it frees. */
static int read_small_file(const char *path, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	ssize_t got;
	char *buf;

	if (fd < 0)
		return -errno;
	buf = malloc(MAX_CONFIG_FILE + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (n <= MAX_CONFIG_FILE &&
	       (got = read(fd, buf + n, MAX_CONFIG_FILE + 1 - n)) > 0)
		n += (size_t)got;
	close(fd);
	if (n > MAX_CONFIG_FILE) {
		rfs_wipe(buf, n);
		free(buf);
		return -EFBIG;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/*
 * The Rucio client's search order, with the system's own file before the
 * client's system-wide one: a node's mount is set up in /etc/ruciofs,
 * whatever Rucio client the node also has.
 */
static int find_config(const struct rfs_conf *conf, char *path, size_t len)
{
	const char *env = getenv("RUCIO_CONFIG");
	const char *home = getenv("RUCIO_HOME");

	if (conf->rucio_config) {
		snprintf(path, len, "%s", conf->rucio_config);
		return 0;
	}
	if (env && *env) {
		snprintf(path, len, "%s", env);
		return 0;
	}
	if (home && *home) {
		snprintf(path, len, "%s/etc/rucio.cfg", home);
		if (access(path, F_OK) == 0)
			return 0;
	}
	snprintf(path, len, "%s", RFS_SYSTEM_CONFIG);
	if (access(path, F_OK) == 0)
		return 0;
	snprintf(path, len, "/opt/rucio/etc/rucio.cfg");
	return access(path, F_OK) == 0 ? 0 : -ENOENT;
}

/*
 * Values of ours held only in the file are pre-filled before the file is
 * read, so a -o value wins; the file wins over these environment values
 * only where the Rucio client lets it.
 */
static int apply_env(struct rfs_conf *conf)
{
	const char *acct = getenv("RUCIO_ACCOUNT");
	const char *type = getenv("RUCIO_AUTH_TYPE");
	size_t idx;
	int rc = 0;

	if (acct && *acct && find_opt("account", &idx) &&
	    !(conf->cli_mask & (1ull << idx))) {
		rc = rfs_conf_set(conf, "account", acct, false);
	}
	if (!rc && type && *type && find_opt("auth_type", &idx) &&
	    !(conf->cli_mask & (1ull << idx))) {
		rc = rfs_conf_set(conf, "auth_type", type, false);
	}
	return rc;
}

int rfs_conf_load_file(struct rfs_conf *conf, char *err, size_t errlen)
{
	char path[4096];
	struct ini_ctx ctx = { conf };
	char *text = NULL;
	size_t len = 0;
	int rc, line = 0;

	rc = apply_env(conf);
	if (rc)
		return rc;
	rc = find_config(conf, path, sizeof(path));
	if (rc == -ENOENT)
		return 0; /* everything may come from -o */
	rc = read_small_file(path, &text, &len);
	if (rc) {
		snprintf(err, errlen, "cannot read config '%s': %s", path,
			 strerror(-rc));
		return rc;
	}
	rc = rfs_ini_parse(text, len, ini_key, &ctx, &line);
	rfs_wipe(text, len); /* it holds the password */
	free(text);
	if (rc) {
		snprintf(err, errlen, "config '%s': bad line %d", path, line);
		return rc;
	}
	conf->config_path = strdup(path);
	return conf->config_path ? 0 : -ENOMEM;
}

static int check_url(const char *what, char *url, char *err, size_t errlen)
{
	char shown[512];
	size_t n;

	if (!url || !*url) {
		snprintf(err, errlen,
			 "%s is not set (rucio.cfg [client] or -o)", what);
		return -EINVAL;
	}
	if (strncmp(url, "https://", 8) && strncmp(url, "http://", 7)) {
		rfs_url_for_log(shown, sizeof(shown), url);
		snprintf(err, errlen, "%s '%s' is not an http(s) URL", what,
			 shown);
		return -EINVAL;
	}
	n = strlen(url);
	while (n > 8 && url[n - 1] == '/')
		url[--n] = '\0';
	return 0;
}

static int check_auth(struct rfs_conf *conf, char *err, size_t errlen)
{
	const char *t =
		conf->auth_type_name ? conf->auth_type_name : "userpass";

	if (conf->token_file || !strcasecmp(t, "oidc") ||
	    !strcasecmp(t, "token")) {
		conf->auth_type = RFS_AUTH_TOKEN;
		return 0;
	}
	if (strcasecmp(t, "userpass")) {
		snprintf(err, errlen,
			 "auth_type '%s' is not supported (use userpass or "
			 "oidc)",
			 t);
		return -EINVAL;
	}
	conf->auth_type = RFS_AUTH_USERPASS;
	if (!conf->username || !*conf->username || !conf->password) {
		snprintf(err, errlen,
			 "auth_type userpass needs username and password");
		return -EINVAL;
	}
	return 0;
}

/* The default cache: system-wide for root, per user otherwise. */
static int default_cache_dir(struct rfs_conf *conf)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char path[4096];

	if (geteuid() == 0)
		snprintf(path, sizeof(path), "/var/cache/ruciofs");
	else if (xdg && *xdg == '/')
		snprintf(path, sizeof(path), "%s/ruciofs", xdg);
	else if (home && *home == '/')
		snprintf(path, sizeof(path), "%s/.cache/ruciofs", home);
	else
		return -ENOENT;
	conf->cache_dir = strdup(path);
	return conf->cache_dir ? 0 : -ENOMEM;
}

static int check_cache(struct rfs_conf *conf, char *err, size_t errlen)
{
	if (!conf->cache)
		return 0;
	if (conf->block_size < 4096 || conf->block_size > (64u << 20) ||
	    (conf->block_size & (conf->block_size - 1))) {
		snprintf(err, errlen,
			 "block_size must be a power of two from 4K to 64M");
		return -EINVAL;
	}
	if (conf->cache_size < 4 * conf->block_size) {
		snprintf(err, errlen, "cache_size must hold 4 blocks at least");
		return -EINVAL;
	}
	if (!conf->cache_dir && default_cache_dir(conf)) {
		snprintf(err, errlen, "no cache_dir given and no $HOME");
		return -EINVAL;
	}
	return 0;
}

static int check_verify(struct rfs_conf *conf, char *err, size_t errlen)
{
	const char *v = conf->verify ? conf->verify : "complete";

	if (strcasecmp(v, "complete") && strcasecmp(v, "always")) {
		snprintf(err, errlen, "verify must be complete or always");
		return -EINVAL;
	}
	conf->verify_always = !strcasecmp(v, "always");
	if (conf->verify_always && !conf->cache) {
		snprintf(err, errlen,
			 "verify=always needs the cache (it holds a file "
			 "whole while it is checked)");
		return -EINVAL;
	}
	if (conf->read_timeout < 1 || conf->read_timeout > 86400) {
		snprintf(err, errlen, "read_timeout must be in [1s, 1d]");
		return -EINVAL;
	}
	return 0;
}

/*
 * The log level, and the metrics file: written by the daemon after it
 * left the working directory (so absolute), by rename from PATH.tmp in
 * the same directory, which must take it.
 */
static int check_observe(struct rfs_conf *conf, char *err, size_t errlen)
{
	char dir[4096];
	const char *slash;

	conf->log_max =
		conf->log_level ? rfs_log_level_of(conf->log_level) : LOG_INFO;
	if (conf->log_max < 0) {
		snprintf(err, errlen,
			 "log_level must be error, warning, info or debug");
		return -EINVAL;
	}
	if (conf->debug)
		conf->log_max = LOG_DEBUG;
	if (conf->metrics_interval < 1 || conf->metrics_interval > 86400) {
		snprintf(err, errlen, "metrics_interval must be in [1s, 1d]");
		return -EINVAL;
	}
	if (!conf->metrics)
		return 0;
	slash = strrchr(conf->metrics, '/');
	if (conf->metrics[0] != '/' || !slash[1] ||
	    strlen(conf->metrics) + 5 > sizeof(dir)) {
		snprintf(err, errlen,
			 "metrics must be the absolute path of a file");
		return -EINVAL;
	}
	snprintf(dir, sizeof(dir), "%.*s",
		 slash == conf->metrics ? 1 : (int)(slash - conf->metrics),
		 conf->metrics);
	if (access(dir, W_OK | X_OK)) {
		snprintf(err, errlen, "metrics: directory '%s': %s", dir,
			 strerror(errno));
		return -EINVAL;
	}
	return 0;
}

/* Issuers are compared exactly and their keys fetched over HTTPS. */
static int check_issuers(const struct rfs_conf *conf, char *err, size_t errlen)
{
	for (size_t i = 0; i < conf->token_issuers.n; i++) {
		const char *iss = conf->token_issuers.v[i];

		if (strncmp(iss, "https://", 8) || strlen(iss) > 400) {
			snprintf(err, errlen,
				 "token_issuer '%.200s' is not an https:// URL "
				 "(of at most 400 bytes)",
				 iss);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * Who reads: a mount by root shared with allow_other runs per caller
 * (each caller's own token), unless identity=mount; any other mount is
 * its owner's alone.
 */
static int check_identity(struct rfs_conf *conf, char *err, size_t errlen)
{
	const char *id = conf->identity;
	const char *anon = conf->anonymous ? conf->anonymous : "none";

	if (id && strcmp(id, "caller") && strcmp(id, "mount")) {
		snprintf(err, errlen, "identity must be caller or mount");
		return -EINVAL;
	}
	if (strcmp(anon, "none") && strcmp(anon, "names")) {
		snprintf(err, errlen, "anonymous must be none or names");
		return -EINVAL;
	}
	conf->anonymous_names = !strcmp(anon, "names");
	conf->per_caller = id ? !strcmp(id, "caller")
			      : conf->allow_other && geteuid() == 0;
	if (conf->per_caller && !conf->allow_other) {
		snprintf(err, errlen,
			 "identity=caller needs allow_other: without it the "
			 "mount is its owner's alone");
		return -EINVAL;
	}
	if (conf->per_caller && geteuid() != 0) {
		snprintf(err, errlen,
			 "identity=caller needs a mount by root (it reads "
			 "each caller's token file as that caller)");
		return -EINVAL;
	}
	if (conf->per_caller && !conf->token_issuers.n) {
		snprintf(err, errlen,
			 "allow_other shares this mount: give token_issuer=URL "
			 "so each caller reads with their own token, or "
			 "identity=mount to let every user read as this mount");
		return -EINVAL;
	}
	if (conf->authz_offline < 0 || conf->authz_offline > 30 * 86400) {
		snprintf(err, errlen, "authz_offline must be in [0, 30d]");
		return -EINVAL;
	}
	if (conf->idmap && access(conf->idmap, R_OK)) {
		snprintf(err, errlen, "idmap '%s': %s", conf->idmap,
			 strerror(errno));
		return -EINVAL;
	}
	return check_issuers(conf, err, errlen);
}

/* storage_hosts and deny_nets: the transport builds the same policy */
static int check_net(const struct rfs_conf *conf, char *err, size_t errlen)
{
	struct rfs_netpol p;
	int rc = rfs_netpol_init(&p, conf->storage_hosts.v, conf->deny_nets.v,
				 err, errlen);

	if (!rc)
		rfs_netpol_release(&p);
	return rc;
}

/* Absolute, because the daemon changes to / when it detaches. */
static int check_mountpoint(struct rfs_conf *conf, char *err, size_t errlen)
{
	char *abs;

	if (!conf->mountpoint) {
		snprintf(err, errlen, "no mountpoint given");
		return -EINVAL;
	}
	abs = realpath(conf->mountpoint, NULL);
	if (!abs) {
		snprintf(err, errlen, "mountpoint '%s': %s", conf->mountpoint,
			 strerror(errno));
		return -EINVAL;
	}
	free(conf->mountpoint);
	conf->mountpoint = abs;
	return 0;
}

int rfs_conf_validate(struct rfs_conf *conf, char *err, size_t errlen)
{
	int rc;

	rc = check_url("rucio_host", conf->rucio_host, err, errlen);
	if (rc)
		return rc;
	if (!conf->auth_host) {
		conf->auth_host = strdup(conf->rucio_host);
		if (!conf->auth_host)
			return -ENOMEM;
	}
	rc = check_url("auth_host", conf->auth_host, err, errlen);
	if (rc)
		return rc;
	rc = check_auth(conf, err, errlen);
	if (rc)
		return rc;
	if (conf->ca_cert && access(conf->ca_cert, R_OK)) {
		snprintf(err, errlen, "ca_cert '%s': %s", conf->ca_cert,
			 strerror(errno));
		return -EINVAL;
	}
	/* curl counts the low-speed window in whole seconds: 0 would turn
	 * the check off, and a limit past LONG_MAX wraps negative */
	if (conf->connect_timeout <= 0 || conf->io_timeout < 1 ||
	    conf->connect_timeout > 3600 || conf->io_timeout > 3600) {
		snprintf(err, errlen,
			 "connect_timeout must be in (0, 1h], io_timeout in "
			 "[1s, 1h]");
		return -EINVAL;
	}
	if (conf->low_speed_limit < 1 || conf->low_speed_limit > (1ull << 40)) {
		snprintf(err, errlen, "low_speed_limit must be 1 to 1T");
		return -EINVAL;
	}
	if (conf->min_rate > (1ull << 40)) {
		snprintf(err, errlen, "min_rate must be 0 to 1T");
		return -EINVAL;
	}
	if (conf->max_answer < 4096 || conf->max_answer > (4ull << 30)) {
		snprintf(err, errlen, "max_answer must be between 4K and 4G");
		return -EINVAL;
	}
	rc = check_cache(conf, err, errlen);
	if (!rc)
		rc = check_verify(conf, err, errlen);
	if (!rc)
		rc = check_net(conf, err, errlen);
	if (!rc)
		rc = check_identity(conf, err, errlen);
	if (!rc)
		rc = check_observe(conf, err, errlen);
	if (rc)
		return rc;
	/* --check says itself what is wrong with a mountpoint */
	if (conf->check &&
	    (!conf->mountpoint || access(conf->mountpoint, F_OK)))
		return 0;
	return check_mountpoint(conf, err, errlen);
}

void rfs_conf_usage(const char *progname)
{
	printf("usage: %s [-o opt,...] [-f] [-d] [-s] [SOURCE] MOUNTPOINT\n"
	       "       %s --check [-o opt,...] [MOUNTPOINT]\n"
	       "\n"
	       "Mounts a Rucio data lake read-only. Settings come from the "
	       "Rucio client's\n"
	       "rucio.cfg ($RUCIO_CONFIG, "
	       "$RUCIO_HOME/etc/rucio.cfg, " RFS_SYSTEM_CONFIG ",\n"
	       "/opt/rucio/etc/rucio.cfg); every key can be given with -o "
	       "instead. SOURCE is a\n"
	       "free label (fstab's first field), shown as the mount's "
	       "source.\n"
	       "\n"
	       "general:\n"
	       "    -h, --help             this text\n"
	       "    -V, --version          version\n"
	       "    -f                     stay in the foreground\n"
	       "    -d                     debug log, implies -f\n"
	       "    -s                     single-threaded FUSE loop\n"
	       "    --check                check the set-up, step by step, "
	       "and exit\n"
	       "\n"
	       "rucio.cfg [client] keys:\n"
	       "    -o rucio_host=URL -o auth_host=URL -o "
	       "auth_type=userpass|oidc\n"
	       "    -o account=NAME -o username=NAME -o password=SECRET\n"
	       "    -o ca_cert=FILE|DIR -o vo=NAME\n"
	       "\n"
	       "ruciofs options:\n"
	       "    -o rucio_config=FILE   read this rucio.cfg\n"
	       "    -o token_file=FILE     bearer token file (default: WLCG "
	       "bearer token discovery)\n"
	       "    -o schemes=LIST        replica schemes, ':'-separated "
	       "(every one this build\n"
	       "                           reads: https:davs:http:dav)\n"
	       "    -o storage_hosts=LIST  connect for bytes only to these "
	       "hosts, "
	       "';'-separated:\n"
	       "                           names, *.example.org, address "
	       "ranges (default: any)\n"
	       "    -o deny_nets=LIST      never connect to these address "
	       "ranges, ';'-separated\n"
	       "                           (link-local ones never: "
	       "169.254.0.0/16, fe80::/10)\n"
	       "    -o rse_expression=E    read only replicas on these RSEs "
	       "(e.g. a site's own)\n"
	       "    -o replica_sort=ALG    ask the catalogue to sort replicas "
	       "(geoip, random, ...)\n"
	       "    -o connect_timeout=T   network connect timeout (10s)\n"
	       "    -o io_timeout=T        fail a transfer slower than "
	       "low_speed_limit for T (30s)\n"
	       "    -o low_speed_limit=N   bytes/s (1K)\n"
	       "    -o min_rate=N          bytes/s: a replica that streams "
	       "slower goes last\n"
	       "                           for a minute (256K; 0: never)\n"
	       "    -o dir_ttl=T           dataset/container listing lifetime "
	       "(60s)\n"
	       "    -o file_ttl=T          kernel attribute lifetime of files "
	       "(1d)\n"
	       "    -o replica_ttl=T       replica list lifetime (10m)\n"
	       "    -o negative_ttl=T      lifetime of 'no such name' (10s)\n"
	       "    -o offline_retry=T     after the catalogue could not be "
	       "reached,\n"
	       "                           serve from the cache this long "
	       "(5s)\n"
	       "    -o max_answer=SIZE     largest catalogue answer accepted "
	       "(64M)\n"
	       "    -o max_threads=N       FUSE worker threads (10)\n"
	       "    -o allow_other         let other users see the mount\n"
	       "    -o cache_dir=DIR       block cache (/var/cache/ruciofs for "
	       "root,\n"
	       "                           ~/.cache/ruciofs otherwise)\n"
	       "    -o cache_size=SIZE     cache quota (10G)\n"
	       "    -o block_size=SIZE     cache block size (1M)\n"
	       "    -o cache=no            no cache: every read goes to the "
	       "network\n"
	       "    -o readahead=no        no parallel read-ahead for "
	       "sequential reads\n"
	       "    -o vector_reads=no     sparse reads of a file one request "
	       "each, never\n"
	       "                           grouped into multi-range ones\n"
	       "    -o passthrough=no      whole cached files too are read "
	       "through the\n"
	       "                           daemon, every page checked "
	       "(Linux 6.9+)\n"
	       "    -o verify=always       fetch and check a file whole "
	       "before its first\n"
	       "                           byte (default complete: the read "
	       "that ends a\n"
	       "                           file waits for its checksums)\n"
	       "    -o read_timeout=T      a read gets EIO past this, all "
	       "replicas tried (60s)\n"
	       "    -o log_level=L         error, warning, info (default) or "
	       "debug (-d: debug)\n"
	       "    -o metrics=FILE        write Prometheus metrics there "
	       "(node-exporter's\n"
	       "                           textfile collector: FILE.prom); "
	       "default: none\n"
	       "    -o metrics_interval=T  rewrite the metrics file this often "
	       "(10s)\n"
	       "\n"
	       "shared mounts (root, allow_other: each caller reads with their "
	       "own token):\n"
	       "    -o identity=mount      every caller reads as this mount "
	       "instead\n"
	       "    -o token_issuer=URLS   accepted token issuers, "
	       "blank-separated (needed)\n"
	       "    -o token_audience=A    accepted audiences beyond WLCG's "
	       "\"any\"\n"
	       "    -o token_env=yes       also BEARER_TOKEN(_FILE) from the "
	       "caller's environment\n"
	       "    -o authz_offline=T     offline, an online \"may read\" "
	       "stays valid this long (1d)\n"
	       "    -o idmap=FILE          owners shown: IAM groups, subjects, "
	       "accounts, scopes\n"
	       "    -o anonymous=names     callers without a token see names "
	       "(default: nothing)\n"
	       "\n"
	       "ruciofs --check:\n"
	       "    -o check_did=SCOPE:NAME  the file (or a collection's "
	       "first) "
	       "whose replicas\n"
	       "                           are read (default: the first "
	       "found)\n"
	       "\n"
	       "Other -o options are passed to FUSE (see mount.fuse3(8)).\n"
	       "Every option is described in ruciofs(8).\n",
	       progname, progname);
}

static int ini_error(int *errline, int line)
{
	*errline = line;
	return -EINVAL;
}

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s += 'a' - 'A';
}

struct ini_state {
	char section[128];
	char key[128];
	int keyline; /* where the pending key started, for errors */
	struct rfs_buf value;
	bool have_key;
};

/* Hands the pending key to @cb, then wipes the value: it may be a password */
static int ini_flush(struct ini_state *st, rfs_ini_cb cb, void *ctx,
		     int *errline)
{
	int rc = 0;

	if (st->have_key)
		rc = cb(st->section, st->key,
			st->value.data ? rfs_strip(st->value.data) : "", ctx);
	if (rc)
		*errline = st->keyline;
	st->have_key = false;
	if (st->value.data)
		rfs_wipe(st->value.data, st->value.alloc);
	rfs_buf_reset(&st->value);
	return rc;
}

static int ini_line(struct ini_state *st, char *line, int lineno, rfs_ini_cb cb,
		    void *ctx, int *errline)
{
	char *s = rfs_strip(line), *sep, *end;
	bool indented = line[0] == ' ' || line[0] == '\t';
	int rc;

	if (*s == '\0' || *s == '#' || *s == ';')
		return 0;
	if (indented && st->have_key) /* continuation of a value */
		return rfs_buf_printf(&st->value, "\n%s", s);
	rc = ini_flush(st, cb, ctx, errline);
	if (rc)
		return rc;
	if (*s == '[') {
		end = strchr(s, ']');
		if (!end || end[1] ||
		    (size_t)(end - s - 1) >= sizeof(st->section))
			return ini_error(errline, lineno);
		memcpy(st->section, s + 1, end - s - 1);
		st->section[end - s - 1] = '\0';
		return 0;
	}
	sep = strpbrk(s, "=:");
	if (!sep || sep == s || !st->section[0])
		return ini_error(errline, lineno);
	*sep = '\0';
	s = rfs_strip(s);
	if (strlen(s) >= sizeof(st->key))
		return ini_error(errline, lineno);
	memcpy(st->key, s, strlen(s) + 1);
	lower(st->key);
	st->keyline = lineno;
	st->have_key = true;
	return rfs_buf_addstr(&st->value, sep + 1);
}

int rfs_ini_parse(const char *text, size_t len, rfs_ini_cb cb, void *ctx,
		  int *errline)
{
	struct ini_state st = { .section = "", .have_key = false };
	int rc = 0, lineno = 0;
	size_t pos = 0;

	rfs_buf_init(&st.value, 64 * 1024);
	while (pos < len && !rc) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		char *line;

		lineno++;
		if (memchr(text + pos, '\0', n)) {
			rc = ini_error(errline, lineno);
			break;
		}
		line = strndup(text + pos, n);
		if (!line) {
			rc = -ENOMEM;
			break;
		}
		rc = ini_line(&st, line, lineno, cb, ctx, errline);
		rfs_wipe(line, n);
		free(line);
		pos += n + 1;
	}
	if (!rc)
		rc = ini_flush(&st, cb, ctx, errline);
	if (st.value.data)
		rfs_wipe(st.value.data, st.value.alloc);
	rfs_buf_release(&st.value);
	if (rc == -EFBIG)
		*errline = lineno;
	return rc;
}
