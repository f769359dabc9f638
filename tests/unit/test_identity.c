/*
 * Identities: a userpass login made once for concurrent callers, renewed
 * when due or refused, not retried at once after a failure; a token file
 * read as it is; what storage is shown of each.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>

#include "authz/identity.h"
#include "authz/token.h"
#include "conf/conf.h"
#include "unit.h"

static int logins, fail_logins;
static time_t renew_in = 3600;

static int fake_login(void *arg, char **token, time_t *renew)
{
	char t[64];

	(void)arg;
	usleep(50000); /* the others come meanwhile */
	__atomic_add_fetch(&logins, 1, __ATOMIC_RELAXED);
	if (fail_logins)
		return -EACCES;
	snprintf(t, sizeof(t), "rucio-token-%d", logins);
	*token = strdup(t);
	*renew = time(NULL) + renew_in;
	return *token ? 0 : -ENOMEM;
}

static struct rfs_conf userpass_conf(void)
{
	struct rfs_conf c;

	rfs_conf_init(&c);
	c.auth_type = RFS_AUTH_USERPASS;
	c.username = "alice";
	c.auth_host = "https://auth.example";
	return c;
}

static struct rfs_identity *shared;

static void *ask(void *arg)
{
	char *t = NULL;
	unsigned gen;

	(void)arg;
	CHECK_INT(rfs_identity_catalog_token(shared, &t, &gen), 0);
	CHECK_STR(t ? t : "", "rucio-token-1");
	rfs_token_free(t);
	return NULL;
}

static void test_one_login_for_all(void)
{
	struct rfs_conf c = userpass_conf();
	struct rfs_login lo = { fake_login, NULL };
	pthread_t th[8];
	char *t = NULL;

	logins = 0;
	CHECK_INT(rfs_identity_new(&shared, &c, "mount", &lo), 0);
	CHECK_STR(rfs_identity_key(shared), "mount");
	CHECK(rfs_identity_logs_in(shared));
	CHECK_STR(rfs_identity_where(shared), "userpass login as 'alice'");
	for (int i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, ask, NULL);
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	CHECK_INT(logins, 1);
	/* a Rucio token means nothing to storage */
	CHECK_INT(rfs_identity_storage_token(shared, &t), 0);
	CHECK(t == NULL);
	rfs_identity_put(shared);
}

static void test_refused_and_due_tokens_are_renewed(void)
{
	struct rfs_conf c = userpass_conf();
	struct rfs_login lo = { fake_login, NULL };
	struct rfs_identity *id;
	unsigned gen, gen2;
	char *t = NULL;

	logins = 0;
	CHECK_INT(rfs_identity_new(&id, &c, "mount", &lo), 0);
	CHECK_INT(rfs_identity_catalog_token(id, &t, &gen), 0);
	rfs_token_free(t);
	CHECK_INT(rfs_identity_catalog_token(id, &t, &gen2), 0);
	CHECK_STR(t, "rucio-token-1");
	CHECK_INT(gen, gen2);
	rfs_token_free(t);
	/* a 401: one new login, even if several saw the refusal */
	rfs_identity_refused(id, gen);
	rfs_identity_refused(id, gen);
	CHECK_INT(rfs_identity_catalog_token(id, &t, &gen), 0);
	CHECK_STR(t, "rucio-token-2");
	rfs_token_free(t);
	rfs_identity_refused(id, gen2); /* an old login's: nothing to do */
	CHECK_INT(rfs_identity_catalog_token(id, &t, &gen), 0);
	CHECK_STR(t, "rucio-token-2");
	rfs_token_free(t);
	CHECK_INT(logins, 2);
	rfs_identity_put(id);

	/* due for renewal: a login at the next use, the new token used */
	renew_in = 0;
	logins = 0;
	CHECK_INT(rfs_identity_new(&id, &c, "mount", &lo), 0);
	CHECK_INT(rfs_identity_catalog_token(id, &t, &gen), 0);
	CHECK_STR(t, "rucio-token-1");
	rfs_token_free(t);
	CHECK_INT(rfs_identity_catalog_token(id, &t, &gen), 0);
	CHECK_STR(t, "rucio-token-2");
	rfs_token_free(t);
	renew_in = 3600;
	rfs_identity_put(id);
}

