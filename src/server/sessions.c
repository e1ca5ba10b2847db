/*
 * sessions.c - signing in and out (the lockout per account is the store's:
 * basira_store_sign_in), and the checks every route with a session passes: a valid
 * session, a role the route allows, and the CSRF token on state-changing
 * requests.
 */
#include "basira/json.h"
#include "basira/session.h"
#include "core/i18n.h"
#include "server_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/*
 * Refused requests (no or a forged session, a wrong CSRF token) go into the audit
 * trail, as the documentation promises for every refusal, but an attacker must
 * not be able to fill the disk with them: a bucket of REFUSAL_BURST entries
 * refilled at one per second; what it drops is counted and written as one
 * "refusals_suppressed" entry with the next refusal that gets through.
 */
#define REFUSAL_BURST 60.0

void audit_refusal(basira_server *s, const request *rq, const char *outcome)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long suppressed = 0;
    int allowed = 0;
    pthread_mutex_lock(&s->refusal_lock);
    double dt = (double)(now.tv_sec - s->refusal_refill.tv_sec) +
                (double)(now.tv_nsec - s->refusal_refill.tv_nsec) / 1e9;
    s->refusal_refill = now;
    s->refusal_tokens += dt > 0 ? dt : 0;
    if (s->refusal_tokens > REFUSAL_BURST)
        s->refusal_tokens = REFUSAL_BURST;
    if (s->refusal_tokens >= 1) {
        s->refusal_tokens -= 1;
        allowed = 1;
        suppressed = s->refusals_suppressed;
        s->refusals_suppressed = 0;
    } else {
        s->refusals_suppressed++;
    }
    pthread_mutex_unlock(&s->refusal_lock);
    if (!allowed)
        return;
    basira_actor a = {rq->user.username[0] ? rq->user.username : "?", rq->ip};
    basira_error e;
    char detail[64];
    /* The request is refused whatever happens here; a failed write is reported. */
    if (suppressed) {
        snprintf(detail, sizeof detail, "count=%ld", suppressed);
        if (basira_store_audit_append(s->store, &a, "refusals", 0, "suppressed", detail, &e))
            fprintf(stderr, "basira serve: audit: %s\n", e.message);
    }
    if (basira_store_audit_append(s->store, &a, rq->rt ? rq->rt->pattern : rq->path, rq->id,
                                  outcome, NULL, &e))
        fprintf(stderr, "basira serve: audit: %s\n", e.message);
}

enum MHD_Result h_login(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    json_t *j = json_loadb((const char *)rq->body, rq->len, JSON_REJECT_DUPLICATES, NULL);
    const char *user = json_string_value(json_object_get(j, "username"));
    const char *pass = json_string_value(json_object_get(j, "password"));
    if (!json_is_object(j) || !user || !pass || json_object_size(j) != 2) {
        json_decref(j);
        return fail_with(c, rq, 400, BASIRA_E_FORMAT,
                         N_("send {\"username\": ..., \"password\": ...} as JSON"));
    }
    int retry = 0;
    basira_user u;
    /* The lockout is per account and lives in the store (it survives a restart). */
    basira_code rc = basira_store_sign_in(s->store, user, pass, rq->ip, &u, &retry, &e);
    if (rc == BASIRA_E_LIMIT && retry > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry);
        const char *hdrs[] = {"Retry-After", ra, NULL};
        json_decref(j);
        return send_json(c, rq, 429, json_pack("{s:o}", "error", error_json(rq, &e)), hdrs);
    }
    json_decref(j);
    if (rc)
        return fail(c, rq, &e);
    char token[BASIRA_TOKEN_LEN + 1], csrf[BASIRA_TOKEN_LEN + 1];
    if ((rc = basira_store_session_create(s->store, &u, s->cfg.session_ttl_s, token, csrf, &e)))
        return fail(c, rq, &e);
    rq->user = u;
    rq->lang = basira_language_negotiate(u.lang, NULL, rq->lang);
    char c1[256], c2[256];
    basira_session_cookies(token, csrf, s->cfg.session_ttl_s, s->tls_cert != NULL, c1, c2);
    const char *hdrs[] = {"Set-Cookie", c1, "Set-Cookie", c2, NULL};
    sodium_memzero(token, sizeof token);
    return send_json(c, rq, 200,
                     json_pack("{s:s, s:s, s:s, s:I, s:I}", "username", u.username, "role",
                               basira_role_name(u.role), "csrf_token", csrf, "expires_in",
                               (json_int_t)s->cfg.session_ttl_s, "idle_timeout_s",
                               (json_int_t)s->cfg.session_idle_s),
                     hdrs);
}

