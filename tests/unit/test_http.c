/*
 * Unit tests for the header helpers of src/util/http_client.c (what the
 * transport believes about a ranged answer comes from them) and for the
 * errno of curl's failures (util/errmap_curl.c; the names of failed
 * connects through rfs_http_errno and the HTTP transport, on real sockets
 * to 127.0.0.1 only).
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "transport/transport.h"
#include "util/errmap.h"
#include "util/http_client.h"
#include "unit.h"

/* rfs_http_header_value on a C string, value into a static buffer. */
static const char *hval(const char *line, const char *name, size_t outlen,
			int *rc)
{
	static char out[600];

	memset(out, '#', sizeof(out));
	*rc = rfs_http_header_value(line, strlen(line), name, out, outlen);
	return out;
}

static void test_header_value(void)
{
	char out[16];
	const char *v;
	int rc;

	v = hval("Content-Range: bytes 0-9/21\r\n", "Content-Range", 64, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "bytes 0-9/21");
	/* names are case-insensitive; curl passes lines as the server sent */
	v = hval("content-range: bytes 0-9/21\r\n", "Content-Range", 64, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "bytes 0-9/21");
	v = hval("X-RUCIO-AUTH-TOKEN: root-ddmlab-unknown-8fea\r\n",
		 "X-Rucio-Auth-Token", 64, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "root-ddmlab-unknown-8fea");
	/* XrdHttp ends lines with a bare LF */
	v = hval("Content-Range: bytes 5-6/7\n", "Content-Range", 64, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "bytes 5-6/7");
	/* no line end at all, and blanks around the value */
	v = hval("ETag:\t \"abc\" \t", "ETag", 64, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "\"abc\"");
	v = hval("X-Empty:\r\n", "X-Empty", 64, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "");
	/* the value's inner blanks and colons are kept */
	v = hval(
		"X-Rucio-Auth-Token-Expires: Tue, 24 Nov 2026 08:55:32 UTC\r\n",
		"X-Rucio-Auth-Token-Expires", 64, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "Tue, 24 Nov 2026 08:55:32 UTC");

	/* other headers, including ones our name is a prefix of */
	hval("Content-Length: 21\r\n", "Content-Range", 64, &rc);
	CHECK_INT(rc, -ENOENT);
	hval("Content-Range-Extra: x\r\n", "Content-Range", 64, &rc);
	CHECK_INT(rc, -ENOENT);
	hval("Content-Rang: x\r\n", "Content-Range", 64, &rc);
	CHECK_INT(rc, -ENOENT);
	hval("Content-Range : x\r\n", "Content-Range", 64, &rc);
	CHECK_INT(rc, -ENOENT);
	hval("HTTP/1.1 206 Partial Content\r\n", "Content-Range", 64, &rc);
	CHECK_INT(rc, -ENOENT);
	hval("\r\n", "Content-Range", 64, &rc);
	CHECK_INT(rc, -ENOENT);
	hval("Content-Range", "Content-Range", 64, &rc);
	CHECK_INT(rc, -ENOENT);

	/* the value must fit with its NUL: 3 bytes need 4 */
	v = hval("ETag: abc\r\n", "ETag", 4, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "abc");
	v = hval("ETag: abcd\r\n", "ETag", 4, &rc);
	CHECK_INT(rc, -ENAMETOOLONG);
	CHECK_INT(v[4], '#'); /* nothing written past the buffer */
	hval("ETag: \r\n", "ETag", 0, &rc);
	CHECK_INT(rc, -ENAMETOOLONG);

	/* @len bounds the read: what follows is not part of the line */
	memcpy(out, "ETag: ab\r\nX", 11);
	CHECK_INT(rfs_http_header_value(out, 8, "ETag", out + 11, 5), 0);
	CHECK_STR(out + 11, "ab");
	CHECK_INT(rfs_http_header_value("ETag: ab", 4, "ETag", out, 8),
		  -ENOENT);
}

struct cr {
	int rc;
	uint64_t start, end, total;
};

static struct cr cr(const char *v)
{
	struct cr r = { 0, 111, 222, 333 };

	r.rc = rfs_http_parse_content_range(v, &r.start, &r.end, &r.total);
	return r;
}

