/*
 * csv.h - the one CSV reader of Basira: strict RFC 4180 for untrusted tables
 * (training and evaluation label files, HAM10000 metadata, a clinic's
 * spreadsheet). Fuzzed by fuzz/fuzz_csv.c.
 */
#ifndef BASIRA_CSV_H
#define BASIRA_CSV_H

#include <stddef.h>
#include <stdio.h>

#include "basira/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- CSV ------------------------------------------------------------------------
 * RFC 4180: comma separated, fields may be quoted with '"' (a quote inside is
 * written twice), quoted fields may hold commas and line breaks, lines end with
 * LF or CRLF, a UTF-8 byte order mark is ignored, blank lines are skipped. The
 * first record is the header. Anything else (a stray quote, text after a closing
 * quote, an unterminated quote, a NUL byte, a record whose number of fields
 * differs from the header, an empty or duplicate column name, a file beyond the
 * limits) is a BASIRA_E_FORMAT error naming the line.
 * It keeps the original bytes and line of every record: the split files must
 * reproduce rows exactly, and errors in a table must point at the line to fix.
 * `basira train`, `split`, `evaluate` and `calibrate` all read through it.
 */
typedef struct basira_csv basira_csv;

#define BASIRA_CSV_MAX_BYTES ((size_t)256 << 20) /* largest file read */
#define BASIRA_CSV_MAX_COLUMNS 1024
#define BASIRA_CSV_MAX_FIELD 65536 /* bytes in one field */

/* Parse a CSV held in memory (copied). */
basira_code basira_csv_parse(const char *data, size_t len, basira_csv **out, basira_error *err);
/* Read and parse a CSV file. */
basira_code basira_csv_read_file(const char *path, basira_csv **out, basira_error *err);
void basira_csv_free(basira_csv *csv);

/* Number of data records (the header not counted) and of columns. */
size_t basira_csv_rows(const basira_csv *csv);
int basira_csv_cols(const basira_csv *csv);
/* Name of column col (0-based), or NULL out of range. */
const char *basira_csv_header(const basira_csv *csv, int col);
/* Index of the column called name, or -1. */
int basira_csv_column(const basira_csv *csv, const char *name);
/* Unquoted value of a field (NUL-terminated, borrowed); "" when out of range. */
const char *basira_csv_field(const basira_csv *csv, size_t row, int col);
/* The same, but NULL when row or col is out of range. */
const char *basira_csv_cell(const basira_csv *csv, size_t row, int col);
/* 1-based line number of the file where record row starts (for messages). */
size_t basira_csv_line(const basira_csv *csv, size_t row);

/*
 * Write the header and the records rows[0..n) exactly as they were in the input
 * (same bytes, each record ended by "\n"), through a temporary file renamed into place.
 */
basira_code basira_csv_write_rows(const basira_csv *csv, const size_t *rows, size_t n,
                                  const char *path, basira_error *err);

/*
 * One CSV cell on f (RFC 4180): quoted when it holds a comma, quote or line
 * break (a quote inside doubled). A cell a spreadsheet would take for a
 * formula (starting with = + - @, a tab or CR) is quoted and prefixed with '.
 */
void basira_csv_put_cell(FILE *f, const char *s);

#ifdef __cplusplus
}
#endif
#endif
