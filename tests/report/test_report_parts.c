/* The report's parts on their own: round ticks, escaping of hostile text (markup, control
 * characters, broken UTF-8), JSON errors with line and column, and the public API's
 * sections/notes on the committed run fixture. The whole page is checked by test_report.sh. */
#include <stdlib.h>
#include <string.h>

#include "nmformer/report.h"
#include "report/report_internal.h"
#include "test.h"

static void check_ticks(double lo, double hi, int target, double want_lo, double want_hi,
                        double want_step) {
    rpt_ticks t;
    rpt_ticks_nice(lo, hi, target, &t);
    CHECK_MSG(fabs(t.lo - want_lo) < 1e-12 && fabs(t.hi - want_hi) < 1e-12 &&
                  fabs(t.step - want_step) < 1e-12,
              "[%g, %g]/%d -> %g..%g step %g", lo, hi, target, t.lo, t.hi, t.step);
    CHECK(t.lo <= lo && t.hi >= hi);
    CHECK(t.count == (int)lround((t.hi - t.lo) / t.step) + 1);
}

static void test_ticks(void) {
    check_ticks(0, 1, 5, 0, 1, 0.2);
    check_ticks(0, 556.072, 6, 0, 600, 100);
    check_ticks(87.46, 88.15, 5, 87.4, 88.2, 0.2);
    check_ticks(0, 5500, 6, 0, 6000, 1000);
    check_ticks(-3, 7, 5, -4, 8, 2);       /* 10/5 = 2 -> step 2 from -4 */
    check_ticks(0.0021, 0.0257, 5, 0, 0.03, 0.005);
    rpt_ticks t;
    rpt_ticks_nice(5, 5, 5, &t); /* one value: a range around it, not a division by zero */
    CHECK(t.lo < 5 && t.hi > 5 && t.step > 0 && t.count >= 2);
    rpt_ticks_nice(0, 0, 5, &t);
    CHECK(t.lo < 0 && t.hi > 0 && t.step > 0);
    CHECK(rpt_tick_at(&(rpt_ticks){-0.6, 0.6, 0.2, 7}, 3) == 0.0); /* no "-0.0" or 1e-17 */
    char b[32];
    rpt_tick_label(b, sizeof b, 0.4, 0.2);
    CHECK(!strcmp(b, "0.4"));
    rpt_tick_label(b, sizeof b, 0.015, 0.005);
    CHECK(!strcmp(b, "0.015"));
    rpt_tick_label(b, sizeof b, 6000, 1000);
    CHECK(!strcmp(b, "6000"));
    rpt_tick_label(b, sizeof b, 88.0, 0.5);
    CHECK(!strcmp(b, "88.0"));
}

static char *escaped(const char *s) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) return NULL;
    rpt_put_text(f, s);
    fclose(f);
    return buf;
}

static void check_escape(const char *in, const char *want) {
    char *got = escaped(in);
    CHECK_MSG(got && !strcmp(got, want), "escape(%s) -> %s, want %s", in, got ? got : "(null)", want);
    free(got);
}

#define BAD "\xef\xbf\xbd" /* U+FFFD */

static void test_escape(void) {
    check_escape("<script>alert('x')</script>", "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
    check_escape("a\"b&c", "a&quot;b&amp;c");
    check_escape("tab\there\nline\x7f", "tab" BAD "here" BAD "line" BAD);
    check_escape("\xc2\xb5s \xc3\x97 \xe2\x80\x94 \xf0\x9f\x98\x80", "\xc2\xb5s \xc3\x97 \xe2\x80\x94 \xf0\x9f\x98\x80");
    check_escape("\xff\xfe", BAD BAD);
    check_escape("\xc0\xaf", BAD BAD);             /* overlong '/' */
    check_escape("\xed\xa0\x80", BAD BAD BAD);     /* a UTF-16 surrogate */
    check_escape("\xf4\x90\x80\x80", BAD BAD BAD BAD); /* above U+10FFFF */
    check_escape("x\xe2\x82", "x" BAD BAD);        /* cut at the end of the string */
    check_escape("", "");
}

static void test_json_errors(void) {
    cJSON *j = NULL;
    const char *text = "{\n  \"a\": 1,\n  x: 2\n}";
    CHECK_STATUS(rpt_json_text("f.json", 1, text, strlen(text), &j), NMF_ERR_FORMAT);
    /* the line of the error; the column is where cJSON stopped (at or just after the 'x') */
    CHECK_MSG(strstr(nmf_last_error(), "f.json: line 3, column "), "%s", nmf_last_error());
    CHECK(j == NULL);
    CHECK_STATUS(rpt_json_text("g.jsonl", 7, "{} {}", 5, &j), NMF_ERR_FORMAT); /* junk after */
    CHECK_MSG(strstr(nmf_last_error(), "g.jsonl: line 7, column 4"), "%s", nmf_last_error());
    CHECK_STATUS(rpt_json_text("e.json", 1, "  \n", 3, &j), NMF_ERR_FORMAT);
    CHECK(strstr(nmf_last_error(), "empty"));
    CHECK_OK(rpt_json_text("ok.json", 1, "{\"x\": 1e3}\n", 11, &j));
    double v = 0;
    CHECK(rpt_json_number(j, "x", &v) == 1 && v == 1000);
    CHECK(rpt_json_number(j, "y", &v) == 0);
    cJSON_Delete(j);
    const char *big = "{\"x\": 1e999, \"s\": \"1\"}";
    CHECK_OK(rpt_json_text("big.json", 1, big, strlen(big), &j));
    CHECK(rpt_json_number(j, "x", &v) == -1); /* infinite: refused, not plotted */
    CHECK(rpt_json_number(j, "s", &v) == -1);
    cJSON_Delete(j);
}

static void test_api(void) {
    char *html = NULL;
    size_t size = 0;
    nmf_report_info info;
    CHECK_STATUS(nmf_report_render(NULL, &html, &size, &info), NMF_ERR_INVALID_ARG);
    const char *fixture = test_source_path("tests/fixtures/report");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", fixture);
    CHECK_OK(nmf_report_render(dir, &html, &size, &info));
    /* the fixture has summaries and a log, no simulation */
    CHECK(info.sections == (NMF_REPORT_CANDIDATES | NMF_REPORT_LATENCY | NMF_REPORT_TRAINING));
    CHECK(info.note_count == 1 && strstr(info.notes[0], "sim"));
    CHECK(html && size == strlen(html));
    CHECK(html && strstr(html, "<td>556072</td>") && strstr(html, "<td>88.15%</td>"));
    CHECK(html && !strstr(html, "<script"));
    free(html);
    /* the same page without info */
    CHECK_OK(nmf_report_render(dir, &html, &size, NULL));
    free(html);
}

int main(void) {
    test_ticks();
    test_escape();
    test_json_errors();
    test_api();
    return test_finish("report_parts");
}
