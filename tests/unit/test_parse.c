/*
 * Unit tests for src/catalog/parse.c on answers shaped like the ones a real
 * Rucio server sends (docs: rucio-rest.md sections 2-3). A malformed answer
 * must fail as a whole and leave an empty, freeable result.
 */
#include "config.h"

#include <errno.h>

#include "catalog/parse.h"
#include "util/buf.h"
#include "unit.h"

static int dids(const char *text, struct rfs_did_list *l,
		struct rfs_parse_skips *skipped)
{
	return rfs_parse_dids(text, strlen(text), l, skipped);
}

static int replicas(const char *text, struct rfs_replica_list *l)
{
	return rfs_parse_replicas(text, strlen(text), l);
}

static int scopes(const char *text, struct rfs_did_list *l)
{
	return rfs_parse_scopes(text, strlen(text), l);
}

/* After a failure: nothing to free, nothing half-filled. */
#define CHECK_EMPTY_LIST(l)                                                    \
	do {                                                                   \
		CHECK_INT((l).n, 0);                                           \
		CHECK((l).v == NULL);                                          \
	} while (0)

static void test_scopes(void)
{
	struct rfs_did_list l;

	CHECK_INT(scopes("[\"data26_13p6TeV\", \"mock\", \"user.jdoe\"]\n", &l),
		  0);
	CHECK_INT(l.n, 3);
	if (l.n == 3) {
		CHECK_STR(l.v[0].scope, "data26_13p6TeV");
		CHECK_STR(l.v[2].scope, "user.jdoe");
		CHECK(l.v[0].name == NULL);
		CHECK_INT(l.v[1].type, RFS_DID_SCOPE);
		CHECK(!l.v[1].has_bytes);
	}
	rfs_did_list_release(&l);
	CHECK_EMPTY_LIST(l);

	CHECK_INT(scopes("[]", &l), 0);
	CHECK_INT(l.n, 0);
	rfs_did_list_release(&l);

	CHECK_INT(scopes("{\"scopes\": [\"a\"]}", &l), -EBADMSG);
	CHECK_EMPTY_LIST(l);
	CHECK_INT(scopes("\"mock\"", &l), -EBADMSG);
	CHECK_EMPTY_LIST(l);
	CHECK_INT(scopes("", &l), -EBADMSG);
	CHECK_INT(scopes("[\"a\", 1]", &l), -EBADMSG);
	CHECK_EMPTY_LIST(l);
	CHECK_INT(scopes("[\"a\", null]", &l), -EBADMSG);
	CHECK_EMPTY_LIST(l);
	CHECK_INT(scopes("[\"a\", [\"b\"]]", &l), -EBADMSG);
	CHECK_EMPTY_LIST(l);
	CHECK_INT(scopes("[\"a\", \"\"]", &l), -EBADMSG);
	CHECK_EMPTY_LIST(l);
	CHECK_INT(scopes("[\"ok\", \"a\\u0000b\"]", &l), -EBADMSG);
	CHECK_EMPTY_LIST(l);
	CHECK_INT(scopes("[\"a\"] [\"b\"]", &l), -EBADMSG);
	CHECK_INT(scopes("[\"a\"", &l), -EBADMSG);
	/* the length bounds the parse, not a NUL */
	CHECK_INT(rfs_parse_scopes("[\"a\"]xyz", 5, &l), 0);
	CHECK_INT(l.n, 1);
	rfs_did_list_release(&l);
}

