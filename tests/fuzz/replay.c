/*
 * main() for a fuzz harness built without libFuzzer: runs every input file
 * through LLVMFuzzerTestOneInput once. With no arguments it replays the
 * committed corpus, $top_srcdir/tests/fuzz/corpus/<target>, the target
 * being this program's name without its "-replay" suffix; arguments name
 * files or directories to replay instead (a crash file from libFuzzer, say).
 *
 * An empty corpus is a hard error (exit 99): a replay that ran nothing
 * would pass forever without testing anything.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Largest input replayed; libFuzzer's default -max_len is far below. */
#define REPLAY_MAX_INPUT (16 * 1024 * 1024)

static int run_file(const char *path, size_t *count)
{
	struct stat st;
	uint8_t *buf;
	FILE *f;
	size_t n;

	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "replay: cannot open '%s': %s\n", path,
			strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) || st.st_size > REPLAY_MAX_INPUT) {
		fprintf(stderr, "replay: cannot use '%s'\n", path);
		fclose(f);
		return -1;
	}
	/* exact size (at least 1 byte for malloc), so ASan sees overreads */
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		fclose(f);
		return -1;
	}
	n = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	if (n != (size_t)st.st_size) {
		fprintf(stderr, "replay: short read of '%s'\n", path);
		free(buf);
		return -1;
	}
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	(*count)++;
	return 0;
}

static int skip_entry(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

/* Files of @dir in name order, so a replay is the same on every run. */
static int run_dir(const char *dir, size_t *count)
{
	struct dirent **names;
	char path[4096];
	int n, rc = 0;

	n = scandir(dir, &names, skip_entry, alphasort);
	if (n < 0) {
		fprintf(stderr, "replay: cannot list '%s': %s\n", dir,
			strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (!rc && stat(path, &st) == 0 && S_ISREG(st.st_mode))
			rc = run_file(path, count);
		free(names[i]);
	}
	free(names);
	return rc;
}

static int run_path(const char *path, size_t *count)
{
	struct stat st;

	if (stat(path, &st)) {
		fprintf(stderr, "replay: '%s': %s\n", path, strerror(errno));
		return -1;
	}
	return S_ISDIR(st.st_mode) ? run_dir(path, count)
				   : run_file(path, count);
}

/* $top_srcdir/tests/fuzz/corpus/<argv0 basename minus "-replay"> */
static int default_corpus(const char *argv0, char *out, size_t outlen)
{
	const char *top = getenv("top_srcdir");
	const char *base = strrchr(argv0, '/');
	size_t n;

	base = base ? base + 1 : argv0;
	n = strlen(base);
	if (n > 7 && strcmp(base + n - 7, "-replay") == 0)
		n -= 7;
	if (!top || !*top) {
		fprintf(stderr, "replay: set top_srcdir or name the inputs\n");
		return -1;
	}
	snprintf(out, outlen, "%s/tests/fuzz/corpus/%.*s", top, (int)n, base);
	return 0;
}

int main(int argc, char **argv)
{
	char corpus[4096];
	size_t count = 0;
	int rc = 0;

	if (argc > 1) {
		for (int i = 1; i < argc && !rc; i++)
			rc = run_path(argv[i], &count);
	} else {
		rc = default_corpus(argv[0], corpus, sizeof(corpus));
		if (!rc)
			rc = run_path(corpus, &count);
		if (!rc)
			printf("# replayed %zu inputs of %s\n", count, corpus);
	}
	if (rc)
		return 99;
	if (count == 0) {
		fprintf(stderr, "replay: no inputs found\n");
		return 99;
	}
	return 0;
}
