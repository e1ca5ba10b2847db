/*
 * csv.c - the strict RFC 4180 reader for the CSV files Basira is given (the
 * label tables of train, split, evaluate and calibrate).
 *
 * The file comes from outside (a spreadsheet export, a download), so the reader
 * treats it as hostile: sizes are bounded, every malformed construct is an
 * error that names its line, and no input can make it read out of bounds.
 * Strict rather than forgiving on purpose: a silently mis-split row would put
 * an image under the wrong label, which is worse than a refusal.
 *
 * All unquoted field values live in one arena of NUL-terminated strings; the
 * original bytes are kept so that the split files (train.csv, ...) reproduce
 * each record exactly as it was.
 */
#include "basira/fs.h"
#include "basira/csv.h"
#include "core/i18n.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct basira_csv {
    char *data; /* copy of the input */
    size_t len;
    char *arena; /* unquoted values, NUL-terminated */
    size_t arena_len, arena_cap;
    size_t *field; /* arena offset of each field, record-major, ncols per record */
    size_t *rec_start, *rec_end, *rec_line; /* raw byte range and line of each record */
    size_t nrec, rec_cap;
    int ncols;
};

void basira_csv_free(basira_csv *csv)
{
    if (!csv)
        return;
    free(csv->data);
    free(csv->arena);
    free(csv->field);
    free(csv->rec_start);
    free(csv->rec_end);
    free(csv->rec_line);
    free(csv);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    unsigned int cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* Overlong forms, surrogates and values beyond U+10FFFF are not UTF-8. */
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* Check the whole buffer is UTF-8 without NUL bytes; on failure *line is where. */
static int check_text(const char *data, size_t len, size_t *line, int *nul)
{
    size_t ln = 1;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)data[i];
        if (c == 0) {
            *line = ln;
            *nul = 1;
            return -1;
        }
        if (c == '\n')
            ln++;
        size_t n = utf8_seq((const unsigned char *)data + i, len - i);
        if (!n) {
            *line = ln;
            *nul = 0;
            return -1;
        }
        i += n;
    }
    return 0;
}

static int arena_put(basira_csv *csv, char c)
{
    if (csv->arena_len == csv->arena_cap) {
        size_t cap = csv->arena_cap ? csv->arena_cap * 2 : 4096;
        char *a = realloc(csv->arena, cap);
        if (!a)
            return -1;
        csv->arena = a;
        csv->arena_cap = cap;
    }
    csv->arena[csv->arena_len++] = c;
    return 0;
}

/* Room for one more record of ncols fields (cols known after the header). */
static int grow_records(basira_csv *csv, size_t cols)
{
    if (csv->nrec < csv->rec_cap)
        return 0;
    size_t cap = csv->rec_cap ? csv->rec_cap * 2 : 64;
    size_t *s = realloc(csv->rec_start, cap * sizeof *s);
    if (!s)
        return -1;
    csv->rec_start = s;
    size_t *e = realloc(csv->rec_end, cap * sizeof *e);
    if (!e)
        return -1;
    csv->rec_end = e;
    size_t *l = realloc(csv->rec_line, cap * sizeof *l);
    if (!l)
        return -1;
    csv->rec_line = l;
    if (cols) {
        size_t *f = realloc(csv->field, cap * cols * sizeof *f);
        if (!f)
            return -1;
        csv->field = f;
    }
    csv->rec_cap = cap;
    return 0;
}

/*
 * Parse csv->data. Fields of the header are first collected in a growing list
 * (their number is not known yet); after the header every record must have
 * exactly that many fields.
 */
/* The number of fields of the record starting at pos (for the message about a long record). */
static size_t count_fields(const char *d, size_t len, size_t pos)
{
    size_t n = 1;
    int quoted = 0;
    for (; pos < len; pos++) {
        if (quoted) {
            if (d[pos] == '"' && pos + 1 < len && d[pos + 1] == '"')
                pos++;
            else if (d[pos] == '"')
                quoted = 0;
        } else if (d[pos] == '"') {
            quoted = 1;
        } else if (d[pos] == ',') {
            n++;
        } else if (d[pos] == '\n' || d[pos] == '\r') {
            break;
        }
    }
    return n;
}

