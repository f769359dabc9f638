/*
 * ruciofs: mounts a Rucio data lake. Order matters: configuration and the
 * first catalogue contact happen before daemonizing, so their errors reach
 * the terminal with a non-zero exit; after fuse_daemonize() nothing exits
 * until unmount.
 */
#include "config.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "conf/conf.h"
#include "core/fs.h"
#include "ctl/server.h"
#include "fuse/async.h"
#include "fuse/ops.h"
#include "fuse/passthrough.h"
#include "util/errmap.h"
#include "util/log.h"
#include "util/notify.h"
#include "util/str.h"
#include "util/banned.h"

static void __attribute__((format(printf, 2, 0)))
fuse_log_to_ours(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char line[1024];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	rfs_log((int)level, "fuse: %s", line);
}

/*
 * fsname is the mount's source in /proc/mounts: fstab's label, so that
 * "mount -a" finds the line already mounted. fuse_opt splits on ','
 * unless escaped.
 */
static int add_fsname(struct rfs_buf *o, const char *label)
{
	int rc = rfs_buf_addstr(o, ",fsname=");

	for (const char *p = label; !rc && *p; p++) {
		if (*p == ',' || *p == '\\')
			rc = rfs_buf_add(o, "\\", 1);
		if (!rc)
			rc = rfs_buf_add(o, p, 1);
	}
	return rc;
}

/* "-o a,b,c" for FUSE: our fixed options plus what we did not consume. */
static int fuse_args_from(const struct rfs_conf *conf,
			  const struct rfs_strv *extra, const char *argv0,
			  struct fuse_args *args)
{
	struct rfs_buf o;
	int rc;

	rfs_buf_init(&o, 64 * 1024);
	rc = rfs_buf_addstr(&o, "ro,subtype=ruciofs");
	if (!rc)
		rc = add_fsname(&o, conf->source && *conf->source ? conf->source
								  : "ruciofs");
	if (!rc && conf->allow_other)
		rc = rfs_buf_addstr(&o, ",allow_other");
	for (size_t i = 0; !rc && i < extra->n; i++)
		rc = rfs_buf_printf(&o, ",%s", extra->v[i]);
	if (!rc &&
	    (fuse_opt_add_arg(args, argv0) || fuse_opt_add_arg(args, "-o") ||
	     fuse_opt_add_arg(args, o.data) ||
	     (conf->debug && fuse_opt_add_arg(args, "-d"))))
		rc = -ENOMEM;
	rfs_buf_release(&o);
	return rc;
}

static int load_conf(struct rfs_conf *conf, int argc, char **argv,
		     struct rfs_strv *extra)
{
	enum rfs_conf_action action;
	char err[1024] = "";
	int rc;

	rc = rfs_conf_parse_args(conf, argc, argv, extra, &action, err,
				 sizeof(err));
	rfs_conf_hide_secrets(argc, argv);
	if (!rc && action == RFS_CONF_HELP) {
		rfs_conf_usage(argv[0]);
		return 1;
	}
	if (!rc && action == RFS_CONF_VERSION) {
		char libs[512];

		rfs_fs_versions(libs, sizeof(libs));
		printf("ruciofs %s (libfuse %s, %s)\n", PACKAGE_VERSION,
		       fuse_pkgversion(), libs);
		return 1;
	}
	if (!rc)
		rc = rfs_conf_load_file(conf, err, sizeof(err));
	if (!rc)
		rc = rfs_conf_validate(conf, err, sizeof(err));
	if (rc && conf->check) {
		rfs_check_line(stdout, RFS_CHECK_FAIL, "configuration", "%s",
			       err[0] ? err : strerror(-rc));
	} else if (rc) {
		fprintf(stderr, "ruciofs: %s\n", err[0] ? err : strerror(-rc));
		fprintf(stderr, "try 'ruciofs --help'\n");
	}
	return rc;
}

/* ruciofs --check: the report on stdout, the log's lines on stderr. */
static int self_check(const struct rfs_conf *conf)
{
	struct rfs_fs *fs = NULL;
	int rc = rfs_fs_global_init(), status;

	if (rc) {
		rfs_check_line(stdout, RFS_CHECK_FAIL, "network", "%s",
			       rfs_errno_reason(rc));
		return 1;
	}
	rc = rfs_fs_new(&fs, conf);
	if (rc)
		rfs_check_line(stdout, RFS_CHECK_FAIL, "setup", "%s",
			       rfs_errno_reason(rc));
	status = rc ? 1 : rfs_fs_self_check(fs, stdout);
	rfs_fs_free(fs);
	rfs_fs_global_cleanup();
	return status;
}

static bool plain_http(const char *url)
{
	return !strncmp(url, "http://", 7);
}

/*
 * Without TLS the catalogue's credentials cross the network in clear.
 * Not refused (a demo on one host needs no TLS), but said loudly: fills
 * @out and returns true if so.
 */
