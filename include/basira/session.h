/*
 * session.h - the rules of signing in that the clinic node (SQLite store,
 * src/server) and the regional hub (PostgreSQL, src/hub) share, so that both
 * behave the same and neither has its own copy:
 *   - session and CSRF tokens: 32 random bytes (libsodium) as 64 hex
 *     characters; only the SHA-256 of a session token is stored;
 *   - the cookies: basira_session (HttpOnly, SameSite=Strict, Path=/api/v1,
 *     Secure over HTTPS) and basira_csrf (readable by the page, which sends it
 *     back as X-CSRF-Token on every request that changes something);
 *   - idle sign-out: a session unused for idle_s seconds ends; a use is
 *     recorded at most every BASIRA_SESSION_TOUCH_S seconds (idle_s / 2 when
 *     that is shorter);
 *   - lockout per account: max_failures attempts per window_s, counted before
 *     they are checked, whatever the address.
 * Where the state lives (tables, transactions) stays with each side.
 */
#ifndef BASIRA_SESSION_H
#define BASIRA_SESSION_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "basira/store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BASIRA_SESSION_TOUCH_S 30

/* A new random token (session or CSRF), 64 hex characters. */
void basira_session_token_new(char out[BASIRA_TOKEN_LEN + 1]);
/* SHA-256 (hex) of a token: what is stored and looked up. */
void basira_session_token_hash(const char *token, char out[65]);
/* 1 when token has the shape of one of ours (64 hex characters). */
int basira_session_token_valid(const char *token);

/* 0: the session is fresh; 1: fresh, record this use now; 2: idle too long, it ends. */
int basira_session_idle_state(int64_t last_seen, int64_t now, int64_t idle_s);

/* 1 when the X-CSRF-Token header sent matches the session's token (constant time). */
int basira_session_csrf_ok(const char *sent, const char *csrf);

/* The two Set-Cookie values of a new session, and those that clear them. */
void basira_session_cookies(const char *token, const char *csrf, int64_t ttl_s, int secure,
                            char session_cookie[256], char csrf_cookie[256]);
extern const char basira_session_cookie_clear[];
extern const char basira_csrf_cookie_clear[];

/*
 * One sign-in attempt against an account that had failures attempts counted
 * since window_start, checking of which are still under way: whether it is
 * locked out (retry_s until the window ends), whether it must wait for a check
 * under way to end (every attempt left in the window is being checked: if
 * they fail it is locked, if one succeeds it goes), and the count and window
 * to store now (the attempt counts before the password is checked, so
 * concurrent guesses cannot outrun the limit, and a right password is not
 * refused for attempts that have not failed).
 */
typedef struct basira_lockout {
    int locked;
    int wait; /* neither locked nor go: wait for a check under way, try again */
    int retry_s;
    int refusals;         /* attempts beyond the limit in this window before this one */
    int failures;         /* to store: the count including this attempt */
    int64_t window_start; /* to store */
} basira_lockout;

void basira_lockout_reserve(int failures, int checking, int64_t window_start, int64_t now,
                            int max_failures, int window_s, basira_lockout *out);

/*
 * The hash an unknown username is checked against, so that signing in as
 * nobody costs one Argon2id verification, as signing in as somebody does (else
 * the time of the answer tells which usernames exist). Made on first use with
 * the parameters of real hashes (ops, mem), and shared by the threads of a
 * node's store or of a hub.
 */
typedef struct basira_dummy_hash {
    pthread_mutex_t lock;
    char hash[128]; /* crypto_pwhash_STRBYTES */
} basira_dummy_hash;

void basira_dummy_hash_init(basira_dummy_hash *d);
void basira_dummy_hash_destroy(basira_dummy_hash *d);

/*
 * One Argon2id verification of password: against hash, or against the dummy
 * when hash is NULL or empty (an unknown user; never a match). 1: it matches a
 * real hash; 0: it does not; -1: no memory to make the dummy.
 */
int basira_password_verify(basira_dummy_hash *d, const char *hash, const char *password,
                           unsigned long long ops, size_t mem);

#ifdef __cplusplus
}
#endif
#endif