static void test_failed_login_waits_a_second(void)
{
	struct rfs_conf c = userpass_conf();
	struct rfs_login lo = { fake_login, NULL };
	struct rfs_identity *id;
	unsigned gen;
	char *t = NULL;

	logins = 0;
	fail_logins = 1;
	CHECK_INT(rfs_identity_new(&id, &c, "mount", &lo), 0);
	CHECK_INT(rfs_identity_catalog_token(id, &t, &gen), -EACCES);
	CHECK_INT(rfs_identity_catalog_token(id, &t, &gen), -EACCES);
	CHECK_INT(logins, 1);
	fail_logins = 0;
	usleep(1100000);
	CHECK_INT(rfs_identity_catalog_token(id, &t, &gen), 0);
	CHECK_INT(logins, 2);
	rfs_token_free(t);
	rfs_identity_put(id);
}

static void test_token_file(void)
{
	static const char jwt[] = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";
	char *dir = unit_mkdtemp("identity"), path[512], *t = NULL;
	struct rfs_conf c;
	struct rfs_login lo = { fake_login, NULL };
	struct rfs_identity *id;
	unsigned gen;
	int fd;

	snprintf(path, sizeof(path), "%s/token", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && write(fd, jwt, strlen(jwt)) == (ssize_t)strlen(jwt));
	close(fd);
	rfs_conf_init(&c);
	c.auth_type = RFS_AUTH_TOKEN;
	c.token_file = path;
	logins = 0;
	CHECK_INT(rfs_identity_new(&id, &c, "mount", &lo), 0);
	CHECK(!rfs_identity_logs_in(id));
	CHECK(strstr(rfs_identity_where(id), path) != NULL);
	CHECK_INT(rfs_identity_catalog_token(id, &t, &gen), 0);
	CHECK_STR(t, jwt);
	rfs_token_free(t);
	/* a JWT goes to storage too */
	CHECK_INT(rfs_identity_storage_token(id, &t), 0);
	CHECK_STR(t ? t : "", jwt);
	rfs_token_free(t);
	CHECK_INT(logins, 0);
	rfs_identity_put(id);
	unlink(path);
	rmdir(dir);
	free(dir);
}

static void test_bearer(void)
{
	static const char tok[] = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiIn0.c2ln";
	struct rfs_strv groups;
	struct rfs_bearer b = { tok,	   "/run/user/1001/bt_u1001",
				"bob-sub", 12345,
				&groups,   1001 };
	struct rfs_identity *id = NULL, *again;
	unsigned gen;
	char *t = NULL;

	rfs_strv_init(&groups);
	rfs_strv_push(&groups, "/escape/cta");
	CHECK_INT(rfs_identity_new_bearer(&id, "u1001:abcd", &b), 0);
	rfs_strv_release(&groups); /* copied */
	CHECK(rfs_identity_is_bearer(id));
	CHECK(!rfs_identity_logs_in(id));
	CHECK_STR(rfs_identity_key(id), "u1001:abcd");
	CHECK_STR(rfs_identity_sub(id), "bob-sub");
	CHECK_STR(rfs_identity_where(id), "/run/user/1001/bt_u1001");
	CHECK(rfs_identity_in_group(id, "/escape/cta"));
	CHECK(!rfs_identity_in_group(id, "/escape"));
	CHECK(rfs_identity_expires(id) == 12345);
	/* the same token to the catalogue and to storage */
	CHECK_INT(rfs_identity_catalog_token(id, &t, &gen), 0);
	CHECK_STR(t, tok);
	rfs_token_free(t);
	CHECK_INT(rfs_identity_storage_token(id, &t), 0);
	CHECK_STR(t ? t : "", tok);
	rfs_token_free(t);
	/* a 401: the caller's to renew, never a login */
	CHECK(!rfs_identity_was_refused(id));
	rfs_identity_refused(id, gen);
	CHECK(rfs_identity_was_refused(id));
	again = rfs_identity_get(id);
	rfs_identity_put(id);
	CHECK_STR(rfs_identity_key(again), "u1001:abcd");
	rfs_identity_put(again);
}

int main(void)
{
	test_one_login_for_all();
	test_refused_and_due_tokens_are_renewed();
	test_failed_login_waits_a_second();
	test_token_file();
	test_bearer();
	return unit_done("identity");
}