static void test_dids_listing(void)
{
	struct rfs_did_list l;
	struct rfs_parse_skips skipped = { .nul_names = 99 };

	/* GET /dids/{scope}/ (rucio-rest.md 2.2) */
	CHECK_INT(dids("{\"scope\": \"user.jdoe\", \"name\": \"cont1\", "
		       "\"type\": "
		       "\"CONTAINER\", \"parent\": null, \"level\": 0, "
		       "\"bytes\": null}\n"
		       "{\"scope\": \"user.jdoe\", \"name\": \"file1.dat\", "
		       "\"type\": \"FILE\", \"parent\": null, \"level\": 0, "
		       "\"bytes\": 1000}\n",
		       &l, &skipped),
		  0);
	CHECK_INT(skipped.nul_names + skipped.malformed, 0);
	CHECK_INT(l.n, 2);
	if (l.n == 2) {
		CHECK_STR(l.v[0].scope, "user.jdoe");
		CHECK_STR(l.v[0].name, "cont1");
		CHECK_INT(l.v[0].type, RFS_DID_CONTAINER);
		CHECK(!l.v[0].has_bytes);
		CHECK_STR(l.v[1].name, "file1.dat");
		CHECK_INT(l.v[1].type, RFS_DID_FILE);
		CHECK(l.v[1].has_bytes);
		CHECK_U64(l.v[1].bytes, 1000);
		CHECK_STR(l.v[1].adler32, "");
		CHECK_STR(l.v[1].md5, "");
		CHECK_INT(l.v[1].created, 0);
	}
	rfs_did_list_release(&l);

	/* GET /dids/{s}/{n}/dids (2.4): checksums */
	CHECK_INT(
		dids("{\"scope\": \"user.jdoe\", \"name\": \"file1.dat\", "
		     "\"type\": \"FILE\", \"bytes\": 1000, \"adler32\": "
		     "\"0cc737eb\", \"md5\": "
		     "\"f1c9645dbc14efddc7d8a322685f26eb\", \"account\": "
		     "\"jdoe\"}\n"
		     "{\"scope\": \"user.jdoe\", \"name\": \"ds1\", \"type\": "
		     "\"DATASET\", \"bytes\": null, \"adler32\": null, "
		     "\"md5\": null, \"account\": "
		     "\"an-account-name-far-too-long-for-rucio\"}\n",
		     &l, NULL),
		0);
	CHECK_INT(l.n, 2);
	if (l.n == 2) {
		CHECK_STR(l.v[0].adler32, "0cc737eb");
		CHECK_STR(l.v[0].md5, "f1c9645dbc14efddc7d8a322685f26eb");
		CHECK_STR(l.v[0].account, "jdoe");
		/* only shown: one too long is left out, the record kept */
		CHECK_STR(l.v[1].account, "");
		CHECK_INT(l.v[1].type, RFS_DID_DATASET);
		CHECK_STR(l.v[1].adler32, "");
		CHECK(!l.v[1].has_bytes);
	}
	rfs_did_list_release(&l);

	/* GET /dids/{s}/{n}/files (2.5) has no type */
	CHECK_INT(
		dids("{\"scope\": \"user.jdoe\", \"name\": \"file1.dat\", "
		     "\"bytes\": 1000, \"adler32\": \"0cc737eb\", \"guid\": "
		     "\"0F9B2A7E6F0E4C2B9D3E1A2B3C4D5E6F\", \"events\": null}",
		     &l, NULL),
		0);
	CHECK_INT(l.n, 1);
	if (l.n == 1)
		CHECK_INT(l.v[0].type, RFS_DID_UNKNOWN);
	rfs_did_list_release(&l);
}

static void test_dids_meta(void)
{
	struct rfs_did_list l;

	/* POST /dids/bulkmeta and /meta rows (2.7): did_type, dates */
	CHECK_INT(dids("{\"scope\": \"user.jdoe\", \"name\": \"file1.dat\", "
		       "\"account\": \"jdoe\", \"did_type\": \"FILE\", "
		       "\"is_open\": null, \"monotonic\": false, \"hidden\": "
		       "false, \"obsolete\": false, \"availability\": "
		       "\"AVAILABLE\", \"suppressed\": false, \"bytes\": 1000, "
		       "\"length\": null, \"md5\": "
		       "\"F1C9645DBC14EFDDC7D8A322685F26EB\", \"adler32\": "
		       "\"0cc737eb\", \"expired_at\": null, \"guid\": "
		       "\"0f9b2a7e6f0e4c2b9d3e1a2b3c4d5e6f\", \"events\": 12, "
		       "\"created_at\": \"Tue, 24 Nov 2026 07:56:16 UTC\", "
		       "\"updated_at\": \"Tue, 24 Nov 2026 08:55:32 UTC\"}\n"
		       "{\"scope\": \"user.jdoe\", \"name\": \"ds1\", "
		       "\"did_type\": \"DATASET\", \"is_open\": true, "
		       "\"bytes\": null, \"created_at\": "
		       "\"2026-11-24T07:55:41\", \"updated_at\": null}\n",
		       &l, NULL),
		  0);
	CHECK_INT(l.n, 2);
	if (l.n == 2) {
		CHECK_INT(l.v[0].type, RFS_DID_FILE);
		CHECK_INT(l.v[0].created, 1795506976LL);
		CHECK_INT(l.v[0].updated, 1795510532LL);
		/* checksums come out lower-case */
		CHECK_STR(l.v[0].md5, "f1c9645dbc14efddc7d8a322685f26eb");
		CHECK_INT(l.v[1].type, RFS_DID_DATASET);
		CHECK_INT(l.v[1].created, 1795506941LL);
		CHECK_INT(l.v[1].updated, 0);
	}
	rfs_did_list_release(&l);

	/* 1.31's dids/search?long=True says "DIDType.FILE" */
	CHECK_INT(dids("{\"scope\":\"user.jdoe\",\"name\":\"f\","
		       "\"did_type\":\"DIDType.FILE\",\"bytes\":1000,"
		       "\"length\":null}\n"
		       "{\"scope\":\"user.jdoe\",\"name\":\"c\","
		       "\"did_type\":\"DIDType.CONTAINER\",\"bytes\":null}\n",
		       &l, NULL),
		  0);
	CHECK_INT(l.n, 2);
	if (l.n == 2) {
		CHECK_INT(l.v[0].type, RFS_DID_FILE);
		CHECK_INT(l.v[1].type, RFS_DID_CONTAINER);
	}
	rfs_did_list_release(&l);

	/* "type" is read before "did_type" */
	CHECK_INT(dids("{\"scope\":\"s\",\"name\":\"n\",\"type\":\"DATASET\","
		       "\"did_type\":\"FILE\"}",
		       &l, NULL),
		  0);
	CHECK(l.n == 1 && l.v[0].type == RFS_DID_DATASET);
	rfs_did_list_release(&l);
	/* an unknown type is not an error */
	CHECK_INT(dids("{\"scope\":\"s\",\"name\":\"n\",\"type\":\"ARCHIVE\"}",
		       &l, NULL),
		  0);
	CHECK(l.n == 1 && l.v[0].type == RFS_DID_UNKNOWN);
	rfs_did_list_release(&l);
}

