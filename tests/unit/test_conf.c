/*
 * Unit tests for src/conf/conf.c: the rucio.cfg reader, the command line,
 * where each setting comes from (-o over environment over file), and the
 * final validation.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <syslog.h>

#include "conf/conf.h"
#include "unit.h"

/*
 * free() is wrapped for this program (-Wl,--wrap=free, see Makefile.am) so
 * that a test can see what a block still holds when it is given back: a
 * password must be wiped before its memory is.
 */
void __real_free(void *p);
void __wrap_free(void *p);

static const char *secret; /* looked for in every freed block */
static int secret_freed;   /* blocks freed while still holding it */

void __wrap_free(void *p)
{
	if (p && secret) {
		size_t n = malloc_usable_size(p), k = strlen(secret);

		if (n >= k && memmem(p, n, secret, k))
			secret_freed++;
	}
	__real_free(p);
}

/*
 * access() and open() are wrapped too (-Wl,--wrap=access,--wrap=open64):
 * the system-wide files of the search order are looked for under
 * @sys_root instead while it is set, so the order is tested without
 * writing to /etc or /opt.
 */
int __real_access(const char *path, int mode);
int __wrap_access(const char *path, int mode);
int __real_open64(const char *path, int flags, ...);
int __wrap_open64(const char *path, int flags, ...);

#define SYSTEM_CFG RFS_SYSCONFDIR "/ruciofs/rucio.cfg"
#define OPT_CFG "/opt/rucio/etc/rucio.cfg"
static const char *sys_root;
static char sys_path[4096];

static const char *redirected(const char *path)
{
	if (!sys_root || (strcmp(path, SYSTEM_CFG) && strcmp(path, OPT_CFG)))
		return path;
	snprintf(sys_path, sizeof(sys_path), "%s%s", sys_root, path);
	return sys_path;
}

int __wrap_access(const char *path, int mode)
{
	return __real_access(redirected(path), mode);
}

int __wrap_open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	return __real_open64(redirected(path), flags, mode);
}

/* ---- rfs_ini_parse ---- */

/* Every callback as "section|key|value", in order. */
struct ini_rec {
	char v[32][256];
	int n;
	int stop_at; /* return -E2BIG from this call on (0: never) */
};

static int ini_collect(const char *section, const char *key, const char *value,
		       void *ctx)
{
	struct ini_rec *r = ctx;

	if (r->n < 32)
		snprintf(r->v[r->n], sizeof(r->v[0]), "%s|%s|%s", section, key,
			 value);
	r->n++;
	if (r->stop_at && r->n >= r->stop_at)
		return -E2BIG;
	return 0;
}

static int ini(const char *text, struct ini_rec *r, int *line)
{
	memset(r, 0, sizeof(*r));
	*line = -1;
	return rfs_ini_parse(text, strlen(text), ini_collect, r, line);
}

static void test_ini_basic(void)
{
	struct ini_rec r;
	int line;

	CHECK_INT(ini("# rucio.cfg of a test lake\n"
		      "; a comment too\n"
		      "[common]\n"
		      "logdir = /var/log/rucio\n"
		      "\n"
		      "[client]\n"
		      "rucio_host = https://rucio.example.org:443\n"
		      "Auth_Host: https://rucio-auth.example.org\n"
		      "auth_type=userpass\n"
		      "request_retries = 3\n"
		      "   \n"
		      "[policy]\n"
		      "permission = generic\n",
		      &r, &line),
		  0);
	CHECK_INT(r.n, 6);
	CHECK_STR(r.v[0], "common|logdir|/var/log/rucio");
	CHECK_STR(r.v[1], "client|rucio_host|https://rucio.example.org:443");
	/* keys are lower-cased, values and section names are not */
	CHECK_STR(r.v[2], "client|auth_host|https://rucio-auth.example.org");
	CHECK_STR(r.v[3], "client|auth_type|userpass");
	CHECK_STR(r.v[4], "client|request_retries|3");
	CHECK_STR(r.v[5], "policy|permission|generic");

	/* only the first '=' or ':' separates */
	CHECK_INT(
		ini("[Client]\nURL = https://h:443/x?a=b\nk:v=w\n", &r, &line),
		0);
	CHECK_INT(r.n, 2);
	CHECK_STR(r.v[0], "Client|url|https://h:443/x?a=b");
	CHECK_STR(r.v[1], "Client|k|v=w");

	/* CRLF files, a last line without '\n', empty values */
	CHECK_INT(ini("[client]\r\nvo = def\r\nempty =\r\nlast=x", &r, &line),
		  0);
	CHECK_INT(r.n, 3);
	CHECK_STR(r.v[0], "client|vo|def");
	CHECK_STR(r.v[1], "client|empty|");
	CHECK_STR(r.v[2], "client|last|x");

	CHECK_INT(ini("", &r, &line), 0);
	CHECK_INT(r.n, 0);
	CHECK_INT(ini("\n\n# only comments\n", &r, &line), 0);
	CHECK_INT(r.n, 0);
	CHECK_INT(ini("[empty]\n", &r, &line), 0);
	CHECK_INT(r.n, 0);
}

static void test_ini_continuation(void)
{
	struct ini_rec r;
	int line;

	CHECK_INT(ini("[client]\n"
		      "key = first\n"
		      "  second\n"
		      "\tthird\n"
		      "other = x\n",
		      &r, &line),
		  0);
	CHECK_INT(r.n, 2);
	CHECK_STR(r.v[0], "client|key|first\nsecond\nthird");
	CHECK_STR(r.v[1], "client|other|x");

	/* a value may start on the next line; comment lines are skipped */
	CHECK_INT(ini("[s]\nk =\n  a\n  # not part of it\n  b\n", &r, &line),
		  0);
	CHECK_INT(r.n, 1);
	CHECK_STR(r.v[0], "s|k|a\nb");

	/* an indented line with no key before it is a line of its own */
	CHECK_INT(ini("[s]\n  k = v\n", &r, &line), 0);
	CHECK_INT(r.n, 1);
	CHECK_STR(r.v[0], "s|k|v");
}

