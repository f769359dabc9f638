/*
 * The transport registry's sessions, with a fake transport that counts
 * what it is asked: one session per (endpoint, identity), opened once for
 * concurrent openers, tried again after a failure, kept when idle.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>

#include "conf/conf.h"
#include "transport/transport.h"
#include "util/buf.h"
#include "unit.h"

static int session_opens, session_closes, file_opens, file_closes;
static int fail_next_session;
static unsigned slow_open_us;

static int fake_session_open(struct rfs_transport *t, struct rfs_tsession *s,
			     const struct rfs_who *who)
{
	(void)t;
	(void)who;
	usleep(slow_open_us); /* the others wait for this one */
	__atomic_add_fetch(&session_opens, 1, __ATOMIC_RELAXED);
	if (fail_next_session) {
		fail_next_session = 0;
		return -ECONNREFUSED;
	}
	s->priv = s;
	return 0;
}

static void fake_session_close(struct rfs_transport *t, struct rfs_tsession *s)
{
	(void)t;
	CHECK(s->priv == s);
	session_closes++;
}

static int fake_open_file(struct rfs_transport *t, struct rfs_tfile *f)
{
	(void)t;
	__atomic_add_fetch(&file_opens, 1, __ATOMIC_RELAXED);
	f->priv = f->sess;
	return 0;
}

static void fake_close_file(struct rfs_transport *t, struct rfs_tfile *f)
{
	(void)t;
	CHECK(f->priv == f->sess);
	file_closes++;
}

static ssize_t fake_preadv(struct rfs_transport *t, struct rfs_tfile *f,
			   const struct iovec *iov, int iovcnt, uint64_t off,
			   uint64_t size, struct rfs_xfer_note *note)
{
	char *bearer = NULL;
	int rc = f->who->bearer(f->who->arg, &bearer);

	(void)t;
	(void)off;
	(void)size;
	(void)note;
	if (rc)
		return rc;
	/* the identity's own credential, for this file */
	snprintf(iov[0].iov_base, iov[0].iov_len, "%s %s", bearer, f->url);
	free(bearer);
	return iovcnt;
}

static const char *const fake_schemes[] = { "fake", NULL };
static const struct rfs_transport_ops fake_ops = {
	.name = "fake",
	.schemes = fake_schemes,
	.session_open = fake_session_open,
	.session_close = fake_session_close,
	.open_file = fake_open_file,
	.preadv = fake_preadv,
	.close_file = fake_close_file,
};

static int bearer_of(void *arg, char **out)
{
	*out = strdup(arg);
	return *out ? 0 : -ENOMEM;
}

static struct rfs_transport fake = { &fake_ops };
static struct rfs_who alice = { "alice", bearer_of, "tok-a" };
static struct rfs_who bob = { "bob", bearer_of, "tok-b" };

static struct rfs_transports *new_registry(void)
{
	struct rfs_transports *ts = NULL;
	struct rfs_conf conf;

	rfs_conf_init(&conf);
	CHECK_INT(rfs_transports_open(&ts, &conf), 0);
	return ts;
}

static void test_sessions_per_endpoint_and_identity(void)
{
	struct rfs_transports *ts = new_registry();
	struct rfs_tfile *f[4] = { 0 };
	char buf[64], hex[16];
	struct iovec iov = { buf, sizeof(buf) };
	size_t busy, idle;

	session_opens = session_closes = file_opens = file_closes = 0;
	CHECK_INT(rfs_transport_open_file(ts, &fake, "fake://h:1/a", &alice,
					  &f[0]),
		  0);
	CHECK_INT(rfs_transport_open_file(ts, &fake, "fake://h:1/b?x", &alice,
					  &f[1]),
		  0);
	CHECK_INT(
		rfs_transport_open_file(ts, &fake, "fake://h:1/a", &bob, &f[2]),
		0);
	CHECK_INT(rfs_transport_open_file(ts, &fake, "fake://h:2/a", &alice,
					  &f[3]),
		  0);
	CHECK_INT(session_opens, 3); /* (h:1, alice), (h:1, bob), (h:2, a.) */
	CHECK_INT(file_opens, 4);
	CHECK(f[0]->sess == f[1]->sess);
	CHECK(f[0]->sess != f[2]->sess && f[0]->sess != f[3]->sess);
	CHECK_STR(f[0]->sess->endpoint, "fake://h:1");
	CHECK_STR(f[2]->sess->key, "bob");
	CHECK_INT(rfs_transport_preadv(f[2], &iov, 1, 0, 1, NULL), 1);
	CHECK_STR(buf, "tok-b fake://h:1/a");
	/* optional operations the fake lacks: the read path falls back */
	CHECK_INT(
		rfs_transport_checksum(f[2], "adler32", hex, sizeof(hex), NULL),
		-EOPNOTSUPP);
	CHECK_INT((int)rfs_transport_readv(f[2], NULL, 0, 1, NULL),
		  -EOPNOTSUPP);
	rfs_transports_sessions(ts, &busy, &idle);
	CHECK_INT(busy, 3);
	CHECK_INT(idle, 0);
	for (int i = 0; i < 4; i++)
		rfs_transport_close_file(ts, f[i]);
	CHECK_INT(file_closes, 4);
	/* kept for the next file: no new login */
	rfs_transports_sessions(ts, &busy, &idle);
	CHECK_INT(busy, 0);
	CHECK_INT(idle, 3);
	CHECK_INT(session_closes, 0);
	CHECK_INT(rfs_transport_open_file(ts, &fake, "fake://h:1/c", &alice,
					  &f[0]),
		  0);
	CHECK_INT(session_opens, 3);
	rfs_transport_close_file(ts, f[0]);
	rfs_transports_close(ts);
	CHECK_INT(session_closes, 3);
}

