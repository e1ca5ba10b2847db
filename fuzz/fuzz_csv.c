/*
 * fuzz_csv.c - the CSV reader of `basira train` (basira_train_csv) on arbitrary bytes.
 * Every accepted table is walked completely; every refusal must carry a message.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "basira/train.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    basira_train_csv *c = NULL;
    basira_error err;
    err.message[0] = '\0';
    if (basira_train_csv_parse((const char *)data, size, &c, &err) == BASIRA_OK) {
        size_t total = 0;
        int cols = basira_train_csv_num_cols(c);
        if (cols < 1)
            __builtin_trap(); /* a parsed table always has a header */
        for (int k = 0; k < cols; k++)
            if (basira_train_csv_column(c, basira_train_csv_header(c, k)) != k)
                __builtin_trap(); /* names are unique, so lookup finds each column */
        for (size_t r = 0; r < basira_train_csv_num_rows(c); r++) {
            if (basira_train_csv_line(c, r) < 2)
                __builtin_trap();
            for (int k = 0; k < cols; k++)
                total += strlen(basira_train_csv_field(c, r, k));
        }
        (void)total;
        basira_train_csv_free(c);
    } else if (!err.message[0] || !memchr(err.message, '\0', sizeof err.message)) {
        __builtin_trap();
    }
    return 0;
}
