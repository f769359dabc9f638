/*
 * ruciofs-ctl: talks to a mounted ruciofs over its control socket, whose
 * path the mount itself tells (xattr user.ruciofs.ctl), so no
 * configuration is needed: prefetch [--pin], unpin, evict, verify, status,
 * metrics.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "util/clock.h"
#include "util/banned.h"

#define LINE_MAX_LEN (1024 * 1024)

static const char *mount_opt;
static bool tty;

static void usage(void)
{
	fprintf(stderr,
		"usage: ruciofs-ctl [-m MOUNTPOINT] status [--json]\n"
		"       ruciofs-ctl [-m MOUNTPOINT] metrics\n"
		"       ruciofs-ctl [-m MOUNTPOINT] prefetch [--pin] "
		"PATH|scope:name...\n"
		"       ruciofs-ctl [-m MOUNTPOINT] unpin PATH|scope:name...\n"
		"       ruciofs-ctl [-m MOUNTPOINT] evict PATH|scope:name...\n"
		"       ruciofs-ctl [-m MOUNTPOINT] verify "
		"[PATH|scope:name...]\n"
		"\n"
		"PATH is a file, dataset or container inside a ruciofs mount; "
		"-m names\nthe mount for scope:name arguments and status "
		"(default: the only one).\n");
}

static void human(char *out, size_t len, double b)
{
	static const char *const units[] = { "B",   "KiB", "MiB",
					     "GiB", "TiB", "PiB" };
	int u = 0;

	while (b >= 1024 && u < 5) {
		b /= 1024;
		u++;
	}
	snprintf(out, len, u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

/* The single ruciofs mount, when -m was not given. */
static int find_mount(char *out, size_t len)
{
	FILE *f = fopen("/proc/self/mounts", "re");
	char dev[256], dir[4096], type[64];
	int found = 0;

	if (!f)
		return -errno;
	while (fscanf(f, "%255s %4095s %63s %*[^\n]", dev, dir, type) == 3) {
		if (strcmp(type, "fuse.ruciofs"))
			continue;
		if (!found++)
			snprintf(out, len, "%s", dir);
	}
	fclose(f);
	if (found > 1)
		fprintf(stderr, "ruciofs-ctl: several ruciofs mounts: say "
				"which with -m\n");
	return found == 1 ? 0 : -ENOENT;
}

static int get_attr(const char *path, const char *name, char *out, size_t len)
{
	ssize_t n = getxattr(path, name, out, len - 1);

	if (n < 0)
		return -errno;
	out[n] = '\0';
	return 0;
}

static int socket_of(const char *path, char *out, size_t len)
{
	char mnt[4096];
	int rc;

	if (!path) {
		if (mount_opt)
			path = mount_opt;
		else if ((rc = find_mount(mnt, sizeof(mnt))))
			return rc;
		else
			path = mnt;
	}
	rc = get_attr(path, "user.ruciofs.ctl", out, len);
	if (rc)
		fprintf(stderr,
			"ruciofs-ctl: '%s' is not in a ruciofs mount with a "
			"cache (%s)\n",
			path, strerror(-rc));
	return rc;
}

