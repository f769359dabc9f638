/*
 * Unit tests for the Prometheus text writer (util/prom.c): the exact
 * bytes of counters, gauges and histograms (cumulative buckets ending in
 * +Inf equal to _count), the format's escapes in label values and help
 * texts, and what it refuses: names the format does not allow, a counter
 * not named _total, a family declared twice, samples without a family,
 * a buffer past its cap. And the daemon's latency buckets.
 */
#include "config.h"

#include <errno.h>
#include <math.h>

#include "core/metrics.h"
#include "util/prom.h"
#include "unit.h"

static void test_counter_gauge(void)
{
	struct rfs_buf b;
	struct rfs_prom p;
	struct rfs_prom_label l[] = { { "source", "endpoint" },
				      { "endpoint", "RSE1 root" } };

	rfs_buf_init(&b, 1 << 16);
	rfs_prom_init(&p, &b);
	rfs_prom_family(&p, "ruciofs_read_bytes_total", RFS_PROM_COUNTER,
			"Bytes read");
	rfs_prom_u64(&p, l, 1, 18446744073709551615ull);
	rfs_prom_u64(&p, l, 2, 42);
	rfs_prom_family(&p, "ruciofs_offline", RFS_PROM_GAUGE, "0 or 1");
	rfs_prom_value(&p, NULL, 0, 1);
	rfs_prom_family(&p, "ruciofs_rate", RFS_PROM_GAUGE, "");
	rfs_prom_value(&p, NULL, 0, 0.1);
	rfs_prom_value(&p, NULL, 0, INFINITY);
	rfs_prom_value(&p, NULL, 0, -INFINITY);
	rfs_prom_value(&p, NULL, 0, NAN);
	CHECK_INT(rfs_prom_finish(&p), 0);
	CHECK_STR(b.data, "# HELP ruciofs_read_bytes_total Bytes read\n"
			  "# TYPE ruciofs_read_bytes_total counter\n"
			  "ruciofs_read_bytes_total{source=\"endpoint\"} "
			  "18446744073709551615\n"
			  "ruciofs_read_bytes_total{source=\"endpoint\","
			  "endpoint=\"RSE1 root\"} 42\n"
			  "# HELP ruciofs_offline 0 or 1\n"
			  "# TYPE ruciofs_offline gauge\n"
			  "ruciofs_offline 1\n"
			  "# HELP ruciofs_rate \n"
			  "# TYPE ruciofs_rate gauge\n"
			  "ruciofs_rate 0.1\n"
			  "ruciofs_rate +Inf\n"
			  "ruciofs_rate -Inf\n"
			  "ruciofs_rate NaN\n");
	rfs_buf_release(&b);
}

static void test_escapes(void)
{
	struct rfs_buf b;
	struct rfs_prom p;
	struct rfs_prom_label l[] = { { "identity", "a\\b\"c\nd{e}=,f" } };

	rfs_buf_init(&b, 1 << 16);
	rfs_prom_init(&p, &b);
	rfs_prom_family(&p, "x_total", RFS_PROM_COUNTER,
			"back\\slash \"quoted\"\nnext line");
	rfs_prom_u64(&p, l, 1, 7);
	CHECK_INT(rfs_prom_finish(&p), 0);
	/* help: backslash and newline only; label values: and the quote */
	CHECK_STR(b.data,
		  "# HELP x_total back\\\\slash \"quoted\"\\nnext line\n"
		  "# TYPE x_total counter\n"
		  "x_total{identity=\"a\\\\b\\\"c\\nd{e}=,f\"} 7\n");
	rfs_buf_release(&b);
}

