/*
 * The command line: NUL-separated arguments, so -o lists with their
 * backslash escapes, flags and mountpoints all come from the input.
 */
#include "config.h"

#include <errno.h>

#include "conf/conf.h"
#include "fuzz.h"

#define MAX_ARGS 16

/*
 * Once masked, the arguments parse again the same way, and whatever
 * they give as the password is all 'x': no byte of a password survives.
 */
static void check_hidden(int argc, char **argv)
{
	char err[256];
	struct rfs_conf conf;
	struct rfs_strv fuse;
	enum rfs_conf_action action;

	rfs_conf_hide_secrets(argc, argv);
	rfs_conf_init(&conf);
	rfs_strv_init(&fuse);
	FUZZ_CHECK(rfs_conf_parse_args(&conf, argc, argv, &fuse, &action, err,
				       sizeof(err)) == 0);
	for (const char *p = conf.password; p && *p; p++)
		FUZZ_CHECK(*p == 'x');
	rfs_conf_release(&conf);
	rfs_strv_release(&fuse);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[MAX_ARGS + 2], *copy = fuzz_str(data, size), *p = copy;
	char err[256];
	struct rfs_conf conf;
	struct rfs_strv fuse;
	enum rfs_conf_action action;
	int argc = 0, rc;

	argv[argc++] = "ruciofs";
	while (argc <= MAX_ARGS && p < copy + size) {
		argv[argc++] = p;
		p += strlen(p) + 1;
	}
	argv[argc] = NULL;

	rfs_conf_init(&conf);
	rfs_strv_init(&fuse);
	err[0] = '\0';
	rc = rfs_conf_parse_args(&conf, argc, argv, &fuse, &action, err,
				 sizeof(err));
	/* -ERANGE: a size that does not fit 64 bits (see rfs_parse_size) */
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ERANGE || rc == -ENOMEM);
	FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
	if (rc)
		FUZZ_CHECK(err[0] != '\0');
	FUZZ_CHECK(fuse.n == 0 || fuse.v[fuse.n] == NULL);
	for (size_t i = 0; i < fuse.n; i++)
		FUZZ_CHECK(fuse.v[i][0] != '\0');
	FUZZ_CHECK(conf.max_threads >= 1 && conf.max_threads <= 1024);
	rfs_conf_release(&conf);
	rfs_strv_release(&fuse);
	if (rc == 0 && action == RFS_CONF_RUN)
		check_hidden(argc, argv);
	free(copy);
	return 0;
}