static int connect_to(const char *sock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || strlen(sock) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "ruciofs-ctl: cannot connect to '%s': %s\n",
			sock, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static bool send_request(int fd, json_t *req)
{
	char *s = json_dumps(req, JSON_COMPACT);
	size_t len = s ? strlen(s) : 0;
	bool ok = s && write(fd, s, len) == (ssize_t)len &&
		  write(fd, "\n", 1) == 1;

	free(s);
	json_decref(req);
	return ok;
}

struct reader {
	int fd;
	char *buf;
	size_t len;
};

/* The next JSON line, or NULL at the end. */
static json_t *next_line(struct reader *r)
{
	char *nl;
	json_t *o;

	while (!(nl = memchr(r->buf, '\n', r->len))) {
		ssize_t n;

		if (r->len >= LINE_MAX_LEN)
			return NULL;
		n = read(r->fd, r->buf + r->len, LINE_MAX_LEN - r->len);
		if (n <= 0)
			return NULL;
		r->len += (size_t)n;
	}
	o = json_loadb(r->buf, nl - r->buf, 0, NULL);
	r->len -= (size_t)(nl + 1 - r->buf);
	memmove(r->buf, nl + 1, r->len);
	return o;
}

static json_int_t num(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static void draw(json_t *p, double t0)
{
	double done = (double)num(p, "bytes_done"),
	       all = (double)num(p, "bytes");
	double el = rfs_mono_now() - t0, rate = el > 0 ? done / el : 0;
	double frac = all > 0 ? done / all : 1;
	char a[32], b[32], r[32], eta[32] = "--:--";
	char bar[21];
	int fill = (int)(frac * 20);

	for (int i = 0; i < 20; i++)
		bar[i] = i < fill ? '#' : '-';
	bar[20] = '\0';
	human(a, sizeof(a), done);
	human(b, sizeof(b), all);
	human(r, sizeof(r), rate);
	if (rate > 0 && all > done)
		snprintf(eta, sizeof(eta), "%d:%02d",
			 (int)((all - done) / rate) / 60,
			 (int)((all - done) / rate) % 60);
	printf("\r[%s] %3.0f%%  %lld/%lld files  %s/%s  %s/s  ETA %s\033[K",
	       bar, frac * 100, (long long)num(p, "files_done"),
	       (long long)num(p, "files"), a, b, r, eta);
	fflush(stdout);
}

/* Whether @o is the answer's last line; its exit status in *@rc, and
 * its error said. */
static bool is_done(json_t *o, const char *what, int *rc)
{
	const char *err = json_string_value(json_object_get(o, "error"));

	if (!json_is_true(json_object_get(o, "done")))
		return false;
	*rc = json_is_true(json_object_get(o, "ok")) ? 0 : 1;
	if (err)
		fprintf(stderr, "ruciofs-ctl: %s: %s\n", what, err);
	return true;
}

/* Reads the answer to one request; returns 0 if it ended well. */
static int follow(int fd, const char *what, bool pin)
{
	struct reader r = { fd, malloc(LINE_MAX_LEN), 0 };
	json_t *o, *last = NULL;
	double t0 = rfs_mono_now();
	json_int_t before = 0;
	int rc = 1;

	while (r.buf && (o = next_line(&r))) {
		json_t *p = json_object_get(o, "progress");

		if (p && tty)
			draw(p, t0);
		if (p) {
			json_decref(last);
			last = json_incref(p);
		}
		if (json_object_get(o, "cached_before"))
			before = num(o, "cached_before");
		if (is_done(o, what, &rc)) {
			if (tty && last)
				printf("\n");
			json_decref(o);
			break;
		}
		json_decref(o);
	}
	if (last && (rc == 0 || !tty)) {
		char a[32], b[32], s[32];
		double el = rfs_mono_now() - t0;
		double got = (double)(num(last, "bytes_done") - before);

		human(a, sizeof(a), (double)num(last, "bytes_done"));
		human(b, sizeof(b), (double)before);
		human(s, sizeof(s), el > 0 ? got / el : 0);
		printf("%s %s: %lld/%lld files, %s (%s were cached) in %.1f s, "
		       "%s/s%s\n",
		       rc ? "stopped" : "prefetched", what,
		       (long long)num(last, "files_done"),
		       (long long)num(last, "files"), a, b, el, s,
		       pin && !rc ? ", pinned" : "");
	}
	json_decref(last);
	free(r.buf);
	return rc;
}

/*
 * The answer to a verify: each file found wrong, then the counts. Exit
 * status 1 when one was (it is dropped, and fetched again when read).
 */
static int follow_verify(int fd, const char *what)
{
	struct reader r = { fd, malloc(LINE_MAX_LEN), 0 };
	json_t *o;
	int rc = 1;

	while (r.buf && (o = next_line(&r))) {
		json_t *v = json_object_get(o, "verified");

		if (json_object_get(o, "bad"))
			printf("wrong    %s: %s\n",
			       json_string_value(json_object_get(o, "bad")),
			       json_string_value(json_object_get(o, "why")));
		if (v)
			printf("verified %s: %lld files match, %lld did not "
			       "(dropped), %lld not whole in the cache\n",
			       what, (long long)num(v, "good"),
			       (long long)num(v, "bad"),
			       (long long)num(v, "incomplete"));
		if (is_done(o, what, &rc)) {
			json_decref(o);
			break;
		}
		json_decref(o);
	}
	free(r.buf);
	return rc;
}

/* A path inside the mount, or "scope:name". */
static int target(const char *arg, char *sock, size_t slen, char *did,
		  size_t dlen)
{
	bool is_path = access(arg, F_OK) == 0;
	int rc;

	if (!is_path && !strchr(arg, ':')) {
		fprintf(stderr, "ruciofs-ctl: '%s': no such path or DID\n",
			arg);
		return -ENOENT;
	}
	rc = socket_of(is_path ? arg : NULL, sock, slen);
	if (rc || !is_path) {
		snprintf(did, dlen, "%s", arg);
		return rc;
	}
	rc = get_attr(arg, "user.rucio.did", did, dlen);
	if (rc || !strchr(did, ':'))
		fprintf(stderr, "ruciofs-ctl: '%s' is not a DID of the lake\n",
			arg);
	return rc ? rc : strchr(did, ':') ? 0 : -EINVAL;
}

static int run_op(const char *op, bool pin, const char *arg)
{
	char sock[4096], did[2048];
	int fd, rc;

	if (target(arg, sock, sizeof(sock), did, sizeof(did)))
		return 1;
	fd = connect_to(sock);
	if (fd < 0)
		return 1;
	rc = !send_request(fd, json_pack("{s:s,s:s,s:b}", "op", op, "did", did,
					 "pin", pin))
		     ? 1
	     : !strcmp(op, "verify") ? follow_verify(fd, did)
				     : follow(fd, did, pin);
	close(fd);
	if (!rc && strcmp(op, "prefetch") && strcmp(op, "verify"))
		printf("%s %s\n", !strcmp(op, "unpin") ? "unpinned" : "evicted",
		       did);
	return rc;
}

/*
 * Whether the cache's disk keeps up: the writer's own rate, and how long
 * read-ahead waited for it (a cold stream is then as fast as the disk).
 */
static void print_writer(json_t *s)
{
	double w = (double)num(s, "write_us") / 1e6;
	double wait = (double)num(s, "wait_us") / 1e6;
	char a[32], r[32];

	human(a, sizeof(a), (double)num(s, "written"));
	human(r, sizeof(r), w > 0 ? (double)num(s, "written") / w : 0);
	printf("disk writes   %s in %.1f s (%s/s); read-ahead waited %.1f s "
	       "for them\n",
	       a, w, r, wait);
}

static void print_status(json_t *s)
{
	char a[32], b[32], c[32];
	json_int_t hits = num(s, "hits"), miss = num(s, "misses");
	const char *rse;
	json_t *e;
	bool first = true;

	human(a, sizeof(a), (double)num(s, "used"));
	human(b, sizeof(b), (double)num(s, "quota"));
	human(c, sizeof(c), (double)num(s, "block_size"));
	printf("cache         %s (blocks of %s)\n",
	       json_string_value(json_object_get(s, "cache_dir")), c);
	printf("size          %s of %s quota (%.0f%%), %lld files\n", a, b,
	       num(s, "quota") ? 100.0 * num(s, "used") / num(s, "quota") : 0,
	       (long long)num(s, "files"));
	human(a, sizeof(a), (double)num(s, "pinned"));
	printf("pinned        %s\n", a);
	printf("hit ratio     %.1f%% (%lld hits, %lld misses)\n",
	       hits + miss ? 100.0 * hits / (hits + miss) : 0.0,
	       (long long)hits, (long long)miss);
	human(a, sizeof(a), (double)num(s, "cache_bytes"));
	human(b, sizeof(b), (double)num(s, "net_bytes"));
	printf("bytes         %s from the cache, %s from the network\n", a, b);
	human(a, sizeof(a), (double)num(s, "evicted"));
	printf("evicted       %s; %lld corrupt blocks dropped; %lld not "
	       "stored\n",
	       a, (long long)num(s, "corrupt"), (long long)num(s, "dropped"));
	printf("passthrough   %lld open%s of whole cached files read by the "
	       "kernel\n",
	       (long long)num(s, "whole_opens"),
	       num(s, "whole_opens") == 1 ? "" : "s");
	print_writer(s);
	printf("checksums     %lld files matched the catalogue's, %lld did "
	       "not\n",
	       (long long)num(json_object_get(s, "checksums"), "matched"),
	       (long long)num(json_object_get(s, "checksums"), "wrong"));
	printf("sessions      %lld with open files, %lld kept for the next\n",
	       (long long)num(json_object_get(s, "sessions"), "busy"),
	       (long long)num(json_object_get(s, "sessions"), "idle"));
	printf("catalogue     %s\n", json_is_true(json_object_get(s, "offline"))
					     ? "offline"
					     : "online");
	json_object_foreach(json_object_get(s, "endpoints"), rse, e)
	{
		human(a, sizeof(a), (double)num(e, "bytes"));
		printf("%-13s %s: %s read, %lld errors\n",
		       first ? "endpoints" : "", rse, a,
		       (long long)num(e, "errors"));
		first = false;
	}
}

/* verify with no argument: every file of the mount's cache. */
static int run_verify_all(void)
{
	char sock[4096];
	int fd, rc;

	if (socket_of(NULL, sock, sizeof(sock)))
		return 1;
	fd = connect_to(sock);
	if (fd < 0)
		return 1;
	rc = send_request(fd, json_pack("{s:s}", "op", "verify"))
		     ? follow_verify(fd, "the cache")
		     : 1;
	close(fd);
	return rc;
}

/* Sends {"op": @op} to the single mount's socket; false: said why. */
static bool ask_mount(const char *op, struct reader *r)
{
	char sock[4096];

	if (socket_of(NULL, sock, sizeof(sock)))
		return false;
	r->fd = connect_to(sock);
	r->buf = malloc(LINE_MAX_LEN);
	return r->fd >= 0 && r->buf &&
	       send_request(r->fd, json_pack("{s:s}", "op", op));
}

static void reader_close(struct reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
}

static int run_status(bool as_json)
{
	struct reader r = { -1, NULL, 0 };
	json_t *s;
	int rc = 1;

	if (!ask_mount("status", &r))
		goto out;
	s = next_line(&r);
	if (s && as_json) {
		char *t = json_dumps(s, JSON_INDENT(2) | JSON_SORT_KEYS);

		printf("%s\n", t ? t : "");
		free(t);
	} else if (s) {
		print_status(s);
	}
	rc = s ? 0 : 1;
	json_decref(s);
out:
	reader_close(&r);
	return rc;
}

/* The mount's Prometheus text, as it sent it. */
static int run_metrics(void)
{
	struct reader r = { -1, NULL, 0 };
	json_t *o = NULL, *done = NULL;
	const char *text;
	int rc = 1;

	if (!ask_mount("metrics", &r))
		goto out;
	o = next_line(&r);
	text = json_string_value(json_object_get(o, "metrics"));
	if (text) {
		fputs(text, stdout);
		done = next_line(&r);
	}
	if (!is_done(text ? done : o, "metrics", &rc))
		rc = 1;
out:
	json_decref(o);
	json_decref(done);
	reader_close(&r);
	return rc;
}

int main(int argc, char **argv)
{
	int i = 1, rc = 0;
	bool pin = false;
	const char *op;

	tty = isatty(STDOUT_FILENO);
	if (i + 1 < argc && !strcmp(argv[i], "-m")) {
		mount_opt = argv[i + 1];
		i += 2;
	}
	if (i >= argc || !strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
		usage();
		return i >= argc ? 2 : 0;
	}
	op = argv[i++];
	if (!strcmp(op, "status"))
		return run_status(i < argc && !strcmp(argv[i], "--json"));
	if (!strcmp(op, "metrics"))
		return run_metrics();
	if (!strcmp(op, "verify") && i >= argc)
		return run_verify_all();
	if (strcmp(op, "prefetch") && strcmp(op, "unpin") &&
	    strcmp(op, "evict") && strcmp(op, "verify")) {
		usage();
		return 2;
	}
	if (i < argc && !strcmp(op, "prefetch") && !strcmp(argv[i], "--pin")) {
		pin = true;
		i++;
	}
	if (i >= argc) {
		usage();
		return 2;
	}
	for (; i < argc; i++)
		rc |= run_op(op, pin, argv[i]);
	return rc;
}
