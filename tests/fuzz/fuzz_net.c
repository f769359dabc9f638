/*
 * The connection policy (src/util/net.c): the first line is a
 * storage_hosts list, the second a deny_nets list (';'-separated), every
 * further line a host as a URL gives it. A link-local address is never
 * allowed, a refusal always says why, a range holds its own network
 * address, and plain HTTP never gets the token.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "util/net.h"
#include "fuzz.h"

#define MAXLIST 16

/* Splits @s at ';' into @v (NULL-terminated, at most MAXLIST). */
static void split(char *s, char **v)
{
	size_t n = 0;

	while (s && n < MAXLIST) {
		char *semi = strchr(s, ';');

		if (semi)
			*semi = '\0';
		if (*s)
			v[n++] = s;
		s = semi ? semi + 1 : NULL;
	}
	v[n] = NULL;
}

static void check_cidr(const char *s)
{
	struct rfs_cidr c;
	struct sockaddr_storage ss;
	size_t len;

	if (rfs_cidr_parse(s, &c))
		return;
	FUZZ_CHECK(c.family == AF_INET ? c.bits <= 32 : c.bits <= 128);
	memset(&ss, 0, sizeof(ss));
	if (c.family == AF_INET) {
		struct sockaddr_in *in = (void *)&ss;

		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, c.addr, 4);
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (void *)&ss;

		FUZZ_CHECK(c.family == AF_INET6);
		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, c.addr, 16);
		len = sizeof(*in6);
	}
	FUZZ_CHECK(rfs_cidr_contains(&c, (struct sockaddr *)&ss, len));
}

/* True if @host is an address literal inside 169.254/16 or fe80::/10. */
static bool link_local(const char *host)
{
	static const char *const ll[] = { "169.254.0.0/16", "fe80::/10" };
	struct rfs_cidr c, r;
	struct sockaddr_storage ss;
	char buf[80];
	size_t n = strlen(host);

	if (n >= sizeof(buf) || strchr(host, '/') || strchr(host, '%'))
		return false;
	memcpy(buf, host, n + 1);
	if (rfs_cidr_parse(buf, &c))
		return false;
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)c.family;
	if (c.family == AF_INET)
		memcpy(&((struct sockaddr_in *)&ss)->sin_addr, c.addr, 4);
	else
		memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, c.addr, 16);
	for (size_t i = 0; i < 2; i++)
		if (!rfs_cidr_parse(ll[i], &r) &&
		    rfs_cidr_contains(&r, (struct sockaddr *)&ss, sizeof(ss)))
			return true;
	return false;
}

static void check_host(const struct rfs_netpol *p, const char *host)
{
	char why[160] = "";
	bool need = false;
	int rc = rfs_netpol_check_host(p, host, &need, why, sizeof(why));

	FUZZ_CHECK(rc == 0 || rc == -EPERM);
	if (rc)
		FUZZ_CHECK(!strncmp(why, "refused: ", 9));
	if (link_local(host))
		FUZZ_CHECK(rc == -EPERM);
	FUZZ_CHECK(!rfs_netpol_token_ok(p, host, host, false));
	if (strncmp(host, "*.", 2))
		FUZZ_CHECK(rfs_host_matches(host, host));
	check_cidr(host);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size), *line[2] = { NULL, NULL }, *rest = s;
	char *hosts[MAXLIST + 1], *deny[MAXLIST + 1], err[160];
	struct rfs_netpol p;

	for (int i = 0; i < 2 && rest; i++) {
		char *nl = strchr(rest, '\n');

		line[i] = rest;
		if (nl)
			*nl = '\0';
		rest = nl ? nl + 1 : NULL;
	}
	split(line[0], hosts);
	split(line[1], deny);
	if (rfs_netpol_init(&p, hosts, deny, err, sizeof(err)) == 0) {
		while (rest) {
			char *nl = strchr(rest, '\n');

			if (nl)
				*nl = '\0';
			check_host(&p, rest);
			rest = nl ? nl + 1 : NULL;
		}
		rfs_netpol_release(&p);
	}
	free(s);
	return 0;
}