static bool cleartext(const struct rfs_conf *conf, char *out, size_t len)
{
	bool userpass = conf->auth_type == RFS_AUTH_USERPASS;
	bool pw = userpass && plain_http(conf->auth_host);
	bool tok = plain_http(conf->rucio_host);
	char a[256], r[256];

	rfs_url_for_log(a, sizeof(a), conf->auth_host);
	rfs_url_for_log(r, sizeof(r), conf->rucio_host);
	snprintf(out, len,
		 "insecure catalogue: plain http sends %s%s%s%s%s%s in "
		 "clear",
		 pw ? "the password to " : "", pw ? a : "",
		 pw && tok ? " and " : "",
		 tok ? (userpass ? "the Rucio token" : "the bearer token") : "",
		 tok ? " to " : "", tok ? r : "");
	return pw || tok;
}

static int run_loop(struct fuse_session *se, const struct rfs_conf *conf)
{
	struct fuse_loop_config *lc;
	int rc;

	if (conf->singlethread)
		return fuse_session_loop(se);
	lc = fuse_loop_cfg_create();
	if (!lc)
		return -ENOMEM;
	fuse_loop_cfg_set_max_threads(lc, conf->max_threads);
	fuse_loop_cfg_set_clone_fd(lc, 0);
	rc = fuse_session_loop_mt(se, lc);
	fuse_loop_cfg_destroy(lc);
	return rc;
}

/*
 * libfuse's loop returns the signal that ended it: SIGTERM is how a
 * service manager stops us, an exit it must not count as a failure.
 */
static bool stopped_cleanly(int loop_rc)
{
	return loop_rc == 0 || loop_rc == SIGTERM || loop_rc == SIGINT ||
	       loop_rc == SIGHUP;
}

/*
 * A FUSE mount's readahead is its bdi's read_ahead_kb, 128 KiB unless
 * root raises it; the kernel never asks for more in one request. Root
 * may: sequential reads then come as 1 MiB requests (4-8x fewer trips).
 */
static void raise_readahead(const char *mountpoint)
{
	char line[8192], dev[32] = "", mnt[4096], path[128];
	FILE *f;

	/* from mountinfo, not stat(): the mount answers nothing before the
	 * session loop has run INIT, so a stat() here would never return */
	f = geteuid() == 0 ? fopen("/proc/self/mountinfo", "re") : NULL;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*d %*d %31s %*s %4095s", path, mnt) == 2 &&
		    !strcmp(mnt, mountpoint))
			snprintf(dev, sizeof(dev), "%.31s", path);
	if (f)
		fclose(f);
	if (!dev[0])
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
	f = fopen(path, "we");
	if (!f)
		return;
	if (fprintf(f, "%d\n", RFS_FUSE_READAHEAD / 1024) < 0)
		rfs_dbg("cannot raise %s", path);
	fclose(f);
}

/*
 * Block buffers are 1 MiB: past glibc's default threshold each one would
 * be a fresh mmap, faulted in and zeroed page by page, then unmapped, on
 * every block of a cold read (a third of its rate here). Kept in the heap
 * instead; the queues that hold them are bounded, so is the heap.
 */
static void tune_malloc(void)
{
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 16 << 20);
	mallopt(M_ARENA_MAX, 4);
}

/* Threads for requests that wait on the network, per kind of wait. */
#define ASYNC_THREADS 64

static int mount_and_serve(struct rfs_fs *fs, const struct rfs_conf *conf,
			   struct fuse_args *args)
{
	/* two workers at least stay free for what is at hand; one alone
	 * (-s) never waits on the network itself */
	struct rfs_fuse ctx = {
		.fs = fs,
		.inline_max = conf->singlethread      ? 0
			      : conf->max_threads > 2 ? conf->max_threads - 2
						      : 0,
	};
	struct rfs_ctl *ctl = NULL;
	struct fuse_session *se;
	char host[512], msg[1024];
	int rc = 1, err;

