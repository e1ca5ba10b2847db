/* session_rules.c - the sign-in rules the node and the hub share (include/basira/session.h). */
#include "basira/session.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

void basira_session_token_new(char out[BASIRA_TOKEN_LEN + 1])
{
    unsigned char b[BASIRA_TOKEN_LEN / 2];
    randombytes_buf(b, sizeof b);
    sodium_bin2hex(out, BASIRA_TOKEN_LEN + 1, b, sizeof b);
}

void basira_session_token_hash(const char *token, char out[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
    sodium_bin2hex(out, 65, h, sizeof h);
}

int basira_session_token_valid(const char *token)
{
    if (!token || strlen(token) != BASIRA_TOKEN_LEN)
        return 0;
    for (const char *p = token; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
            return 0;
    return 1;
}

int basira_session_idle_state(int64_t last_seen, int64_t now, int64_t idle_s)
{
    if (idle_s > 0 && now - last_seen >= idle_s)
        return 2;
    /* A short idle limit (tests, kiosks) is recorded often enough to be reached only when idle. */
    int64_t every =
        idle_s > 0 && idle_s < 2 * BASIRA_SESSION_TOUCH_S ? idle_s / 2 : BASIRA_SESSION_TOUCH_S;
    return now - last_seen >= every ? 1 : 0;
}

int basira_session_csrf_ok(const char *sent, const char *csrf)
{
    return sent && csrf && strlen(sent) == BASIRA_TOKEN_LEN && strlen(csrf) == BASIRA_TOKEN_LEN &&
           sodium_memcmp(sent, csrf, BASIRA_TOKEN_LEN) == 0;
}

const char basira_session_cookie_clear[] =
    "basira_session=; Path=/api/v1; Max-Age=0; HttpOnly; SameSite=Strict";
const char basira_csrf_cookie_clear[] = "basira_csrf=; Path=/; Max-Age=0; SameSite=Strict";

void basira_session_cookies(const char *token, const char *csrf, int64_t ttl_s, int secure,
                            char session_cookie[256], char csrf_cookie[256])
{
    const char *sec = secure ? "; Secure" : "";
    snprintf(session_cookie, 256,
             "basira_session=%s; Path=/api/v1; Max-Age=%lld; HttpOnly; SameSite=Strict%s", token,
             (long long)ttl_s, sec);
    snprintf(csrf_cookie, 256, "basira_csrf=%s; Path=/; Max-Age=%lld; SameSite=Strict%s", csrf,
             (long long)ttl_s, sec);
}

void basira_lockout_reserve(int failures, int64_t window_start, int64_t now, int max_failures,
                            int window_s, basira_lockout *out)
{
    if (now - window_start >= window_s || now < window_start) {
        failures = 0; /* the window is over: the lock lifts, whatever the address */
        window_start = now;
    }
    out->locked = failures >= max_failures;
    out->retry_s = (int)(window_start + window_s - now);
    if (out->retry_s < 1)
        out->retry_s = 1;
    out->refusals = failures - max_failures;
    out->failures = failures + 1;
    out->window_start = window_start;
}
