/* Tests of the CSV reader: RFC 4180 quoting, and refusal of hostile or malformed input. */
#include "basira/train.h"
#include "test.h"

#include <stdlib.h>
#include <unistd.h>

static basira_csv *parse(const char *s, basira_code *rc, basira_error *err)
{
    basira_csv *csv = NULL;
    *rc = basira_csv_parse(s, strlen(s), &csv, err);
    return csv;
}

static void test_simple(void)
{
    basira_error err;
    basira_code rc;
    basira_csv *csv = parse("a,b,c\n1,2,3\n4,5,6\n", &rc, &err);
    CHECK_EQ_INT(rc, BASIRA_OK);
    CHECK_EQ_INT(basira_csv_rows(csv), 2);
    CHECK_EQ_INT(basira_csv_cols(csv), 3);
    CHECK_STR(basira_csv_header(csv, 2), "c");
    CHECK_EQ_INT(basira_csv_column(csv, "b"), 1);
    CHECK_EQ_INT(basira_csv_column(csv, "z"), -1);
    CHECK_STR(basira_csv_field(csv, 1, 2), "6");
    CHECK_STR(basira_csv_field(csv, 2, 0), ""); /* out of range */
    CHECK_STR(basira_csv_field(csv, 0, 3), "");
    CHECK_EQ_INT(basira_csv_line(csv, 1), 3);
    basira_csv_free(csv);
}

static void test_quoting(void)
{
    basira_error err;
    basira_code rc;
    /* BOM, CRLF, quoted comma, doubled quote, line break in quotes, empty fields, no final EOL. */
    const char *s = "\xEF\xBB\xBFid,text,n\r\n"
                    "x1,\"hello, world\",1\r\n"
                    "x2,\"she said \"\"hi\"\"\",\r\n"
                    "\r\n"
                    "x3,\"two\nlines\",3\n"
                    ",,";
    basira_csv *csv = parse(s, &rc, &err);
    CHECK_EQ_INT(rc, BASIRA_OK);
    CHECK_EQ_INT(basira_csv_rows(csv), 4);
    CHECK_STR(basira_csv_header(csv, 0), "id"); /* BOM stripped */
    CHECK_STR(basira_csv_field(csv, 0, 1), "hello, world");
    CHECK_STR(basira_csv_field(csv, 1, 1), "she said \"hi\"");
    CHECK_STR(basira_csv_field(csv, 1, 2), "");
    CHECK_STR(basira_csv_field(csv, 2, 1), "two\nlines");
    CHECK_EQ_INT(basira_csv_line(csv, 2), 5); /* the blank line 4 was skipped */
    CHECK_STR(basira_csv_field(csv, 3, 0), "");
    CHECK_STR(basira_csv_field(csv, 3, 2), "");
    CHECK_EQ_INT(basira_csv_line(csv, 3), 7);
    basira_csv_free(csv);
}

/* Each malformed input is refused with the given code and a message naming the line. */
static void expect_error(const char *s, size_t len, basira_code code, const char *needle)
{
    basira_error err;
    basira_csv *csv = (basira_csv *)1;
    basira_code rc = basira_csv_parse(s, len, &csv, &err);
    CHECK_MSG(rc == code, "input %.40s: got %d, want %d", s, rc, code);
    CHECK(csv == NULL);
    if (rc && needle)
        CHECK_MSG(strstr(err.message, needle) != NULL, "message '%s' lacks '%s'", err.message,
                  needle);
}

