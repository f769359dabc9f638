/*
 * A minimal TAP producer for the unit tests: automake's harness reads the
 * exit status; humans read the "ok"/"not ok" lines.
 */
#ifndef RFS_UNIT_H
#define RFS_UNIT_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int unit_failed;
static int unit_count;
static int unit_skipped;

/*
 * A group of checks this machine cannot run (no tmpfs, no namespace...):
 * counted as skipped, never as passed, and said why on a "# skip:" line.
 */
#define UNIT_SKIP(...)                                                         \
	do {                                                                   \
		unit_skipped++;                                                \
		printf("# skip: ");                                            \
		printf(__VA_ARGS__);                                           \
		printf("\n");                                                  \
	} while (0)

#define CHECK(cond)                                                            \
	do {                                                                   \
		unit_count++;                                                  \
		if (!(cond)) {                                                 \
			unit_failed++;                                         \
			printf("not ok %d - %s:%d: %s\n", unit_count,          \
			       __FILE__, __LINE__, #cond);                     \
		}                                                              \
	} while (0)

#define CHECK_INT(a, b)                                                        \
	do {                                                                   \
		long long _a = (long long)(a), _b = (long long)(b);            \
		unit_count++;                                                  \
		if (_a != _b) {                                                \
			unit_failed++;                                         \
			printf("not ok %d - %s:%d: %s == %lld, want %lld\n",   \
			       unit_count, __FILE__, __LINE__, #a, _a, _b);    \
		}                                                              \
	} while (0)

/* For uint64_t values that do not fit a long long (sizes, offsets). */
#define CHECK_U64(a, b)                                                        \
	do {                                                                   \
		unsigned long long _a = (unsigned long long)(a),               \
				   _b = (unsigned long long)(b);               \
		unit_count++;                                                  \
		if (_a != _b) {                                                \
			unit_failed++;                                         \
			printf("not ok %d - %s:%d: %s == %llu, want %llu\n",   \
			       unit_count, __FILE__, __LINE__, #a, _a, _b);    \
		}                                                              \
	} while (0)

#define CHECK_STR(a, b)                                                        \
	do {                                                                   \
		const char *_a = (a), *_b = (b);                               \
		unit_count++;                                                  \
		if (!_a || !_b || strcmp(_a, _b)) {                            \
			unit_failed++;                                         \
			printf("not ok %d - %s:%d: %s == '%s', want '%s'\n",   \
			       unit_count, __FILE__, __LINE__, #a,             \
			       _a ? _a : "(null)", _b ? _b : "(null)");        \
		}                                                              \
	} while (0)

/* Byte comparison, for buffers that may hold NULs or non-ASCII bytes. */
#define CHECK_MEM(a, alen, b, blen)                                            \
	do {                                                                   \
		const void *_a = (a), *_b = (b);                               \
		size_t _al = (alen), _bl = (blen);                             \
		unit_count++;                                                  \
		if (!_a || !_b || _al != _bl || memcmp(_a, _b, _al)) {         \
			unit_failed++;                                         \
			printf("not ok %d - %s:%d: %s (%zu bytes) differs "    \
			       "from %s (%zu bytes)\n",                        \
			       unit_count, __FILE__, __LINE__, #a, _al, #b,    \
			       _bl);                                           \
		}                                                              \
	} while (0)

/*
 * Runs @fn in a child process and returns true if it exited with status 0.
 * For checks whose failure mode is memory corruption or a sanitizer abort:
 * the parent survives to report it and to run the remaining checks.
 */
static inline bool unit_in_child(void (*fn)(void))
{
	int status = 0;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		fn();
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/*
 * A private scratch directory under the current directory (the build tree
 * during "make check"), never in /tmp itself; returns an absolute path to
 * free(), or NULL.
 */
static inline char *unit_mkdtemp(const char *tag)
{
	char cwd[4096], *path;
	size_t n;

	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	n = strlen(cwd) + strlen(tag) + 32;
	path = malloc(n);
	if (!path)
		return NULL;
	snprintf(path, n, "%s/rfs-unit-%s.XXXXXX", cwd, tag);
	if (!mkdtemp(path)) {
		free(path);
		return NULL;
	}
	return path;
}

static inline int unit_rm_one(const char *path, const struct stat *st, int flag,
			      struct FTW *ftw)
{
	return remove(path);
}

/* Removes what unit_mkdtemp made, and everything in it. */
static inline void unit_rmtree(const char *path)
{
	if (path)
		nftw(path, unit_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes @text to @dir/@name with @mode; returns the path to free(). */
static inline char *unit_write(const char *dir, const char *name,
			       const char *text, mode_t mode)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *path = malloc(n);
	FILE *f;
	int bad;

	if (!path)
		return NULL;
	snprintf(path, n, "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f) {
		free(path);
		return NULL;
	}
	bad = fputs(text, f) == EOF;
	bad |= fclose(f) != 0;
	/* explicit, so the umask of whoever runs the tests does not count */
	if (bad || chmod(path, mode)) {
		free(path);
		return NULL;
	}
	return path;
}

/* tests/run-all.sh reads the first line: keep its form. */
static inline int unit_done(const char *name)
{
	printf("# %s: %d checks, %d failed, %d skipped\n", name, unit_count,
	       unit_failed, unit_skipped);
	printf("1..1\n%s 1 - %s\n", unit_failed ? "not ok" : "ok", name);
	return unit_failed ? 1 : 0;
}

#endif
