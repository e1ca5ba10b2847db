/*
 * fuzz_http_json.c - what a client can send to the clinic node's API: JSON
 * bodies of new cases and decisions, multipart uploads, dates of the worklist.
 *
 * The first byte picks the parser; for multipart the bytes up to the first
 * newline are the Content-Type header and the rest is the body.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "basira/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0] % 4;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    basira_error err;
    json_t *holder = NULL;
    if (mode == 0) {
        basira_case_new c;
        if (basira_request_parse_case(body, len, &c, &holder, &err) == BASIRA_OK) {
            /* Whatever parsed must be usable strings. */
            if (!c.patient_ref || strlen(c.patient_ref) > len || !c.consent_care)
                abort();
            json_decref(holder);
        }
    } else if (mode == 1) {
        basira_decision d;
        if (basira_request_parse_decision(body, len, &d, &holder, &err) == BASIRA_OK)
            json_decref(holder);
    } else if (mode == 2) {
        const char *nl = memchr(body, '\n', len);
        if (!nl)
            return 0;
        size_t hl = (size_t)(nl - body);
        char *ct = malloc(hl + 1);
        if (!ct)
            return 0;
        memcpy(ct, body, hl);
        ct[hl] = '\0';
        const unsigned char *part = NULL;
        size_t part_len = 0;
        char ptype[64];
        const unsigned char *b = (const unsigned char *)nl + 1;
        size_t blen = len - hl - 1;
        if (basira_multipart_find(ct, b, blen, "image", &part, &part_len, ptype, &err) ==
            BASIRA_OK) {
            if (part < b || part + part_len > b + blen || strlen(ptype) >= 64)
                abort();
        }
        free(ct);
    } else {
        char s[64];
        size_t n = len < sizeof s - 1 ? len : sizeof s - 1;
        memcpy(s, body, n);
        s[n] = '\0';
        int64_t t;
        (void)basira_parse_time(s, data[0] & 4, &t, &err);
    }
    return 0;
}