static void test_ini_errors(void)
{
	struct ini_rec r;
	char big[70000];
	int line;

	/* a key before any section */
	CHECK_INT(ini("rucio_host = x\n", &r, &line), -EINVAL);
	CHECK_INT(line, 1);
	CHECK_INT(ini("# c\n\n[client]\nrucio_host = x\nnovalue\n", &r, &line),
		  -EINVAL);
	CHECK_INT(line, 5);
	CHECK_INT(ini("[client\n", &r, &line), -EINVAL);
	CHECK_INT(line, 1);
	CHECK_INT(ini("[a]\n[client] trailing\n", &r, &line), -EINVAL);
	CHECK_INT(line, 2);
	CHECK_INT(ini("[a]\nk=v\n= v\n", &r, &line), -EINVAL);
	CHECK_INT(line, 3);
	CHECK_INT(ini("[a]\n: v\n", &r, &line), -EINVAL);
	CHECK_INT(line, 2);

	/* a NUL byte is not text */
	memset(&r, 0, sizeof(r));
	line = -1;
	CHECK_INT(rfs_ini_parse("[client]\nvo = a\0b\n", 17, ini_collect, &r,
				&line),
		  -EINVAL);
	CHECK_INT(line, 2);
	CHECK_INT(r.n, 0);
	/* ... nor at the very start of a line */
	line = -1;
	CHECK_INT(rfs_ini_parse("[a]\n\0", 5, ini_collect, &r, &line), -EINVAL);
	CHECK_INT(line, 2);

	/* names that do not fit the parser's fixed buffers */
	memcpy(big, "[a]\n", 4);
	memset(big + 4, 'k', 200);
	memcpy(big + 204, " = v\n", 6);
	CHECK_INT(ini(big, &r, &line), -EINVAL);
	CHECK_INT(line, 2);
	CHECK_INT(r.n, 0);
	memset(big, 's', 300);
	big[0] = '[';
	memcpy(big + 200, "]\nk=v\n", 7);
	CHECK_INT(ini(big, &r, &line), -EINVAL);
	CHECK_INT(line, 1);

	/* a value past the parser's cap is an error, not a truncated value */
	memcpy(big, "[a]\nk = ", 8);
	memset(big + 8, 'v', sizeof(big) - 9);
	big[sizeof(big) - 1] = '\0';
	CHECK(ini(big, &r, &line) < 0);
	CHECK_INT(r.n, 0);

	/* the callback can stop the parse with its own error */
	memset(&r, 0, sizeof(r));
	r.stop_at = 2;
	CHECK_INT(rfs_ini_parse("[a]\nx=1\ny=2\nz=3\n", 16, ini_collect, &r,
				&line),
		  -E2BIG);
	CHECK_INT(r.n, 2);
}

/*
 * A NUL in a line longer than what precedes the NUL: found by fuzz_ini.
 * The parse must fail cleanly at line 2. A large tail makes an overrun
 * reach unmapped memory, so it crashes the child instead of passing
 * silently (the wipe runs in libcrypto, which ASan does not instrument).
 */
static void ini_nul_child(void)
{
	size_t n = 64u << 20;
	char *text = malloc(n);
	struct ini_rec *r = calloc(1, sizeof(*r));
	int line = -1, rc;

	if (!text || !r)
		_exit(2);
	memset(text, 'x', n);
	memcpy(text, "[client]\nvo = a", 15);
	text[15] = '\0';
	rc = rfs_ini_parse(text, n, ini_collect, r, &line);
	_exit(rc == -EINVAL && line == 2 && r->n == 0 ? 0 : 1);
}

static void test_ini_nul_overrun(void)
{
	CHECK(unit_in_child(ini_nul_child));
}

/* ---- rfs_conf_parse_args ---- */

struct cli {
	struct rfs_conf conf;
	struct rfs_strv fuse;
	enum rfs_conf_action action;
	char err[256];
	int rc;
};

static void cli_release(struct cli *c)
{
	rfs_conf_release(&c->conf);
	rfs_strv_release(&c->fuse);
}

/* Parses "ruciofs" plus the NULL-terminated arguments into a fresh @c. */
static int cli(struct cli *c, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;
	const char *a;

	memset(c, 0, sizeof(*c));
	rfs_conf_init(&c->conf);
	rfs_strv_init(&c->fuse);
	argv[argc++] = "ruciofs";
	va_start(ap, c);
	while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	c->rc = rfs_conf_parse_args(&c->conf, argc, argv, &c->fuse, &c->action,
				    c->err, sizeof(c->err));
	return c->rc;
}

static void test_args_options(void)
{
	struct cli c;

	CHECK_INT(cli(&c, "-o",
		      "rucio_host=https://rucio.example.org,account=jdoe",
		      "/mnt/lake", NULL),
		  0);
	CHECK_INT(c.action, RFS_CONF_RUN);
	CHECK_STR(c.conf.rucio_host, "https://rucio.example.org");
	CHECK_STR(c.conf.account, "jdoe");
	CHECK_STR(c.conf.mountpoint, "/mnt/lake");
	CHECK_INT(c.fuse.n, 0);
	CHECK(!c.conf.foreground && !c.conf.debug && !c.conf.singlethread);
	cli_release(&c);

	/* "-oLIST", several -o, the later one winning */
	CHECK_INT(cli(&c, "-ovo=atlas", "-o", "account=a", "-o", "account=b",
		      "/m", NULL),
		  0);
	CHECK_STR(c.conf.vo, "atlas");
	CHECK_STR(c.conf.account, "b");
	cli_release(&c);

	/* a backslash escapes a comma (and itself) inside a value */
	CHECK_INT(cli(&c, "-o", "password=a\\,b\\\\c,username=u", "/m", NULL),
		  0);
	CHECK_STR(c.conf.password, "a,b\\c");
	CHECK_STR(c.conf.username, "u");
	cli_release(&c);

	/* typed options */
	CHECK_INT(cli(&c, "-o",
		      "connect_timeout=5s,io_timeout=2m,dir_ttl=0.5,"
		      "max_answer=16M,low_speed_limit=10K,max_threads=32,"
		      "allow_other,schemes=davs:https,replica_sort=geoip",
		      "/m", NULL),
		  0);
	CHECK(c.conf.connect_timeout == 5);
	CHECK(c.conf.io_timeout == 120);
	CHECK(c.conf.dir_ttl == 0.5);
	CHECK_U64(c.conf.max_answer, 16ULL << 20);
	CHECK_U64(c.conf.low_speed_limit, 10240);
	CHECK_INT(c.conf.max_threads, 32);
	CHECK(c.conf.allow_other);
	CHECK_INT(c.conf.schemes.n, 2);
	CHECK_STR(c.conf.schemes.v[0], "davs");
	CHECK_STR(c.conf.schemes.v[1], "https");
	CHECK(c.conf.schemes.v[2] == NULL);
	CHECK_STR(c.conf.replica_sort, "geoip");
	CHECK_INT(c.fuse.n, 0);
	cli_release(&c);

	/* "allow_other=no" really turns it off */
	CHECK_INT(cli(&c, "-o", "allow_other,allow_other=no", "/m", NULL), 0);
	CHECK(!c.conf.allow_other);
	cli_release(&c);

	/* empty items are ignored */
	CHECK_INT(cli(&c, "-o", ",,vo=x,,", "/m", NULL), 0);
	CHECK_STR(c.conf.vo, "x");
	CHECK_INT(c.fuse.n, 0);
	cli_release(&c);
}

