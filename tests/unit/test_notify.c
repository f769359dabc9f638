/*
 * Unit tests for src/util/notify.c: $NOTIFY_SOCKET as systemd gives it
 * (a path or an abstract "@name"), and the datagram a manager reads.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <sys/time.h>

#include "util/notify.h"
#include "unit.h"

static void test_addr(void)
{
	struct sockaddr_un sa;
	socklen_t len = 0;
	char longname[200];

	CHECK_INT(rfs_notify_addr("/run/systemd/notify", &sa, &len), 0);
	CHECK_INT(sa.sun_family, AF_UNIX);
	CHECK_STR(sa.sun_path, "/run/systemd/notify");
	CHECK_INT(len, offsetof(struct sockaddr_un, sun_path) + 20);

	/* abstract: a leading NUL, no terminator counted */
	CHECK_INT(rfs_notify_addr("@rfs/notify", &sa, &len), 0);
	CHECK_INT(sa.sun_path[0], 0);
	CHECK_MEM(sa.sun_path + 1, 10, "rfs/notify", 10);
	CHECK_INT(len, offsetof(struct sockaddr_un, sun_path) + 11);

	CHECK_INT(rfs_notify_addr("relative/sock", &sa, &len), -EINVAL);
	CHECK_INT(rfs_notify_addr("", &sa, &len), -EINVAL);
	CHECK_INT(rfs_notify_addr("@", &sa, &len), -EINVAL);
	CHECK_INT(rfs_notify_addr(NULL, &sa, &len), -EINVAL);
	CHECK_INT(rfs_notify_addr("vsock:2:1234", &sa, &len), -EAFNOSUPPORT);

	/* sun_path is 108 bytes: a path needs its NUL, a name does not */
	memset(longname, 'a', sizeof(longname));
	longname[0] = '/';
	longname[108] = '\0';
	CHECK_INT(rfs_notify_addr(longname, &sa, &len), -ENAMETOOLONG);
	longname[107] = '\0';
	CHECK_INT(rfs_notify_addr(longname, &sa, &len), 0);
	memset(longname, 'a', sizeof(longname));
	longname[0] = '@';
	longname[108] = '\0';
	CHECK_INT(rfs_notify_addr(longname, &sa, &len), 0);
	CHECK_INT(len, sizeof(sa));
	longname[108] = 'a';
	longname[109] = '\0';
	CHECK_INT(rfs_notify_addr(longname, &sa, &len), -ENAMETOOLONG);
}

/* A manager's socket at @name; returns its fd. */
static int listener(const char *name)
{
	struct timeval tv = { .tv_sec = 5 };
	struct sockaddr_un sa;
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || rfs_notify_addr(name, &sa, &len) ||
	    bind(fd, (struct sockaddr *)&sa, len) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void expect(int fd, const char *want)
{
	char got[256];
	ssize_t n = recv(fd, got, sizeof(got) - 1, 0);

	CHECK(n >= 0);
	got[n < 0 ? 0 : n] = '\0';
	CHECK_STR(got, want);
}

static void test_send(const char *dir)
{
	char path[4096], abstract[64];
	int fd;

	/* no manager: nothing to do, no error */
	unsetenv("NOTIFY_SOCKET");
	CHECK_INT(rfs_notify("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	CHECK_INT(rfs_notify("READY=1"), 0);

	snprintf(path, sizeof(path), "%s/notify", dir);
	fd = listener(path);
	CHECK(fd >= 0);
	if (fd >= 0) {
		setenv("NOTIFY_SOCKET", path, 1);
		CHECK_INT(rfs_notify("READY=1\nSTATUS=mounted"), 0);
		expect(fd, "READY=1\nSTATUS=mounted");
		close(fd);
	}

	snprintf(abstract, sizeof(abstract), "@rfs-test-notify-%d",
		 (int)getpid());
	fd = listener(abstract);
	CHECK(fd >= 0);
	if (fd >= 0) {
		setenv("NOTIFY_SOCKET", abstract, 1);
		CHECK_INT(rfs_notify("STOPPING=1"), 0);
		expect(fd, "STOPPING=1");
		close(fd);
	}

	/* a manager that went away is an error the caller may log */
	setenv("NOTIFY_SOCKET", path, 1);
	unlink(path);
	CHECK(rfs_notify("READY=1") < 0);
	setenv("NOTIFY_SOCKET", "not-absolute", 1);
	CHECK_INT(rfs_notify("READY=1"), -EINVAL);
	unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
	char *dir = unit_mkdtemp("notify");

	test_addr();
	CHECK(dir != NULL);
	if (dir)
		test_send(dir);
	unit_rmtree(dir);
	free(dir);
	return unit_done("notify");
}