static void test_malformed(void)
{
#define E(s, code, needle) expect_error(s, sizeof(s) - 1, code, needle)
    E("", BASIRA_E_EMPTY_FILE, NULL);
    E("\n\n\r\n", BASIRA_E_EMPTY_FILE, NULL);
    E("a,b\n1,\"open\n", BASIRA_E_FORMAT, "line 2");  /* unterminated quote */
    E("a,b\n1,\"x\"y\n", BASIRA_E_FORMAT, "line 2");  /* text after closing quote */
    E("a,b\n1,x\"y\n", BASIRA_E_FORMAT, "line 2");    /* stray quote */
    E("a,b\n1,2\n3\n", BASIRA_E_FORMAT, "line 3");    /* too few fields */
    E("a,b\n1,2,3\n", BASIRA_E_FORMAT, "line 2");     /* too many fields */
    E("a,b\n1,2\r3,4\n", BASIRA_E_FORMAT, "line 2");  /* lone CR */
    E("a,a\n1,2\n", BASIRA_E_FORMAT, "'a'");          /* duplicate column */
    E("a,,c\n1,2,3\n", BASIRA_E_FORMAT, "column 2");  /* unnamed column */
    E("a,b\n1,\xff\n", BASIRA_E_FORMAT, "line 2");    /* not UTF-8 */
    E("a,b\n1,\xc0\xaf\n", BASIRA_E_FORMAT, "UTF-8"); /* overlong encoding */
    E("a,b\n1,2\n\0,3\n", BASIRA_E_FORMAT, "NUL");    /* binary */
#undef E
    /* A field beyond the limit. */
    size_t big = BASIRA_CSV_MAX_FIELD + 10;
    char *s = malloc(big + 16);
    memcpy(s, "a\n", 2);
    memset(s + 2, 'x', big);
    expect_error(s, big + 2, BASIRA_E_FORMAT, "longer");
    s[2] = '"';
    s[big + 1] = '"';
    expect_error(s, big + 2, BASIRA_E_FORMAT, "longer");
    free(s);
    /* Too many columns. */
    size_t nc = BASIRA_CSV_MAX_COLUMNS + 1;
    s = malloc(nc * 8 + 2);
    size_t p = 0;
    for (size_t i = 0; i < nc; i++)
        p += (size_t)sprintf(s + p, "%sc%zu", i ? "," : "", i);
    expect_error(s, p, BASIRA_E_FORMAT, "columns");
    free(s);
    /* Invalid arguments. */
    basira_error err;
    CHECK_EQ_INT(basira_csv_parse(NULL, 3, NULL, &err), BASIRA_E_INVALID_ARGUMENT);
}