static void test_args_fuse_and_noise(void)
{
	struct cli c;

	/* what ruciofs does not know goes to FUSE, in order, as written */
	CHECK_INT(cli(&c, "-o", "allow_root,max_read=131072,vo=def,ro", "-o",
		      "fsname=ruciofs", "/m", NULL),
		  0);
	CHECK_INT(c.fuse.n, 4);
	if (c.fuse.n == 4) {
		CHECK_STR(c.fuse.v[0], "allow_root");
		CHECK_STR(c.fuse.v[1], "max_read=131072");
		CHECK_STR(c.fuse.v[2], "ro");
		CHECK_STR(c.fuse.v[3], "fsname=ruciofs");
		CHECK(c.fuse.v[4] == NULL);
	}
	CHECK_STR(c.conf.vo, "def");
	cli_release(&c);

	/* fstab and mount(8) noise reaches neither */
	CHECK_INT(cli(&c, "-o",
		      "_netdev,noauto,auto,user,users,nofail,defaults,rw,"
		      "x-systemd.automount,comment=systemd.foo,nouser,"
		      "x-systemd.mount-timeout=30,dev,suid",
		      "/m", NULL),
		  0);
	CHECK_INT(c.fuse.n, 0);
	cli_release(&c);

	/* an escaped comma inside a FUSE option survives too */
	CHECK_INT(cli(&c, "-o", "subtype=a\\,b", "/m", NULL), 0);
	CHECK_INT(c.fuse.n, 1);
	if (c.fuse.n == 1)
		CHECK_STR(c.fuse.v[0], "subtype=a,b");
	cli_release(&c);
}

static void test_args_flags(void)
{
	struct cli c;

	CHECK_INT(cli(&c, "-f", "/m", NULL), 0);
	CHECK(c.conf.foreground && !c.conf.debug && !c.conf.singlethread);
	cli_release(&c);
	CHECK_INT(cli(&c, "/m", "-d", NULL), 0);
	CHECK(c.conf.foreground && c.conf.debug);
	cli_release(&c);
	CHECK_INT(cli(&c, "-s", "/m", NULL), 0);
	CHECK(c.conf.singlethread && !c.conf.foreground);
	CHECK_STR(c.conf.mountpoint, "/m");
	cli_release(&c);

	/* help and version win over anything around them */
	CHECK_INT(cli(&c, "--help", NULL), 0);
	CHECK_INT(c.action, RFS_CONF_HELP);
	cli_release(&c);
	CHECK_INT(cli(&c, "/m", "-h", "--bogus", NULL), 0);
	CHECK_INT(c.action, RFS_CONF_HELP);
	cli_release(&c);
	CHECK_INT(cli(&c, "--version", NULL), 0);
	CHECK_INT(c.action, RFS_CONF_VERSION);
	cli_release(&c);
	CHECK_INT(cli(&c, "-V", "/m", NULL), 0);
	CHECK_INT(c.action, RFS_CONF_VERSION);
	cli_release(&c);

	/* mount.fuse3's form for an fstab line: "SOURCE MOUNTPOINT -o ..." */
	CHECK_INT(cli(&c, "lake", "/m", "-o", "ro,account=a", NULL), 0);
	CHECK_STR(c.conf.source, "lake");
	CHECK_STR(c.conf.mountpoint, "/m");
	CHECK_STR(c.conf.account, "a");
	cli_release(&c);
	CHECK_INT(cli(&c, "/m", NULL), 0);
	CHECK(c.conf.source == NULL);
	cli_release(&c);

	/* no mountpoint is fine here; validate complains later */
	CHECK_INT(cli(&c, NULL), 0);
	CHECK(c.conf.mountpoint == NULL);
	cli_release(&c);
}

static void test_args_errors(void)
{
	struct cli c;

	CHECK_INT(cli(&c, "src", "/m", "/n", NULL), -EINVAL);
	CHECK(strstr(c.err, "/n") != NULL);
	CHECK_STR(c.conf.mountpoint, "/m");
	cli_release(&c);
	CHECK_INT(cli(&c, "-x", "/m", NULL), -EINVAL);
	CHECK(strstr(c.err, "-x") != NULL);
	cli_release(&c);
	CHECK_INT(cli(&c, "/m", "-o", NULL), -EINVAL);
	CHECK(c.err[0] != '\0');
	cli_release(&c);

	/* bad values name the option, and never echo the value */
	CHECK_INT(cli(&c, "-o", "connect_timeout=soon", "/m", NULL), -EINVAL);
	CHECK(strstr(c.err, "connect_timeout") != NULL);
	CHECK(strstr(c.err, "soon") == NULL);
	cli_release(&c);
	CHECK_INT(cli(&c, "-o", "max_threads=0", NULL), -EINVAL);
	cli_release(&c);
	CHECK_INT(cli(&c, "-o", "max_threads=1025", NULL), -EINVAL);
	cli_release(&c);
	CHECK_INT(cli(&c, "-o", "max_answer=lots", NULL), -EINVAL);
	cli_release(&c);
	CHECK_INT(cli(&c, "-o", "allow_other=maybe", NULL), -EINVAL);
	cli_release(&c);
	CHECK_INT(cli(&c, "-o", "schemes=", NULL), -EINVAL);
	cli_release(&c);
	CHECK_INT(cli(&c, "-o", "schemes=::", NULL), -EINVAL);
	cli_release(&c);
}

static void test_conf_set(void)
{
	struct rfs_conf conf;

	rfs_conf_init(&conf);
	CHECK_INT(rfs_conf_set(&conf, "no_such_key", "x", false), -ENOENT);
	CHECK_INT(rfs_conf_set(&conf, "account", "cli", false), 0);
	/* the file does not override the command line ... */
	CHECK_INT(rfs_conf_set(&conf, "account", "file", true), 0);
	CHECK_STR(conf.account, "cli");
	/* ... but fills what it left out */
	CHECK_INT(rfs_conf_set(&conf, "vo", "file", true), 0);
	CHECK_STR(conf.vo, "file");
	CHECK_INT(rfs_conf_set(&conf, "vo", "cli", false), 0);
	CHECK_STR(conf.vo, "cli");
	CHECK_INT(rfs_conf_set(&conf, "vo", "file2", true), 0);
	CHECK_STR(conf.vo, "cli");
	/* list separators of both worlds */
	CHECK_INT(rfs_conf_set(&conf, "schemes", "root, davs,https", true), 0);
	CHECK_INT(conf.schemes.n, 3);
	CHECK_STR(conf.schemes.v[0], "root");
	CHECK_STR(conf.schemes.v[2], "https");
	/* defaults */
	CHECK(conf.connect_timeout > 0 && conf.io_timeout > 0);
	CHECK_INT(conf.max_threads, 10);
	CHECK_U64(conf.max_answer, 64ULL << 20);
	rfs_conf_release(&conf);
	/* release leaves nothing behind and can run twice */
	CHECK(conf.account == NULL && conf.vo == NULL);
	CHECK(conf.schemes.v == NULL && conf.schemes.n == 0);
	rfs_conf_release(&conf);
}

