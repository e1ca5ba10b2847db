/*
 * idempotency.c - every write can carry a key (HTTP Idempotency-Key) so that a
 * retry after an unclear answer (a timeout, a dropped connection, a phone that
 * went offline mid-upload) never records the same thing twice.
 *
 * A key is reserved (a "pending" row) before the write runs and completed with
 * the answer afterwards; a retry with the same key gets that answer again, or,
 * when the first attempt was interrupted between its write and its answer, a
 * conflict that says to check before sending again - never a second case.
 * Keys are per account and forgotten after a day.
 */
#include "core/i18n.h"
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

#define IDEM_TTL_S (24 * 3600)

static int key_ok(const char *k)
{
    size_t n = k ? strlen(k) : 0;
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (k[i] < 0x21 || k[i] > 0x7e)
            return 0;
    return 1;
}

basira_code basira_store_idem_begin(basira_store *st, int64_t user_id, const char *key,
                                    const char *route, basira_idem *out, basira_error *err)
{
    memset(out, 0, sizeof *out);
    if (!key_ok(key))
        return basira_error_setm(err, BASIRA_E_FORMAT,
                                 N_("the Idempotency-Key header must be 1 to 128 visible ASCII "
                                    "characters"));
    sqlite3_stmt *s = NULL;
    basira_code rc;
    int64_t now = store_now();
    pthread_mutex_lock(&st->lock);
    if ((rc = store_begin(st, err)))
        goto out;
    if ((rc = store_prepare(st, "DELETE FROM idempotency WHERE created_at < ?", &s, err)))
        goto out;
    store_bound(st, sqlite3_bind_int64(s, 1, now - IDEM_TTL_S));
    sqlite3_step(s);
    sqlite3_finalize(s);
    if ((rc = store_prepare(st,
                            "SELECT route, status, body FROM idempotency WHERE user_id = ? AND "
                            "key = ?",
                            &s, err)))
        goto out;
    store_bound(st, sqlite3_bind_int64(s, 1, user_id));
    store_bound(st, sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC));
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(s, 0);
        if (!r || strcmp(r, route)) {
            out->state = BASIRA_IDEM_MISMATCH;
        } else if (sqlite3_column_int(s, 1) == 0) {
            out->state = BASIRA_IDEM_PENDING;
        } else {
            out->state = BASIRA_IDEM_DONE;
            out->status = sqlite3_column_int(s, 1);
            const char *b = (const char *)sqlite3_column_text(s, 2);
            out->body = strdup(b ? b : "");
            if (!out->body)
                rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        }
        sqlite3_finalize(s);
        s = NULL;
    } else if (step == SQLITE_DONE) {
        sqlite3_finalize(s);
        s = NULL;
        out->state = BASIRA_IDEM_NEW;
        if (!(rc = store_prepare(st,
                                 "INSERT INTO idempotency(user_id, key, route, status, body, "
                                 "created_at) VALUES(?, ?, ?, 0, '', ?)",
                                 &s, err))) {
            store_bound(st, sqlite3_bind_int64(s, 1, user_id));
            store_bound(st, sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC));
            store_bound(st, sqlite3_bind_text(s, 3, route, -1, SQLITE_STATIC));
            store_bound(st, sqlite3_bind_int64(s, 4, now));
            if (sqlite3_step(s) != SQLITE_DONE)
                rc = store_sql_error(st, "reserving an idempotency key", err);
        }
    } else {
        rc = store_sql_error(st, "reading an idempotency key", err);
    }
    if (!rc)
        rc = store_commit(st, err);
out:
    sqlite3_finalize(s);
    if (rc) {
        store_rollback(st);
        free(out->body);
        out->body = NULL;
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

basira_code basira_store_idem_finish(basira_store *st, int64_t user_id, const char *key, int status,
                                     const char *body, basira_error *err)
{
    sqlite3_stmt *s = NULL;
    basira_code rc;
    pthread_mutex_lock(&st->lock);
    if (!(rc = store_prepare(st,
                             status ? "UPDATE idempotency SET status = ?3, body = ?4 WHERE "
                                      "user_id = ?1 AND key = ?2"
                                    : "DELETE FROM idempotency WHERE user_id = ?1 AND key = ?2",
                             &s, err))) {
        sqlite3_bind_int64(s, 1, user_id);
        sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
        if (status) {
            sqlite3_bind_int(s, 3, status);
            sqlite3_bind_text(s, 4, body ? body : "", -1, SQLITE_STATIC);
        }
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = store_sql_error(st, "recording an idempotency key", err);
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}