static void test_dids_framing(void)
{
	struct rfs_did_list l;
	struct rfs_parse_skips skipped = { .nul_names = 99 };
	static const char row[] =
		"{\"scope\":\"s\",\"name\":\"n\",\"bytes\":1}";

	/* an empty answer is an empty stream */
	CHECK_INT(dids("", &l, &skipped), 0);
	CHECK_INT(l.n, 0);
	CHECK_INT(skipped.nul_names + skipped.malformed, 0);
	rfs_did_list_release(&l);
	CHECK_INT(dids("\n\n\r\n", &l, NULL), 0);
	CHECK_INT(l.n, 0);
	rfs_did_list_release(&l);

	/* blank lines between rows, CRLF, no final newline */
	CHECK_INT(dids("\n{\"scope\":\"s\",\"name\":\"a\"}\r\n\n"
		       "{\"scope\":\"s\",\"name\":\"b\"}\n\n"
		       "{\"scope\":\"s\",\"name\":\"c\"}",
		       &l, NULL),
		  0);
	CHECK_INT(l.n, 3);
	if (l.n == 3) {
		CHECK_STR(l.v[0].name, "a");
		CHECK_STR(l.v[1].name, "b");
		CHECK_STR(l.v[2].name, "c");
	}
	rfs_did_list_release(&l);

	/* the length bounds the parse */
	CHECK_INT(rfs_parse_dids(row, sizeof(row) - 1, &l, NULL), 0);
	CHECK_INT(l.n, 1);
	rfs_did_list_release(&l);
	CHECK_INT(rfs_parse_dids(row, sizeof(row) - 2, &l, NULL), -EBADMSG);
	CHECK_EMPTY_LIST(l);

	/* more rows than the first allocation holds */
	{
		struct rfs_buf b;
		char line[80];
		int ok = 1;

		rfs_buf_init(&b, 1 << 20);
		for (int i = 0; i < 100 && ok; i++) {
			snprintf(line, sizeof(line),
				 "{\"scope\":\"s\",\"name\":\"f%03d\","
				 "\"bytes\":%d}\n",
				 i, i);
			ok = rfs_buf_addstr(&b, line) == 0;
		}
		CHECK(ok);
		CHECK_INT(rfs_parse_dids(b.data, b.len, &l, NULL), 0);
		CHECK_INT(l.n, 100);
		if (l.n == 100) {
			CHECK_STR(l.v[99].name, "f099");
			CHECK_U64(l.v[57].bytes, 57);
		}
		rfs_did_list_release(&l);
		rfs_buf_release(&b);
	}
}

static void test_dids_malformed(void)
{
	struct rfs_did_list l;
	struct rfs_parse_skips skipped;
	/* not a stream of DID objects: the whole answer is refused */
	static const char *const bad[] = {
		"{\"scope\":\"s\",\"name\":\"a\"}\n{\"scope\":\"s\",\"name\"\n",
		"{\"scope\":\"s\",\"name\":\"a\"}{\"scope\":\"s\",\"name\":"
		"\"b\"}",
		"[{\"scope\":\"s\",\"name\":\"a\"}]",
		"\"file1.dat\"\n",
		"null\n",
		"{\"scope\":\"s\",\"name\":\"a\"}\n42\n",
		"{\"scope\":\"s\",\"name\":\"a\",\"name\":\"b\"}",
		"{\"scope\":\"s\",\"name\":\"a\"} trailing",
		"\x01\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = dids(bad[i], &l, &skipped);

		if (rc != -EBADMSG)
			printf("# bad[%zu] = '%s' gave %d\n", i, bad[i], rc);
		CHECK_INT(rc, -EBADMSG);
		CHECK_EMPTY_LIST(l);
		/* release after a failure is harmless */
		rfs_did_list_release(&l);
	}

	/* a good row before a truncated one is not kept (or leaked) */
	CHECK_INT(dids("{\"scope\":\"s\",\"name\":\"good1\",\"bytes\":1}\n"
		       "{\"scope\":\"s\",\"name\":\"good2\",\"bytes\":2}\n"
		       "{\"scope\":\"s\",\"name\":\"trunc",
		       &l, NULL),
		  -EBADMSG);
	CHECK_EMPTY_LIST(l);
}

/*
 * One malformed record, between two good ones: skipped, named, counted;
 * its siblings kept. Each entry: the record, "scope:name" as it is
 * reported, the field at fault.
 */