static void test_content_range(void)
{
	struct cr r;

	r = cr("bytes 0-9/21");
	CHECK_INT(r.rc, 0);
	CHECK_U64(r.start, 0);
	CHECK_U64(r.end, 9);
	CHECK_U64(r.total, 21);
	r = cr("bytes 20-20/21");
	CHECK_INT(r.rc, 0);
	CHECK_U64(r.start, 20);
	CHECK_U64(r.end, 20);
	r = cr("bytes 0-9/*");
	CHECK_INT(r.rc, 0);
	CHECK_U64(r.end, 9);
	CHECK_U64(r.total, UINT64_MAX);
	r = cr("bytes 1073741824-2147483647/10737418240");
	CHECK_INT(r.rc, 0);
	CHECK_U64(r.start, 1073741824ULL);
	CHECK_U64(r.end, 2147483647ULL);
	CHECK_U64(r.total, 10737418240ULL);
	r = cr("bytes 0-18446744073709551614/18446744073709551615");
	CHECK_INT(r.rc, 0);
	CHECK_U64(r.end, UINT64_MAX - 1);
	/* trailing line end, as a raw header value may keep it */
	CHECK_INT(cr("bytes 0-9/21\r\n").rc, 0);
	CHECK_INT(cr("bytes 0-9/21\n").rc, 0);
	CHECK_INT(cr("bytes 0-9/21 ").rc, 0);
	CHECK_INT(cr("BYTES 0-9/21").rc, 0);

	/* XrdHttp 5.5 answers a suffix range with this */
	CHECK_INT(cr("bytes 15--1/21").rc, -EINVAL);
	/* end past the resource, end before start */
	CHECK_INT(cr("bytes 0-21/21").rc, -EINVAL);
	CHECK_INT(cr("bytes 0-30/21").rc, -EINVAL);
	CHECK_INT(cr("bytes 9-0/21").rc, -EINVAL);
	CHECK_INT(cr("bytes 0-0/0").rc, -EINVAL);
	/* numbers that do not fit 64 bits */
	CHECK_INT(cr("bytes 18446744073709551616-1/2").rc, -EINVAL);
	CHECK_INT(cr("bytes 0-18446744073709551616/*").rc, -EINVAL);
	CHECK_INT(cr("bytes 0-1/18446744073709551616").rc, -EINVAL);
	CHECK_INT(cr("bytes 0-1/99999999999999999999999").rc, -EINVAL);
	/* the unsatisfied-range form and other garbage */
	CHECK_INT(cr("bytes */21").rc, -EINVAL);
	CHECK_INT(cr("bytes 0-9").rc, -EINVAL);
	CHECK_INT(cr("bytes 0-9/").rc, -EINVAL);
	CHECK_INT(cr("bytes -1-9/21").rc, -EINVAL);
	CHECK_INT(cr("bytes +0-9/21").rc, -EINVAL);
	CHECK_INT(cr("bytes 0-9/21x").rc, -EINVAL);
	CHECK_INT(cr("bytes 0-9/21 0").rc, -EINVAL);
	CHECK_INT(cr("bytes0-9/21").rc, -EINVAL);
	CHECK_INT(cr("items 0-9/21").rc, -EINVAL);
	CHECK_INT(cr("0-9/21").rc, -EINVAL);
	CHECK_INT(cr("bytes").rc, -EINVAL);
	CHECK_INT(cr("").rc, -EINVAL);
}

/*
 * The registry's life around daemonizing: --version names libcurl (the
 * daemon no longer asks curl itself), a short buffer stays a string, and
 * transports without a start hook start.
 */
static void test_transport_life(void)
{
	struct rfs_transports *ts = NULL;
	struct rfs_conf conf;
	char v[512], small[8] = "xxxxxxx";

	rfs_transports_versions(v, sizeof(v));
	/* curl's own string, then the xrootd client's */
	CHECK(!strncmp(v, curl_version(), strlen(curl_version())));
	CHECK(strstr(v, ", xrootd-client/ruciofs (protocol 5.1)") != NULL);
	CHECK(!strncmp(v, "libcurl/", 8));
	rfs_transports_versions(small, sizeof(small));
	CHECK_STR(small, "libcurl");
	rfs_transports_versions(small, 0); /* nothing written */
	CHECK_STR(small, "libcurl");

	rfs_conf_init(&conf);
	CHECK_INT(rfs_transports_open(&ts, &conf), 0);
	if (ts)
		CHECK_INT(rfs_transports_start(ts), 0);
	rfs_transports_close(ts);
	rfs_conf_release(&conf);
}

/* What the catalogue is asked for by default: every scheme read here. */
static void test_readable_schemes(void)
{
	bool http = false, https = false, davs = false, root = false,
	     roots = false;
	const char *s;
	size_t i;

	for (i = 0; (s = rfs_transports_scheme(i)); i++) {
		http |= !strcmp(s, "http");
		https |= !strcmp(s, "https");
		davs |= !strcmp(s, "davs");
		root |= !strcmp(s, "root");
		roots |= !strcmp(s, "roots");
	}
	CHECK(http && https && davs);
	CHECK(root && roots); /* the xrootd transport reads them */
	CHECK_INT(i, 6);
	CHECK(rfs_transports_scheme(i + 1) == NULL);
}

static void test_errno_from_connect(void)
{
	static const int kept[] = { ECONNREFUSED, ENETUNREACH, EHOSTUNREACH,
				    ETIMEDOUT,	  ENETDOWN,    EHOSTDOWN };
	static const char *const said[] = {
		"connection refused", "network unreachable", "host unreachable",
		"timed out",	      "network down",	     "host down"
	};

	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		CHECK_INT(rfs_errno_from_connect(kept[i]), -kept[i]);
		CHECK_STR(rfs_errno_reason(-kept[i]), said[i]);
	}
	/* what the system did not say: curl's own meaning */
	CHECK_INT(rfs_errno_from_connect(0), -ECONNREFUSED);
	CHECK_INT(rfs_errno_from_connect(EPERM), -ECONNREFUSED);
}