static void test_histogram(void)
{
	static const double bounds[] = { 0.001, 0.01, 0.1, 1 };
	/* per bucket, the last one past 1 s */
	static const uint64_t counts[] = { 2, 0, 3, 1, 4 };
	struct rfs_prom_hist h = { bounds, 4, counts, 12.5 };
	struct rfs_prom_label l[] = { { "scheme", "root" } };
	struct rfs_buf b;
	struct rfs_prom p;

	rfs_buf_init(&b, 1 << 16);
	rfs_prom_init(&p, &b);
	rfs_prom_family(&p, "ruciofs_fetch_duration_seconds",
			RFS_PROM_HISTOGRAM, "Fetches");
	rfs_prom_histogram(&p, l, 1, &h);
	rfs_prom_histogram(&p, NULL, 0, &h);
	CHECK_INT(rfs_prom_finish(&p), 0);
	CHECK_STR(b.data,
		  "# HELP ruciofs_fetch_duration_seconds Fetches\n"
		  "# TYPE ruciofs_fetch_duration_seconds histogram\n"
		  "ruciofs_fetch_duration_seconds_bucket{scheme=\"root\","
		  "le=\"0.001\"} 2\n"
		  "ruciofs_fetch_duration_seconds_bucket{scheme=\"root\","
		  "le=\"0.01\"} 2\n"
		  "ruciofs_fetch_duration_seconds_bucket{scheme=\"root\","
		  "le=\"0.1\"} 5\n"
		  "ruciofs_fetch_duration_seconds_bucket{scheme=\"root\","
		  "le=\"1\"} 6\n"
		  "ruciofs_fetch_duration_seconds_bucket{scheme=\"root\","
		  "le=\"+Inf\"} 10\n"
		  "ruciofs_fetch_duration_seconds_sum{scheme=\"root\"} 12.5\n"
		  "ruciofs_fetch_duration_seconds_count{scheme=\"root\"} 10\n"
		  "ruciofs_fetch_duration_seconds_bucket{le=\"0.001\"} 2\n"
		  "ruciofs_fetch_duration_seconds_bucket{le=\"0.01\"} 2\n"
		  "ruciofs_fetch_duration_seconds_bucket{le=\"0.1\"} 5\n"
		  "ruciofs_fetch_duration_seconds_bucket{le=\"1\"} 6\n"
		  "ruciofs_fetch_duration_seconds_bucket{le=\"+Inf\"} 10\n"
		  "ruciofs_fetch_duration_seconds_sum 12.5\n"
		  "ruciofs_fetch_duration_seconds_count 10\n");
	rfs_buf_release(&b);
}

/* One family declared by @name and @type, then a sample: its error. */
static int one(const char *name, enum rfs_prom_type type,
	       const char *label_name)
{
	struct rfs_prom_label l[] = { { label_name, "v" } };
	struct rfs_buf b;
	struct rfs_prom p;
	int rc;

	rfs_buf_init(&b, 1 << 16);
	rfs_prom_init(&p, &b);
	rfs_prom_family(&p, name, type, "h");
	rfs_prom_u64(&p, l, label_name ? 1 : 0, 1);
	rc = rfs_prom_finish(&p);
	rfs_buf_release(&b);
	return rc;
}

static void test_names(void)
{
	CHECK(rfs_prom_name_ok("ruciofs_read_bytes_total"));
	CHECK(rfs_prom_name_ok("a:b_c9"));
	CHECK(rfs_prom_name_ok("_x"));
	CHECK(!rfs_prom_name_ok(""));
	CHECK(!rfs_prom_name_ok("9lives"));
	CHECK(!rfs_prom_name_ok("a-b"));
	CHECK(!rfs_prom_name_ok("a b"));
	CHECK(!rfs_prom_name_ok("a.b"));
	CHECK(!rfs_prom_name_ok("caf\xc3\xa9"));
	CHECK_INT(one("ok_total", RFS_PROM_COUNTER, "label"), 0);
	CHECK_INT(one("ok", RFS_PROM_GAUGE, NULL), 0);
	/* a counter is _total, and only a counter */
	CHECK_INT(one("bytes", RFS_PROM_COUNTER, NULL), -EINVAL);
	CHECK_INT(one("bytes_total", RFS_PROM_GAUGE, NULL), -EINVAL);
	CHECK_INT(one("bad-name_total", RFS_PROM_COUNTER, NULL), -EINVAL);
	/* label names: no ':', no "__" prefix, no "le" but the writer's */
	CHECK_INT(one("ok_total", RFS_PROM_COUNTER, "a:b"), -EINVAL);
	CHECK_INT(one("ok_total", RFS_PROM_COUNTER, "__name__"), -EINVAL);
	CHECK_INT(one("ok_total", RFS_PROM_COUNTER, "le"), -EINVAL);
	CHECK_INT(one("ok_total", RFS_PROM_COUNTER, "9x"), -EINVAL);
	CHECK_INT(one("ok_total", RFS_PROM_COUNTER, ""), -EINVAL);
}