static void test_dids_bad_record(void)
{
	static const char *const bad[][3] = {
		{ "{\"name\":\"a\"}", "?:a", "scope" },
		{ "{\"scope\":\"s\"}", "s:?", "name" },
		{ "{\"scope\":\"\",\"name\":\"a\"}", ":a", "scope" },
		{ "{\"scope\":\"s\",\"name\":\"\"}", "s:", "name" },
		{ "{\"scope\":\"s\",\"name\":null}", "s:?", "name" },
		{ "{\"scope\":\"s\",\"name\":42}", "s:?", "name" },
		{ "{\"scope\":[\"s\"],\"name\":\"a\"}", "?:a", "scope" },
		{ "{\"scope\":\"s\",\"name\":\"a\",\"bytes\":-1}", "s:a",
		  "bytes" },
		{ "{\"scope\":\"s\",\"name\":\"a\",\"bytes\":\"abc\"}", "s:a",
		  "bytes" },
		{ "{\"scope\":\"s\",\"name\":\"a\",\"bytes\":\"1000\"}", "s:a",
		  "bytes" },
		{ "{\"scope\":\"s\",\"name\":\"a\",\"bytes\":1.5}", "s:a",
		  "bytes" },
		{ "{\"scope\":\"s\",\"name\":\"a\",\"bytes\":true}", "s:a",
		  "bytes" },
		{ "{\"scope\":\"s\",\"name\":\"a\",\"bytes\":{}}", "s:a",
		  "bytes" },
		{ "{\"scope\":\"s\",\"name\":\"a\",\"type\":7}", "s:a",
		  "type" },
		{ "{\"scope\":\"s\",\"name\":\"a\",\"type\":\"F\\u0000\"}",
		  "s:a", "type" },
		{ "{\"scope\":\"s\",\"name\":\"a\",\"adler32\":\"xyz\"}", "s:a",
		  "adler32" },
		{ "{\"scope\":\"s\",\"name\":\"a\",\"adler32\":\"0cc737eb0\"}",
		  "s:a", "adler32" },
		{ "{\"scope\":\"s\",\"name\":\"a\",\"adler32\":\"0cc7 7eb\"}",
		  "s:a", "adler32" },
		{ "{\"scope\":\"s\",\"name\":\"a\",\"adler32\":\"0c\\u0000\"}",
		  "s:a", "adler32" },
		{ "{\"scope\":\"s\",\"name\":\"a\",\"adler32\":12345}", "s:a",
		  "adler32" },
		{ "{\"scope\":\"s\",\"name\":\"a\",\"md5\":"
		  "\"g1c9645dbc14efddc7d8a322685f26eb\"}",
		  "s:a", "md5" },
		{ "{\"scope\":\"s\",\"name\":\"a\",\"created_at\":"
		  "\"yesterday\"}",
		  "s:a", "created_at" },
		{ "{\"scope\":\"s\",\"name\":\"a\",\"updated_at\":1795506976}",
		  "s:a", "updated_at" },
		{ "{\"scope\":\"s\",\"name\":\"a\\nb\",\"bytes\":-5}", "s:a\nb",
		  "bytes" },
	};
	struct rfs_parse_skips sk;
	struct rfs_did_list l;
	char text[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text),
			 "{\"scope\":\"s\",\"name\":\"good1\",\"bytes\":1}\n"
			 "%s\n{\"scope\":\"s\",\"name\":\"good2\"}\n",
			 bad[i][0]);
		memset(&sk, 0x55, sizeof(sk));
		CHECK_INT(dids(text, &l, &sk), 0);
		CHECK_INT(l.n, 2);
		if (l.n == 2) {
			CHECK_STR(l.v[0].name, "good1");
			CHECK_STR(l.v[1].name, "good2");
		}
		CHECK_INT(sk.malformed, 1);
		CHECK_INT(sk.nul_names, 0);
		CHECK_STR(sk.first, bad[i][1]);
		CHECK_STR(sk.field, bad[i][2]);
		rfs_did_list_release(&l);
	}

	/* several: counted, the first one named; NULL skips is allowed */
	CHECK_INT(dids("{\"scope\":\"s\",\"name\":\"x\",\"bytes\":-1}\n"
		       "{\"scope\":\"s\",\"name\":\"y\",\"md5\":\"z\"}\n"
		       "{\"scope\":\"s\",\"name\":\"ok\"}\n",
		       &l, &sk),
		  0);
	CHECK_INT(sk.malformed, 2);
	CHECK_STR(sk.first, "s:x");
	CHECK_STR(sk.field, "bytes");
	CHECK(l.n == 1 && !strcmp(l.v[0].name, "ok"));
	rfs_did_list_release(&l);
	CHECK_INT(dids("{\"scope\":\"s\",\"name\":\"x\",\"bytes\":-1}\n", &l,
		       NULL),
		  0);
	CHECK_INT(l.n, 0);
	rfs_did_list_release(&l);
	/* a file without a size is not malformed: bulkmeta may bring it */
	CHECK_INT(dids("{\"scope\":\"s\",\"name\":\"f\",\"type\":\"FILE\","
		       "\"bytes\":null}\n",
		       &l, &sk),
		  0);
	CHECK_INT(sk.malformed, 0);
	CHECK(l.n == 1 && !l.v[0].has_bytes);
	rfs_did_list_release(&l);
}

