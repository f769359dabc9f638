/*
 * Unit tests for src/util/net.c: which addresses and hosts the daemon may
 * connect to for bytes, and which of them see the bearer token. The
 * link-local rules are tested here, on the pure functions: no test may
 * make the daemon try such an address.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include "util/net.h"
#include "unit.h"

/* @text as a sockaddr of its family, for the checks. */
static const struct sockaddr *sa_of(const char *text, size_t *len)
{
	static struct sockaddr_storage ss;
	struct sockaddr_in *in = (void *)&ss;
	struct sockaddr_in6 *in6 = (void *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		*len = sizeof(*in);
	} else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		*len = sizeof(*in6);
	} else {
		printf("# bad test address %s\n", text);
		abort();
	}
	return (const struct sockaddr *)&ss;
}

static bool in_range(const char *cidr, const char *addr)
{
	struct rfs_cidr c;
	size_t len;
	const struct sockaddr *sa;

	if (rfs_cidr_parse(cidr, &c))
		return false;
	sa = sa_of(addr, &len);
	return rfs_cidr_contains(&c, sa, len);
}

static void test_cidr(void)
{
	struct rfs_cidr c;

	CHECK_INT(rfs_cidr_parse("169.254.0.0/16", &c), 0);
	CHECK_INT(c.family, AF_INET);
	CHECK_INT(c.bits, 16);
	CHECK_INT(rfs_cidr_parse("10.1.2.3", &c), 0);
	CHECK_INT(c.bits, 32);
	CHECK_INT(rfs_cidr_parse("fe80::/10", &c), 0);
	CHECK_INT(c.family, AF_INET6);
	CHECK_INT(rfs_cidr_parse("[::1]/128", &c), 0);
	CHECK_INT(rfs_cidr_parse("[2001:db8::1]", &c), 0);
	CHECK_INT(c.bits, 128);
	CHECK_INT(rfs_cidr_parse("0.0.0.0/0", &c), 0);
	/* a mapped range is the IPv4 range it maps */
	CHECK_INT(rfs_cidr_parse("::ffff:169.254.0.0/112", &c), 0);
	CHECK_INT(c.family, AF_INET);
	CHECK_INT(c.bits, 16);
	/* host bits below the prefix, bad prefixes, not addresses */
	CHECK_INT(rfs_cidr_parse("10.1.2.3/8", &c), -EINVAL);
	CHECK_INT(rfs_cidr_parse("fe80::1/10", &c), -EINVAL);
	CHECK_INT(rfs_cidr_parse("10.0.0.0/33", &c), -EINVAL);
	CHECK_INT(rfs_cidr_parse("::/129", &c), -EINVAL);
	CHECK_INT(rfs_cidr_parse("10.0.0.0/", &c), -EINVAL);
	CHECK_INT(rfs_cidr_parse("10.0.0.0/-1", &c), -EINVAL);
	CHECK_INT(rfs_cidr_parse("10.0.0.0/0008", &c), -EINVAL);
	CHECK_INT(rfs_cidr_parse("10.0.0/8", &c), -EINVAL);
	CHECK_INT(rfs_cidr_parse("0xa9fea9fe", &c), -EINVAL);
	CHECK_INT(rfs_cidr_parse("example.org", &c), -EINVAL);
	CHECK_INT(rfs_cidr_parse("", &c), -EINVAL);
	CHECK_INT(rfs_cidr_parse("[]", &c), -EINVAL);
	CHECK_INT(rfs_cidr_parse("[::1", &c), -EINVAL);

	CHECK(in_range("169.254.0.0/16", "169.254.169.254"));
	CHECK(in_range("169.254.0.0/16", "169.254.0.0"));
	CHECK(in_range("169.254.0.0/16", "169.254.255.255"));
	CHECK(!in_range("169.254.0.0/16", "169.253.255.255"));
	CHECK(!in_range("169.254.0.0/16", "169.255.0.0"));
	/* the IPv4-mapped form of an IPv4 address is that address */
	CHECK(in_range("169.254.0.0/16", "::ffff:169.254.169.254"));
	CHECK(!in_range("169.254.0.0/16", "::ffff:169.255.0.1"));
	CHECK(in_range("::ffff:169.254.0.0/112", "169.254.1.1"));
	/* and an IPv6 range that covers the mapped space holds it */
	CHECK(in_range("::/0", "169.254.1.1"));
	CHECK(in_range("::ffff:0:0/96", "10.0.0.1"));
	CHECK(!in_range("fe80::/10", "169.254.1.1"));
	/* fe80::/10 is fe80:: to febf:ffff:... */
	CHECK(in_range("fe80::/10", "fe80::1"));
	CHECK(in_range("fe80::/10", "febf:ffff::1"));
	CHECK(!in_range("fe80::/10", "fec0::1"));
	CHECK(!in_range("fe80::/10", "fe7f::1"));
	CHECK(!in_range("fe80::/10", "::1"));
	/* a bare IPv6 address never matches an IPv4 range */
	CHECK(!in_range("0.0.0.0/0", "::1"));
	CHECK(in_range("0.0.0.0/0", "127.0.0.1"));
	CHECK(in_range("127.0.0.2", "127.0.0.2"));
	CHECK(!in_range("127.0.0.2", "127.0.0.1"));
	CHECK(in_range("10.0.0.0/9", "10.127.255.255"));
	CHECK(!in_range("10.0.0.0/9", "10.128.0.0"));
}

