/* users.c - accounts (Argon2id password hashes) and sessions (random tokens, stored hashed). */
#include "core/i18n.h"
#include "basira/session.h"
#include "store_internal.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static basira_code check_username(const char *u, basira_error *err)
{
    size_t n = u ? strlen(u) : 0;
    if (n == 0 || n > BASIRA_USERNAME_MAX)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("a username has 1 to %d characters"), BASIRA_USERNAME_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)u[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-')
            return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                     N_("a username may only hold letters, digits, '.', '_' and "
                                        "'-'"));
    }
    return BASIRA_OK;
}

static basira_code hash_password(const basira_store *st, const char *password, const char *username,
                                 char out[crypto_pwhash_STRBYTES], basira_error *err)
{
    basira_code rc = basira_password_check(password, username, err);
    if (rc)
        return rc;
    size_t n = strlen(password);
    unsigned long long ops;
    size_t mem;
    store_pwhash_cost(st->argon2, 0, &ops, &mem);
    if (crypto_pwhash_str(out, password, n, ops, mem) != 0)
        return basira_error_setm(err, BASIRA_E_NOMEM, N_("not enough memory to hash the password"));
    return BASIRA_OK;
}

basira_code basira_store_user_add(basira_store *st, const basira_actor *who, const char *username,
                                  basira_role role, const char *password, basira_error *err)
{
    basira_code space = store_space_for_write(st, err);
    if (space)
        return space;
    char hash[crypto_pwhash_STRBYTES];
    basira_code rc = check_username(username, err);
    if (rc || (rc = hash_password(st, password, username, hash, err)))
        return rc;
    if ((int)role < 0 || role >= BASIRA_ROLE_COUNT_)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT, N_("invalid role"));
    pthread_mutex_lock(&st->lock);
    sqlite3_stmt *s = NULL;
    if (!(rc = store_begin(st, err)) &&
        !(rc = store_prepare(st,
                             "INSERT INTO users(username, role, pwhash, created_at) "
                             "VALUES(?, ?, ?, ?)",
                             &s, err))) {
        store_bound(st, sqlite3_bind_text(s, 1, username, -1, SQLITE_STATIC));
        store_bound(st, sqlite3_bind_text(s, 2, basira_role_name(role), -1, SQLITE_STATIC));
        store_bound(st, sqlite3_bind_text(s, 3, hash, -1, SQLITE_STATIC));
        store_bound(st, sqlite3_bind_int64(s, 4, store_now()));
        int step = sqlite3_step(s);
        if (step == SQLITE_CONSTRAINT)
            rc = basira_error_setm(err, BASIRA_E_CONFLICT, N_("the user '%s' already exists"),
                                   username);
        else if (step != SQLITE_DONE)
            rc = store_sql_error(st, "adding a user", err);
        sqlite3_finalize(s);
        char detail[160];
        snprintf(detail, sizeof detail, "user=%s role=%s", username, basira_role_name(role));
        if (!rc)
            rc = store_audit_append_locked(st, who, "user_add", 0, "ok", detail, err);
        if (!rc)
            rc = store_commit(st, err);
    }
    if (rc)
        store_rollback(st);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

static int user_exists(basira_store *st, const char *username)
{
    sqlite3_stmt *s;
    int found = 0;
    pthread_mutex_lock(&st->lock);
    if (!store_prepare(st, "SELECT 1 FROM users WHERE username = ?", &s, NULL)) {
        sqlite3_bind_text(s, 1, username, -1, SQLITE_STATIC);
        found = sqlite3_step(s) == SQLITE_ROW;
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->lock);
    return found;
}

