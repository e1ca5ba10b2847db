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

void basira_lockout_reserve(int failures, int checking, int64_t window_start, int64_t now,
                            int max_failures, int window_s, basira_lockout *out)
{
    if (now - window_start >= window_s || now < window_start) {
        failures = 0; /* the window is over: the lock lifts, whatever the address */
        window_start = now;
    }
    int failed = failures - (checking > 0 ? checking : 0);
    if (failed < 0)
        failed = 0; /* checks counted in a window that has ended since */
    out->locked = failed >= max_failures;
    out->wait = !out->locked && failures >= max_failures;
    out->retry_s = (int)(window_start + window_s - now);
    if (out->retry_s < 1)
        out->retry_s = 1;
    out->refusals = failures - max_failures;
    out->failures = failures + 1;
    out->window_start = window_start;
}

_Static_assert(sizeof((basira_dummy_hash *)0)->hash == crypto_pwhash_STRBYTES,
               "basira_dummy_hash holds one libsodium password hash");

void basira_dummy_hash_init(basira_dummy_hash *d)
{
    pthread_mutex_init(&d->lock, NULL);
    d->hash[0] = '\0';
}

void basira_dummy_hash_destroy(basira_dummy_hash *d)
{
    pthread_mutex_destroy(&d->lock);
    sodium_memzero(d->hash, sizeof d->hash);
}

/*
 * The dummy is hashed once and then only verified: hashing it afresh for each
 * unknown name and verifying it made two Argon2 runs (174 against 99 ms), a
 * difference as telling as none.
 */
int basira_password_verify(basira_dummy_hash *d, const char *hash, const char *password,
                           unsigned long long ops, size_t mem)
{
    char dummy[crypto_pwhash_STRBYTES];
    int real = hash && *hash;
    if (!real) {
        pthread_mutex_lock(&d->lock);
        if (!d->hash[0]) {
            unsigned char pw[24];
            randombytes_buf(pw, sizeof pw);
            if (crypto_pwhash_str(d->hash, (const char *)pw, sizeof pw, ops, mem) != 0)
                d->hash[0] = '\0';
        }
        memcpy(dummy, d->hash, sizeof dummy);
        pthread_mutex_unlock(&d->lock);
        if (!dummy[0])
            return -1;
        hash = dummy;
    }
    const char *pw = password ? password : "";
    int match = crypto_pwhash_str_verify(hash, pw, strlen(pw)) == 0;
    return real && match;
}
