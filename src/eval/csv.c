/*
 * csv.c - reading the label tables of a data set (RFC 4180 CSV).
 *
 * The files come from outside (a clinic's spreadsheet, a downloaded data set), so
 * the parser is strict and bounded: an unterminated quote, text after a closing
 * quote, a NUL byte or a row with the wrong number of fields is an error naming
 * the line, never a silently shifted column (which would evaluate a model against
 * the wrong labels). Sizes are capped so a hostile file cannot exhaust memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basira/fs.h"
#include "basira/eval.h"
#include "core/i18n.h"

#define CSV_MAX_BYTES ((size_t)256 << 20)
#define CSV_MAX_COLS 4096
#define CSV_MAX_CELLS ((size_t)50 << 20)

struct basira_csv {
    char *text;      /* every cell, NUL-terminated, back to back */
    size_t *offsets; /* (rows + 1) x cols offsets into text; row 0 is the header */
    size_t rows;     /* data rows, header excluded */
    int cols;
};

void basira_csv_free(basira_csv *c)
{
    if (!c)
        return;
    free(c->text);
    free(c->offsets);
    free(c);
}

size_t basira_csv_rows(const basira_csv *c)
{
    return c ? c->rows : 0;
}

int basira_csv_cols(const basira_csv *c)
{
    return c ? c->cols : 0;
}

const char *basira_csv_cell(const basira_csv *c, size_t row, int col)
{
    if (!c || row >= c->rows || col < 0 || col >= c->cols)
        return NULL;
    return c->text + c->offsets[(row + 1) * (size_t)c->cols + (size_t)col];
}

const char *basira_csv_header(const basira_csv *c, int col)
{
    if (!c || col < 0 || col >= c->cols)
        return NULL;
    return c->text + c->offsets[col];
}

int basira_csv_column(const basira_csv *c, const char *name)
{
    if (!c || !name)
        return -1;
    for (int i = 0; i < c->cols; i++)
        if (!strcmp(c->text + c->offsets[i], name))
            return i;
    return -1;
}

typedef struct parser {
    char *text;
    size_t tlen;
    size_t *off;
    size_t noff, capoff;
} parser;

static int push_offset(parser *p, size_t o)
{
    if (p->noff == p->capoff) {
        size_t cap = p->capoff ? p->capoff * 2 : 1024;
        size_t *n = realloc(p->off, sizeof(size_t) * cap);
        if (!n)
            return -1;
        p->off = n;
        p->capoff = cap;
    }
    p->off[p->noff++] = o;
    return 0;
}