	se = fuse_session_new(args, &rfs_fuse_ops, sizeof(rfs_fuse_ops), &ctx);
	if (!se)
		return 1;
	if (fuse_set_signal_handlers(se))
		goto out_destroy;
	if (fuse_session_mount(se, conf->mountpoint))
		goto out_handlers;
	if (conf->cache && conf->passthrough && rfs_pt_install(se))
		rfs_warn("passthrough: cannot hook the session's I/O");
	raise_readahead(conf->mountpoint);
	if (fuse_daemonize(conf->foreground))
		goto out_unmount;
	if (!conf->foreground)
		rfs_log_set_sink(RFS_LOG_SYSLOG);
	if (!conf->foreground && cleartext(conf, msg, sizeof(msg)))
		rfs_warn("%s", msg); /* the terminal had it before */
	rfs_fs_start(fs);
	if (rfs_fs_has_cache(fs) &&
	    (err = rfs_ctl_start(&ctl, fs, conf->cache_dir)))
		rfs_err("control socket in '%s' not available: %s",
			conf->cache_dir, rfs_errno_reason(err));
	/* none: every request waits on a session worker, as before */
	if (rfs_async_new(&ctx.async, ASYNC_THREADS))
		rfs_err("no threads for requests that wait on the network");
	rfs_url_for_log(host, sizeof(host), conf->rucio_host);
	rfs_event(LOG_INFO, "mount", "%s on %s", host, conf->mountpoint);
	if (conf->allow_other && !conf->per_caller)
		rfs_warn("allow_other with identity=mount: every local user "
			 "reads with this mount's identity");
	else if (conf->per_caller)
		rfs_info("shared mount: each caller reads with their own token "
			 "(%zu accepted issuer%s)",
			 conf->token_issuers.n,
			 conf->token_issuers.n == 1 ? "" : "s");
	/* the mount exists: a unit ordered after us may use it now */
	if ((err = rfs_notify("READY=1\nSTATUS=mounted")))
		rfs_warn("cannot tell the service manager we are ready: %s",
			 rfs_errno_reason(err));
	rc = stopped_cleanly(run_loop(se, conf)) ? 0 : 1;
	rfs_notify("STOPPING=1");
	rfs_async_free(ctx.async);
	rfs_ctl_stop(ctl); /* its clients' tasks use the core */
	rfs_pt_clear();
	rfs_event(LOG_INFO, "unmount", "%s from %s", conf->mountpoint, host);
out_unmount:
	fuse_session_unmount(se);
out_handlers:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	return rc;
}

/*
 * The password and tokens live in this process's memory: a core dump
 * (of a crash as root, say) would write them to disk, and a dumpable
 * process's memory can be read through /proc by its owner's other
 * processes. So: no core dumps, /proc/PID files owned by root, and gdb
 * needs root. Done first, before any secret is read.
 */
static void not_dumpable(void)
{
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
		fprintf(stderr,
			"ruciofs: warning: cannot disable core "
			"dumps: %s\n",
			strerror(errno));
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct rfs_strv extra;
	struct rfs_conf conf;
	struct rfs_fs *fs = NULL;
	char err[1024] = "", host[512], msg[1024];
	int rc, status = 1;

	not_dumpable();
	rfs_log_init(RFS_LOG_STDERR, LOG_INFO);
	tune_malloc();
	fuse_set_log_func(fuse_log_to_ours);
	rfs_conf_init(&conf);
	rfs_strv_init(&extra);
	rc = load_conf(&conf, argc, argv, &extra);
	if (rc) { /* 1: --help or --version answered; < 0: error printed */
		status = rc == 1 ? 0 : 1;
		goto out;
	}
	rfs_log_init(RFS_LOG_STDERR, conf.log_max); /* -o log_level, -d */
	if (conf.check) {
		signal(SIGPIPE, SIG_IGN);
		status = self_check(&conf);
		goto out;
	}
	if (cleartext(&conf, msg, sizeof(msg))) { /* before the first login */
		if (conf.foreground)
			rfs_warn("%s", msg);
		else
			fprintf(stderr, "ruciofs: warning: %s\n", msg);
	}
	/* The daemon must outlive a peer closing a socket under OpenSSL */
	signal(SIGPIPE, SIG_IGN);
	rc = rfs_fs_global_init();
	if (rc) {
		fprintf(stderr, "ruciofs: cannot set up the network: %s\n",
			rfs_errno_reason(rc));
		goto out;
	}
	rc = rfs_fs_new(&fs, &conf);
	if (!rc)
		rc = rfs_fs_prepare(fs, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "ruciofs: %s\n", err[0] ? err : strerror(-rc));
		goto out_global;
	}
	rc = rfs_fs_check(fs);
	rfs_url_for_log(host, sizeof(host), conf.rucio_host);
	if (rc && rfs_fs_can_start_offline(fs, rc)) {
		fprintf(stderr,
			"ruciofs: warning: the catalogue at %s is out of reach "
			"(%s); mounting offline from the cache\n",
			host, rfs_errno_reason(rc));
		rc = 0;
	}
	if (rc) {
		fprintf(stderr, "ruciofs: cannot use the catalogue at %s: %s\n",
			host, rfs_errno_reason(rc));
		goto out_global;
	}
	if (fuse_args_from(&conf, &extra, argv[0], &args) == 0)
		status = mount_and_serve(fs, &conf, &args);
out_global:
	rfs_fs_free(fs);
	rfs_fs_global_cleanup();
out:
	fuse_opt_free_args(&args);
	rfs_strv_release(&extra);
	rfs_conf_release(&conf);
	return status;
}
