/* A file node's replicas, alone or with its siblings' (batch.c). */
#ifndef RFS_CORE_BATCH_H
#define RFS_CORE_BATCH_H

#include <stdbool.h>

struct rfs_cred;
struct rfs_fs;
struct rfs_node;
struct rfs_replicas;

/*
 * The node's replicas: its own while younger than replica_ttl, or those
 * resolved with a sibling's, or from the catalogue together with a batch
 * of siblings; with @nowait, RFS_WOULD_BLOCK rather than ask.
 */
int rfs_node_replicas(struct rfs_fs *fs, struct rfs_cred *who,
		      struct rfs_node *n, struct rfs_replicas **out,
		      bool nowait);

#endif
