#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/notify.h"
#include "util/banned.h"

int rfs_notify_addr(const char *name, struct sockaddr_un *sa, socklen_t *salen)
{
	size_t n = name ? strlen(name) : 0;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (!strncmp(name ? name : "", "vsock:", 6))
		return -EAFNOSUPPORT;
	if (n < 2 || (name[0] != '/' && name[0] != '@'))
		return -EINVAL;
	/* a path needs its NUL; an abstract name is exactly its bytes */
	if (n + (name[0] == '/') > sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, name, n);
	if (name[0] == '@')
		sa->sun_path[0] = '\0';
	*salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
			     (name[0] == '/'));
	return 0;
}

int rfs_notify(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t salen;
	ssize_t sent;
	int fd, rc;

	if (!name || !*name)
		return 0;
	rc = rfs_notify_addr(name, &sa, &salen);
	if (rc)
		return rc;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
		      (struct sockaddr *)&sa, salen);
	rc = sent < 0 ? -errno : 0;
	close(fd);
	return rc;
}