static void test_host_matches(void)
{
	CHECK(rfs_host_matches("*.example.org", "se1.example.org"));
	CHECK(rfs_host_matches("*.example.org", "a.b.example.org"));
	CHECK(rfs_host_matches("*.example.org", "SE1.Example.ORG."));
	CHECK(!rfs_host_matches("*.example.org", "example.org"));
	CHECK(!rfs_host_matches("*.example.org", "badexample.org"));
	CHECK(!rfs_host_matches("*.example.org", "se1.example.org.evil"));
	CHECK(!rfs_host_matches("*.example.org", ".example.org"));
	CHECK(rfs_host_matches("se1.example.org", "SE1.example.org"));
	CHECK(rfs_host_matches("se1.example.org.", "se1.example.org"));
	CHECK(!rfs_host_matches("se1.example.org", "se2.example.org"));
	CHECK(!rfs_host_matches("se1.example.org", "x.se1.example.org"));
	CHECK(!rfs_host_matches("*.", "a."));
}

static int pol(struct rfs_netpol *p, const char *hosts, const char *deny)
{
	static char buf[2][256];
	static char *lists[2][8];
	const char *src[2] = { hosts, deny };
	char err[128];

	for (int l = 0; l < 2; l++) {
		size_t n = 0;
		char *save = NULL;

		snprintf(buf[l], sizeof(buf[l]), "%s", src[l] ? src[l] : "");
		for (char *t = strtok_r(buf[l], ";", &save); t && n < 7;
		     t = strtok_r(NULL, ";", &save))
			lists[l][n++] = t;
		lists[l][n] = NULL;
	}
	return rfs_netpol_init(p, hosts ? lists[0] : NULL,
			       deny ? lists[1] : NULL, err, sizeof(err));
}

static int host_verdict(const struct rfs_netpol *p, const char *host,
			bool *need_range, char *why)
{
	why[0] = '\0';
	return rfs_netpol_check_host(p, host, need_range, why, 160);
}

static int addr_verdict(const struct rfs_netpol *p, const char *addr,
			bool need_range, char *why)
{
	size_t len;
	const struct sockaddr *sa = sa_of(addr, &len);

	why[0] = '\0';
	return rfs_netpol_check_addr(p, sa, len, need_range, why, 160);
}