static void test_failed_session_is_tried_again(void)
{
	struct rfs_transports *ts = new_registry();
	struct rfs_tfile *f = NULL;

	session_opens = session_closes = 0;
	fail_next_session = 1;
	CHECK_INT(
		rfs_transport_open_file(ts, &fake, "fake://h:1/a", &alice, &f),
		-ECONNREFUSED);
	CHECK(f == NULL);
	CHECK_INT(
		rfs_transport_open_file(ts, &fake, "fake://h:1/a", &alice, &f),
		0);
	CHECK_INT(session_opens, 2);
	rfs_transport_close_file(ts, f);
	rfs_transports_close(ts);
	CHECK_INT(session_closes, 1); /* the failed one was never open */
	CHECK_INT(rfs_transport_open_file(NULL, &fake, "no-scheme", &alice, &f),
		  -EINVAL);
}

static struct rfs_transports *shared;

static void *opener(void *arg)
{
	struct rfs_tfile **out = arg;

	CHECK_INT(rfs_transport_open_file(shared, &fake, "fake://h:9/x", &alice,
					  out),
		  0);
	return NULL;
}

static void test_concurrent_openers_share_one_login(void)
{
	pthread_t t[8];
	struct rfs_tfile *f[8] = { 0 };

	shared = new_registry();
	session_opens = 0;
	slow_open_us = 100000;
	for (int i = 0; i < 8; i++)
		CHECK_INT(pthread_create(&t[i], NULL, opener, &f[i]), 0);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	slow_open_us = 0;
	CHECK_INT(session_opens, 1);
	for (int i = 0; i < 8; i++)
		CHECK(f[i] && f[i]->sess == f[0]->sess);
	for (int i = 0; i < 8; i++)
		rfs_transport_close_file(shared, f[i]);
	rfs_transports_close(shared);
}

static void test_idle_sessions_are_bounded(void)
{
	struct rfs_transports *ts = new_registry();
	char url[64];
	size_t busy, idle;

	session_opens = session_closes = 0;
	for (int i = 0; i < 100; i++) {
		struct rfs_tfile *f = NULL;

		snprintf(url, sizeof(url), "fake://host%d:1094/f", i);
		CHECK_INT(rfs_transport_open_file(ts, &fake, url, &alice, &f),
			  0);
		rfs_transport_close_file(ts, f);
	}
	rfs_transports_sessions(ts, &busy, &idle);
	CHECK_INT(busy, 0);
	CHECK(idle > 0 && idle <= 64);
	CHECK_INT(session_closes, 100 - (int)idle);
	rfs_transports_close(ts);
	CHECK_INT(session_closes, 100);
}

static void test_http_normalizes_its_urls(void)
{
	struct rfs_transports *ts = new_registry();
	struct rfs_transport *http = rfs_transports_find(ts, "davs://h/x");
	struct rfs_buf b;

	CHECK(http && (http->ops->caps & RFS_TP_TLS));
	CHECK((http->ops->caps & RFS_TP_VECTOR) && http->ops->readv);
	rfs_buf_init(&b, 4096);
	CHECK_INT(rfs_transport_normalize(http, &b, "davs://h/a b#c"), 0);
	CHECK_STR(b.data, "davs://h/a%20b%23c");
	rfs_buf_release(&b);
	rfs_transports_close(ts);
}

int main(void)
{
	test_sessions_per_endpoint_and_identity();
	test_failed_session_is_tried_again();
	test_concurrent_openers_share_one_login();
	test_idle_sessions_are_bounded();
	test_http_normalizes_its_urls();
	return unit_done("transport");
}
