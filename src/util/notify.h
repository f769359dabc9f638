/*
 * The service manager's readiness protocol (sd_notify), written out: one
 * datagram to $NOTIFY_SOCKET. No libsystemd, so the daemon links the
 * same everywhere and does nothing where no manager listens.
 */
#ifndef RFS_NOTIFY_H
#define RFS_NOTIFY_H

#include <sys/socket.h>
#include <sys/un.h>

/*
 * Fills @sa from a $NOTIFY_SOCKET value: an absolute path, or "@name"
 * for an abstract socket. -EINVAL for anything else (relative, empty),
 * -ENAMETOOLONG past sun_path, -EAFNOSUPPORT for "vsock:" addresses.
 */
int rfs_notify_addr(const char *name, struct sockaddr_un *sa, socklen_t *salen);

/*
 * Sends @state ("READY=1", "STOPPING=1", "STATUS=...", newline-separated)
 * to $NOTIFY_SOCKET. 0 when sent or when no manager asked for it.
 */
int rfs_notify(const char *state);

#endif
