/*
 * Unit tests for the keyring (src/authz/keyring.c) and the bounded GET
 * under it (rfs_http_fetch), against a real HTTPS issuer on 127.0.0.1:
 * tests/unit/oidc_server.py, with a CA and a server certificate made
 * here by the openssl command, serving discovery and JWKS documents this
 * test writes and logging each request, so fetches are counted, not
 * guessed. Time is the "now" every verification is handed (the keyring
 * keeps no clock of its own), so hours pass without a sleep.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>

#include "authz/keyring.h"
#include "util/http.h"
#include "util/clock.h"
#include "util/http_client.h"
#include "minter.h"
#include "unit.h"

#define T0 ((time_t)1760000000)
#define HOUR 3600

static char *dir;
static pid_t server = -1;
static int port;
static char iss_root[128], iss_path[128];
static EVP_PKEY *rsa, *rsa_new, *ec;
static struct rfs_strv issuers, audiences;
static struct rfs_jwt_policy policy = {
	.issuers = &issuers,
	.audiences = &audiences,
	.skew = 60,
};

/* ---- the issuer's web side ---- */

static char *in_dir(const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (!p)
		abort();
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* Writes DIR/@name whole (a rename: the server never reads half). */
static void put(const char *name, const char *text)
{
	char *tmp = in_dir("put.tmp"), *path = in_dir(name);
	FILE *f = fopen(tmp, "w");

	if (!f || fputs(text, f) == EOF || fclose(f) || rename(tmp, path))
		abort();
	free(tmp);
	free(path);
}

static void drop(const char *name)
{
	char *path = in_dir(name);

	unlink(path);
	free(path);
}

/* How many requests for @path the server has answered (or begun). */
static int served(const char *path)
{
	char *log = in_dir("requests.log"), line[512];
	FILE *f = fopen(log, "r");
	int n = 0;

	free(log);
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		n += !path || !strcmp(line, path);
	}
	fclose(f);
	return n;
}

static int make_certs(void)
{
	char cmd[4096];

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && exec >openssl.log 2>&1 && "
		 "openssl req -x509 -newkey ec -pkeyopt "
		 "ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem "
		 "-days 2 -subj /CN=ruciofs-test-ca && "
		 "openssl req -new -newkey ec -pkeyopt "
		 "ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr "
		 "-subj /CN=127.0.0.1 && "
		 "printf 'subjectAltName=IP:127.0.0.1\\n' >srv.ext && "
		 "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key "
		 "-CAcreateserial -days 2 -extfile srv.ext -out srv.pem",
		 dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *server_script(void)
{
	static char path[4096];
	const char *top = getenv("top_srcdir");

	if (top)
		snprintf(path, sizeof(path), "%s/tests/unit/oidc_server.py",
			 top);
	else /* run by hand from the build tree */
		snprintf(path, sizeof(path), "%.*s/oidc_server.py",
			 (int)(strrchr(__FILE__, '/') - __FILE__), __FILE__);
	return path;
}

/* Its first line, read to its end within 60 s (a loaded machine). */
static bool first_line(int fd, char *buf, size_t size)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	double until = rfs_mono_now() + 60;
	size_t got = 0;

	while (got + 1 < size && !memchr(buf, '\n', got)) {
		double left = until - rfs_mono_now();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)(left * 1000) + 1) != 1)
			return false;
		n = read(fd, buf + got, size - 1 - got);
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	buf[got] = '\0';
	return memchr(buf, '\n', got) != NULL;
}

