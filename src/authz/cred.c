#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "authz/cred.h"
#include "authz/identity.h"
#include "util/banned.h"

struct rfs_cred *rfs_cred_new(uid_t uid, gid_t gid, pid_t pid,
			      struct rfs_identity *id)
{
	struct rfs_cred *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->refs = 1;
	c->uid = uid;
	c->gid = gid;
	c->pid = pid;
	c->id = rfs_identity_get(id);
	return c;
}

struct rfs_cred *rfs_cred_get(struct rfs_cred *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void rfs_cred_put(struct rfs_cred *c)
{
	if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL))
		return;
	rfs_identity_put(c->id);
	free(c);
}