/* Run an UPDATE on one user by name, audited; BASIRA_E_NOT_FOUND when no such user. */
static basira_code update_user(basira_store *st, const basira_actor *who, const char *sql,
                               const char *text, int number, const char *username,
                               const char *action, int end_sessions, basira_error *err)
{
    basira_code space = store_space_for_write(st, err);
    if (space)
        return space;
    basira_code rc;
    sqlite3_stmt *s = NULL;
    pthread_mutex_lock(&st->lock);
    if (!(rc = store_begin(st, err)) && !(rc = store_prepare(st, sql, &s, err))) {
        if (text)
            store_bound(st, sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC));
        else if (number >= 0)
            store_bound(st, sqlite3_bind_int(s, 1, number));
        else
            store_bound(st, sqlite3_bind_null(s, 1));
        store_bound(st, sqlite3_bind_text(s, 2, username, -1, SQLITE_STATIC));
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = store_sql_error(st, "updating a user", err);
        else if (sqlite3_changes(st->db) == 0)
            rc = basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no user named '%s'"), username);
        sqlite3_finalize(s);
        char detail[128];
        snprintf(detail, sizeof detail, "user=%s", username);
        if (!rc)
            rc = store_audit_append_locked(st, who, action, 0, "ok", detail, err);
        /* A password change or a disabled account ends every open session of that user. */
        if (!rc && end_sessions &&
            (rc = store_prepare(st,
                                "DELETE FROM sessions WHERE user_id = "
                                "(SELECT id FROM users WHERE username = ?)",
                                &s, err)) == BASIRA_OK) {
            store_bound(st, sqlite3_bind_text(s, 1, username, -1, SQLITE_STATIC));
            if (sqlite3_step(s) != SQLITE_DONE)
                rc = store_sql_error(st, "closing sessions", err);
            sqlite3_finalize(s);
        }
        if (!rc)
            rc = store_commit(st, err);
    }
    if (rc)
        store_rollback(st);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

basira_code basira_store_user_passwd(basira_store *st, const basira_actor *who,
                                     const char *username, const char *password, basira_error *err)
{
    char hash[crypto_pwhash_STRBYTES];
    basira_code rc = check_username(username, err);
    if (rc || (rc = hash_password(st, password, username, hash, err)))
        return rc;
    return update_user(st, who, "UPDATE users SET pwhash = ? WHERE username = ?", hash, 0, username,
                       "user_passwd", 1, err);
}

basira_code basira_store_user_set_disabled(basira_store *st, const basira_actor *who,
                                           const char *username, int disabled, basira_error *err)
{
    basira_code rc = check_username(username, err);
    if (rc)
        return rc;
    /*
     * The last enabled admin cannot be disabled: nobody could then add or re-enable
     * accounts. The check is inside the UPDATE, so two admins disabling each other
     * at once cannot both succeed.
     */
    rc = update_user(st, who,
                     "UPDATE users SET disabled = ?1 WHERE username = ?2 AND (?1 = 0 OR "
                     "role != 'admin' OR (SELECT count(*) FROM users WHERE role = 'admin' AND "
                     "disabled = 0 AND username != ?2) > 0)",
                     NULL, disabled ? 1 : 0, username, disabled ? "user_disable" : "user_enable", 1,
                     err);
    if (rc == BASIRA_E_NOT_FOUND && disabled && user_exists(st, username))
        rc = basira_error_setm(err, BASIRA_E_CONFLICT,
                               N_("'%s' is the last active administrator and cannot be disabled: "
                                  "make another account admin first"),
                               username);
    return rc;
}

basira_code basira_store_user_change_password(basira_store *st, const basira_actor *who,
                                              const char *username, const char *current,
                                              const char *new_password, basira_error *err)
{
    basira_user u;
    basira_code rc = basira_store_authenticate(st, username, current ? current : "",
                                               who && who->ip ? who->ip : "local", &u, err);
    if (rc)
        return basira_error_setm(err, BASIRA_E_AUTH, N_("the current password is wrong"));
    if (current && new_password && !strcmp(current, new_password))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("the new password must differ from the current one"));
    return basira_store_user_passwd(st, who, username, new_password, err);
}

basira_code basira_store_user_set_lang(basira_store *st, const basira_actor *who,
                                       const char *username, const char *lang, basira_error *err)
{
    basira_code rc = check_username(username, err);
    if (rc)
        return rc;
    if (lang && *lang && strcmp(lang, "fr") && strcmp(lang, "ar") && strcmp(lang, "en"))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("the language must be fr, ar or en"));
    /* Only the answers' language changes: the user's sessions stay open. */
    return update_user(st, who, "UPDATE users SET lang = ? WHERE username = ?",
                       lang && *lang ? lang : NULL, -1, username, "user_lang", 0, err);
}

