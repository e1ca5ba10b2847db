/*
 * sessions.c - signing in and out, the sign-in rate limiter (per username +
 * client address), and the checks every route with a session passes: a valid
 * session, a role the route allows, and the CSRF token on state-changing
 * requests.
 */
#include "basira/json.h"
#include "core/i18n.h"
#include "server_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* ---- login rate limiting (per username + client address) ---- */

static login_slot *limiter_slot(basira_server *s, const char *username, const char *ip, int create)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "%s\n%s", username, ip);
    uint64_t key;
    crypto_shorthash((unsigned char *)&key, (const unsigned char *)buf,
                     (unsigned long long)(n < 0                     ? 0
                                          : (size_t)n >= sizeof buf ? sizeof buf - 1
                                                                    : (size_t)n),
                     s->limiter_key);
    if (!key)
        key = 1;
    login_slot *victim = NULL;
    int64_t now = (int64_t)time(NULL);
    for (size_t probe = 0; probe < 8; probe++) {
        login_slot *sl = &s->slots[(key + probe) % LIMITER_SLOTS];
        if (sl->key == key)
            return sl;
        int stale = sl->key && now - sl->window_start > s->cfg.login_window_s;
        if (!victim && (!sl->key || stale))
            victim = sl;
    }
    if (!create)
        return NULL;
    if (!victim) /* table crowded: reuse the oldest of the probed slots */
        victim = &s->slots[key % LIMITER_SLOTS];
    victim->key = key;
    victim->failures = 0;
    victim->window_start = now;
    return victim;
}

static int login_blocked(basira_server *s, const char *username, const char *ip, int *retry)
{
    int blocked = 0;
    pthread_mutex_lock(&s->limiter_lock);
    login_slot *sl = limiter_slot(s, username, ip, 0);
    int64_t now = (int64_t)time(NULL);
    if (sl && now - sl->window_start <= s->cfg.login_window_s &&
        sl->failures >= s->cfg.login_max_failures) {
        blocked = 1;
        *retry = (int)(sl->window_start + s->cfg.login_window_s - now) + 1;
    }
    pthread_mutex_unlock(&s->limiter_lock);
    return blocked;
}

static void login_record(basira_server *s, const char *username, const char *ip, int ok)
{
    pthread_mutex_lock(&s->limiter_lock);
    login_slot *sl = limiter_slot(s, username, ip, !ok);
    if (sl) {
        int64_t now = (int64_t)time(NULL);
        if (ok) {
            sl->key = 0;
        } else {
            if (now - sl->window_start > s->cfg.login_window_s) {
                sl->window_start = now;
                sl->failures = 0;
            }
            sl->failures++;
        }
    }
    pthread_mutex_unlock(&s->limiter_lock);
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
    if (login_blocked(s, user, rq->ip, &retry)) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry);
        const char *hdrs[] = {"Retry-After", ra, NULL};
        basira_error_setm(&e, BASIRA_E_LIMIT,
                          N_("too many failed sign-ins for this account from this address; try "
                             "again in %d seconds"),
                          retry);
        /* Only a well-formed username goes into the audit trail as the actor. */
        size_t ul = strlen(user), ok = ul > 0 && ul <= BASIRA_USERNAME_MAX;
        for (size_t i = 0; ok && i < ul; i++)
            ok = isalnum((unsigned char)user[i]) || strchr("._-", user[i]);
        basira_actor a = {ok ? user : "?", rq->ip};
        basira_error aerr;
        basira_code arc =
            basira_store_audit_append(s->store, &a, "login", 0, "rate_limited", NULL, &aerr);
        json_decref(j);
        if (arc)
            return fail(c, rq, &aerr);
        return send_json(c, rq, 429, json_pack("{s:o}", "error", error_json(rq, &e)), hdrs);
    }
    basira_user u;
    basira_code rc = basira_store_authenticate(s->store, user, pass, rq->ip, &u, &e);
    login_record(s, user, rq->ip, rc == BASIRA_OK);
    json_decref(j);
    if (rc)
        return fail(c, rq, &e);
    char token[BASIRA_TOKEN_LEN + 1], csrf[BASIRA_TOKEN_LEN + 1];
    if ((rc = basira_store_session_create(s->store, &u, s->cfg.session_ttl_s, token, csrf, &e)))
        return fail(c, rq, &e);
    rq->user = u;
    rq->lang = basira_language_negotiate(u.lang, NULL, rq->lang);
    char c1[256], c2[256];
    const char *secure = s->tls_cert ? "; Secure" : "";
    snprintf(c1, sizeof c1,
             "basira_session=%s; Path=/api/v1; Max-Age=%lld; HttpOnly; "
             "SameSite=Strict%s",
             token, (long long)s->cfg.session_ttl_s, secure);
    snprintf(c2, sizeof c2, "basira_csrf=%s; Path=/; Max-Age=%lld; SameSite=Strict%s", csrf,
             (long long)s->cfg.session_ttl_s, secure);
    const char *hdrs[] = {"Set-Cookie", c1, "Set-Cookie", c2, NULL};
    sodium_memzero(token, sizeof token);
    return send_json(c, rq, 200,
                     json_pack("{s:s, s:s, s:s, s:I}", "username", u.username, "role",
                               basira_role_name(u.role), "csrf_token", csrf, "expires_in",
                               (json_int_t)s->cfg.session_ttl_s),
                     hdrs);
}

enum MHD_Result h_logout(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    const char *token = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "basira_session");
    basira_actor a = actor_of(rq);
    if (basira_store_session_delete(s->store, &a, token, &e))
        return fail(c, rq, &e);
    const char *hdrs[] = {"Set-Cookie",
                          "basira_session=; Path=/api/v1; Max-Age=0; HttpOnly; SameSite=Strict",
                          "Set-Cookie", "basira_csrf=; Path=/; Max-Age=0; SameSite=Strict", NULL};
    return send_json(c, rq, 200, json_pack("{s:b}", "signed_out", 1), hdrs);
}

enum MHD_Result h_whoami(basira_server *s, struct MHD_Connection *c, request *rq)
{
    return send_json(c, rq, 200,
                     json_pack("{s:s, s:s, s:s?, s:s}", "username", rq->user.username, "role",
                               basira_role_name(rq->user.role), "lang",
                               rq->user.lang[0] ? rq->user.lang : NULL, "answer_lang", rq->lang),
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

int session_check(basira_server *s, struct MHD_Connection *c, request *rq, const char *method,
                  enum MHD_Result *ret)
{
    basira_error e;
    char csrf[BASIRA_TOKEN_LEN + 1];
    const char *token = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "basira_session");
    if (basira_store_session_lookup(s->store, token, &rq->user, csrf, &e)) {
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
        if (!sent || strlen(sent) != BASIRA_TOKEN_LEN ||
            sodium_memcmp(sent, csrf, BASIRA_TOKEN_LEN) != 0) {
            *ret = fail_with(c, rq, 403, BASIRA_E_FORBIDDEN,
                             N_("missing or wrong X-CSRF-Token header (use the value of the "
                                "basira_csrf cookie)"));
            return 1;
        }
    }
    return 0;
}