/* ---- rucio.cfg lookup and precedence ---- */

static char *tmpdir;
static char mnt[4096]; /* an existing directory to validate as mountpoint */

static void clear_env(void)
{
	unsetenv("RUCIO_CONFIG");
	unsetenv("RUCIO_HOME");
	unsetenv("RUCIO_ACCOUNT");
	unsetenv("RUCIO_AUTH_TYPE");
}

static const char cfg_text[] = "[common]\n"
			       "loglevel = DEBUG\n"
			       "\n"
			       "[client]\n"
			       "rucio_host = https://file-rucio.example.org\n"
			       "auth_host = https://file-auth.example.org\n"
			       "auth_type = userpass\n"
			       "username = fileuser\n"
			       "password = filepass\n"
			       "account = fileacct\n"
			       "ca_cert = /etc/grid-security/certificates\n"
			       "client_cert = ~/.globus/usercert.pem\n"
			       "request_retries = 3\n"
			       "dir_ttl = 2m\n"
			       "\n"
			       "[policy]\n"
			       "vo = notours\n";

static void test_load_precedence(void)
{
	struct cli c;
	char *cfg = unit_write(tmpdir, "rucio.cfg", cfg_text, 0600);

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	clear_env();
	setenv("RUCIO_CONFIG", cfg, 1);
	CHECK_INT(cli(&c, "-o", "account=cliacct,dir_ttl=5", "/m", NULL), 0);
	CHECK_INT(rfs_conf_load_file(&c.conf, c.err, sizeof(c.err)), 0);
	CHECK_STR(c.conf.config_path, cfg);
	CHECK_STR(c.conf.rucio_host, "https://file-rucio.example.org");
	CHECK_STR(c.conf.auth_host, "https://file-auth.example.org");
	CHECK_STR(c.conf.username, "fileuser");
	CHECK_STR(c.conf.password, "filepass");
	CHECK_STR(c.conf.ca_cert, "/etc/grid-security/certificates");
	/* -o beats the file */
	CHECK_STR(c.conf.account, "cliacct");
	CHECK(c.conf.dir_ttl == 5);
	/* keys outside [client] are the Rucio CLI's business */
	CHECK(c.conf.vo == NULL);
	cli_release(&c);

	/* without -o the file's values are used, typed */
	CHECK_INT(cli(&c, "/m", NULL), 0);
	CHECK_INT(rfs_conf_load_file(&c.conf, c.err, sizeof(c.err)), 0);
	CHECK_STR(c.conf.account, "fileacct");
	CHECK(c.conf.dir_ttl == 120);
	cli_release(&c);

	/* $RUCIO_ACCOUNT beats the file, -o beats $RUCIO_ACCOUNT */
	setenv("RUCIO_ACCOUNT", "envacct", 1);
	setenv("RUCIO_AUTH_TYPE", "oidc", 1);
	CHECK_INT(cli(&c, "/m", NULL), 0);
	CHECK_INT(rfs_conf_load_file(&c.conf, c.err, sizeof(c.err)), 0);
	CHECK_STR(c.conf.account, "envacct");
	CHECK_STR(c.conf.auth_type_name, "oidc");
	cli_release(&c);
	CHECK_INT(
		cli(&c, "-o", "account=cliacct,auth_type=userpass", "/m", NULL),
		0);
	CHECK_INT(rfs_conf_load_file(&c.conf, c.err, sizeof(c.err)), 0);
	CHECK_STR(c.conf.account, "cliacct");
	CHECK_STR(c.conf.auth_type_name, "userpass");
	cli_release(&c);
	clear_env();
	free(cfg);
}