static void test_default_policy(void)
{
	struct rfs_netpol p;
	char why[160];
	bool need;

	CHECK_INT(pol(&p, NULL, NULL), 0);
	CHECK(!p.restricted);
	/* any name, any address but the link-local ones */
	CHECK_INT(host_verdict(&p, "se1.example.org", &need, why), 0);
	CHECK(!need);
	CHECK_INT(host_verdict(&p, "127.0.0.1", &need, why), 0);
	CHECK_INT(host_verdict(&p, "[::1]", &need, why), 0);
	CHECK_INT(host_verdict(&p, "169.254.169.254", &need, why), -EPERM);
	CHECK_STR(why, "refused: address 169.254.169.254 is link-local");
	CHECK_INT(host_verdict(&p, "[fe80::1]", &need, why), -EPERM);
	CHECK_STR(why, "refused: address fe80::1 is link-local");
	CHECK_INT(host_verdict(&p, "[fe80::1%25eth0]", &need, why), -EPERM);
	CHECK_INT(host_verdict(&p, "[::ffff:169.254.169.254]", &need, why),
		  -EPERM);
	CHECK_INT(host_verdict(&p, "[febf::1]", &need, why), -EPERM);
	CHECK_INT(host_verdict(&p, "[fec0::1]", &need, why), 0);
	/* what a name resolves to is judged at connect time */
	CHECK_INT(addr_verdict(&p, "169.254.169.254", false, why), -EPERM);
	CHECK_STR(why, "refused: address 169.254.169.254 is link-local");
	CHECK_INT(addr_verdict(&p, "::ffff:169.254.169.254", false, why),
		  -EPERM);
	CHECK_INT(addr_verdict(&p, "fe80::fc:ff:fe00:1", false, why), -EPERM);
	CHECK_INT(addr_verdict(&p, "169.255.0.1", false, why), 0);
	CHECK_INT(addr_verdict(&p, "192.0.2.7", false, why), 0);
	CHECK_INT(addr_verdict(&p, "2001:db8::7", false, why), 0);
	rfs_netpol_release(&p);

	/* deny_nets adds to the link-local ranges */
	CHECK_INT(pol(&p, NULL, "127.0.0.2/32;fd00::/8"), 0);
	CHECK_INT(host_verdict(&p, "127.0.0.2", &need, why), -EPERM);
	CHECK_STR(why, "refused: address 127.0.0.2 is in deny_nets");
	CHECK_INT(host_verdict(&p, "127.0.0.1", &need, why), 0);
	CHECK_INT(host_verdict(&p, "169.254.1.1", &need, why), -EPERM);
	CHECK_STR(why, "refused: address 169.254.1.1 is link-local");
	CHECK_INT(addr_verdict(&p, "fd00::2", false, why), -EPERM);
	CHECK_INT(addr_verdict(&p, "::ffff:127.0.0.2", false, why), -EPERM);
	rfs_netpol_release(&p);
}

static void test_storage_hosts(void)
{
	struct rfs_netpol p;
	char why[160];
	bool need;

	CHECK_INT(pol(&p, "*.example.org;se.other.net", NULL), 0);
	CHECK(p.restricted);
	CHECK_INT(host_verdict(&p, "se1.example.org", &need, why), 0);
	CHECK(!need);
	CHECK_INT(host_verdict(&p, "SE.other.net", &need, why), 0);
	CHECK_INT(host_verdict(&p, "evil.org", &need, why), -EPERM);
	CHECK_STR(why, "refused: host evil.org is not in storage_hosts");
	CHECK_INT(host_verdict(&p, "127.0.0.1", &need, why), -EPERM);
	CHECK_STR(why, "refused: address 127.0.0.1 is not in storage_hosts");
	/* a listed name still never reaches a link-local address */
	CHECK_INT(addr_verdict(&p, "169.254.169.254", need, why), -EPERM);
	rfs_netpol_release(&p);

	/* ranges: addresses in them, and names whose addresses all are */
	CHECK_INT(pol(&p, "localhost;192.0.2.0/24;2001:db8::/32", NULL), 0);
	CHECK_INT(host_verdict(&p, "192.0.2.9", &need, why), 0);
	CHECK_INT(host_verdict(&p, "[2001:db8::5]", &need, why), 0);
	CHECK_INT(host_verdict(&p, "198.51.100.1", &need, why), -EPERM);
	CHECK_INT(host_verdict(&p, "localhost", &need, why), 0);
	CHECK(!need);
	CHECK_INT(host_verdict(&p, "se.example.org", &need, why), 0);
	CHECK(need);
	CHECK_INT(addr_verdict(&p, "192.0.2.200", need, why), 0);
	CHECK_INT(addr_verdict(&p, "198.51.100.1", need, why), -EPERM);
	CHECK_STR(why, "refused: address 198.51.100.1 is not in storage_hosts");
	rfs_netpol_release(&p);

	/* a range never opens the link-local ones */
	CHECK_INT(pol(&p, "0.0.0.0/0", NULL), 0);
	CHECK_INT(host_verdict(&p, "169.254.169.254", &need, why), -EPERM);
	CHECK_STR(why, "refused: address 169.254.169.254 is link-local");
	rfs_netpol_release(&p);
}