static void test_dids_checksums_and_nul(void)
{
	struct rfs_did_list l;
	struct rfs_parse_skips skipped;

	/* Rucio may drop the leading zeros of an adler32 */
	CHECK_INT(dids("{\"scope\":\"s\",\"name\":\"a\",\"adler32\":"
		       "\"cc737eb\"}\n"
		       "{\"scope\":\"s\",\"name\":\"b\",\"adler32\":\"1\"}\n"
		       "{\"scope\":\"s\",\"name\":\"c\",\"adler32\":"
		       "\"ABCDEF01\"}\n"
		       "{\"scope\":\"s\",\"name\":\"d\",\"adler32\":\"\"}\n"
		       "{\"scope\":\"s\",\"name\":\"e\",\"md5\":\"ff\"}\n",
		       &l, NULL),
		  0);
	CHECK_INT(l.n, 5);
	if (l.n == 5) {
		CHECK_STR(l.v[0].adler32, "0cc737eb");
		CHECK_STR(l.v[1].adler32, "00000001");
		CHECK_STR(l.v[2].adler32, "abcdef01");
		CHECK_STR(l.v[3].adler32, "");
		CHECK_STR(l.v[4].md5, "000000000000000000000000000000ff");
	}
	rfs_did_list_release(&l);

	/* a name that cannot be a C string is skipped and counted */
	CHECK_INT(dids("{\"scope\":\"s\",\"name\":\"a\\u0000b\",\"type\":"
		       "\"FILE\"}\n"
		       "{\"scope\":\"s\",\"name\":\"ok\",\"type\":\"FILE\"}\n"
		       "{\"scope\":\"s\\u0000x\",\"name\":\"n\"}\n",
		       &l, &skipped),
		  0);
	CHECK_INT(skipped.nul_names, 2);
	CHECK_INT(skipped.malformed, 0);
	CHECK_INT(l.n, 1);
	if (l.n == 1)
		CHECK_STR(l.v[0].name, "ok");
	rfs_did_list_release(&l);
	/* ... also when nobody asks for the count */
	CHECK_INT(dids("{\"scope\":\"s\",\"name\":\"\\u0000\"}\n", &l, NULL),
		  0);
	CHECK_INT(l.n, 0);
	rfs_did_list_release(&l);

	/* other UTF-8 is kept as it is */
	CHECK_INT(dids("{\"scope\":\"s\",\"name\":\"\\u00e9t\\u00e9/x y\"}", &l,
		       NULL),
		  0);
	CHECK(l.n == 1 && !strcmp(l.v[0].name, "\xc3\xa9t\xc3\xa9/x y"));
	rfs_did_list_release(&l);
}

static void test_did_helpers(void)
{
	struct rfs_did_rec a = { 0 }, b;
	struct rfs_did_list l;

	CHECK_INT(rfs_did_type_parse("FILE"), RFS_DID_FILE);
	CHECK_INT(rfs_did_type_parse("file"), RFS_DID_FILE);
	CHECK_INT(rfs_did_type_parse("F"), RFS_DID_FILE);
	CHECK_INT(rfs_did_type_parse("DIDType.DATASET"), RFS_DID_DATASET);
	CHECK_INT(rfs_did_type_parse("d"), RFS_DID_DATASET);
	CHECK_INT(rfs_did_type_parse("Container"), RFS_DID_CONTAINER);
	CHECK_INT(rfs_did_type_parse("C"), RFS_DID_CONTAINER);
	CHECK_INT(rfs_did_type_parse("FILES"), RFS_DID_UNKNOWN);
	CHECK_INT(rfs_did_type_parse(""), RFS_DID_UNKNOWN);
	CHECK_INT(rfs_did_type_parse("DIDType."), RFS_DID_UNKNOWN);
	CHECK_STR(rfs_did_type_name(RFS_DID_FILE), "FILE");
	CHECK_STR(rfs_did_type_name(RFS_DID_CONTAINER), "CONTAINER");
	CHECK_STR(rfs_did_type_name(RFS_DID_UNKNOWN), "UNKNOWN");

	a.scope = strdup("user.jdoe");
	a.name = strdup("file1.dat");
	a.type = RFS_DID_FILE;
	a.bytes = 1000;
	a.has_bytes = true;
	memcpy(a.adler32, "0cc737eb", 9);
	CHECK_INT(rfs_did_rec_copy(&b, &a), 0);
	CHECK_STR(b.scope, "user.jdoe");
	CHECK_STR(b.name, "file1.dat");
	CHECK(b.scope != a.scope && b.name != a.name);
	CHECK_STR(b.adler32, "0cc737eb");
	CHECK_U64(b.bytes, 1000);

	rfs_did_list_init(&l);
	CHECK_INT(rfs_did_list_take(&l, &a), 0);
	/* the list owns the strings now, the record is emptied */
	CHECK(a.scope == NULL && a.name == NULL);
	CHECK_INT(l.n, 1);
	CHECK_STR(l.v[0].name, "file1.dat");
	rfs_did_list_release(&l);
	rfs_did_rec_release(&b);
	CHECK(b.scope == NULL && b.name == NULL);

	/* a scope record has no name */
	a.scope = strdup("mock");
	a.name = NULL;
	CHECK_INT(rfs_did_rec_copy(&b, &a), 0);
	CHECK(b.name == NULL);
	CHECK_STR(b.scope, "mock");
	rfs_did_rec_release(&a);
	rfs_did_rec_release(&b);
}

