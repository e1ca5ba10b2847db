/*
 * fuzz_workflow.c - the workflow's checks of untrusted text: patient references
 * (bidirectional overrides, invisible-only, malformed UTF-8), the password policy
 * (a password and a username from the input) and the If-Match header.
 *
 * The first byte picks the check; for the password, the bytes up to the first
 * NUL are the username and the rest the password.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "basira/server.h"
#include "basira/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    char *s = malloc(size);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    basira_error err;
    switch (data[0] % 3) {
    case 0:
        if (basira_patient_ref_check(s, &err) == BASIRA_OK) {
            /* Accepted: non-empty, no C0 control, no bidi override or isolate. */
            if (!*s || strstr(s, "\xe2\x80\xae") || strstr(s, "\xe2\x81\xa6") || strchr(s, '\x01'))
                abort();
        }
        break;
    case 1: {
        const char *user = s, *pw = s + strlen(s);
        if (pw < s + size - 1)
            pw++; /* after the NUL */
        if (basira_password_check(pw, user, &err) == BASIRA_OK && strlen(pw) < 8)
            abort(); /* 8 characters are at least 8 bytes */
        break;
    }
    default: {
        int64_t v = basira_request_if_match(s);
        if (v < -2)
            abort();
        break;
    }
    }
    free(s);
    return 0;
}