basira_code basira_store_user_count(basira_store *st, long *count, basira_error *err)
{
    sqlite3_stmt *s;
    basira_code rc;
    pthread_mutex_lock(&st->lock);
    if (!(rc = store_prepare(st, "SELECT count(*) FROM users WHERE disabled = 0", &s, err))) {
        if (sqlite3_step(s) == SQLITE_ROW)
            *count = (long)sqlite3_column_int64(s, 0);
        else
            rc = store_sql_error(st, "counting users", err);
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

basira_code basira_store_user_list(basira_store *st, json_t **out, basira_error *err)
{
    sqlite3_stmt *s;
    basira_code rc;
    json_t *arr = json_array();
    if (!arr)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    pthread_mutex_lock(&st->lock);
    if (!(rc = store_prepare(st,
                             "SELECT username, role, disabled, created_at, lang FROM users "
                             "ORDER BY username",
                             &s, err))) {
        while (sqlite3_step(s) == SQLITE_ROW) {
            char when[32];
            store_iso_time(sqlite3_column_int64(s, 3), when);
            json_array_append_new(arr,
                                  json_pack("{s:s, s:s, s:b, s:s, s:s?}", "username",
                                            (const char *)sqlite3_column_text(s, 0), "role",
                                            (const char *)sqlite3_column_text(s, 1), "disabled",
                                            sqlite3_column_int(s, 2), "created_at", when, "lang",
                                            (const char *)sqlite3_column_text(s, 4)));
        }
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->lock);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return BASIRA_OK;
}

/* ---- signing in: constant work, lockout per account ------------------------------ */

void basira_store_set_login_limits(basira_store *st, int max_failures, int window_s)
{
    pthread_mutex_lock(&st->lock);
    st->login_max_failures = max_failures > 0 ? max_failures : BASIRA_LOGIN_MAX_FAILURES;
    st->login_window_s = window_s > 0 ? window_s : BASIRA_LOGIN_WINDOW_S;
    pthread_mutex_unlock(&st->lock);
}

/* The checks under way for key (lock held); with add, this one too (NULL: no free slot). */
static store_login_check *checking_slot(basira_store *st, const char *key, int add)
{
    store_login_check *free_slot = NULL;
    for (int i = 0; i < STORE_LOGIN_INFLIGHT; i++) {
        if (st->checking[i].n > 0 && !strcmp(st->checking[i].key, key))
            return &st->checking[i];
        if (!free_slot && st->checking[i].n == 0)
            free_slot = &st->checking[i];
    }
    if (!add || !free_slot)
        return NULL;
    snprintf(free_slot->key, sizeof free_slot->key, "%s", key);
    return free_slot;
}

static int checking_count(basira_store *st, const char *key)
{
    store_login_check *c = checking_slot(st, key, 0);
    return c ? c->n : 0;
}

/*
 * Reserve one attempt for key (lock held, in a transaction): lk->locked,
 * lk->wait (every attempt left is being checked) or go (counted, and this
 * check is recorded as under way).
 */
static basira_code reserve_attempt(basira_store *st, const char *key, int64_t now,
                                   basira_lockout *lk, basira_error *err)
{
    sqlite3_stmt *s;
    int failures = 0;
    int64_t start = now;
    basira_code rc = store_prepare(
        st, "SELECT failures, window_start FROM login_failures WHERE username = ?", &s, err);
    if (rc)
        return rc;
    store_bound(st, sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC));
    if (sqlite3_step(s) == SQLITE_ROW) {
        failures = sqlite3_column_int(s, 0);
        start = sqlite3_column_int64(s, 1);
    }
    sqlite3_finalize(s);
    basira_lockout_reserve(failures, checking_count(st, key), start, now, st->login_max_failures,
                           st->login_window_s, lk);
    store_login_check *slot = lk->locked || lk->wait ? NULL : checking_slot(st, key, 1);
    if (!lk->locked && !slot) {
        lk->wait = 1; /* as many accounts being checked as there are slots: wait for one */
        return BASIRA_OK;
    }
    if (lk->wait)
        return BASIRA_OK;
    /*
     * Every attempt counts before it is checked: 40 concurrent guesses get 5
     * checks. A check under way is not a failure, though: an attempt that finds
     * the budget taken by checks waits for one to end instead of being refused
     * (8 concurrent sign-ins with the right password used to get 429s).
     */
    if ((rc = store_prepare(
             st,
             "INSERT OR REPLACE INTO login_failures(username, failures, window_start) "
             "VALUES(?1, ?2, ?3)",
             &s, err)))
        return rc;
    store_bound(st, sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC));
    store_bound(st, sqlite3_bind_int(s, 2, lk->failures));
    store_bound(st, sqlite3_bind_int64(s, 3, lk->window_start));
    if (sqlite3_step(s) != SQLITE_DONE)
        rc = store_sql_error(st, "counting a sign-in attempt", err);
    sqlite3_finalize(s);
    /* Old windows are forgotten here rather than by a background job. */
    if (!rc &&
        !(rc = store_prepare(st, "DELETE FROM login_failures WHERE window_start < ?", &s, err))) {
        store_bound(st, sqlite3_bind_int64(s, 1, now - st->login_window_s));
        sqlite3_step(s);
        sqlite3_finalize(s);
    }
    if (!rc && slot)
        slot->n++;
    return rc;
}