/* The live 1.31 example of rucio-rest.md 3.1, PFNs in reverse order. */
static const char live_replicas[] =
	"{\"scope\":\"user.jdoe\",\"name\":\"file1.dat\",\"bytes\":1000,"
	"\"md5\":\"f1c9645dbc14efddc7d8a322685f26eb\",\"adler32\":\"0cc737eb\","
	"\"pfns\":{"
	"\"root://127.0.0.1:1094//data/rucio/user/jdoe/f2/fc/file1.dat\":"
	"{\"rse_id\":\"d169\",\"rse\":\"LOCAL_ROOTDISK\",\"type\":\"DISK\","
	"\"volatile\":false,\"domain\":\"wan\",\"priority\":2,"
	"\"client_extract\":false},"
	"\"https://127.0.0.1:28472/rucio/user/jdoe/f2/fc/file1.dat\":"
	"{\"rse_id\":\"d169\",\"rse\":\"LOCAL_USERDISK\",\"type\":\"DISK\","
	"\"volatile\":false,\"domain\":\"wan\",\"priority\":1,"
	"\"client_extract\":false}},"
	"\"rses\":{\"LOCAL_USERDISK\":[\"https://127.0.0.1:28472/rucio/user/"
	"jdoe/f2/fc/file1.dat\"]},"
	"\"states\":{\"LOCAL_USERDISK\":\"AVAILABLE\"}}\n";

static void test_replicas_live(void)
{
	struct rfs_replica_list l;

	CHECK_INT(replicas(live_replicas, &l), 0);
	CHECK_INT(l.n, 1);
	if (l.n != 1)
		goto out;
	CHECK_STR(l.v[0].did.scope, "user.jdoe");
	CHECK_STR(l.v[0].did.name, "file1.dat");
	CHECK_U64(l.v[0].did.bytes, 1000);
	CHECK_STR(l.v[0].did.adler32, "0cc737eb");
	CHECK_INT(l.v[0].npfn, 2);
	if (l.v[0].npfn != 2)
		goto out;
	CHECK_STR(l.v[0].pfn[0].url,
		  "https://127.0.0.1:28472/rucio/user/jdoe/f2/fc/file1.dat");
	CHECK_STR(l.v[0].pfn[0].rse, "LOCAL_USERDISK");
	CHECK_INT(l.v[0].pfn[0].priority, 1);
	CHECK_STR(l.v[0].pfn[1].rse, "LOCAL_ROOTDISK");
	CHECK_INT(l.v[0].pfn[1].priority, 2);
out:
	rfs_replica_list_release(&l);
	CHECK(l.v == NULL && l.n == 0);
}

/* The URLs of file @i, in order, joined by spaces. */
static const char *order(const struct rfs_replica_list *l, size_t i)
{
	static char out[512];
	size_t n = 0;

	out[0] = '\0';
	for (size_t j = 0; i < l->n && j < l->v[i].npfn; j++)
		n += snprintf(out + n, sizeof(out) - n, "%s%s", j ? " " : "",
			      l->v[i].pfn[j].url);
	return out;
}

static void test_replicas_order(void)
{
	struct rfs_replica_list l;

	/* equal priorities keep the catalogue's order (stable sort) */
	CHECK_INT(replicas("{\"scope\":\"s\",\"name\":\"f\",\"pfns\":{"
			   "\"u3\":{\"rse\":\"R3\",\"priority\":2},"
			   "\"u1\":{\"rse\":\"R1\",\"priority\":1},"
			   "\"u5\":{\"rse\":\"R5\",\"priority\":3},"
			   "\"u2\":{\"rse\":\"R2\",\"priority\":1},"
			   "\"u4\":{\"rse\":\"R4\",\"priority\":2}}}",
			   &l),
		  0);
	CHECK_STR(order(&l, 0), "u1 u2 u3 u4 u5");
	rfs_replica_list_release(&l);

	CHECK_INT(replicas("{\"scope\":\"s\",\"name\":\"f\",\"pfns\":{"
			   "\"c\":{\"rse\":\"R\",\"priority\":7},"
			   "\"a\":{\"rse\":\"R\",\"priority\":7},"
			   "\"b\":{\"rse\":\"R\",\"priority\":7}}}",
			   &l),
		  0);
	CHECK_STR(order(&l, 0), "c a b");
	rfs_replica_list_release(&l);

	/* no priority (or null) goes last, in the catalogue's order; 0 is
	 * the top priority since Rucio 39 */
	CHECK_INT(replicas("{\"scope\":\"s\",\"name\":\"f\",\"pfns\":{"
			   "\"none1\":{\"rse\":\"R\"},"
			   "\"p5\":{\"rse\":\"R\",\"priority\":5},"
			   "\"null\":{\"rse\":\"R\",\"priority\":null},"
			   "\"none2\":{\"rse\":\"R\"},"
			   "\"p0\":{\"rse\":\"R\",\"priority\":0},"
			   "\"neg\":{\"rse\":\"R\",\"priority\":-3}}}",
			   &l),
		  0);
	CHECK_STR(order(&l, 0), "neg p0 p5 none1 null none2");
	rfs_replica_list_release(&l);

	/* no rse: an empty one */
	CHECK_INT(replicas("{\"scope\":\"s\",\"name\":\"f\",\"pfns\":{"
			   "\"u\":{\"priority\":1}}}",
			   &l),
		  0);
	CHECK(l.n == 1 && l.v[0].npfn == 1 && !strcmp(l.v[0].pfn[0].rse, ""));
	rfs_replica_list_release(&l);
}