/* Starts the server; its port from its first line. */
static int start_server(void)
{
	char buf[32] = "";
	bool ok;
	int fds[2];

	if (pipe(fds))
		return -1;
	server = fork();
	if (server == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		execlp("python3", "python3", server_script(), dir,
		       (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	ok = first_line(fds[0], buf, sizeof(buf));
	close(fds[0]);
	if (ok)
		port = (int)strtol(buf, NULL, 10);
	return ok && port > 0 ? 0 : -1;
}

static void stop_server(void)
{
	if (server > 0) {
		kill(server, SIGTERM);
		waitpid(server, NULL, 0);
	}
	server = -1;
}

/* ---- a store in memory, as the cache's metadata would be ---- */

struct stored {
	char iss[128];
	char *doc;
	size_t len;
	time_t at;
};

struct mstore {
	struct stored s[4];
	int loads, saves;
};

static struct stored *slot(struct mstore *m, const char *iss, bool make)
{
	for (int i = 0; i < 4; i++) {
		if (!strcmp(m->s[i].iss, iss))
			return &m->s[i];
		if (make && !m->s[i].iss[0]) {
			snprintf(m->s[i].iss, sizeof(m->s[i].iss), "%s", iss);
			return &m->s[i];
		}
	}
	return NULL;
}

static int ms_load(void *arg, const char *iss, char **json, size_t *len,
		   time_t *fetched)
{
	struct mstore *m = arg;
	struct stored *s = slot(m, iss, false);

	m->loads++;
	if (!s || !s->doc)
		return -ENOENT;
	*json = malloc(s->len + 1);
	if (!*json)
		return -ENOMEM;
	memcpy(*json, s->doc, s->len + 1);
	*len = s->len;
	*fetched = s->at;
	return 0;
}

static int ms_save(void *arg, const char *iss, const char *json, size_t len,
		   time_t fetched)
{
	struct mstore *m = arg;
	struct stored *s = slot(m, iss, true);

	m->saves++;
	if (!s)
		return -ENOSPC;
	free(s->doc);
	s->doc = strndup(json, len);
	s->len = len;
	s->at = fetched;
	return s->doc ? 0 : -ENOMEM;
}

static void ms_release(struct mstore *m)
{
	for (int i = 0; i < 4; i++)
		free(m->s[i].doc);
	memset(m, 0, sizeof(*m));
}

/* ---- tokens ---- */

static char *token(const char *alg, const char *kid, EVP_PKEY *key,
		   const char *issuer, time_t now)
{
	json_t *c = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s}", "iss",
			      issuer, "sub", "alice", "iat", (json_int_t)now,
			      "nbf", (json_int_t)now, "exp",
			      (json_int_t)now + HOUR, "aud", RFS_JWT_AUD_ANY,
			      "wlcg.ver", "1.0", "scope", "storage.read:/cta");
	char *t = mint(alg, kid, key, c);

	json_decref(c);
	return t;
}

/* Verifies a token of @kid (signed by @key) from @issuer minted at @now;
 * "" when accepted, else why not. */
static const char *verify_as(struct rfs_keyring *kr, const char *kid,
			     EVP_PKEY *key, const char *issuer, time_t now)
{
	static char why[64];
	bool ec_key = EVP_PKEY_is_a(key, "EC");
	char *t = token(ec_key ? "ES256" : "RS256", kid, key, issuer, now);
	const char *w = NULL;
	struct rfs_jwt j;
	int rc = rfs_keyring_verify(kr, t, &policy, now, &j, &w);

	if (!rc) {
		snprintf(why, sizeof(why), "%s",
			 strcmp(j.kid, kid) ? "(wrong token out)" : "");
		rfs_jwt_release(&j);
	} else {
		snprintf(why, sizeof(why), "%s", rc == -EACCES ? w : "(rc)");
	}
	free(t);
	return why;
}

static const char *verify(struct rfs_keyring *kr, const char *kid,
			  EVP_PKEY *key, time_t now)
{
	return verify_as(kr, kid, key, iss_root, now);
}

static void publish(EVP_PKEY **keys, const char **kids, int n)
{
	char *doc = mint_jwks(keys, kids, n);

	put("jwks", doc);
	free(doc);
}

/* A keyring for our issuers, trusting our CA or the system's. */
static struct rfs_keyring *keyring(bool our_ca, struct mstore *m)
{
	struct rfs_keyring_store st = { ms_load, ms_save, m };
	char *ca = our_ca ? in_dir("ca.pem") : NULL;
	struct rfs_keyring_opts o = {
		.issuers = &issuers,
		.ca_cert = ca,
		.connect_timeout = 2,
		.io_timeout = 2,
		.store = m ? &st : NULL,
	};
	struct rfs_keyring *kr = NULL;

	if (rfs_keyring_new(&kr, &o))
		abort();
	free(ca);
	return kr;
}

/* ---- the tests ---- */

static void test_fetch_helper(void)
{
	struct rfs_http_opts o = { .connect_timeout = 2, .io_timeout = 2 };
	char *ca = in_dir("ca.pem"), url[256];
	struct rfs_http *h;
	struct rfs_buf b;
	long status = 0;

	o.ca_cert = ca;
	if (rfs_http_new(&h, &o))
		abort();
	put("doc", "{\"a\": 1}");
	put("moved.redirect", "/doc");
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/doc", port);
	rfs_buf_init(&b, 64);
	CHECK_INT(rfs_http_fetch(h, url, &b, &status), 0);
	CHECK_INT(status, 200);
	CHECK_STR(b.data, "{\"a\": 1}");
	rfs_buf_release(&b);
	/* the cap holds */
	rfs_buf_init(&b, 4);
	CHECK_INT(rfs_http_fetch(h, url, &b, &status), -EFBIG);
	rfs_buf_release(&b);
	/* a redirect is an answer: not followed */
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/moved", port);
	rfs_buf_init(&b, 64);
	CHECK_INT(rfs_http_fetch(h, url, &b, &status), 0);
	CHECK_INT(status, 302);
	CHECK_INT(served("/doc"), 2);
	rfs_buf_release(&b);
	/* https only, before anything goes out */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/doc", port);
	rfs_buf_init(&b, 64);
	CHECK_INT(rfs_http_fetch(h, url, &b, &status), -EPROTO);
	CHECK_INT(served("/doc"), 2);
	rfs_buf_release(&b);
	rfs_http_free(h);

	/* a certificate no CA we trust vouches for */
	o.ca_cert = NULL;
	if (rfs_http_new(&h, &o))
		abort();
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/doc", port);
	rfs_buf_init(&b, 64);
	CHECK_INT(rfs_http_fetch(h, url, &b, &status), -EPROTO);
	CHECK_INT(served("/doc"), 2);
	rfs_buf_release(&b);
	rfs_http_free(h);
	free(ca);
}

static void test_refresh(struct rfs_keyring *kr, struct mstore *m)
{
	EVP_PKEY *two[] = { rsa, ec }, *three[] = { rsa, ec, rsa_new };
	const char *kids[] = { "rsa1", "ec1", "rsa2" };
	const char *disc = "/.well-known/openid-configuration";
	time_t t;

	publish(two, kids, 2);
	/* the first verification fetches, the next ones do not */
	CHECK_STR(verify(kr, "rsa1", rsa, T0), "");
	CHECK_INT(served(disc), 1);
	CHECK_INT(served("/jwks"), 1);
	CHECK_INT(m->saves, 1);
	CHECK_INT(m->s[0].at, T0);
	CHECK_STR(verify(kr, "ec1", ec, T0 + 10), "");
	CHECK_INT(served("/jwks"), 1);

	/* an unknown kid refetches, once a minute at most */
	CHECK_STR(verify(kr, "rsa2", rsa_new, T0 + 59), "unknown key id");
	CHECK_INT(served("/jwks"), 1);
	CHECK_STR(verify(kr, "rsa2", rsa_new, T0 + 100), "unknown key id");
	CHECK_INT(served("/jwks"), 2);
	CHECK_STR(verify(kr, "rsa2", rsa_new, T0 + 110), "unknown key id");
	CHECK_INT(served("/jwks"), 2);
	/* the issuer rotates: found at the next allowed refetch */
	publish(three, kids, 3);
	CHECK_STR(verify(kr, "rsa2", rsa_new, T0 + 159), "unknown key id");
	CHECK_INT(served("/jwks"), 2);
	CHECK_STR(verify(kr, "rsa2", rsa_new, T0 + 160), "");
	CHECK_INT(served("/jwks"), 3);
	CHECK_STR(verify(kr, "rsa1", rsa, T0 + 170), "");
	CHECK_STR(verify(kr, "ec1", ec, T0 + HOUR), "");
	CHECK_INT(served("/jwks"), 3);

	/* kept 6 h, then fetched again */
	t = T0 + 160 + 6 * HOUR - 1;
	CHECK_STR(verify(kr, "rsa1", rsa, t), "");
	CHECK_INT(served("/jwks"), 3);
	t += 1;
	CHECK_STR(verify(kr, "rsa1", rsa, t), "");
	CHECK_INT(served("/jwks"), 4);
	CHECK_INT(m->s[0].at, t);

	/* the issuer fails: kept keys serve up to 2 days, tried once a
	 * minute meanwhile */
	put("fail", "");
	CHECK_STR(verify(kr, "rsa1", rsa, t + 6 * HOUR), "");
	CHECK_INT(served(disc), 5);
	CHECK_STR(verify(kr, "rsa1", rsa, t + 6 * HOUR + 59), "");
	CHECK_INT(served(disc), 5);
	CHECK_STR(verify(kr, "rsa1", rsa, t + 2 * 24 * HOUR), "");
	CHECK_INT(served(disc), 6);
	CHECK_STR(verify(kr, "rsa1", rsa, t + 2 * 24 * HOUR + 60),
		  "issuer keys unavailable");
	CHECK_INT(served(disc), 7);
	CHECK_INT(served("/jwks"), 4);
	/* back: the next allowed fetch has them */
	drop("fail");
	CHECK_STR(verify(kr, "rsa1", rsa, t + 2 * 24 * HOUR + 120), "");
	CHECK_INT(served("/jwks"), 5);
	CHECK_INT(m->saves, 5);

	/* the clock steps back two days: the keys' age is unknown, so they
	 * are fetched again, once, and serve meanwhile */
	CHECK_STR(verify(kr, "rsa1", rsa, T0 + 200), "");
	CHECK_INT(served("/jwks"), 6);
	CHECK_STR(verify(kr, "rsa9", rsa, T0 + 201), "unknown key id");
	CHECK_INT(served("/jwks"), 6);
	CHECK_INT(m->s[0].at, T0 + 200);
}

static void test_issuers(struct rfs_keyring *kr)
{
	char doc[512], other[160];
	int before;

	/* an issuer with a path: RFC 8414's spelling is 404, OIDC's is it */
	snprintf(doc, sizeof(doc),
		 "{\"issuer\":\"%s\",\"jwks_uri\":"
		 "\"https://127.0.0.1:%d/realms/cta/certs\"}",
		 iss_path, port);
	put("realms_cta_.well-known_openid-configuration", doc);
	{
		char *jwks = in_dir("jwks"),
		     *certs = in_dir("realms_cta_certs");

		if (link(jwks, certs))
			abort();
		free(jwks);
		free(certs);
	}
	CHECK_STR(verify_as(kr, "ec1", ec, iss_path, T0), "");
	CHECK_INT(served("/.well-known/openid-configuration/realms/cta"), 1);
	CHECK_INT(served("/realms/cta/.well-known/openid-configuration"), 1);
	CHECK_INT(served("/realms/cta/certs"), 1);

	/* not in the allow-list: refused, nobody asked */
	before = served(NULL);
	snprintf(other, sizeof(other), "https://127.0.0.1:%d/other/", port);
	CHECK_STR(verify_as(kr, "rsa1", rsa, other, T0), "issuer not accepted");
	snprintf(other, sizeof(other), "https://127.0.0.1:%d", port);
	CHECK_STR(verify_as(kr, "rsa1", rsa, other, T0), "issuer not accepted");
	CHECK_INT(served(NULL), before);
}

/* jwks_uri over http://, or one that redirects: no keys either way. */
static void test_bad_discovery(void)
{
	struct rfs_keyring *kr;
	char doc[256];
	int before;

	snprintf(doc, sizeof(doc),
		 "{\"jwks_uri\":\"https://127.0.0.1:%d/gone\"}", port);
	put(".well-known_openid-configuration", doc);
	put("gone.redirect", "/jwks");
	before = served("/jwks");
	kr = keyring(true, NULL);
	CHECK_STR(verify(kr, "rsa1", rsa, T0), "issuer keys unavailable");
	CHECK_INT(served("/gone"), 1);
	rfs_keyring_free(kr);

	snprintf(doc, sizeof(doc),
		 "{\"jwks_uri\":\"http://127.0.0.1:%d/jwks\"}", port);
	put(".well-known_openid-configuration", doc);
	kr = keyring(true, NULL);
	CHECK_STR(verify(kr, "rsa1", rsa, T0), "issuer keys unavailable");
	rfs_keyring_free(kr);
	CHECK_INT(served("/jwks"), before);

	/* the system's CAs do not know ours */
	snprintf(doc, sizeof(doc),
		 "{\"jwks_uri\":\"https://127.0.0.1:%d/jwks\"}", port);
	put(".well-known_openid-configuration", doc);
	before = served(NULL);
	kr = keyring(false, NULL);
	CHECK_STR(verify(kr, "rsa1", rsa, T0), "issuer keys unavailable");
	rfs_keyring_free(kr);
	CHECK_INT(served(NULL), before);
}

struct racer {
	struct rfs_keyring *kr;
	const char *why;
};

static void *race(void *arg)
{
	struct racer *r = arg;

	r->why = strdup(verify(r->kr, "ec1", ec, T0));
	return NULL;
}

/* Verifiers that find no keys wait for one fetch, not one each. */
static void test_single_flight(void)
{
	struct rfs_keyring *kr = keyring(true, NULL);
	struct racer r[8];
	pthread_t th[8];
	int before = served("/jwks");

	put("delay", "0.3");
	for (int i = 0; i < 8; i++) {
		r[i].kr = kr;
		pthread_create(&th[i], NULL, race, &r[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		CHECK_STR(r[i].why, "");
		free((char *)r[i].why);
	}
	drop("delay");
	CHECK_INT(served("/jwks"), before + 1);
	rfs_keyring_free(kr);
}

/* With the issuer gone, what the store kept still validates. */
static void test_offline(struct mstore *m)
{
	struct rfs_keyring *kr;
	time_t at = m->s[0].at;
	int loads = m->loads;

	stop_server();
	kr = keyring(true, m);
	CHECK_STR(verify(kr, "rsa1", rsa, at + 60), "");
	CHECK_STR(verify(kr, "ec1", ec, at + 61), "");
	CHECK_INT(m->loads, loads + 1);
	/* older than 6 h: the fetch fails, the stored keys still serve */
	CHECK_STR(verify(kr, "rsa2", rsa_new, at + 7 * HOUR), "");
	/* a kid the store lacks cannot be had offline */
	CHECK_STR(verify(kr, "ec9", ec, at + 8 * HOUR), "unknown key id");
	CHECK_STR(verify(kr, "rsa1", rsa, at + 3 * 24 * HOUR),
		  "issuer keys unavailable");
	CHECK_INT(m->loads, loads + 1);
	rfs_keyring_free(kr);
	/* nothing stored, nobody to ask */
	kr = keyring(true, NULL);
	CHECK_STR(verify(kr, "rsa1", rsa, at), "issuer keys unavailable");
	rfs_keyring_free(kr);
}

static void test_new(void)
{
	struct rfs_strv bad;
	struct rfs_keyring_opts o = { .issuers = &bad };
	struct rfs_keyring *kr = NULL;
	const char *why = NULL;
	struct rfs_jwt j;

	rfs_strv_init(&bad);
	rfs_strv_push(&bad, "http://iam.example/");
	CHECK_INT(rfs_keyring_new(&kr, &o), -EINVAL);
	rfs_strv_release(&bad);
	/* not a token at all */
	o.issuers = &issuers;
	CHECK_INT(rfs_keyring_new(&kr, &o), 0);
	CHECK_INT(rfs_keyring_verify(kr, "not.a.token", &policy, T0, &j, &why),
		  -EACCES);
	CHECK_STR(why, "malformed token");
	CHECK_INT(served(NULL), 0);
	rfs_keyring_free(kr);
	/* none accepted: every token refused, nothing fetched */
	o.issuers = NULL;
	CHECK_INT(rfs_keyring_new(&kr, &o), 0);
	CHECK_STR(verify(kr, "rsa1", rsa, T0), "issuer not accepted");
	rfs_keyring_free(kr);
}

static bool setup(void)
{
	char doc[256];

	dir = unit_mkdtemp("keyring");
	if (!dir || make_certs()) {
		UNIT_SKIP("no openssl command to make certificates");
		return false;
	}
	if (start_server()) {
		UNIT_SKIP("no python3 to serve %s", server_script());
		stop_server();
		return false;
	}
	snprintf(iss_root, sizeof(iss_root), "https://127.0.0.1:%d/", port);
	snprintf(iss_path, sizeof(iss_path), "https://127.0.0.1:%d/realms/cta",
		 port);
	rfs_strv_push(&issuers, iss_root);
	rfs_strv_push(&issuers, iss_path);
	snprintf(doc, sizeof(doc),
		 "{\"issuer\":\"%s\",\"jwks_uri\":\"https://127.0.0.1:%d/"
		 "jwks\"}",
		 iss_root, port);
	put(".well-known_openid-configuration", doc);
	return true;
}

int main(void)
{
	struct mstore m = { 0 };
	struct rfs_keyring *kr;

	rfs_strv_init(&issuers);
	rfs_strv_init(&audiences);
	if (rfs_http_global_init())
		abort();
	rsa = mint_rsa_key(2048);
	rsa_new = mint_rsa_key(2048);
	ec = mint_ec_key();
	if (setup()) {
		test_new();
		test_fetch_helper();
		kr = keyring(true, &m);
		test_refresh(kr, &m);
		test_issuers(kr);
		rfs_keyring_free(kr);
		test_single_flight();
		test_bad_discovery();
		test_offline(&m);
	}
	stop_server();
	unit_rmtree(dir);
	free(dir);
	ms_release(&m);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(rsa_new);
	EVP_PKEY_free(ec);
	rfs_strv_release(&issuers);
	rfs_strv_release(&audiences);
	rfs_http_global_cleanup();
	return unit_done("test_keyring");
}