static basira_code parse(basira_csv *csv, basira_error *err)
{
    const char *d = csv->data;
    size_t len = csv->len, pos = 0, line = 1;
    size_t hdr_cap = 0, *hdr = NULL; /* header field offsets while ncols is unknown */

    if (len >= 3 && !memcmp(d, "\xEF\xBB\xBF", 3))
        pos = 3;

    while (pos < len) {
        /* Blank lines carry no record. */
        if (d[pos] == '\n') {
            pos++;
            line++;
            continue;
        }
        if (d[pos] == '\r' && pos + 1 < len && d[pos + 1] == '\n') {
            pos += 2;
            line++;
            continue;
        }
        size_t cols_known = csv->nrec ? (size_t)csv->ncols : 0;
        if (grow_records(csv, cols_known))
            goto nomem;
        size_t rec = csv->nrec;
        csv->rec_start[rec] = pos;
        csv->rec_line[rec] = line;
        size_t nf = 0;
        for (;;) {
            /* One field. */
            size_t start = csv->arena_len, fline = line;
            if (pos < len && d[pos] == '"') {
                pos++;
                for (;;) {
                    if (pos >= len) {
                        free(hdr);
                        return basira_error_set(err, BASIRA_E_FORMAT,
                                                _("CSV line %zu: a quoted field is never closed"),
                                                fline);
                    }
                    char c = d[pos];
                    if (c == '"') {
                        if (pos + 1 < len && d[pos + 1] == '"') {
                            pos += 2;
                        } else {
                            pos++;
                            break;
                        }
                    } else {
                        pos++;
                        if (c == '\n')
                            line++;
                    }
                    if (csv->arena_len - start >= BASIRA_CSV_MAX_FIELD) {
                        free(hdr);
                        return basira_error_set(err, BASIRA_E_FORMAT,
                                                _("CSV line %zu: a field is longer than %d bytes"),
                                                fline, BASIRA_CSV_MAX_FIELD);
                    }
                    if (arena_put(csv, c))
                        goto nomem;
                }
                if (pos < len && d[pos] != ',' && d[pos] != '\n' &&
                    !(d[pos] == '\r' && pos + 1 < len && d[pos + 1] == '\n')) {
                    free(hdr);
                    return basira_error_set(
                        err, BASIRA_E_FORMAT,
                        _("CSV line %zu: unexpected text after a closing quote (a quote inside "
                          "a quoted field must be doubled)"),
                        line);
                }
            } else {
                while (pos < len && d[pos] != ',' && d[pos] != '\n') {
                    char c = d[pos];
                    if (c == '\r') {
                        if (pos + 1 < len && d[pos + 1] == '\n')
                            break;
                        free(hdr);
                        return basira_error_set(
                            err, BASIRA_E_FORMAT,
                            _("CSV line %zu: a carriage return outside quotes (line ends must "
                              "be LF or CRLF)"),
                            line);
                    }
                    if (c == '"') {
                        free(hdr);
                        return basira_error_set(
                            err, BASIRA_E_FORMAT,
                            _("CSV line %zu: a quote in the middle of an unquoted field (quote "
                              "the whole field and double the quote)"),
                            line);
                    }
                    if (csv->arena_len - start >= BASIRA_CSV_MAX_FIELD) {
                        free(hdr);
                        return basira_error_set(err, BASIRA_E_FORMAT,
                                                _("CSV line %zu: a field is longer than %d bytes"),
                                                fline, BASIRA_CSV_MAX_FIELD);
                    }
                    if (arena_put(csv, c))
                        goto nomem;
                    pos++;
                }
            }
            if (arena_put(csv, '\0'))
                goto nomem;
            /* Store the field's offset. */
            if (rec == 0) {
                if (nf >= BASIRA_CSV_MAX_COLUMNS) {
                    free(hdr);
                    return basira_error_set(err, BASIRA_E_FORMAT,
                                            _("CSV header has more than %d columns"),
                                            BASIRA_CSV_MAX_COLUMNS);
                }
                if (nf == hdr_cap) {
                    size_t cap = hdr_cap ? hdr_cap * 2 : 16;
                    size_t *h = realloc(hdr, cap * sizeof *h);
                    if (!h)
                        goto nomem;
                    hdr = h;
                    hdr_cap = cap;
                }
                hdr[nf] = start;
            } else {
                if (nf >= (size_t)csv->ncols) {
                    free(hdr);
                    return basira_error_set(err, BASIRA_E_FORMAT,
                                            _("CSV line %zu has %zu fields but the header has %d"),
                                            csv->rec_line[rec],
                                            count_fields(d, len, csv->rec_start[rec]), csv->ncols);
                }
                csv->field[rec * (size_t)csv->ncols + nf] = start;
            }
            nf++;
            if (pos < len && d[pos] == ',') {
                pos++;
                continue;
            }
            break; /* end of record: '\n', "\r\n" or end of data */
        }
        csv->rec_end[rec] = pos;
        if (pos < len) {
            pos += d[pos] == '\r' ? 2 : 1;
            line++;
        }
        if (rec == 0) {
            csv->ncols = (int)nf;
            csv->field = malloc(csv->rec_cap * nf * sizeof *csv->field);
            if (!csv->field)
                goto nomem;
            memcpy(csv->field, hdr, nf * sizeof *hdr);
            free(hdr);
            hdr = NULL;
        } else if (nf != (size_t)csv->ncols) {
            return basira_error_set(err, BASIRA_E_FORMAT,
                                    _("CSV line %zu has %zu fields but the header has %d"),
                                    csv->rec_line[rec], nf, csv->ncols);
        }
        csv->nrec++;
    }
    free(hdr);
    if (csv->nrec == 0)
        return basira_error_set(err, BASIRA_E_EMPTY_FILE, _("the CSV file has no header line"));

    /* Column names must be usable to look columns up. */
    for (int i = 0; i < csv->ncols; i++) {
        const char *a = csv->arena + csv->field[i];
        if (!*a)
            return basira_error_set(err, BASIRA_E_FORMAT, _("CSV header: column %d has no name"),
                                    i + 1);
        for (int j = 0; j < i; j++)
            if (!strcmp(a, csv->arena + csv->field[j]))
                return basira_error_set(err, BASIRA_E_FORMAT,
                                        _("CSV header: column '%s' appears twice"), a);
    }
    return BASIRA_OK;
nomem:
    free(hdr);
    return basira_error_set(err, BASIRA_E_NOMEM, _("not enough memory to read the CSV file"));
}