static void test_write_rows_and_files(void)
{
    char dir[] = "/tmp/basira_csv_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char in[512], out[512];
    snprintf(in, sizeof in, "%s/in.csv", dir);
    snprintf(out, sizeof out, "%s/out.csv", dir);
    /* Original bytes are kept: quoting and CRLF of each record survive. */
    const char *text = "id,v\r\nA,\"x,y\"\r\nB,2\r\nC,\"p\nq\"\n";
    FILE *f = fopen(in, "wb");
    fputs(text, f);
    fclose(f);
    basira_error err;
    basira_csv *csv = NULL;
    CHECK_EQ_INT(basira_csv_read_file(in, &csv, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_csv_rows(csv), 3);
    size_t rows[2] = {2, 0};
    CHECK_EQ_INT(basira_csv_write_rows(csv, rows, 2, out, &err), BASIRA_OK);
    char buf[256] = {0};
    f = fopen(out, "rb");
    size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    CHECK_EQ_INT(got, strlen("id,v\nC,\"p\nq\"\nA,\"x,y\"\n"));
    CHECK_STR(buf, "id,v\nC,\"p\nq\"\nA,\"x,y\"\n");
    /* The written file reads back to the same values. */
    basira_csv *back = NULL;
    CHECK_EQ_INT(basira_csv_read_file(out, &back, &err), BASIRA_OK);
    CHECK_STR(basira_csv_field(back, 0, 1), "p\nq");
    CHECK_STR(basira_csv_field(back, 1, 1), "x,y");
    basira_csv_free(back);
    size_t bad_row = 3;
    CHECK_EQ_INT(basira_csv_write_rows(csv, &bad_row, 1, out, &err), BASIRA_E_INVALID_ARGUMENT);
    char nodir[600];
    snprintf(nodir, sizeof nodir, "%s/missing/out.csv", dir);
    CHECK_EQ_INT(basira_csv_write_rows(csv, rows, 1, nodir, &err), BASIRA_E_IO);
    basira_csv_free(csv);

    /* Missing and empty files. */
    snprintf(out, sizeof out, "%s/none.csv", dir);
    CHECK_EQ_INT(basira_csv_read_file(out, &csv, &err), BASIRA_E_NOT_FOUND);
    CHECK(strstr(err.message, "none.csv") != NULL);
    snprintf(out, sizeof out, "%s/empty.csv", dir);
    f = fopen(out, "wb");
    fclose(f);
    CHECK_EQ_INT(basira_csv_read_file(out, &csv, &err), BASIRA_E_EMPTY_FILE);
    /* A malformed file names itself in the message. */
    f = fopen(out, "wb");
    fputs("a,b\n\"x\n", f);
    fclose(f);
    CHECK_EQ_INT(basira_csv_read_file(out, &csv, &err), BASIRA_E_FORMAT);
    CHECK(strstr(err.message, "empty.csv") != NULL);
    remove(out);
    snprintf(out, sizeof out, "%s/in.csv", dir);
    remove(out);
    snprintf(out, sizeof out, "%s/out.csv", dir);
    remove(out);
    rmdir(dir);
}

/* Deterministic pseudo-random garbage must never crash the reader (the fuzz target does more). */
static void test_random_garbage(void)
{
    const char alphabet[] = "ab,\"\r\n \xc3\xa9";
    unsigned long long s = 12345;
    char buf[200];
    int ok = 0, bad = 0;
    for (int it = 0; it < 20000; it++) {
        size_t n = (size_t)(it % 199);
        for (size_t i = 0; i < n; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            buf[i] = alphabet[(s >> 33) % (sizeof alphabet - 1)];
        }
        basira_csv *csv = NULL;
        basira_error err;
        if (basira_csv_parse(buf, n, &csv, &err) == BASIRA_OK) {
            ok++;
            for (size_t r = 0; r < basira_csv_rows(csv); r++)
                for (int c = 0; c < basira_csv_cols(csv); c++)
                    (void)strlen(basira_csv_field(csv, r, c));
            basira_csv_free(csv);
        } else {
            bad++;
            CHECK(err.message[0] != '\0');
        }
    }
    CHECK(ok > 0 && bad > 0);
}

/* The cell writer: what it writes reads back the same, and a would-be formula is defused. */
static void test_put_cell(void)
{
    static const char *const cells[] = {"plain", "a,b", "say \"hi\"", "two\nlines", "",
                                        "=1+1",  "-c3", "@cmd",       "+x",         "5"};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f != NULL);
    if (!f)
        return;
    fputs("h0,h1,h2,h3,h4,h5,h6,h7,h8,h9\n", f);
    for (size_t i = 0; i < 10; i++) {
        if (i)
            fputc(',', f);
        basira_csv_put_cell(f, cells[i]);
    }
    fputc('\n', f);
    fclose(f);
    basira_csv *csv = NULL;
    basira_error err;
    CHECK(basira_csv_parse(buf, len, &csv, &err) == BASIRA_OK);
    if (csv) {
        CHECK(basira_csv_rows(csv) == 1 && basira_csv_cols(csv) == 10);
        for (int i = 0; i < 5; i++)
            CHECK(!strcmp(basira_csv_field(csv, 0, i), cells[i]));
        CHECK(!strcmp(basira_csv_field(csv, 0, 5), "'=1+1"));
        CHECK(!strcmp(basira_csv_field(csv, 0, 6), "'-c3"));
        CHECK(!strcmp(basira_csv_field(csv, 0, 7), "'@cmd"));
        CHECK(!strcmp(basira_csv_field(csv, 0, 8), "'+x"));
        CHECK(!strcmp(basira_csv_field(csv, 0, 9), "5"));
        basira_csv_free(csv);
    }
    free(buf);
}

int main(void)
{
    RUN(test_put_cell);
    RUN(test_simple);
    RUN(test_quoting);
    RUN(test_malformed);
    RUN(test_write_rows_and_files);
    RUN(test_random_garbage);
    return test_summary();
}
