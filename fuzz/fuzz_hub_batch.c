/*
 * fuzz_hub_batch.c - what the hub reads from the network before it touches
 * PostgreSQL: a push body, deflate-compressed (first byte odd) or plain,
 * inflated under a cap, parsed as JSON and checked (basira_hub_batch_check);
 * and the same bytes as a photo chunk (basira_hub_chunk_parse).
 */
#include "basira/hub.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const unsigned char *body = data + 1;
    size_t len = size - 1;
    basira_hub_chunk_head head;
    basira_error cerr;
    if (basira_hub_chunk_parse(body, len, "n1", &head, &cerr) == BASIRA_OK &&
        (head.data_len > len || head.offset + (int64_t)head.data_len > head.total))
        abort(); /* the data must lie inside the body and end within the photo */
    unsigned char *plain = NULL;
    size_t plain_len = 0;
    basira_error err;
    if (data[0] & 1) {
        if (basira_hub_inflate(body, len, (size_t)1 << 22, &plain, &plain_len, &err))
            return 0;
        body = plain;
        len = plain_len;
    }
    json_t *j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
    if (j) {
        basira_hub_batch_check(j, &err);
        json_decref(j);
    }
    free(plain);
    return 0;
}
