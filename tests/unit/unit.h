/*
 * A minimal TAP producer for the unit tests: automake's harness reads the
 * exit status; humans read the "ok"/"not ok" lines.
 *
 * CHECK_TODO marks a check that states the intended behaviour of a known
 * bug in src/: it prints "not ok ... # TODO" while the bug is there but does
 * not fail the program, so a known bug does not hide new ones from everyone
 * sharing the tree. Set RFS_UNIT_STRICT=1 to make those failures count too.
 * When a TODO check starts passing it says so: turn it into a CHECK then.
 */
#ifndef RFS_UNIT_H
#define RFS_UNIT_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unit_failed;
static int unit_count;
static int unit_todo;

#define CHECK(cond)                                                          \
	do {                                                                 \
		unit_count++;                                                \
		if (!(cond)) {                                               \
			unit_failed++;                                       \
			printf("not ok %d - %s:%d: %s\n", unit_count,        \
			       __FILE__, __LINE__, #cond);                   \
		}                                                            \
	} while (0)

#define CHECK_INT(a, b)                                                      \
	do {                                                                 \
		long long _a = (long long)(a), _b = (long long)(b);          \
		unit_count++;                                                \
		if (_a != _b) {                                              \
			unit_failed++;                                       \
			printf("not ok %d - %s:%d: %s == %lld, want %lld\n", \
			       unit_count, __FILE__, __LINE__, #a, _a, _b);  \
		}                                                            \
	} while (0)

/* For uint64_t values that do not fit a long long (sizes, offsets). */
#define CHECK_U64(a, b)                                                      \
	do {                                                                 \
		unsigned long long _a = (unsigned long long)(a),             \
				   _b = (unsigned long long)(b);             \
		unit_count++;                                                \
		if (_a != _b) {                                              \
			unit_failed++;                                       \
			printf("not ok %d - %s:%d: %s == %llu, want %llu\n", \
			       unit_count, __FILE__, __LINE__, #a, _a, _b);  \
		}                                                            \
	} while (0)

#define CHECK_STR(a, b)                                                      \
	do {                                                                 \
		const char *_a = (a), *_b = (b);                             \
		unit_count++;                                                \
		if (!_a || !_b || strcmp(_a, _b)) {                          \
			unit_failed++;                                       \
			printf("not ok %d - %s:%d: %s == '%s', want '%s'\n", \
			       unit_count, __FILE__, __LINE__, #a,           \
			       _a ? _a : "(null)", _b ? _b : "(null)");      \
		}                                                            \
	} while (0)

/* Byte comparison, for buffers that may hold NULs or non-ASCII bytes. */
#define CHECK_MEM(a, alen, b, blen)                                          \
	do {                                                                 \
		const void *_a = (a), *_b = (b);                             \
		size_t _al = (alen), _bl = (blen);                           \
		unit_count++;                                                \
		if (!_a || !_b || _al != _bl || memcmp(_a, _b, _al)) {       \
			unit_failed++;                                       \
			printf("not ok %d - %s:%d: %s (%zu bytes) differs "  \
			       "from %s (%zu bytes)\n",                      \
			       unit_count, __FILE__, __LINE__, #a, _al, #b,  \
			       _bl);                                         \
		}                                                            \
	} while (0)

static inline int unit_strict(void)
{
	const char *s = getenv("RFS_UNIT_STRICT");

	return s && *s && strcmp(s, "0") != 0;
}

/* @bug says what is wrong in src/, for whoever reads the log. */
#define CHECK_TODO(cond, bug)                                                \
	do {                                                                 \
		unit_count++;                                                \
		if (!(cond)) {                                               \
			unit_todo++;                                         \
			if (unit_strict())                                   \
				unit_failed++;                               \
			printf("not ok %d - %s:%d: %s # TODO %s\n",          \
			       unit_count, __FILE__, __LINE__, #cond, bug);  \
		} else {                                                     \
			printf("# %s:%d: TODO check passes now, make it a "  \
			       "CHECK: %s\n",                                \
			       __FILE__, __LINE__, #cond);                   \
		}                                                            \
	} while (0)

static inline int unit_done(const char *name)
{
	printf("# %s: %d checks, %d failed, %d known bugs (TODO)\n", name,
	       unit_count, unit_failed, unit_todo);
	printf("1..1\n%s 1 - %s\n", unit_failed ? "not ok" : "ok", name);
	return unit_failed ? 1 : 0;
}

#endif
