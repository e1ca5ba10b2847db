/* fuzz_eval_csv.c - the CSV reader of `basira evaluate` / `calibrate` on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "basira/eval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    basira_csv *c = NULL;
    basira_error err;
    if (basira_csv_parse((const char *)data, size, &c, &err) == BASIRA_OK) {
        /* Touch every cell: offsets must stay inside the buffer. */
        size_t total = 0;
        for (size_t r = 0; r < basira_csv_rows(c); r++)
            for (int k = 0; k < basira_csv_cols(c); k++)
                total += strlen(basira_csv_cell(c, r, k));
        (void)total;
        (void)basira_csv_column(c, "dx");
        basira_csv_free(c);
    } else if (!memchr(err.message, '\0', sizeof err.message)) {
        __builtin_trap(); /* the message must be a terminated string */
    }
    return 0;
}