static void test_replicas_shapes(void)
{
	struct rfs_replica_list l;

	/* files without replicas: empty, missing or null pfns */
	CHECK_INT(replicas("{\"scope\":\"s\",\"name\":\"a\",\"pfns\":{},"
			   "\"rses\":{},\"states\":{}}\n"
			   "{\"scope\":\"s\",\"name\":\"b\"}\n"
			   "{\"scope\":\"s\",\"name\":\"c\",\"pfns\":null}\n",
			   &l),
		  0);
	CHECK_INT(l.n, 3);
	for (size_t i = 0; i < l.n; i++)
		CHECK_INT(l.v[i].npfn, 0);
	rfs_replica_list_release(&l);

	/* several files, each with its own list */
	CHECK_INT(replicas("{\"scope\":\"s\",\"name\":\"a\",\"bytes\":1,"
			   "\"pfns\":{\"a2\":{\"rse\":\"R\",\"priority\":2},"
			   "\"a1\":{\"rse\":\"R\",\"priority\":1}}}\n"
			   "\n"
			   "{\"scope\":\"s\",\"name\":\"b\",\"bytes\":2,"
			   "\"pfns\":{\"b1\":{\"rse\":\"R\",\"priority\":1}}}",
			   &l),
		  0);
	CHECK_INT(l.n, 2);
	CHECK_STR(order(&l, 0), "a1 a2");
	CHECK_STR(order(&l, 1), "b1");
	if (l.n == 2) {
		CHECK_STR(l.v[1].did.name, "b");
		CHECK_U64(l.v[1].did.bytes, 2);
	}
	rfs_replica_list_release(&l);

	/* an unknown DID is an empty 200 */
	CHECK_INT(replicas("", &l), 0);
	CHECK_EMPTY_LIST(l);
	rfs_replica_list_release(&l);
}

static void test_replicas_malformed(void)
{
	struct rfs_replica_list l;
	static const char *const bad[] = {
		"{\"scope\":\"s\",\"name\":\"f\",\"pfns\":[\"u\"]}",
		"{\"scope\":\"s\",\"name\":\"f\",\"pfns\":{\"u\":\"R\"}}",
		"{\"scope\":\"s\",\"name\":\"f\",\"pfns\":{\"u\":{\"rse\":1}}}",
		"{\"scope\":\"s\",\"name\":\"f\",\"pfns\":{\"u\":{\"rse\":"
		"\"R\","
		"\"priority\":\"1\"}}}",
		"{\"scope\":\"s\",\"name\":\"f\",\"pfns\":{\"u\":{\"rse\":"
		"\"R\","
		"\"priority\":1.5}}}",
		"{\"scope\":\"s\",\"name\":\"f\",\"pfns\":{\"\":{\"rse\":\"R\"}"
		"}}",
		"{\"scope\":\"s\",\"name\":\"f\",\"pfns\":{\"u\":{\"rse\":"
		"\"R\\u0000"
		"\"}}}",
		"{\"scope\":\"s\",\"name\":\"f\",\"pfns\":{\"u\":{},\"u\":{}}}",
		"{\"scope\":\"s\",\"name\":\"f\\u0000\",\"pfns\":{}}",
		"{\"scope\":\"s\",\"pfns\":{}}",
		"{\"scope\":\"s\",\"name\":\"f\",\"bytes\":-1,\"pfns\":{}}",
		"{\"scope\":\"s\",\"name\":\"f\",\"pfns\":{}",
		"[]",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = replicas(bad[i], &l);

		if (rc != -EBADMSG)
			printf("# bad[%zu] = '%s' gave %d\n", i, bad[i], rc);
		CHECK_INT(rc, -EBADMSG);
		CHECK_EMPTY_LIST(l);
	}

	/* a later bad PFN drops the earlier files and PFNs without a leak */
	CHECK_INT(replicas("{\"scope\":\"s\",\"name\":\"a\",\"pfns\":{"
			   "\"a1\":{\"rse\":\"R\",\"priority\":1}}}\n"
			   "{\"scope\":\"s\",\"name\":\"b\",\"pfns\":{"
			   "\"b1\":{\"rse\":\"R\",\"priority\":1},"
			   "\"b2\":{\"rse\":\"R\",\"priority\":\"x\"}}}\n",
			   &l),
		  -EBADMSG);
	CHECK_EMPTY_LIST(l);
}