static void test_load_lookup(void)
{
	struct cli c;
	char path[4096], *etc, *cfg, *other;

	snprintf(path, sizeof(path), "%s/home", tmpdir);
	CHECK_INT(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/home/etc", tmpdir);
	CHECK_INT(mkdir(path, 0700), 0);
	etc = strdup(path);
	cfg = unit_write(etc, "rucio.cfg",
			 "[client]\nrucio_host = https://home.example.org\n",
			 0600);
	other = unit_write(tmpdir, "other.cfg",
			   "[client]\nrucio_host = https://other.example.org\n",
			   0600);
	CHECK(cfg && other);
	if (!cfg || !other)
		goto out;

	/* $RUCIO_HOME/etc/rucio.cfg */
	clear_env();
	snprintf(path, sizeof(path), "%s/home", tmpdir);
	setenv("RUCIO_HOME", path, 1);
	CHECK_INT(cli(&c, "/m", NULL), 0);
	CHECK_INT(rfs_conf_load_file(&c.conf, c.err, sizeof(c.err)), 0);
	CHECK_STR(c.conf.rucio_host, "https://home.example.org");
	CHECK_STR(c.conf.config_path, cfg);
	cli_release(&c);

	/* $RUCIO_CONFIG beats $RUCIO_HOME */
	setenv("RUCIO_CONFIG", other, 1);
	CHECK_INT(cli(&c, "/m", NULL), 0);
	CHECK_INT(rfs_conf_load_file(&c.conf, c.err, sizeof(c.err)), 0);
	CHECK_STR(c.conf.rucio_host, "https://other.example.org");
	cli_release(&c);

	/* -o rucio_config beats both */
	snprintf(path, sizeof(path), "rucio_config=%s", cfg);
	CHECK_INT(cli(&c, "-o", path, "/m", NULL), 0);
	CHECK_INT(rfs_conf_load_file(&c.conf, c.err, sizeof(c.err)), 0);
	CHECK_STR(c.conf.rucio_host, "https://home.example.org");
	cli_release(&c);

	/* an explicit file that is missing is an error, naming it */
	snprintf(path, sizeof(path), "%s/missing.cfg", tmpdir);
	setenv("RUCIO_CONFIG", path, 1);
	CHECK_INT(cli(&c, "/m", NULL), 0);
	CHECK_INT(rfs_conf_load_file(&c.conf, c.err, sizeof(c.err)), -ENOENT);
	CHECK(strstr(c.err, "missing.cfg") != NULL);
	cli_release(&c);

	/* a RUCIO_HOME without the file is skipped, not an error */
	clear_env();
	setenv("RUCIO_HOME", tmpdir, 1);
	if (access("/opt/rucio/etc/rucio.cfg", F_OK) != 0) {
		CHECK_INT(cli(&c, "/m", NULL), 0);
		CHECK_INT(rfs_conf_load_file(&c.conf, c.err, sizeof(c.err)), 0);
		CHECK(c.conf.config_path == NULL);
		CHECK(c.conf.rucio_host == NULL);
		cli_release(&c);
	} else {
		UNIT_SKIP("/opt/rucio/etc/rucio.cfg exists here");
	}
	clear_env();
out:
	free(etc);
	free(cfg);
	free(other);
}

/* Writes @text as @path under @root, making its directories. */
static char *write_under(const char *root, const char *path, const char *text)
{
	char dir[4096], *slash;

	snprintf(dir, sizeof(dir), "%s%s", root, path);
	slash = strrchr(dir, '/');
	*slash = '\0';
	mkdir(root, 0700);
	for (char *p = dir + strlen(root) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(dir, 0700);
		*p = '/';
	}
	mkdir(dir, 0700);
	return unit_write(dir, slash + 1, text, 0600);
}

static const char *host_from(const char *path)
{
	struct cli c;
	static char host[256];

	host[0] = '\0';
	CHECK_INT(cli(&c, "/m", NULL), 0);
	CHECK_INT(rfs_conf_load_file(&c.conf, c.err, sizeof(c.err)), 0);
	if (path)
		CHECK_STR(c.conf.config_path, path);
	snprintf(host, sizeof(host), "%s",
		 c.conf.rucio_host ? c.conf.rucio_host : "(none)");
	cli_release(&c);
	return host;
}

/*
 * The system's file (/etc/ruciofs/rucio.cfg) comes after the user's
 * choices and before the Rucio client's system-wide one.
 */
static void test_load_system(void)
{
	char root[4096], home[4096], *sys, *opt, *user;

	snprintf(root, sizeof(root), "%s/sysroot", tmpdir);
	CHECK_INT(mkdir(root, 0700), 0);
	sys_root = root;
	clear_env();
	/* neither: no file, everything from -o */
	CHECK_STR(host_from(NULL), "(none)");
	opt = write_under(root, OPT_CFG,
			  "[client]\nrucio_host = https://opt.example.org\n");
	sys = write_under(root, SYSTEM_CFG,
			  "[client]\nrucio_host = https://sys.example.org\n");
	snprintf(home, sizeof(home), "%s/uhome", tmpdir);
	user = write_under(home, "/etc/rucio.cfg",
			   "[client]\nrucio_host = https://user.example.org\n");
	CHECK(opt && sys && user);
	if (!opt || !sys || !user)
		goto out;

	CHECK_STR(host_from(SYSTEM_CFG), "https://sys.example.org");
	setenv("RUCIO_HOME", home, 1);
	CHECK_STR(host_from(user), "https://user.example.org");
	unsetenv("RUCIO_HOME");
	setenv("RUCIO_CONFIG", user, 1);
	CHECK_STR(host_from(user), "https://user.example.org");
	clear_env();
	/* a RUCIO_HOME without a rucio.cfg falls through to the system's */
	setenv("RUCIO_HOME", tmpdir, 1);
	CHECK_STR(host_from(SYSTEM_CFG), "https://sys.example.org");
	clear_env();
	unlink(sys);
	CHECK_STR(host_from(OPT_CFG), "https://opt.example.org");
out:
	sys_root = NULL;
	free(sys);
	free(opt);
	free(user);
}

static void test_load_errors(void)
{
	struct cli c;
	char *bad = unit_write(tmpdir, "bad.cfg",
			       "[client]\nrucio_host = https://h\nnonsense\n",
			       0600);
	char *badval = unit_write(tmpdir, "badval.cfg",
				  "[client]\n"
				  "rucio_host = https://h\n"
				  "connect_timeout = soon\n"
				  "vo = def\n",
				  0600);

	CHECK(bad && badval);
	if (!bad || !badval)
		goto out;
	clear_env();
	setenv("RUCIO_CONFIG", bad, 1);
	CHECK_INT(cli(&c, "/m", NULL), 0);
	CHECK_INT(rfs_conf_load_file(&c.conf, c.err, sizeof(c.err)), -EINVAL);
	CHECK(strstr(c.err, "bad.cfg") != NULL);
	CHECK(strstr(c.err, "line 3") != NULL);
	cli_release(&c);

	/* a bad value is reported at its own line */
	setenv("RUCIO_CONFIG", badval, 1);
	CHECK_INT(cli(&c, "/m", NULL), 0);
	CHECK_INT(rfs_conf_load_file(&c.conf, c.err, sizeof(c.err)), -EINVAL);
	CHECK(strstr(c.err, "line 3") != NULL);
	cli_release(&c);
	clear_env();
out:
	free(bad);
	free(badval);
}

/* ---- rfs_conf_validate ---- */

/* Parses the arguments and validates; returns validate's result. */
static int valid(struct cli *c, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;
	const char *a;

	memset(c, 0, sizeof(*c));
	rfs_conf_init(&c->conf);
	rfs_strv_init(&c->fuse);
	argv[argc++] = "ruciofs";
	va_start(ap, c);
	while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	c->rc = rfs_conf_parse_args(&c->conf, argc, argv, &c->fuse, &c->action,
				    c->err, sizeof(c->err));
	if (c->rc)
		return 1000 + c->rc;
	return rfs_conf_validate(&c->conf, c->err, sizeof(c->err));
}

#define UP "username=u,password=p"

static void test_validate(void)
{
	struct cli c;

	CHECK_INT(valid(&c, "-o", "rucio_host=https://rucio.example.org///," UP,
			mnt, NULL),
		  0);
	/* trailing slashes go, auth_host defaults to rucio_host */
	CHECK_STR(c.conf.rucio_host, "https://rucio.example.org");
	CHECK_STR(c.conf.auth_host, "https://rucio.example.org");
	CHECK(c.conf.auth_host != c.conf.rucio_host);
	CHECK_INT(c.conf.auth_type, RFS_AUTH_USERPASS);
	/* no schemes given: the core asks for every one the build reads */
	CHECK_INT(c.conf.schemes.n, 0);
	cli_release(&c);

	CHECK_INT(valid(&c, "-o",
			"rucio_host=http://h:8080/,auth_host="
			"https://a/," UP ",schemes=davs:https",
			mnt, NULL),
		  0);
	CHECK_STR(c.conf.rucio_host, "http://h:8080");
	CHECK_STR(c.conf.auth_host, "https://a");
	CHECK_INT(c.conf.schemes.n, 2);
	CHECK_STR(c.conf.schemes.v[0], "davs");
	CHECK_STR(c.conf.schemes.v[1], "https");
	cli_release(&c);

	/* tokens: oidc (any case), "token", or a token file */
	CHECK_INT(valid(&c, "-o", "rucio_host=https://h,auth_type=oidc", mnt,
			NULL),
		  0);
	CHECK_INT(c.conf.auth_type, RFS_AUTH_TOKEN);
	cli_release(&c);
	CHECK_INT(valid(&c, "-o", "rucio_host=https://h,auth_type=OIDC", mnt,
			NULL),
		  0);
	CHECK_INT(c.conf.auth_type, RFS_AUTH_TOKEN);
	cli_release(&c);
	CHECK_INT(valid(&c, "-o", "rucio_host=https://h,token_file=/x/tok", mnt,
			NULL),
		  0);
	CHECK_INT(c.conf.auth_type, RFS_AUTH_TOKEN);
	cli_release(&c);

	/* where storage connections may go: ';' separates, ':' is IPv6's */
	CHECK_INT(valid(&c, "-o",
			"rucio_host=https://h," UP
			",storage_hosts=*.example.org;fd00::/8 192.0.2.1",
			"-o", "deny_nets=127.0.0.2/32;fe80::/10", mnt, NULL),
		  0);
	CHECK_INT(c.conf.storage_hosts.n, 3);
	CHECK_STR(c.conf.storage_hosts.v[0], "*.example.org");
	CHECK_STR(c.conf.storage_hosts.v[1], "fd00::/8");
	CHECK_STR(c.conf.storage_hosts.v[2], "192.0.2.1");
	CHECK_INT(c.conf.deny_nets.n, 2);
	CHECK_STR(c.conf.deny_nets.v[1], "fe80::/10");
	cli_release(&c);
	CHECK_INT(valid(&c, "-o", "rucio_host=https://h," UP, mnt, NULL), 0);
	CHECK_INT(c.conf.storage_hosts.n, 0);
	CHECK_INT(c.conf.deny_nets.n, 0);
	cli_release(&c);
	CHECK_INT(valid(&c, "-o",
			"rucio_host=https://h," UP ",deny_nets=10.1.0.0/8", mnt,
			NULL),
		  -EINVAL);
	CHECK(strstr(c.err, "deny_nets: '10.1.0.0/8'") != NULL);
	cli_release(&c);
	CHECK_INT(valid(&c, "-o",
			"rucio_host=https://h," UP ",storage_hosts=a.org:443",
			mnt, NULL),
		  -EINVAL);
	CHECK(strstr(c.err, "storage_hosts: 'a.org:443'") != NULL);
	cli_release(&c);

	/* what is missing or wrong */
	CHECK_INT(valid(&c, "-o", UP, mnt, NULL), -EINVAL);
	CHECK(strstr(c.err, "rucio_host") != NULL);
	cli_release(&c);
	CHECK_INT(valid(&c, "-o", "rucio_host=," UP, mnt, NULL), -EINVAL);
	cli_release(&c);
	CHECK_INT(valid(&c, "-o", "rucio_host=ftp://h," UP, mnt, NULL),
		  -EINVAL);
	CHECK(strstr(c.err, "ftp://h") != NULL);
	cli_release(&c);
	CHECK_INT(
		valid(&c, "-o", "rucio_host=rucio.example.org," UP, mnt, NULL),
		-EINVAL);
	cli_release(&c);
	CHECK_INT(valid(&c, "-o", "rucio_host=https://h,auth_host=h," UP, mnt,
			NULL),
		  -EINVAL);
	CHECK(strstr(c.err, "auth_host") != NULL);
	cli_release(&c);
	CHECK_INT(valid(&c, "-o", "rucio_host=https://h,username=u", mnt, NULL),
		  -EINVAL);
	CHECK(strstr(c.err, "password") != NULL);
	cli_release(&c);
	CHECK_INT(valid(&c, "-o", "rucio_host=https://h,password=p", mnt, NULL),
		  -EINVAL);
	cli_release(&c);
	CHECK_INT(valid(&c, "-o", "rucio_host=https://h,auth_type=x509", mnt,
			NULL),
		  -EINVAL);
	CHECK(strstr(c.err, "x509") != NULL);
	cli_release(&c);
	CHECK_INT(valid(&c, "-o", "rucio_host=https://h," UP, NULL), -EINVAL);
	CHECK(strstr(c.err, "mountpoint") != NULL);
	cli_release(&c);
	CHECK_INT(valid(&c, "-o", "rucio_host=https://h," UP,
			"/nonexistent/mnt", NULL),
		  -EINVAL);
	CHECK(strstr(c.err, "/nonexistent/mnt") != NULL);
	cli_release(&c);
	CHECK_INT(valid(&c, "-o", "rucio_host=https://h,max_answer=1K," UP, mnt,
			NULL),
		  -EINVAL);
	cli_release(&c);
	CHECK_INT(valid(&c, "-o", "rucio_host=https://h,io_timeout=0," UP, mnt,
			NULL),
		  -EINVAL);
	cli_release(&c);
	CHECK_INT(valid(&c, "-o",
			"rucio_host=https://h,ca_cert=/nonexistent/"
			"ca.pem," UP,
			mnt, NULL),
		  -EINVAL);
	CHECK(strstr(c.err, "/nonexistent/ca.pem") != NULL);
	cli_release(&c);
	/* the error text never carries the password */
	CHECK_INT(valid(&c, "-o",
			"rucio_host=ftp://h,username=u,"
			"password=hunter2",
			mnt, NULL),
		  -EINVAL);
	CHECK(strstr(c.err, "hunter2") == NULL);
	cli_release(&c);
}

/* The daemon changes to / when it detaches: the path must be absolute. */
/* Shared mounts: who reads is derived from allow_other and root. */
/* -o log_level, -d, -o metrics and metrics_interval */
static void test_observe(void)
{
	char path[4200], opt[4300];
	struct cli c;

	CHECK_INT(valid(&c, "-o", "rucio_host=https://h," UP, mnt, NULL), 0);
	CHECK_INT(c.conf.log_max, LOG_INFO);
	CHECK(!c.conf.metrics);
	CHECK(c.conf.metrics_interval == 10);
	cli_release(&c);
	CHECK_INT(valid(&c, "-o",
			"rucio_host=https://h," UP ",log_level=warning", mnt,
			NULL),
		  0);
	CHECK_INT(c.conf.log_max, LOG_WARNING);
	cli_release(&c);
	CHECK_INT(valid(&c, "-o", "rucio_host=https://h," UP ",log_level=error",
			"-d", mnt, NULL),
		  0);
	CHECK_INT(c.conf.log_max, LOG_DEBUG); /* -d wins */
	cli_release(&c);
	CHECK_INT(valid(&c, "-o", "rucio_host=https://h," UP ",log_level=loud",
			mnt, NULL),
		  -EINVAL);
	CHECK(strstr(c.err, "log_level"));
	cli_release(&c);

	snprintf(path, sizeof(path), "%s/m.prom", tmpdir);
	snprintf(opt, sizeof(opt),
		 "rucio_host=https://h," UP ",metrics=%s,metrics_interval=2s",
		 path);
	CHECK_INT(valid(&c, "-o", opt, mnt, NULL), 0);
	CHECK_STR(c.conf.metrics, path);
	CHECK(c.conf.metrics_interval == 2);
	cli_release(&c);
	/* relative, a directory, a directory that is not there */
	CHECK_INT(valid(&c, "-o", "rucio_host=https://h," UP ",metrics=m.prom",
			mnt, NULL),
		  -EINVAL);
	cli_release(&c);
	snprintf(opt, sizeof(opt), "rucio_host=https://h," UP ",metrics=%s/",
		 tmpdir);
	CHECK_INT(valid(&c, "-o", opt, mnt, NULL), -EINVAL);
	cli_release(&c);
	snprintf(opt, sizeof(opt),
		 "rucio_host=https://h," UP ",metrics=%s/none/m.prom", tmpdir);
	CHECK_INT(valid(&c, "-o", opt, mnt, NULL), -EINVAL);
	CHECK(strstr(c.err, "none"));
	cli_release(&c);
	CHECK_INT(valid(&c, "-o",
			"rucio_host=https://h," UP ",metrics_interval=0.5s",
			mnt, NULL),
		  -EINVAL);
	cli_release(&c);
}

static void test_identity(void)
{
	struct cli c;
	const char *base = "rucio_host=https://h," UP;
	char o[512];

	if (geteuid() != 0) {
		UNIT_SKIP("identity: per-caller mounts need root");
		return;
	}
	/* a mount by root shared with allow_other needs issuers */
	snprintf(o, sizeof(o), "%s,allow_other", base);
	CHECK_INT(valid(&c, "-o", o, mnt, NULL), -EINVAL);
	CHECK(strstr(c.err, "token_issuer=URL") != NULL);
	CHECK(strstr(c.err, "identity=mount") != NULL);
	cli_release(&c);
	snprintf(o, sizeof(o),
		 "%s,allow_other,token_issuer=https://iam.example/ "
		 "https://iam2.example/,token_audience=https://se.example",
		 base);
	CHECK_INT(valid(&c, "-o", o, mnt, NULL), 0);
	CHECK(c.conf.per_caller);
	CHECK_INT(c.conf.token_issuers.n, 2);
	CHECK_STR(c.conf.token_issuers.v[0], "https://iam.example/");
	CHECK_STR(c.conf.token_audiences.v[0], "https://se.example");
	CHECK(!c.conf.anonymous_names);
	CHECK(c.conf.authz_offline == 86400);
	cli_release(&c);
	/* identity=mount keeps one identity for all */
	snprintf(o, sizeof(o), "%s,allow_other,identity=mount", base);
	CHECK_INT(valid(&c, "-o", o, mnt, NULL), 0);
	CHECK(!c.conf.per_caller);
	cli_release(&c);
	/* without allow_other: the owner's alone */
	CHECK_INT(valid(&c, "-o", base, mnt, NULL), 0);
	CHECK(!c.conf.per_caller);
	cli_release(&c);
	snprintf(o, sizeof(o), "%s,identity=caller,token_issuer=https://i/",
		 base);
	CHECK_INT(valid(&c, "-o", o, mnt, NULL), -EINVAL);
	CHECK(strstr(c.err, "allow_other") != NULL);
	cli_release(&c);
	/* bad values */
	snprintf(o, sizeof(o), "%s,allow_other,token_issuer=http://i/", base);
	CHECK_INT(valid(&c, "-o", o, mnt, NULL), -EINVAL);
	cli_release(&c);
	snprintf(o, sizeof(o), "%s,identity=everyone", base);
	CHECK_INT(valid(&c, "-o", o, mnt, NULL), -EINVAL);
	cli_release(&c);
	snprintf(o, sizeof(o), "%s,anonymous=all", base);
	CHECK_INT(valid(&c, "-o", o, mnt, NULL), -EINVAL);
	cli_release(&c);
	snprintf(o, sizeof(o), "%s,anonymous=names,authz_offline=2h", base);
	CHECK_INT(valid(&c, "-o", o, mnt, NULL), 0);
	CHECK(c.conf.anonymous_names);
	CHECK(c.conf.authz_offline == 7200);
	cli_release(&c);
	snprintf(o, sizeof(o), "%s,idmap=/nonexistent/idmap", base);
	CHECK_INT(valid(&c, "-o", o, mnt, NULL), -EINVAL);
	cli_release(&c);
}

/* [ruciofs] in rucio.cfg holds our keys, token_issuers among them. */
static void test_load_ruciofs_section(void)
{
	static const char text[] = "[client]\n"
				   "rucio_host = https://r.example\n"
				   "[ruciofs]\n"
				   "token_issuers = https://a.example/\n"
				   "    https://b.example/\n"
				   "token_env = yes\n"
				   "[other]\n"
				   "idmap = /not/ours\n";
	char *cfg = unit_write(tmpdir, "ruciofs.cfg", text, 0600);
	struct cli c;

	CHECK(cfg != NULL);
	if (!cfg)
		return;
	clear_env();
	setenv("RUCIO_CONFIG", cfg, 1);
	CHECK_INT(cli(&c, "/m", NULL), 0);
	CHECK_INT(rfs_conf_load_file(&c.conf, c.err, sizeof(c.err)), 0);
	CHECK_INT(c.conf.token_issuers.n, 2);
	CHECK_STR(c.conf.token_issuers.v[1], "https://b.example/");
	CHECK(c.conf.token_env);
	CHECK(c.conf.idmap == NULL);
	cli_release(&c);
	clear_env();
	free(cfg);
}

static void test_mountpoint(void)
{
	struct cli c;
	char cwd[4096];

	if (!getcwd(cwd, sizeof(cwd)) || chdir(tmpdir)) {
		CHECK(!"cannot change to the scratch directory");
		return;
	}
	CHECK_INT(valid(&c, "-o", "rucio_host=https://h," UP, "./mnt/", NULL),
		  0);
	CHECK_STR(c.conf.mountpoint, mnt);
	cli_release(&c);
	CHECK_INT(chdir(cwd), 0);
}

/* No block holding the password goes back to the heap unwiped. */
static void test_secret_wiped(void)
{
	static const char pw[] = "hunter2-Pa55word";
	struct cli c;
	char *cfg;

	secret = pw;
	secret_freed = 0;
	/* from -o (last, so its bytes stay in the split buffer), the stored
	 * value and a replaced value */
	CHECK_INT(cli(&c, "-o",
		      "rucio_host=https://h,username=u,"
		      "password=hunter2-Pa55word",
		      mnt, NULL),
		  0);
	CHECK_STR(c.conf.password, pw);
	CHECK_INT(rfs_conf_set(&c.conf, "password", "other", false), 0);
	CHECK_INT(rfs_conf_set(&c.conf, "password", pw, false), 0);
	cli_release(&c);
	CHECK(c.conf.password == NULL);
	CHECK_INT(secret_freed, 0);

	/* from rucio.cfg (last, so the parser's value buffer still holds
	 * it): the file's text, its lines, the value buffer */
	cfg = unit_write(tmpdir, "secret.cfg",
			 "[client]\n"
			 "rucio_host = https://h\n"
			 "username = u\n"
			 "account = a\n"
			 "password = hunter2-Pa55word\n",
			 0600);
	CHECK(cfg != NULL);
	clear_env();
	if (cfg)
		setenv("RUCIO_CONFIG", cfg, 1);
	CHECK_INT(cli(&c, mnt, NULL), 0);
	CHECK_INT(rfs_conf_load_file(&c.conf, c.err, sizeof(c.err)), 0);
	CHECK_STR(c.conf.password, pw);
	cli_release(&c);
	CHECK(secret_freed == 0);
	clear_env();
	secret = NULL;
	free(cfg);
}

/* ---- rfs_conf_hide_secrets ---- */

/*
 * Masks @args (a copy: argv must be writable), checks each against
 * @want, and checks that the password the parser took from the
 * original is nowhere in the masked arguments.
 */
static void hide_case(const char *const *args, const char *const *want)
{
	char *argv[16], joined[1024] = "";
	int argc = 0;
	struct cli c;

	argv[argc++] = "ruciofs";
	for (size_t i = 0; args[i] && argc < 15; i++)
		argv[argc++] = strdup(args[i]);
	argv[argc] = NULL;
	memset(&c, 0, sizeof(c));
	rfs_conf_init(&c.conf);
	rfs_strv_init(&c.fuse);
	CHECK_INT(rfs_conf_parse_args(&c.conf, argc, argv, &c.fuse, &c.action,
				      c.err, sizeof(c.err)),
		  0);
	rfs_conf_hide_secrets(argc, argv);
	for (int i = 1; i < argc; i++) {
		CHECK_STR(argv[i], want[i - 1]);
		snprintf(joined + strlen(joined),
			 sizeof(joined) - strlen(joined), "%s ", argv[i]);
		free(argv[i]);
	}
	if (c.conf.password && c.conf.password[0])
		CHECK(strstr(joined, c.conf.password) == NULL);
	cli_release(&c);
}

static void test_hide_secrets(void)
{
#define HIDE(...) (const char *const[]){ __VA_ARGS__, NULL }
	/* escaped commas: the value is "a,b,c", all of it goes */
	hide_case(HIDE("-o", "password=a\\,b\\,c", "/m"),
		  HIDE("-o", "password=xxxxxxx", "/m"));
	/* in the middle of a list; the options around it stay */
	hide_case(HIDE("-o", "username=u,password=p\\,q,vo=v", "/m"),
		  HIDE("-o", "username=u,password=xxxx,vo=v", "/m"));
	/* "-oLIST" and a later, separate -o */
	hide_case(HIDE("-opassword=s3cret", "-o", "vo=v", "-o", "password=z9",
		       "/m"),
		  HIDE("-opassword=xxxxxx", "-o", "vo=v", "-o", "password=xx",
		       "/m"));
	/* an escaped backslash ends the value at the next comma */
	hide_case(HIDE("-o", "password=a\\\\,vo=v", "/m"),
		  HIDE("-o", "password=xxx,vo=v", "/m"));
	/* an escaped backslash then an escaped comma: one value "a\,b" */
	hide_case(HIDE("-o", "password=a\\\\\\,b,vo=v", "/m"),
		  HIDE("-o", "password=xxxxxx,vo=v", "/m"));
	/* a trailing backslash is part of the value */
	hide_case(HIDE("-o", "vo=v,password=ab\\", "/m"),
		  HIDE("-o", "vo=v,password=xxx", "/m"));
	/* escapes in the key: the parser reads "password" in both */
	hide_case(HIDE("-o", "pass\\word=hunter", "/m"),
		  HIDE("-o", "pass\\word=xxxxxx", "/m"));
	hide_case(HIDE("-o", "password\\=hunter", "/m"),
		  HIDE("-o", "password\\=xxxxxx", "/m"));
	/* not a password: a value that says "password=", another key */
	hide_case(HIDE("-o", "vo=a\\,password=b,username=password=c", "/m"),
		  HIDE("-o", "vo=a\\,password=b,username=password=c", "/m"));
	hide_case(HIDE("-o", "comment=password=d,password=", "/m"),
		  HIDE("-o", "comment=password=d,password=", "/m"));
#undef HIDE
}

static void test_release(void)
{
	struct cli c;

	/*
	 * Every string of a full configuration is freed: LeakSanitizer in
	 * the sanitizer build fails this program if one is not.
	 */
	CHECK_INT(valid(&c, "-o",
			"rucio_host=https://h,auth_host=https://a,"
			"auth_type=userpass,account=a,username=u,"
			"password=secret,vo=def,rucio_config=/x,"
			"token_file=/t,replica_sort=random,"
			"schemes=root",
			mnt, NULL),
		  0);
	CHECK_STR(c.conf.password, "secret");
	rfs_conf_release(&c.conf);
	CHECK(c.conf.password == NULL);
	CHECK(c.conf.mountpoint == NULL);
	CHECK(c.conf.token_file == NULL);
	rfs_strv_release(&c.fuse);
}

int main(void)
{
	/* the tests below own the Rucio variables of this process */
	clear_env();
	tmpdir = unit_mkdtemp("conf");
	CHECK(tmpdir != NULL);
	if (tmpdir) {
		snprintf(mnt, sizeof(mnt), "%s/mnt", tmpdir);
		CHECK_INT(mkdir(mnt, 0700), 0);
	}

	test_ini_basic();
	test_ini_continuation();
	test_ini_errors();
	test_ini_nul_overrun();
	test_args_options();
	test_args_fuse_and_noise();
	test_args_flags();
	test_args_errors();
	test_conf_set();
	if (tmpdir) {
		test_load_precedence();
		test_load_lookup();
		test_load_system();
		test_load_errors();
	}
	if (tmpdir) {
		test_validate();
		test_identity();
		test_observe();
		test_load_ruciofs_section();
		test_mountpoint();
		test_secret_wiped();
		test_hide_secrets();
		test_release();
	}

	unit_rmtree(tmpdir);
	free(tmpdir);
	return unit_done("conf");
}