basira_code basira_csv_parse(const char *data, size_t len, basira_csv **out, basira_error *err)
{
    if (!out || (!data && len))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *out = NULL;
    if (len > BASIRA_CSV_MAX_BYTES)
        return basira_error_set(err, BASIRA_E_LIMIT, _("the CSV file is larger than %zu MiB"),
                                BASIRA_CSV_MAX_BYTES >> 20);
    size_t bad_line;
    int nul;
    if (check_text(data, len, &bad_line, &nul)) {
        if (nul)
            return basira_error_set(err, BASIRA_E_FORMAT,
                                    _("CSV line %zu: a NUL byte (this is not a text file)"),
                                    bad_line);
        return basira_error_set(err, BASIRA_E_FORMAT,
                                _("CSV line %zu: text is not valid UTF-8 (save the file as "
                                  "UTF-8 CSV)"),
                                bad_line);
    }
    basira_csv *csv = calloc(1, sizeof *csv);
    if (!csv)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    csv->data = malloc(len + 1);
    if (!csv->data) {
        basira_csv_free(csv);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    if (len)
        memcpy(csv->data, data, len);
    csv->data[len] = '\0';
    csv->len = len;
    basira_code rc = parse(csv, err);
    if (rc) {
        basira_csv_free(csv);
        return rc;
    }
    *out = csv;
    return BASIRA_OK;
}

basira_code basira_csv_read_file(const char *path, basira_csv **out, basira_error *err)
{
    if (!path || !out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *out = NULL;
    unsigned char *data = NULL;
    size_t len = 0;
    basira_error rerr;
    basira_code rrc = basira_fs_read(path, BASIRA_CSV_MAX_BYTES, &data, &len, &rerr);
    if (rrc == BASIRA_E_LIMIT)
        return basira_error_set(err, BASIRA_E_LIMIT, _("the CSV file %s is larger than %zu MiB"),
                                path, BASIRA_CSV_MAX_BYTES >> 20);
    if (rrc) {
        if (err)
            *err = rerr;
        return rrc;
    }
    char *buf = (char *)data;
    if (len == 0) {
        free(buf);
        return basira_error_set(err, BASIRA_E_EMPTY_FILE, _("the CSV file %s is empty"), path);
    }
    basira_code rc = basira_csv_parse(buf, len, out, err);
    free(buf);
    if (rc && err) {
        /* Prefix the file name so the message says which file is wrong. */
        char msg[BASIRA_ERROR_MESSAGE_MAX];
        snprintf(msg, sizeof msg, "%s", err->message);
        basira_error_set(err, rc, "%s: %s", path, msg);
    }
    return rc;
}

size_t basira_csv_rows(const basira_csv *csv)
{
    return csv && csv->nrec ? csv->nrec - 1 : 0;
}

int basira_csv_cols(const basira_csv *csv)
{
    return csv ? csv->ncols : 0;
}

const char *basira_csv_header(const basira_csv *csv, int col)
{
    if (!csv || col < 0 || col >= csv->ncols)
        return NULL;
    return csv->arena + csv->field[col];
}

int basira_csv_column(const basira_csv *csv, const char *name)
{
    if (!csv || !name)
        return -1;
    for (int i = 0; i < csv->ncols; i++)
        if (!strcmp(csv->arena + csv->field[i], name))
            return i;
    return -1;
}

const char *basira_csv_field(const basira_csv *csv, size_t row, int col)
{
    if (!csv || row >= basira_csv_rows(csv) || col < 0 || col >= csv->ncols)
        return "";
    return csv->arena + csv->field[(row + 1) * (size_t)csv->ncols + (size_t)col];
}

const char *basira_csv_cell(const basira_csv *csv, size_t row, int col)
{
    if (!csv || row >= basira_csv_rows(csv) || col < 0 || col >= csv->ncols)
        return NULL;
    return basira_csv_field(csv, row, col);
}

size_t basira_csv_line(const basira_csv *csv, size_t row)
{
    if (!csv || row >= basira_csv_rows(csv))
        return 0;
    return csv->rec_line[row + 1];
}

static int write_record(const basira_csv *csv, size_t rec, FILE *f)
{
    size_t n = csv->rec_end[rec] - csv->rec_start[rec];
    if (fwrite(csv->data + csv->rec_start[rec], 1, n, f) != n)
        return -1;
    return fputc('\n', f) == EOF ? -1 : 0;
}

basira_code basira_csv_write_rows(const basira_csv *csv, const size_t *rows, size_t n,
                                  const char *path, basira_error *err)
{
    if (!csv || !path || (n && !rows))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    size_t nrows = basira_csv_rows(csv);
    for (size_t i = 0; i < n; i++)
        if (rows[i] >= nrows)
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("row %zu is beyond the CSV's %zu rows"), rows[i], nrows);
    basira_fs_atomic a;
    basira_code rc = basira_fs_atomic_open(path, 0644, &a, err);
    if (rc)
        return rc;
    int bad = write_record(csv, 0, a.f);
    for (size_t i = 0; i < n && !bad; i++)
        bad = write_record(csv, rows[i] + 1, a.f);
    if (bad) {
        int e = errno;
        basira_fs_atomic_abort(&a);
        return basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), path, strerror(e));
    }
    return basira_fs_atomic_commit(&a, err);
}

void basira_csv_put_cell(FILE *f, const char *s)
{
    int danger = s[0] && strchr("=+-@\t\r", s[0]) != NULL;
    int quote = danger || strpbrk(s, ",\"\r\n") != NULL;
    if (quote)
        fputc('"', f);
    if (danger)
        fputc('\'', f);
    for (; *s; s++) {
        if (*s == '"' && quote)
            fputc('"', f);
        fputc(*s, f);
    }
    if (quote)
        fputc('"', f);
}