static void test_checksum_norm(void)
{
	char out[33];

	memset(out, '#', sizeof(out));
	CHECK_INT(rfs_checksum_norm(out, 8, "cc737eb"), 0);
	CHECK_STR(out, "0cc737eb");
	CHECK_INT(rfs_checksum_norm(out, 8, "0CC737EB"), 0);
	CHECK_STR(out, "0cc737eb");
	CHECK_INT(rfs_checksum_norm(out, 8, "1"), 0);
	CHECK_STR(out, "00000001");
	CHECK_INT(
		rfs_checksum_norm(out, 32, "F1C9645DBC14EFDDC7D8A322685F26EB"),
		0);
	CHECK_STR(out, "f1c9645dbc14efddc7d8a322685f26eb");
	CHECK_INT(rfs_checksum_norm(out, 32, "abc"), 0);
	CHECK_INT(strlen(out), 32);
	CHECK_STR(out + 29, "abc");

	memcpy(out, "unchanged", 10);
	CHECK_INT(rfs_checksum_norm(out, 8, ""), -EINVAL);
	CHECK_INT(rfs_checksum_norm(out, 8, "123456789"), -EINVAL);
	CHECK_INT(rfs_checksum_norm(out, 8, "xyz"), -EINVAL);
	CHECK_INT(rfs_checksum_norm(out, 8, "0x12"), -EINVAL);
	CHECK_INT(rfs_checksum_norm(out, 8, " 12"), -EINVAL);
	CHECK_INT(rfs_checksum_norm(out, 8, "12 "), -EINVAL);
	CHECK_INT(rfs_checksum_norm(out, 32, "-1"), -EINVAL);
	CHECK_STR(out, "unchanged");
}

/* GET /ping and GET /accounts/whoami, as ruciofs --check shows them */
static void test_ping_whoami(void)
{
	static const char ping41[] = "{\"version\":\"41.0.0\"}\n";
	static const char acct[] = "{\"account\": \"alice\", \"status\": "
				   "\"ACTIVE\"}";
	char out[32];

	CHECK_INT(rfs_parse_ping(ping41, strlen(ping41), out, sizeof(out)), 0);
	CHECK_STR(out, "41.0.0");
	CHECK_INT(rfs_parse_ping("{\"version\": 1}", 14, out, sizeof(out)),
		  -EBADMSG);
	CHECK_INT(rfs_parse_ping("{\"version\": \"\"}", 15, out, sizeof(out)),
		  -EBADMSG);
	CHECK_INT(rfs_parse_ping("[\"41\"]", 6, out, sizeof(out)), -EBADMSG);
	CHECK_INT(rfs_parse_ping("", 0, out, sizeof(out)), -EBADMSG);
	/* a terminal escape in the version is not shown */
	CHECK_INT(rfs_parse_ping("{\"version\": \"1\\u001b[2J\"}", 25, out,
				 sizeof(out)),
		  -EBADMSG);
	/* too long for @out: refused, not cut */
	CHECK_INT(rfs_parse_ping("{\"version\": \"0123456789012345678901234567"
				 "890123\"}",
				 49, out, sizeof(out)),
		  -EBADMSG);

	/* 1.31 and 41 answer whoami with a 303 to /accounts/NAME */
	CHECK_INT(rfs_parse_whoami("https://rucio.example.org/accounts/alice",
				   "", 0, out, sizeof(out)),
		  0);
	CHECK_STR(out, "alice");
	CHECK_INT(
		rfs_parse_whoami("/accounts/bob?x=1", "", 0, out, sizeof(out)),
		0);
	CHECK_STR(out, "bob");
	CHECK_INT(rfs_parse_whoami("/accounts/", "", 0, out, sizeof(out)),
		  -EBADMSG);
	/* a proxy that followed it: the account's own record */
	CHECK_INT(rfs_parse_whoami(NULL, acct, strlen(acct), out, sizeof(out)),
		  0);
	CHECK_STR(out, "alice");
	CHECK_INT(rfs_parse_whoami("", acct, strlen(acct), out, sizeof(out)),
		  0);
	CHECK_INT(rfs_parse_whoami(NULL, "{}", 2, out, sizeof(out)), -EBADMSG);
	CHECK_INT(rfs_parse_whoami("/accounts/a\tb", "", 0, out, sizeof(out)),
		  -EBADMSG);
}

int main(void)
{
	test_scopes();
	test_dids_listing();
	test_dids_meta();
	test_dids_framing();
	test_dids_malformed();
	test_dids_bad_record();
	test_dids_checksums_and_nul();
	test_did_helpers();
	test_replicas_live();
	test_replicas_order();
	test_replicas_shapes();
	test_replicas_malformed();
	test_checksum_norm();
	test_ping_whoami();
	return unit_done("parse");
}
