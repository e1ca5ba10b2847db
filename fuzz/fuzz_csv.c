/*
 * fuzz_csv.c - the one CSV reader (basira/csv.h: train, split, evaluate,
 * calibrate) on arbitrary bytes. Every accepted table is walked completely
 * through both accessors; every refusal must carry a terminated message.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "basira/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    basira_csv *c = NULL;
    basira_error err;
    err.message[0] = '\0';
    if (basira_csv_parse((const char *)data, size, &c, &err) == BASIRA_OK) {
        size_t total = 0;
        int cols = basira_csv_cols(c);
        if (cols < 1)
            __builtin_trap(); /* a parsed table always has a header */
        for (int k = 0; k < cols; k++)
            if (basira_csv_column(c, basira_csv_header(c, k)) != k)
                __builtin_trap(); /* names are unique, so lookup finds each column */
        for (size_t r = 0; r < basira_csv_rows(c); r++) {
            if (basira_csv_line(c, r) < 2)
                __builtin_trap();
            for (int k = 0; k < cols; k++) {
                const char *cell = basira_csv_cell(c, r, k);
                if (!cell || cell != basira_csv_field(c, r, k))
                    __builtin_trap(); /* in range: both accessors give the same value */
                total += strlen(cell);
            }
            if (basira_csv_cell(c, r, cols) != NULL || *basira_csv_field(c, r, cols))
                __builtin_trap(); /* out of range: NULL / "" */
        }
        (void)total;
        basira_csv_free(c);
    } else if (!err.message[0] || !memchr(err.message, '\0', sizeof err.message)) {
        __builtin_trap();
    }
    return 0;
}