/* This check of key has ended (lock held): waiting attempts look again. */
static void check_ended(basira_store *st, const char *key)
{
    store_login_check *c = checking_slot(st, key, 0);
    if (c)
        c->n--;
    pthread_cond_broadcast(&st->check_done);
}

/* Wait (lock held) for a check under way to end, 10 s at most; 1 when the time ran out. */
static int wait_for_check(basira_store *st)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    return pthread_cond_timedwait(&st->check_done, &st->lock, &until) == ETIMEDOUT;
}

basira_code basira_store_sign_in(basira_store *st, const char *username, const char *password,
                                 const char *ip, basira_user *out, int *retry_after_s,
                                 basira_error *err)
{
    char hash[crypto_pwhash_STRBYTES] = "";
    char role[32] = "", lang[4] = "";
    int64_t id = 0;
    int disabled = 1, locked = 0, retry = 0, refusals = 0;
    sqlite3_stmt *s;
    basira_code rc = BASIRA_OK;
    int name_ok = username && check_username(username, NULL) == BASIRA_OK;
    /* Unknown and malformed names are counted too, so a lock says nothing of who exists. */
    const char *key = name_ok ? username : "?";
    char who_name[BASIRA_USERNAME_MAX + 1];
    snprintf(who_name, sizeof who_name, "%s", key);
    basira_actor who = {who_name, ip ? ip : "?"};
    if (retry_after_s)
        *retry_after_s = 0;
    pthread_mutex_lock(&st->lock);
    basira_lockout lk = {.locked = 0};
    for (;;) {
        if ((rc = store_begin(st, err)))
            break;
        if ((rc = reserve_attempt(st, key, store_now(), &lk, err)) || !lk.wait)
            break;
        store_rollback(st); /* nothing was written: wait for a check to end, then look again */
        if (wait_for_check(st)) {
            /* A check that takes this long is stuck: refuse rather than queue without end. */
            lk.locked = 1;
            lk.wait = 0;
            rc = store_begin(st, err);
            break;
        }
    }
    int counted = !rc && !lk.locked; /* this check is recorded as under way */
    locked = lk.locked;
    retry = lk.retry_s;
    refusals = lk.refusals;
    if (!rc && name_ok && !locked &&
        !(rc = store_prepare(
              st, "SELECT id, role, pwhash, disabled, lang FROM users WHERE username = ?", &s,
              err))) {
        store_bound(st, sqlite3_bind_text(s, 1, username, -1, SQLITE_STATIC));
        if (sqlite3_step(s) == SQLITE_ROW) {
            id = sqlite3_column_int64(s, 0);
            snprintf(role, sizeof role, "%s", (const char *)sqlite3_column_text(s, 1));
            snprintf(hash, sizeof hash, "%s", (const char *)sqlite3_column_text(s, 2));
            disabled = sqlite3_column_int(s, 3);
            if (sqlite3_column_text(s, 4))
                snprintf(lang, sizeof lang, "%s", (const char *)sqlite3_column_text(s, 4));
        }
        sqlite3_finalize(s);
    }
    /* The refusals of a locked account are audited, the first few of each window only: an
     * attacker hammering it cannot fill the disk with them. */
    if (!rc && locked && refusals < BASIRA_LOGIN_AUDITED_REFUSALS)
        rc = store_audit_append_locked(st, &who, "login", 0, "rate_limited", NULL, err);
    if (!rc)
        rc = store_commit(st, err);
    else
        store_rollback(st);
    if (rc && counted)
        check_ended(st, key); /* the count was rolled back with the transaction */
    pthread_mutex_unlock(&st->lock);
    if (rc)
        return rc;
    if (locked) {
        if (retry_after_s)
            *retry_after_s = retry;
        return basira_error_setm(err, BASIRA_E_LIMIT,
                                 N_("too many failed sign-ins for this account; try again in %d "
                                    "seconds or ask an administrator to unlock it"),
                                 retry);
    }
    /*
     * Verify outside the lock (Argon2id takes tens of milliseconds): against the
     * account's hash, or for an unknown user against the dummy hash, one Argon2id
     * run either way.
     */
    int good = 0;
    size_t plen = password ? strlen(password) : 0;
    if (plen <= 1024) {
        unsigned long long ops;
        size_t mem;
        store_pwhash_cost(st->argon2, 0, &ops, &mem);
        good = basira_password_verify(&st->dummy, id ? hash : NULL, password, ops, mem);
        if (good < 0) {
            pthread_mutex_lock(&st->lock);
            check_ended(st, key); /* counted as a failure: it stays counted */
            pthread_mutex_unlock(&st->lock);
            return basira_error_setm(err, BASIRA_E_NOMEM,
                                     N_("not enough memory to hash the password"));
        }
        good = id && good;
    }
    st->pwhash_runs++;
    basira_role r = BASIRA_ROLE_GP;
    int ok = good && !disabled && basira_role_parse(role, &r, NULL) == BASIRA_OK;
    pthread_mutex_lock(&st->lock);
    /* A success clears the failures; the other checks under way stay counted until they end. */
    int others = checking_count(st, key) - 1;
    if (!(rc = store_begin(st, err))) {
        if (ok &&
            !(rc = store_prepare(st,
                                 others > 0 ? "UPDATE login_failures SET failures = ?2 "
                                              "WHERE username = ?1"
                                            : "DELETE FROM login_failures WHERE username = ?1",
                                 &s, err))) {
            store_bound(st, sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC));
            if (others > 0)
                store_bound(st, sqlite3_bind_int(s, 2, others));
            if (sqlite3_step(s) != SQLITE_DONE)
                rc = store_sql_error(st, "clearing sign-in failures", err);
            sqlite3_finalize(s);
        }
        if (!rc)
            rc = store_audit_append_locked(
                st, &who, "login", 0, ok ? "ok" : "denied",
                ok ? NULL : (disabled && good ? "disabled" : "bad_credentials"), err);
        if (!rc)
            rc = store_commit(st, err);
        else
            store_rollback(st);
    }
    check_ended(st, key);
    pthread_mutex_unlock(&st->lock);
    if (rc)
        return rc;
    if (!ok)
        return basira_error_setm(err, BASIRA_E_AUTH, N_("wrong username or password"));
    out->id = id;
    snprintf(out->username, sizeof out->username, "%s", username);
    out->role = r;
    snprintf(out->lang, sizeof out->lang, "%s", lang);
    return BASIRA_OK;
}

