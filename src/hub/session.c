/*
 * session.c - hub users sign in as on the node: a session cookie and a CSRF
 * token, idle sign-out and a lockout per account, with the rules of
 * basira/session.h (shared with the node's store); the state is in
 * PostgreSQL (hub_sessions, hub_login_failures).
 */
#include "basira/session.h"
#include "core/i18n.h"
#include "hub_internal.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void basira_hub_set_session_limits(basira_hub *hub, int64_t ttl_s, int64_t idle_s, int max_failures,
                                   int window_s)
{
    if (ttl_s > 0)
        hub->session_ttl_s = ttl_s;
    if (idle_s >= 0)
        hub->session_idle_s = idle_s;
    if (max_failures > 0)
        hub->login_max_failures = max_failures;
    if (window_s > 0)
        hub->login_window_s = window_s;
}

typedef struct attempt_ctx {
    basira_hub *hub;
    const char *user;
    basira_lockout lk;
} attempt_ctx;

/* Count the attempt (committed before the password is checked). */
static basira_code attempt_tx(PGconn *c, void *ctx, basira_error *err)
{
    attempt_ctx *a = ctx;
    const char *vals[] = {a->user};
    PGresult *r = NULL;
    /* The row is created first so that concurrent attempts queue on its lock. */
    basira_code rc = hub_exec(c,
                              "INSERT INTO hub_login_failures(username, failures, window_start) "
                              "VALUES($1, 0, extract(epoch FROM now())::bigint) ON CONFLICT DO "
                              "NOTHING",
                              1, vals, NULL, err);
    if (!rc)
        rc = hub_exec(c,
                      "SELECT failures, window_start, extract(epoch FROM now())::bigint FROM "
                      "hub_login_failures WHERE username = $1 FOR UPDATE",
                      1, vals, &r, err);
    if (rc)
        return rc;
    basira_lockout_reserve(atoi(PQgetvalue(r, 0, 0)), 0, strtoll(PQgetvalue(r, 0, 1), NULL, 10),
                           strtoll(PQgetvalue(r, 0, 2), NULL, 10), a->hub->login_max_failures,
                           a->hub->login_window_s, &a->lk);
    PQclear(r);
    char f[16], w[24];
    snprintf(f, sizeof f, "%d", a->lk.failures);
    snprintf(w, sizeof w, "%" PRId64, a->lk.window_start);
    const char *uv[] = {a->user, f, w};
    return hub_exec(c,
                    "UPDATE hub_login_failures SET failures = $2::int, window_start = $3::bigint "
                    "WHERE username = $1",
                    3, uv, NULL, err);
}

basira_code basira_hub_sign_in(basira_hub *hub, const char *username, const char *password,
                               char token[BASIRA_TOKEN_LEN + 1], char csrf[BASIRA_TOKEN_LEN + 1],
                               basira_hub_role *role, int *retry_s, basira_error *err)
{
    *retry_s = 0;
    if (!username || !*username || strlen(username) > 64 || !password)
        return basira_error_setm(err, BASIRA_E_AUTH, N_("wrong username or password"));
    attempt_ctx a = {.hub = hub, .user = username};
    basira_code rc = hub_tx(hub, attempt_tx, &a, err);
    if (rc)
        return rc;
    if (a.lk.locked) {
        *retry_s = a.lk.retry_s;
        return basira_error_setm(err, BASIRA_E_LIMIT,
                                 N_("too many failed sign-ins for this account; try again in %d "
                                    "seconds"),
                                 a.lk.retry_s);
    }
    if ((rc = basira_hub_authenticate(hub, username, password, role, err)))
        return rc;
    const char *vals[] = {username, NULL, NULL, NULL};
    if ((rc = hub_query(hub, "DELETE FROM hub_login_failures WHERE username = $1", 1, vals, NULL,
                        err)))
        return rc;
    char th[65], ttl[24];
    basira_session_token_new(token);
    basira_session_token_new(csrf);
    basira_session_token_hash(token, th);
    snprintf(ttl, sizeof ttl, "%" PRId64, hub->session_ttl_s);
    vals[1] = th;
    vals[2] = csrf;
    vals[3] = ttl;
    /* Expired sessions go here rather than in a background job. */
    if (!(rc = hub_query(hub, "DELETE FROM hub_sessions WHERE expires_at < now()", 0, NULL, NULL,
                         err)))
        rc = hub_query(hub,
                       "INSERT INTO hub_sessions(token_hash, user_id, expires_at, csrf) SELECT $2, "
                       "id, now() + make_interval(secs => $4::int), $3 FROM hub_users WHERE "
                       "username = $1",
                       4, vals, NULL, err);
    if (rc) {
        sodium_memzero(token, BASIRA_TOKEN_LEN + 1);
        sodium_memzero(csrf, BASIRA_TOKEN_LEN + 1);
    }
    return rc;
}

basira_code basira_hub_session(basira_hub *hub, const char *token, char user[65],
                               basira_hub_role *role, char csrf[BASIRA_TOKEN_LEN + 1],
                               basira_error *err)
{
    if (!basira_session_token_valid(token))
        return basira_error_setm(err, BASIRA_E_AUTH, N_("sign in to the hub"));
    char th[65];
    basira_session_token_hash(token, th);
    const char *vals[] = {th};
    PGresult *r = NULL;
    basira_code rc = hub_query(
        hub,
        "SELECT u.username, u.role, s.csrf, extract(epoch FROM s.last_seen)::bigint, "
        "extract(epoch FROM now())::bigint FROM hub_sessions s JOIN hub_users u ON u.id = "
        "s.user_id WHERE s.token_hash = $1 AND s.expires_at > now()",
        1, vals, &r, err);
    if (rc)
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return basira_error_setm(err, BASIRA_E_AUTH, N_("sign in to the hub"));
    }
    int idle =
        basira_session_idle_state(strtoll(PQgetvalue(r, 0, 3), NULL, 10),
                                  strtoll(PQgetvalue(r, 0, 4), NULL, 10), hub->session_idle_s);
    snprintf(user, 65, "%s", PQgetvalue(r, 0, 0));
    snprintf(csrf, BASIRA_TOKEN_LEN + 1, "%s", PQgetvalue(r, 0, 2));
    rc = basira_hub_role_parse(PQgetvalue(r, 0, 1), role, err);
    PQclear(r);
    if (!rc && idle == 2) {
        hub_query(hub, "DELETE FROM hub_sessions WHERE token_hash = $1", 1, vals, NULL, NULL);
        rc = basira_error_setm(err, BASIRA_E_AUTH,
                               N_("you were signed out after a period without activity; please "
                                  "sign in again"));
    } else if (!rc && idle == 1) {
        rc = hub_query(hub, "UPDATE hub_sessions SET last_seen = now() WHERE token_hash = $1", 1,
                       vals, NULL, err);
    }
    if (rc)
        sodium_memzero(csrf, BASIRA_TOKEN_LEN + 1);
    return rc;
}

basira_code basira_hub_sign_out(basira_hub *hub, const char *token, basira_error *err)
{
    if (!basira_session_token_valid(token))
        return BASIRA_OK;
    char th[65];
    basira_session_token_hash(token, th);
    const char *vals[] = {th};
    return hub_query(hub, "DELETE FROM hub_sessions WHERE token_hash = $1", 1, vals, NULL, err);
}