static void test_errno_from_curl(void)
{
	static const struct {
		CURLcode from;
		int to;
	} t[] = {
		{ CURLE_OK, -EIO }, /* asked about a failure that was not */
		{ CURLE_OUT_OF_MEMORY, -ENOMEM },
		{ CURLE_OPERATION_TIMEDOUT, -ETIMEDOUT },
		{ CURLE_COULDNT_RESOLVE_HOST, -EHOSTUNREACH },
		{ CURLE_COULDNT_RESOLVE_PROXY, -EHOSTUNREACH },
		{ CURLE_COULDNT_CONNECT, -ECONNREFUSED },
		{ CURLE_SEND_ERROR, -ECONNRESET },
		{ CURLE_RECV_ERROR, -ECONNRESET },
		{ CURLE_GOT_NOTHING, -ECONNRESET },
		{ CURLE_PEER_FAILED_VERIFICATION, -EPROTO },
		{ CURLE_SSL_CONNECT_ERROR, -EPROTO },
		{ CURLE_SSL_CACERT_BADFILE, -EPROTO },
		{ CURLE_SSL_CERTPROBLEM, -EPROTO },
		{ CURLE_WRITE_ERROR, -EFBIG },
		{ CURLE_PARTIAL_FILE, -EPIPE },
		{ CURLE_UNSUPPORTED_PROTOCOL, -EINVAL },
		{ CURLE_URL_MALFORMAT, -EINVAL },
		{ CURLE_TOO_MANY_REDIRECTS, -EIO },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		CHECK_INT(rfs_errno_from_curl(t[i].from), t[i].to);
	/* every code curl has, and those it may add, is a failure */
	for (int c = 0; c < CURL_LAST + 16; c++)
		if (rfs_errno_from_curl(c) >= 0)
			CHECK_INT(c, -1);
}

/* One GET of @url on a fresh pool; the errno rfs_http_errno gives. */
static int get_errno(const char *url, int *curlcode, bool *down)
{
	struct rfs_http_opts o = { .connect_timeout = 2, .io_timeout = 2 };
	struct rfs_http *http = NULL;
	CURL *h;
	int rc;

	*down = false;
	if (rfs_http_new(&http, &o))
		return 1;
	h = rfs_http_get(http);
	curl_easy_setopt(h, CURLOPT_URL, url);
	*curlcode = curl_easy_perform(h);
	rc = *curlcode ? rfs_http_errno(h, *curlcode, down) : 0;
	rfs_http_put(http, h);
	rfs_http_free(http);
	return rc;
}

/* A port on 127.0.0.1 that nobody listens on (bound, then closed). */
static int closed_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/*
 * In a network namespace of its own, whose loopback is down, a connect
 * to 127.0.0.1 is "network unreachable" at once and nothing leaves the
 * host. Exits 0 if the daemon's helper and its HTTP transport both say
 * so, 77 if no namespace can be made here.
 */
static void unreachable_child(void)
{
	struct rfs_transport *tp = NULL;
	struct rfs_conf conf;
	char buf[16];
	struct iovec iov = { buf, sizeof(buf) };
	struct rfs_xfer_note note = { 0 };
	ssize_t got = 0;
	int curlcode = 0, rc;
	bool down;

	if (unshare(CLONE_NEWNET) && unshare(CLONE_NEWUSER | CLONE_NEWNET))
		_exit(77);
	rc = get_errno("http://127.0.0.1:9/", &curlcode, &down);
	rfs_conf_init(&conf);
	if (rfs_http_transport_ops.open(&tp, &conf) == 0) {
		char url[] = "http://127.0.0.1:9/x";
		struct rfs_tfile f = { .url = url };

		got = rfs_http_transport_ops.preadv(tp, &f, &iov, 1, 0, 16,
						    &note);
		rfs_http_transport_ops.close(tp);
	}
	printf("# unreachable: curl %d, errno %d, down %d, transport %zd\n",
	       curlcode, rc, down, got);
	fflush(stdout);
	_exit(curlcode == CURLE_COULDNT_CONNECT && rc == -ENETUNREACH && down &&
			      got == -ENETUNREACH
		      ? 0
		      : 1);
}

static void test_connect_errors(void)
{
	char url[64];
	int curlcode = 0, status = 0, rc;
	bool down;
	pid_t pid;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", closed_port());
	CHECK_INT(get_errno(url, &curlcode, &down), -ECONNREFUSED);
	CHECK_INT(curlcode, CURLE_COULDNT_CONNECT);
	CHECK(down);

	fflush(stdout);
	pid = fork();
	if (pid == 0)
		unreachable_child();
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	if (rc == 77)
		UNIT_SKIP("no network namespace here");
	else
		CHECK_INT(rc, 0);
}

int main(void)
{
	CHECK_INT(rfs_transports_global_init(), 0);
	test_header_value();
	test_content_range();
	test_readable_schemes();
	test_errno_from_connect();
	test_errno_from_curl();
	test_connect_errors();
	test_transport_life();
	rfs_transports_global_cleanup();
	return unit_done("http");
}