basira_code basira_store_authenticate(basira_store *st, const char *username, const char *password,
                                      const char *ip, basira_user *out, basira_error *err)
{
    return basira_store_sign_in(st, username, password, ip, out, NULL, err);
}

basira_code basira_store_user_unlock(basira_store *st, const basira_actor *who,
                                     const char *username, basira_error *err)
{
    basira_code rc = check_username(username, err);
    if (rc)
        return rc;
    sqlite3_stmt *s;
    pthread_mutex_lock(&st->lock);
    if (!(rc = store_begin(st, err)) &&
        !(rc = store_prepare(st, "SELECT 1 FROM users WHERE username = ?", &s, err))) {
        store_bound(st, sqlite3_bind_text(s, 1, username, -1, SQLITE_STATIC));
        int found = sqlite3_step(s) == SQLITE_ROW;
        sqlite3_finalize(s);
        if (!found)
            rc = basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no user named '%s'"), username);
        else if (!(rc = store_prepare(st, "DELETE FROM login_failures WHERE username = ?", &s,
                                      err))) {
            store_bound(st, sqlite3_bind_text(s, 1, username, -1, SQLITE_STATIC));
            if (sqlite3_step(s) != SQLITE_DONE)
                rc = store_sql_error(st, "unlocking an account", err);
            sqlite3_finalize(s);
        }
        char detail[128];
        snprintf(detail, sizeof detail, "user=%s", username);
        if (!rc)
            rc = store_audit_append_locked(st, who, "user_unlock", 0, "ok", detail, err);
        if (!rc)
            rc = store_commit(st, err);
    }
    if (rc)
        store_rollback(st);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

long basira_store_password_checks(basira_store *st)
{
    return st ? (long)st->pwhash_runs : 0;
}

/* Sessions are looked up by SHA-256 of the token, so a copy of the database opens none. */
basira_code basira_store_session_create(basira_store *st, const basira_user *user, int64_t ttl_s,
                                        char token[BASIRA_TOKEN_LEN + 1],
                                        char csrf[BASIRA_TOKEN_LEN + 1], basira_error *err)
{
    char th[65];
    basira_session_token_new(token);
    basira_session_token_new(csrf);
    basira_session_token_hash(token, th);
    int64_t now = store_now();
    sqlite3_stmt *s;
    basira_code rc;
    pthread_mutex_lock(&st->lock);
    /* Expired sessions are removed here rather than by a background job. */
    rc = store_prepare(st, "DELETE FROM sessions WHERE expires_at < ?", &s, err);
    if (!rc) {
        store_bound(st, sqlite3_bind_int64(s, 1, now));
        sqlite3_step(s);
        sqlite3_finalize(s);
        rc = store_prepare(st,
                           "INSERT INTO sessions(token_hash, user_id, csrf, created_at, "
                           "expires_at) VALUES(?, ?, ?, ?, ?)",
                           &s, err);
    }
    if (!rc) {
        store_bound(st, sqlite3_bind_text(s, 1, th, -1, SQLITE_STATIC));
        store_bound(st, sqlite3_bind_int64(s, 2, user->id));
        store_bound(st, sqlite3_bind_text(s, 3, csrf, -1, SQLITE_STATIC));
        store_bound(st, sqlite3_bind_int64(s, 4, now));
        store_bound(st, sqlite3_bind_int64(s, 5, now + ttl_s));
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = store_sql_error(st, "opening a session", err);
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

basira_code basira_store_session_lookup(basira_store *st, const char *token, basira_user *user,
                                        char csrf[BASIRA_TOKEN_LEN + 1], basira_error *err)
{
    if (!basira_session_token_valid(token))
        return basira_error_setm(err, BASIRA_E_AUTH, N_("please sign in"));
    char th[65];
    basira_session_token_hash(token, th);
    sqlite3_stmt *s;
    basira_code rc;
    pthread_mutex_lock(&st->lock);
    rc = store_prepare(st,
                       "SELECT u.id, u.username, u.role, s.csrf, u.lang FROM sessions s JOIN users "
                       "u ON "
                       "u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at >= ? AND "
                       "u.disabled = 0",
                       &s, err);
    if (!rc) {
        store_bound(st, sqlite3_bind_text(s, 1, th, -1, SQLITE_STATIC));
        store_bound(st, sqlite3_bind_int64(s, 2, store_now()));
        if (sqlite3_step(s) == SQLITE_ROW &&
            basira_role_parse((const char *)sqlite3_column_text(s, 2), &user->role, NULL) ==
                BASIRA_OK) {
            user->id = sqlite3_column_int64(s, 0);
            snprintf(user->username, sizeof user->username, "%s",
                     (const char *)sqlite3_column_text(s, 1));
            snprintf(csrf, BASIRA_TOKEN_LEN + 1, "%s", (const char *)sqlite3_column_text(s, 3));
            snprintf(user->lang, sizeof user->lang, "%s",
                     sqlite3_column_text(s, 4) ? (const char *)sqlite3_column_text(s, 4) : "");
        } else {
            rc = basira_error_setm(err, BASIRA_E_AUTH,
                                   N_("your session has expired or is invalid; please sign in"));
        }
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

basira_code basira_store_session_delete(basira_store *st, const basira_actor *who,
                                        const char *token, basira_error *err)
{
    if (!basira_session_token_valid(token))
        return BASIRA_OK;
    char th[65];
    basira_session_token_hash(token, th);
    sqlite3_stmt *s;
    basira_code rc;
    pthread_mutex_lock(&st->lock);
    if (!(rc = store_begin(st, err)) &&
        !(rc = store_prepare(st, "DELETE FROM sessions WHERE token_hash = ?", &s, err))) {
        store_bound(st, sqlite3_bind_text(s, 1, th, -1, SQLITE_STATIC));
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = store_sql_error(st, "closing a session", err);
        sqlite3_finalize(s);
        /* The sign-out and its audit entry commit together, or neither does. */
        if (!rc && !(rc = store_audit_append_locked(st, who, "logout", 0, "ok", NULL, err)))
            rc = store_commit(st, err);
    }
    if (rc)
        store_rollback(st);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

basira_code basira_store_session_touch(basira_store *st, const char *token, int64_t idle_s,
                                       basira_error *err)
{
    if (idle_s <= 0)
        return BASIRA_OK;
    if (!basira_session_token_valid(token))
        return basira_error_setm(err, BASIRA_E_AUTH, N_("please sign in"));
    char th[65];
    basira_session_token_hash(token, th);
    int64_t now = store_now(), seen = 0;
    sqlite3_stmt *s;
    basira_code rc;
    pthread_mutex_lock(&st->lock);
    if (!(rc = store_prepare(st,
                             "SELECT COALESCE(last_seen, created_at) FROM sessions WHERE "
                             "token_hash = ?",
                             &s, err))) {
        sqlite3_bind_text(s, 1, th, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW)
            seen = sqlite3_column_int64(s, 0);
        else
            rc = basira_error_setm(err, BASIRA_E_AUTH, N_("please sign in"));
        sqlite3_finalize(s);
    }
    const char *sql = NULL;
    int idle = rc ? 0 : basira_session_idle_state(seen, now, idle_s);
    if (idle == 2) {
        sql = "DELETE FROM sessions WHERE token_hash = ?";
        rc = basira_error_setm(err, BASIRA_E_AUTH,
                               N_("you were signed out after a period without activity; please "
                                  "sign in again"));
    } else if (idle == 1) {
        sql = "UPDATE sessions SET last_seen = ?2 WHERE token_hash = ?1";
    }
    if (sql && !store_prepare(st, sql, &s, NULL)) {
        sqlite3_bind_text(s, 1, th, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, now);
        /*
         * Recording a use is best effort: failing to write it only brings the idle
         * sign-out closer, while refusing would make every read fail once the disk
         * is full (space.c promises reads and sign-in keep working then).
         */
        if (sqlite3_step(s) != SQLITE_DONE && sqlite3_errcode(st->db) == SQLITE_FULL)
            store_space_note_full(st);
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}
