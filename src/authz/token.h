/*
 * Bearer tokens: WLCG bearer-token discovery for the daemon's own identity,
 * re-read whenever the file changes (oidc-agent timers rewrite it).
 */
#ifndef RFS_TOKEN_H
#define RFS_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Largest token file accepted; IAM tokens are 1-3 KiB. */
#define RFS_TOKEN_MAX (16 * 1024)

struct rfs_token_source;

/*
 * @token_file: an explicit file (-o token_file=), or NULL for discovery:
 * $BEARER_TOKEN, $BEARER_TOKEN_FILE, $XDG_RUNTIME_DIR/bt_u<euid>,
 * /tmp/bt_u<euid>. The environment is read once, here.
 */
int rfs_token_source_new(struct rfs_token_source **out, const char *token_file);
void rfs_token_source_free(struct rfs_token_source *ts);

/*
 * A fresh copy of the current token in *@out (free with rfs_token_free()).
 * A token from a file is kept in memory: the files are looked at again
 * once a second at most (a changed file is read again), at once when the
 * token is a JWT past its "exp" or after rfs_token_source_stale(). A
 * source that is
 * missing or blank moves discovery to the next step. Returns -ENOENT if no
 * step found a token, -EACCES if the file is not owned by us (or root) or
 * is accessible to group or others, -EINVAL if it holds bytes a token
 * cannot contain.
 */
int rfs_token_source_get(struct rfs_token_source *ts, char **out);

/*
 * No token file under @dir (the mountpoint, a real path) is ever read:
 * reading it would need the daemon itself, a deadlock. The file's path
 * is resolved without looking anything up under @dir (links, ".", ".."
 * and "//" included); such a file gives -EACCES and a log line. Copies
 * @dir.
 */
int rfs_token_source_forbid(struct rfs_token_source *ts, const char *dir);

/* The token was refused (a 401): the next get looks at the files again. */
void rfs_token_source_stale(struct rfs_token_source *ts);

/* Where the token came from, for messages (never the token itself). */
const char *rfs_token_source_where(struct rfs_token_source *ts);

/* Wipes and frees a token string. */
void rfs_token_free(char *token);

/* True for a compact JWS (three base64url parts): usable at storage too. */
bool rfs_token_is_jwt(const char *token);

/*
 * The "exp" claim (seconds since the epoch) of JWT @token into *@exp; its
 * signature is not checked (the token is ours, read from our own file).
 * Returns 0, -ENOENT when it has none, -EINVAL when @token is not a JWT
 * or its payload is not a JSON object.
 */
int rfs_token_jwt_exp(const char *token, long long *exp);

/*
 * Checks and strips a token read from a file or variable, in place
 * (C99 isspace trimmed, printable ASCII only). Returns the start or NULL.
 */
char *rfs_token_clean(char *raw);

#endif
