/*
 * The transports driven from the command line, for integration tests
 * that check a transport against real servers without a mount (vector
 * reads before the core asks for them, tokens without a shared mount):
 *
 *   xrdtool [-c CA] [-k KEY] [-t TOKENFILE] URL SIZE read OFF LEN...
 *   xrdtool [-c CA] [-k KEY] [-t TOKENFILE] URL SIZE readv OFF:LEN,...
 *   xrdtool [-c CA] [-k KEY] [-t TOKENFILE] URL SIZE cksum TYPE
 *
 * -o KEY=VALUE sets an option (connect_timeout=1); -s SECS lingers
 * before the end, so that late answers reach the transport.
 *
 * Each read (or the whole vector read) writes its bytes to stdout; a
 * failure prints "error: <errno name> <errno>" to stderr and exits 2.
 * Several reads go through one handle, so one session carries them.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "transport/transport.h"
#include "util/buf.h"
#include "util/clock.h"

static const char *token_file;

static int file_bearer(void *arg, char **out)
{
	char buf[8192];
	FILE *f;
	size_t n;

	(void)arg;
	*out = NULL;
	if (!token_file)
		return 0;
	f = fopen(token_file, "r");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	*out = strdup(buf);
	return *out ? 0 : -ENOMEM;
}

static int fail(int rc)
{
	fprintf(stderr, "error: %s %d\n", strerrorname_np(-rc), -rc);
	return 2;
}

static int one_read(struct rfs_tfile *f, uint64_t size, const char *a,
		    const char *b)
{
	uint64_t off = strtoull(a, NULL, 10), len = strtoull(b, NULL, 10);
	char *buf = malloc(len ? len : 1);
	struct iovec iov = { buf, len };
	struct rfs_xfer_note note = { .deadline = rfs_mono_now() + 60 };
	ssize_t r;

	if (!buf)
		return -ENOMEM;
	r = rfs_transport_preadv(f, &iov, 1, off, size, &note);
	if (r >= 0)
		fwrite(buf, 1, len, stdout);
	free(buf);
	return r < 0 ? (int)r : 0;
}

static int vector_read(struct rfs_tfile *f, uint64_t size, const char *list)
{
	struct rfs_tseg segs[4096];
	struct rfs_xfer_note note = { .deadline = rfs_mono_now() + 60 };
	size_t n = 0;
	ssize_t r;

	for (const char *p = list; *p && n < 4096; n++) {
		char *end;

		segs[n].off = strtoull(p, &end, 10);
		segs[n].len = strtoull(end + 1, &end, 10);
		segs[n].buf = malloc(segs[n].len ? segs[n].len : 1);
		if (!segs[n].buf)
			return -ENOMEM;
		p = *end ? end + 1 : end;
	}
	r = rfs_transport_readv(f, segs, n, size, &note);
	for (size_t i = 0; i < n; i++) {
		if (r >= 0)
			fwrite(segs[i].buf, 1, segs[i].len, stdout);
		free(segs[i].buf);
	}
	return r < 0 ? (int)r : 0;
}

int main(int argc, char **argv)
{
	struct rfs_who who = { .key = "xrdtool", .bearer = file_bearer };
	struct rfs_transports *ts = NULL;
	struct rfs_tfile *f = NULL;
	struct rfs_conf conf;
	struct rfs_transport *t;
	struct rfs_buf url;
	uint64_t size;
	int opt, rc;

	rfs_conf_init(&conf);
	double linger = 0;

	while ((opt = getopt(argc, argv, "c:k:t:o:s:")) != -1) {
		if (opt == 'c')
			rfs_conf_set(&conf, "ca_cert", optarg, false);
		else if (opt == 'k')
			who.key = optarg;
		else if (opt == 't')
			token_file = optarg;
		else if (opt == 's')
			linger = strtod(optarg, NULL);
		else if (opt == 'o' && strchr(optarg, '=')) {
			*strchr(optarg, '=') = '\0';
			rfs_conf_set(&conf, optarg, optarg + strlen(optarg) + 1,
				     false);
		}
	}
	if (argc - optind < 4)
		return 64;
	size = strtoull(argv[optind + 1], NULL, 10);
	rc = rfs_transports_global_init();
	if (!rc)
		rc = rfs_transports_open(&ts, &conf);
	if (!rc)
		rc = rfs_transports_start(ts);
	t = ts ? rfs_transports_find(ts, argv[optind]) : NULL;
	if (!rc && !t)
		rc = -EPROTONOSUPPORT;
	rfs_buf_init(&url, 16384);
	if (!rc)
		rc = rfs_transport_normalize(t, &url, argv[optind]);
	if (!rc)
		rc = rfs_transport_open_file(ts, t, url.data, &who, &f);
	if (!rc && !strcmp(argv[optind + 2], "cksum")) {
		struct rfs_xfer_note note = { .deadline = rfs_mono_now() + 60 };
		char hex[80];

		rc = rfs_transport_checksum(f, argv[optind + 3], hex,
					    sizeof(hex), &note);
		if (!rc)
			printf("%s\n", hex);
	} else if (!rc && !strcmp(argv[optind + 2], "readv"))
		rc = vector_read(f, size, argv[optind + 3]);
	else
		for (int i = optind + 3; !rc && i + 1 < argc; i += 2)
			rc = one_read(f, size, argv[i], argv[i + 1]);
	fflush(stdout);
	if (linger > 0)
		usleep((useconds_t)(linger * 1e6));
	if (f)
		rfs_transport_close_file(ts, f);
	rfs_transports_close(ts);
	rfs_transports_global_cleanup();
	rfs_buf_release(&url);
	rfs_conf_release(&conf);
	return rc ? fail(rc) : 0;
}