static void test_bad_lists(void)
{
	struct rfs_netpol p;
	char err[128] = "";
	char *bad_host[] = { "se1.example.org", "se*.example.org", NULL };
	char *bad_net[] = { "10.0.0.0/8", "example.org", NULL };
	char *bad_mask[] = { "10.1.0.0/8", NULL };
	char *star[] = { "*", NULL };
	char *colon[] = { "se1.example.org:443", NULL };

	CHECK_INT(rfs_netpol_init(&p, bad_host, NULL, err, sizeof(err)),
		  -EINVAL);
	CHECK_STR(err, "storage_hosts: 'se*.example.org' is not a host name, "
		       "*.pattern or range");
	CHECK_INT(rfs_netpol_init(&p, NULL, bad_net, err, sizeof(err)),
		  -EINVAL);
	CHECK_STR(err, "deny_nets: 'example.org' is not an address range");
	CHECK_INT(rfs_netpol_init(&p, NULL, bad_mask, err, sizeof(err)),
		  -EINVAL);
	CHECK_INT(rfs_netpol_init(&p, star, NULL, err, sizeof(err)), -EINVAL);
	CHECK_INT(rfs_netpol_init(&p, colon, NULL, err, sizeof(err)), -EINVAL);
}

static void test_token(void)
{
	struct rfs_netpol p;

	CHECK_INT(pol(&p, NULL, NULL), 0);
	/* the replica's own host, over TLS only */
	CHECK(rfs_netpol_token_ok(&p, "se1.example.org", "se1.example.org",
				  true));
	CHECK(rfs_netpol_token_ok(&p, "se1.example.org", "SE1.example.org.",
				  true));
	CHECK(!rfs_netpol_token_ok(&p, "se1.example.org", "se1.example.org",
				   false));
	/* without storage_hosts, no redirect takes it elsewhere */
	CHECK(!rfs_netpol_token_ok(&p, "se1.example.org", "pool.example.org",
				   true));
	CHECK(!rfs_netpol_token_ok(&p, "127.0.0.1", "localhost", true));
	rfs_netpol_release(&p);

	CHECK_INT(pol(&p, "*.example.org;192.0.2.0/24", NULL), 0);
	CHECK(rfs_netpol_token_ok(&p, "door.example.org", "pool.example.org",
				  true));
	CHECK(!rfs_netpol_token_ok(&p, "door.example.org", "pool.example.org",
				   false));
	CHECK(!rfs_netpol_token_ok(&p, "door.example.org", "evil.org", true));
	CHECK(rfs_netpol_token_ok(&p, "door.example.org", "192.0.2.5", true));
	CHECK(!rfs_netpol_token_ok(&p, "door.example.org", "198.51.100.5",
				   true));
	/* a name allowed by its addresses only is not trusted with it */
	CHECK(!rfs_netpol_token_ok(&p, "door.example.org", "x.other.net",
				   true));
	rfs_netpol_release(&p);
}

int main(void)
{
	test_cidr();
	test_host_matches();
	test_default_policy();
	test_storage_hosts();
	test_bad_lists();
	test_token();
	return unit_done("net");
}