static void test_refused(void)
{
	static const double bounds[] = { 1, 1 };
	static const uint64_t counts[] = { 0, 0, 0 };
	struct rfs_prom_hist h = { bounds, 2, counts, 0 };
	struct rfs_buf b;
	struct rfs_prom p;

	/* a sample before any family */
	rfs_buf_init(&b, 1 << 16);
	rfs_prom_init(&p, &b);
	rfs_prom_u64(&p, NULL, 0, 1);
	CHECK_INT(rfs_prom_finish(&p), -EINVAL);
	rfs_buf_release(&b);

	/* a family twice, even after another: HELP/TYPE once each */
	rfs_buf_init(&b, 1 << 16);
	rfs_prom_init(&p, &b);
	rfs_prom_family(&p, "a_total", RFS_PROM_COUNTER, "# TYPE b gauge");
	rfs_prom_family(&p, "b", RFS_PROM_GAUGE, "");
	CHECK_INT(rfs_prom_finish(&p), 0); /* the help text is no TYPE */
	rfs_prom_family(&p, "a_total", RFS_PROM_COUNTER, "");
	CHECK_INT(rfs_prom_finish(&p), -EINVAL);
	rfs_buf_release(&b);

	/* a histogram's bounds must increase; no plain value in one */
	rfs_buf_init(&b, 1 << 16);
	rfs_prom_init(&p, &b);
	rfs_prom_family(&p, "h_seconds", RFS_PROM_HISTOGRAM, "");
	rfs_prom_histogram(&p, NULL, 0, &h);
	CHECK_INT(rfs_prom_finish(&p), -EINVAL);
	rfs_buf_release(&b);
	rfs_buf_init(&b, 1 << 16);
	rfs_prom_init(&p, &b);
	rfs_prom_family(&p, "h_seconds", RFS_PROM_HISTOGRAM, "");
	rfs_prom_value(&p, NULL, 0, 1);
	CHECK_INT(rfs_prom_finish(&p), -EINVAL);
	rfs_buf_release(&b);

	/* past the cap: an error, never a silently cut text */
	rfs_buf_init(&b, 64);
	rfs_prom_init(&p, &b);
	rfs_prom_family(&p, "a_long_name_for_a_small_buffer_total",
			RFS_PROM_COUNTER, "more than 64 bytes in all");
	CHECK_INT(rfs_prom_finish(&p), -EFBIG);
	rfs_buf_release(&b);
}

/* The daemon's latency buckets: log-spaced, increasing, a bound itself
 * counted in its own bucket ("le"), past the last one +Inf. */
static void test_buckets(void)
{
	for (int i = 1; i < RFS_LAT_BOUNDS; i++) {
		double r = rfs_metrics_bounds[i] / rfs_metrics_bounds[i - 1];

		CHECK(r >= 2 && r <= 3);
	}
	CHECK(rfs_metrics_bounds[0] == 0.0001);
	CHECK(rfs_metrics_bounds[RFS_LAT_BOUNDS - 1] == 60);
	CHECK_INT(rfs_metrics_bucket(0), 0);
	CHECK_INT(rfs_metrics_bucket(0.0001), 0);
	CHECK_INT(rfs_metrics_bucket(0.00010001), 1);
	CHECK_INT(rfs_metrics_bucket(1), 12);
	CHECK_INT(rfs_metrics_bucket(60), RFS_LAT_BOUNDS - 1);
	CHECK_INT(rfs_metrics_bucket(61), RFS_LAT_BOUNDS);
	CHECK_INT(rfs_metrics_bucket(1e9), RFS_LAT_BOUNDS);
}

int main(void)
{
	test_counter_gauge();
	test_escapes();
	test_histogram();
	test_names();
	test_refused();
	test_buckets();
	return unit_done("prom");
}
