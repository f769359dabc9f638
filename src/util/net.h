/*
 * Where the daemon may connect for bytes: address ranges, host name
 * patterns and the policy made of them (-o storage_hosts, -o deny_nets).
 * Pure functions, so the rules are tested without a network; the HTTP
 * transport asks them about every URL and every address before a
 * connection is made.
 */
#ifndef RFS_NET_H
#define RFS_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* An address range, "169.254.0.0/16", "fe80::/10", or one address. */
struct rfs_cidr {
	int family;		/* AF_INET or AF_INET6 */
	unsigned char addr[16]; /* network order; AF_INET uses 4 bytes */
	unsigned bits;
};

/*
 * Parses "ADDR" (all bits) or "ADDR/BITS", IPv4 or IPv6 (brackets
 * allowed); an IPv4-mapped IPv6 range of 96 bits or more becomes the
 * IPv4 range. Host bits set below the prefix are -EINVAL, as is
 * anything else that is not a range.
 */
int rfs_cidr_parse(const char *s, struct rfs_cidr *out);

/*
 * Whether @sa (AF_INET, or AF_INET6 of @salen bytes) lies in @c; an
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d) is judged as the IPv4
 * address it carries. Other families never match.
 */
bool rfs_cidr_contains(const struct rfs_cidr *c, const struct sockaddr *sa,
		       size_t salen);

/*
 * Host name patterns of storage_hosts: "*.example.org" matches every name
 * under example.org (not example.org itself); any other pattern matches
 * only the same name. Case does not matter, nor a final dot.
 */
bool rfs_host_matches(const char *pattern, const char *host);

/*
 * The policy: addresses never connected to (the link-local ranges, where
 * cloud metadata services answer, plus -o deny_nets), and when
 * -o storage_hosts is given, the only hosts that may be.
 */
struct rfs_netpol {
	struct rfs_cidr *deny; /* the first nbuiltin are link-local */
	size_t ndeny, nbuiltin;
	char **names; /* storage_hosts names and patterns */
	size_t nnames;
	struct rfs_cidr *allow; /* storage_hosts ranges and addresses */
	size_t nallow;
	bool restricted; /* storage_hosts given */
};

/*
 * Builds the policy from the NULL-terminated lists @storage_hosts and
 * @deny_nets (either may be NULL). An entry of storage_hosts that parses
 * as a range is one; otherwise it must be a host name or "*." pattern.
 * On -EINVAL, @err names the bad entry. Release with rfs_netpol_release.
 */
int rfs_netpol_init(struct rfs_netpol *p, char *const *storage_hosts,
		    char *const *deny_nets, char *err, size_t errlen);
void rfs_netpol_release(struct rfs_netpol *p);

/*
 * The verdict on a URL's host (as curl gives it: "[v6]" for IPv6)
 * before any connection: 0, or -EPERM with the reason in @why. An
 * address is checked at once. A name not listed that storage_hosts may
 * still allow by its ranges sets *@need_range: each address it
 * resolves to must then lie in one (rfs_netpol_check_addr).
 */
int rfs_netpol_check_host(const struct rfs_netpol *p, const char *host,
			  bool *need_range, char *why, size_t whylen);

/*
 * The verdict on one address about to be connected to: -EPERM (and
 * @why) if denied, or if @need_range and no storage_hosts range holds
 * it.
 */
int rfs_netpol_check_addr(const struct rfs_netpol *p, const struct sockaddr *sa,
			  size_t salen, bool need_range, char *why,
			  size_t whylen);

/*
 * Whether a request to @host may carry the bearer token: only over TLS,
 * and only to the replica's own host @origin or, when storage_hosts is
 * given, to a host it names (a name, a pattern, or an address in a
 * range). A redirect never takes the token elsewhere.
 */
bool rfs_netpol_token_ok(const struct rfs_netpol *p, const char *origin,
			 const char *host, bool tls);

#endif
