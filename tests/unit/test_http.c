/* httputil: listen addresses, name sanitising, sniffing, validators,
 * JSON/URL escaping and Prometheus text (the pure half of the HTTP API). */
#include "unit.h"

#include <errno.h>
#include <string.h>

#include "httputil.h"

static void test_listen(void **state)
{
	char host[64];
	int port = 0;

	(void)state;
	assert_int_equal(httputil_parse_listen("127.0.0.1:8080", host,
	    sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8080);
	assert_int_equal(httputil_parse_listen("[::1]:80", host, sizeof(host),
	    &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 80);
	assert_int_equal(httputil_parse_listen("localhost:9", host,
	    sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(httputil_parse_listen("127.0.0.1", host, sizeof(host),
	    &port), -EINVAL);
	assert_int_equal(httputil_parse_listen("127.0.0.1:0", host,
	    sizeof(host), &port), -EINVAL);
	assert_int_equal(httputil_parse_listen("127.0.0.1:65536", host,
	    sizeof(host), &port), -EINVAL);
	assert_int_equal(httputil_parse_listen("example.com:80", host,
	    sizeof(host), &port), -EINVAL);
	assert_int_equal(httputil_parse_listen(":80", host, sizeof(host),
	    &port), -EINVAL);
	assert_int_equal(httputil_parse_listen("[::1]80", host, sizeof(host),
	    &port), -EINVAL);
	assert_int_equal(httputil_parse_listen("1.2.3.4:8x", host,
	    sizeof(host), &port), -EINVAL);
}

static void test_sanitize(void **state)
{
	char out[256];

	(void)state;
	assert_int_equal(httputil_sanitize_name("photo.jpg", out, sizeof(out)),
	    0);
	assert_string_equal(out, "photo.jpg");
	assert_int_equal(httputil_sanitize_name("../../etc/passwd", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "passwd");
	assert_int_equal(httputil_sanitize_name("C:\\Users\\me\\a b.png", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "a b.png");
	assert_int_equal(httputil_sanitize_name(".hidden.jpg", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "hidden.jpg");
	assert_int_equal(httputil_sanitize_name("a\nb\x01\x7f.jpg", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "ab.jpg");
	assert_int_equal(httputil_sanitize_name("..", out, sizeof(out)),
	    -EINVAL);
	assert_int_equal(httputil_sanitize_name("x/..", out, sizeof(out)),
	    -EINVAL);
	assert_int_equal(httputil_sanitize_name("", out, sizeof(out)),
	    -EINVAL);
	assert_int_equal(httputil_sanitize_name("dir/", out, sizeof(out)),
	    -EINVAL);
	assert_int_equal(httputil_sanitize_name("a..b.jpg", out, sizeof(out)),
	    -EINVAL);
	assert_int_equal(httputil_sanitize_name("name.", out, sizeof(out)), 0);
	assert_string_equal(out, "name");
}

static void test_sanitize_long(void **state)
{
	char in[600], out[256];

	(void)state;
	memset(in, 'a', sizeof(in) - 1);
	in[sizeof(in) - 1] = '\0';
	assert_int_equal(httputil_sanitize_name(in, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), 200);
	assert_int_equal(httputil_sanitize_name(in, out, 10), 0);
	assert_int_equal(strlen(out), 9);
}

static void test_sniff(void **state)
{
	static const unsigned char jpg[] = { 0xff, 0xd8, 0xff, 0xe0 };
	static const unsigned char png[] = "\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR";
	static const unsigned char webp[] = "RIFF\0\0\0\0WEBPVP8 ";
	static const unsigned char heic[] = "\0\0\0\x18" "ftypheic\0\0\0\0";
	static const unsigned char avif[] = "\0\0\0\x1c" "ftypavif\0\0\0\0";
	static const unsigned char mp4[] = "\0\0\0\x1c" "ftypisom\0\0\0\0";
	static const unsigned char jxl[] = { 0xff, 0x0a, 0, 0 };
	static const unsigned char jxlbox[] = { 0, 0, 0, 0x0c, 'J', 'X', 'L',
	    ' ', 0x0d, 0x0a, 0x87, 0x0a };

	(void)state;
	assert_string_equal(httputil_sniff(jpg, sizeof(jpg)), "jpg");
	assert_string_equal(httputil_sniff(png, 16), "png");
	assert_string_equal(httputil_sniff(webp, 16), "webp");
	assert_string_equal(httputil_sniff((const unsigned char *)"GIF89a..",
	    8), "gif");
	assert_string_equal(httputil_sniff((const unsigned char *)"II*\0....",
	    8), "tif");
	assert_string_equal(httputil_sniff((const unsigned char *)"MM\0*....",
	    8), "tif");
	assert_string_equal(httputil_sniff(heic, 16), "heic");
	assert_string_equal(httputil_sniff(avif, 16), "avif");
	assert_string_equal(httputil_sniff(jxl, sizeof(jxl)), "jxl");
	assert_string_equal(httputil_sniff(jxlbox, sizeof(jxlbox)), "jxl");
	assert_null(httputil_sniff(mp4, 16));
	assert_null(httputil_sniff((const unsigned char *)"<svg xmlns=", 11));
	assert_null(httputil_sniff((const unsigned char *)"%PDF-1.4", 8));
	assert_null(httputil_sniff(jpg, 2));
	assert_null(httputil_sniff(NULL, 0));
}

static void test_type_enabled(void **state)
{
	(void)state;
	assert_true(httputil_type_enabled("jpg", "jpeg,png"));
	assert_true(httputil_type_enabled("png", "jpeg,png"));
	assert_false(httputil_type_enabled("webp", "jpeg,png"));
	assert_true(httputil_type_enabled("tif", "tiff"));
	assert_true(httputil_type_enabled("heic", "heif"));
	assert_false(httputil_type_enabled(NULL, "jpg"));
}

static void test_content_type(void **state)
{
	(void)state;
	assert_string_equal(httputil_content_type("a/b_thumb.jpg"),
	    "image/jpeg");
	assert_string_equal(httputil_content_type("x.WEBP"), "image/webp");
	assert_string_equal(httputil_content_type("x.avif"), "image/avif");
	assert_string_equal(httputil_content_type("x.png"), "image/png");
	assert_string_equal(httputil_content_type("noext"),
	    "application/octet-stream");
	assert_string_equal(httputil_content_type("dir.d/noext"),
	    "application/octet-stream");
}

static void test_validators(void **state)
{
	char etag[64], date[64];

	(void)state;
	httputil_etag(etag, sizeof(etag), 0x10, 0x20, 0x30);
	assert_string_equal(etag, "\"10-20-30\"");
	assert_true(httputil_etag_match("\"10-20-30\"", etag));
	assert_true(httputil_etag_match("\"x\", W/\"10-20-30\"", etag));
	assert_true(httputil_etag_match("*", etag));
	assert_false(httputil_etag_match("\"10-20-31\"", etag));
	assert_false(httputil_etag_match("", etag));
	httputil_http_date(date, sizeof(date), 784111777);
	assert_string_equal(date, "Sun, 06 Nov 1994 08:49:37 GMT");
	assert_int_equal(httputil_parse_http_date(date), 784111777);
	assert_int_equal(httputil_parse_http_date("yesterday"), -1);
}

static void test_range(void **state)
{
	uint64_t off = 0, len = 0;

	(void)state;
	assert_int_equal(httputil_parse_range("bytes=0-9", 100, &off, &len), 1);
	assert_true(off == 0 && len == 10);
	assert_int_equal(httputil_parse_range("bytes=90-", 100, &off, &len), 1);
	assert_true(off == 90 && len == 10);
	assert_int_equal(httputil_parse_range("bytes=50-500", 100, &off, &len),
	    1);
	assert_true(off == 50 && len == 50);
	assert_int_equal(httputil_parse_range("bytes=-30", 100, &off, &len), 1);
	assert_true(off == 70 && len == 30);
	assert_int_equal(httputil_parse_range("bytes=-300", 100, &off, &len),
	    1);
	assert_true(off == 0 && len == 100);
	/* Unsatisfiable: 416. */
	assert_int_equal(httputil_parse_range("bytes=100-", 100, &off, &len),
	    -1);
	assert_int_equal(httputil_parse_range("bytes=-0", 100, &off, &len), -1);
	assert_int_equal(httputil_parse_range("bytes=0-", 0, &off, &len), -1);
	/* Ignored: the whole file. */
	assert_int_equal(httputil_parse_range("bytes=0-1,5-6", 100, &off, &len),
	    0);
	assert_int_equal(httputil_parse_range("bytes=9-1", 100, &off, &len), 0);
	assert_int_equal(httputil_parse_range("items=0-1", 100, &off, &len), 0);
	assert_int_equal(httputil_parse_range("bytes=+1-2", 100, &off, &len),
	    0);
	assert_int_equal(httputil_parse_range("bytes=-", 100, &off, &len), 0);
	assert_int_equal(httputil_parse_range(
	    "bytes=99999999999999999999-", 100, &off, &len), 0);
}

static void test_token_and_list(void **state)
{
	(void)state;
	assert_true(httputil_token_equal("s3cret", "s3cret"));
	assert_false(httputil_token_equal("s3cre", "s3cret"));
	assert_false(httputil_token_equal("s3crets3cret", "s3cret"));
	assert_false(httputil_token_equal("s3creT", "s3cret"));
	assert_false(httputil_token_equal("", "s3cret"));
	assert_true(httputil_list_has("thumbnails,metrics", "metrics"));
	assert_true(httputil_list_has("thumbnails,metrics", "thumbnails"));
	assert_false(httputil_list_has("thumbnails,metrics", "thumb"));
	assert_false(httputil_list_has("", "page"));
}

/* JSON strings are json.h's (tests/unit/test_json.c). */
static void test_strbuf_url(void **state)
{
	struct strbuf b;

	(void)state;
	strbuf_init(&b);
	strbuf_url_path(&b, "dir x/ü_thumb.jpg?#");
	assert_string_equal(b.buf, "dir%20x/%C3%BC_thumb.jpg%3F%23");
	strbuf_free(&b);
}

static void test_prometheus(void **state)
{
	struct histogram h;
	struct strbuf b;

	(void)state;
	memset(&h, 0, sizeof(h));
	histogram_observe(&h, 5);
	histogram_observe(&h, 300);
	histogram_observe(&h, 100000);
	assert_int_equal(h.n, 3);
	strbuf_init(&b);
	prom_metric(&b, "x_total", "counter", "X.");
	prom_value(&b, "x_total", "outcome=\"done\"", 42);
	prom_value(&b, "y", NULL, 1.5);
	prom_histogram(&b, "d_seconds", "D.", &h);
	assert_null(b.err ? "err" : NULL);
	assert_non_null(strstr(b.buf, "# TYPE x_total counter\n"));
	assert_non_null(strstr(b.buf, "x_total{outcome=\"done\"} 42\n"));
	assert_non_null(strstr(b.buf, "\ny 1.5\n"));
	assert_non_null(strstr(b.buf, "d_seconds_bucket{le=\"0.01\"} 1\n"));
	assert_non_null(strstr(b.buf, "d_seconds_bucket{le=\"0.5\"} 2\n"));
	assert_non_null(strstr(b.buf, "d_seconds_bucket{le=\"60\"} 2\n"));
	assert_non_null(strstr(b.buf, "d_seconds_bucket{le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(b.buf, "d_seconds_count 3\n"));
	assert_non_null(strstr(b.buf, "d_seconds_sum 100.305\n"));
	strbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_sanitize),
		cmocka_unit_test(test_sanitize_long),
		cmocka_unit_test(test_sniff),
		cmocka_unit_test(test_type_enabled),
		cmocka_unit_test(test_content_type),
		cmocka_unit_test(test_validators),
		cmocka_unit_test(test_range),
		cmocka_unit_test(test_strbuf_url),
		cmocka_unit_test(test_token_and_list),
		cmocka_unit_test(test_prometheus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