enum MHD_Result h_logout(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    const char *token = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "basira_session");
    basira_actor a = actor_of(rq);
    if (basira_store_session_delete(s->store, &a, token, &e))
        return fail(c, rq, &e);
    const char *hdrs[] = {"Set-Cookie", basira_session_cookie_clear, "Set-Cookie",
                          basira_csrf_cookie_clear, NULL};
    return send_json(c, rq, 200, json_pack("{s:b}", "signed_out", 1), hdrs);
}

enum MHD_Result h_whoami(basira_server *s, struct MHD_Connection *c, request *rq)
{
    return send_json(c, rq, 200,
                     json_pack("{s:s, s:s, s:s?, s:s, s:I}", "username", rq->user.username, "role",
                               basira_role_name(rq->user.role), "lang",
                               rq->user.lang[0] ? rq->user.lang : NULL, "answer_lang", rq->lang,
                               "idle_timeout_s", (json_int_t)s->cfg.session_idle_s),
                     NULL);
}

/* PATCH /session {"lang": "fr" | "ar" | "en" | null}: the signed-in user's own language. */
enum MHD_Result h_session_update(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    json_t *j = json_loadb((const char *)rq->body, rq->len, JSON_REJECT_DUPLICATES, NULL);
    json_t *lang = json_object_get(j, "lang");
    basira_actor a = actor_of(rq);
    basira_code rc;
    if (!json_is_object(j) || json_object_size(j) != 1 || !lang ||
        (!json_is_string(lang) && !json_is_null(lang)))
        rc = basira_error_setm(&e, BASIRA_E_FORMAT,
                               N_("send {\"lang\": \"fr\", \"ar\", \"en\" or null}"));
    else
        rc = basira_store_user_set_lang(s->store, &a, rq->user.username, json_string_value(lang),
                                        &e);
    if (!rc) {
        snprintf(rq->user.lang, sizeof rq->user.lang, "%s",
                 json_string_value(lang) ? json_string_value(lang) : "");
        rq->lang = basira_language_negotiate(
            rq->user.lang, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Language"),
            basira_language());
    }
    json_decref(j);
    if (rc)
        return fail(c, rq, &e);
    return send_json(c, rq, 200,
                     json_pack("{s:s, s:s, s:s?}", "username", rq->user.username, "role",
                               basira_role_name(rq->user.role), "lang",
                               rq->user.lang[0] ? rq->user.lang : NULL),
                     NULL);
}

/* A user changing their own password; every session of the account ends (sign in again). */
enum MHD_Result h_password_change(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    json_error_t je;
    json_t *j = json_loadb((const char *)rq->body, rq->len, JSON_REJECT_DUPLICATES, &je);
    const char *cur = json_string_value(json_object_get(j, "current"));
    const char *nw = json_string_value(json_object_get(j, "new"));
    if (!cur || !nw || json_object_size(j) != 2) {
        json_decref(j);
        return fail_with(c, rq, 400, BASIRA_E_FORMAT,
                         N_("send {\"current\": \"...\", \"new\": \"...\"}"));
    }
    basira_actor a = actor_of(rq);
    basira_code rc =
        basira_store_user_change_password(s->store, &a, rq->user.username, cur, nw, &e);
    json_decref(j);
    if (rc)
        return fail(c, rq, &e);
    return send_json(c, rq, 200, json_pack("{s:b}", "changed", 1), NULL);
}

int session_check(basira_server *s, struct MHD_Connection *c, request *rq, const char *method,
                  enum MHD_Result *ret)
{
    basira_error e;
    char csrf[BASIRA_TOKEN_LEN + 1];
    const char *token = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "basira_session");
    if (basira_store_session_lookup(s->store, token, &rq->user, csrf, &e) ||
        basira_store_session_touch(s->store, token, s->cfg.session_idle_s, &e)) {
        audit_refusal(s, rq, token ? "bad_session" : "no_session");
        *ret = fail(c, rq, &e);
        return 1;
    }
    rq->authed = 1;
    /* The account's language, when its owner chose one, wins over the browser's. */
    rq->lang = basira_language_negotiate(
        rq->user.lang, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Language"),
        rq->lang);
    if (!(rq->rt->roles & (1 << rq->user.role))) {
        basira_actor a = actor_of(rq);
        if (basira_store_audit_append(s->store, &a, rq->rt->pattern, rq->id, "forbidden", NULL, &e))
            *ret = fail(c, rq, &e);
        else
            *ret = fail_with(c, rq, 403, BASIRA_E_FORBIDDEN, N_("your role does not allow this"));
        return 1;
    }
    /* Every state-changing request proves it comes from our own page (CSRF). */
    if (strcmp(method, "GET")) {
        const char *sent = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-CSRF-Token");
        if (!basira_session_csrf_ok(sent, csrf)) {
            audit_refusal(s, rq, "csrf_refused");
            *ret = fail_with(c, rq, 403, BASIRA_E_FORBIDDEN,
                             N_("missing or wrong X-CSRF-Token header (use the value of the "
                                "basira_csrf cookie)"));
            return 1;
        }
    }
    return 0;
}