basira_code basira_csv_parse(const char *data, size_t len, basira_csv **out, basira_error *err)
{
    if (!out || (!data && len))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("CSV: no data"));
    *out = NULL;
    if (len > CSV_MAX_BYTES)
        return basira_error_set(err, BASIRA_E_LIMIT, _("CSV: the file is larger than %zu MiB"),
                                CSV_MAX_BYTES >> 20);
    size_t i = 0;
    if (len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3))
        i = 3; /* UTF-8 byte order mark written by spreadsheets */
    /* Every cell is at most as long as its source, plus one NUL per cell. */
    parser p = {0};
    p.text = malloc(len + 2 * (len + 1));
    if (!p.text)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    basira_code rc = BASIRA_OK;
    long line = 1;
    int cols = -1, fields = 0;
    while (i < len) {
        /* One record. Blank lines are skipped. */
        if (data[i] == '\n' || (data[i] == '\r' && (i + 1 == len || data[i + 1] == '\n'))) {
            i += data[i] == '\r' ? 2 : 1;
            line++;
            continue;
        }
        long record_line = line;
        fields = 0;
        for (;;) {
            /* One field. */
            size_t start = p.tlen;
            if (i < len && data[i] == '"') {
                i++;
                for (;;) {
                    if (i >= len) {
                        rc = basira_error_set(err, BASIRA_E_FORMAT,
                                              _("CSV line %ld: a quoted field is never closed"),
                                              record_line);
                        goto fail;
                    }
                    if (data[i] == '"') {
                        if (i + 1 < len && data[i + 1] == '"') {
                            p.text[p.tlen++] = '"';
                            i += 2;
                            continue;
                        }
                        i++;
                        break;
                    }
                    if (data[i] == '\0') {
                        rc = basira_error_set(err, BASIRA_E_FORMAT,
                                              _("CSV line %ld: contains a NUL byte"), line);
                        goto fail;
                    }
                    if (data[i] == '\n')
                        line++;
                    p.text[p.tlen++] = data[i++];
                }
                if (i < len && data[i] != ',' && data[i] != '\n' &&
                    !(data[i] == '\r' && (i + 1 == len || data[i + 1] == '\n'))) {
                    rc = basira_error_set(err, BASIRA_E_FORMAT,
                                          _("CSV line %ld: text after a closing quote"), line);
                    goto fail;
                }
            } else {
                while (i < len && data[i] != ',' && data[i] != '\n' &&
                       !(data[i] == '\r' && (i + 1 == len || data[i + 1] == '\n'))) {
                    if (data[i] == '\0' || data[i] == '"') {
                        rc = basira_error_set(
                            err, BASIRA_E_FORMAT,
                            data[i] ? _("CSV line %ld: a quote inside an unquoted field")
                                    : _("CSV line %ld: contains a NUL byte"),
                            line);
                        goto fail;
                    }
                    p.text[p.tlen++] = data[i++];
                }
            }
            p.text[p.tlen++] = '\0';
            if (++fields > CSV_MAX_COLS) {
                rc = basira_error_set(err, BASIRA_E_LIMIT, _("CSV line %ld: more than %d fields"),
                                      record_line, CSV_MAX_COLS);
                goto fail;
            }
            if (p.noff >= CSV_MAX_CELLS) {
                rc = basira_error_set(err, BASIRA_E_LIMIT, _("CSV: more than %zu cells"),
                                      CSV_MAX_CELLS);
                goto fail;
            }
            if (push_offset(&p, start)) {
                rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
                goto fail;
            }
            if (i < len && data[i] == ',') {
                i++;
                continue;
            }
            break; /* end of line or of data */
        }
        if (i < len)
            i += data[i] == '\r' ? 2 : 1;
        if (i > len)
            i = len;
        line++;
        if (cols < 0) {
            cols = fields;
        } else if (fields != cols) {
            rc = basira_error_set(err, BASIRA_E_FORMAT,
                                  _("CSV line %ld has %d fields but the header has %d"),
                                  record_line, fields, cols);
            goto fail;
        }
    }
    if (cols < 0) {
        rc = basira_error_set(err, BASIRA_E_FORMAT, _("CSV: no header line"));
        goto fail;
    }
    basira_csv *c = calloc(1, sizeof *c);
    if (!c) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto fail;
    }
    c->text = p.text;
    c->offsets = p.off;
    c->cols = cols;
    c->rows = p.noff / (size_t)cols - 1;
    *out = c;
    return BASIRA_OK;
fail:
    free(p.text);
    free(p.off);
    return rc;
}

basira_code basira_csv_read_file(const char *path, basira_csv **out, basira_error *err)
{
    if (!path || !out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("CSV: no file name"));
    *out = NULL;
    unsigned char *data = NULL;
    size_t len = 0;
    basira_code rc = basira_fs_read(path, CSV_MAX_BYTES, &data, &len, err);
    char *buf = (char *)data;
    if (!rc && len == 0)
        rc = basira_error_set(err, BASIRA_E_EMPTY_FILE, _("%s is empty"), path);
    if (!rc) {
        rc = basira_csv_parse(buf, len, out, err);
        if (rc && err) {
            /* Name the file in the message: "labels.csv: CSV line 3 ...". */
            char msg[BASIRA_ERROR_MESSAGE_MAX];
            snprintf(msg, sizeof msg, "%s", err->message);
            basira_error_set(err, rc, "%s: %s", path, msg);
        }
    }
    free(buf);
    return rc;
}
