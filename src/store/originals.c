/*
 * originals.c - schema step 7 and what the sync needs from it: which stored
 * originals are due at the hub (requested by a dermatologist, or all of them
 * on a good link), and when a reply from the hub was first read here.
 */
#include "basira/store_sync.h"
#include "core/i18n.h"
#include "store_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

const char store_migration_originals[] =
    "CREATE TABLE sync_originals(image_id INTEGER PRIMARY KEY REFERENCES images(id)"
    " ON DELETE CASCADE, requested_by TEXT, requested_at INTEGER, sent_at INTEGER);"
    "ALTER TABLE sync_replies ADD COLUMN read_at INTEGER;"
    "ALTER TABLE sync_replies ADD COLUMN read_by TEXT;";

basira_code basira_store_original_request(basira_store *st, int64_t case_id, int64_t image_id,
                                          const char *by, int64_t down_id, int *known,
                                          basira_error *err)
{
    sqlite3_stmt *s = NULL;
    *known = 0;
    pthread_mutex_lock(&st->lock);
    basira_code rc = store_begin(st, err);
    /* (This SQLCipher's SQLite predates UPSERT: insert the row, then set the request.) */
    if (!rc && !(rc = store_prepare(st,
                                    "INSERT OR IGNORE INTO sync_originals(image_id) SELECT i.id "
                                    "FROM images i JOIN photos p ON p.image_id = i.id JOIN cases c "
                                    "ON c.id = i.case_id WHERE i.id = ? AND i.case_id = ? AND "
                                    "c.consent_remote_review = 1",
                                    &s, err))) {
        sqlite3_bind_int64(s, 1, image_id);
        sqlite3_bind_int64(s, 2, case_id);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = store_sql_error(st, "recording a request for an original", err);
        sqlite3_finalize(s);
        s = NULL;
    }
    if (!rc)
        rc = store_prepare(st,
                           "UPDATE sync_originals SET requested_by = ?, requested_at = ? WHERE "
                           "image_id = ? AND EXISTS(SELECT 1 FROM images i WHERE i.id = ? AND "
                           "i.case_id = ?)",
                           &s, err);
    if (!rc) {
        sqlite3_bind_text(s, 1, by ? by : "hub", -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, store_now());
        sqlite3_bind_int64(s, 3, image_id);
        sqlite3_bind_int64(s, 4, image_id);
        sqlite3_bind_int64(s, 5, case_id);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = store_sql_error(st, "recording a request for an original", err);
        else
            *known = sqlite3_changes(st->db) > 0;
    }
    if (!rc) {
        char detail[96];
        snprintf(detail, sizeof detail, "hub_down=%" PRId64 " image=%" PRId64 "%s", down_id,
                 image_id, *known ? "" : " (no such photo here: nothing to send)");
        basira_actor a = {by ? by : "hub", "hub"};
        rc = store_audit_append_locked(st, &a, "original_request", case_id, "ok", detail, err);
    }
    if (!rc)
        rc = store_commit(st, err);
    sqlite3_finalize(s);
    if (rc)
        store_rollback(st);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

void basira_original_clear(basira_original *o)
{
    if (o) {
        free(o->photo);
        memset(o, 0, sizeof *o);
    }
}

basira_code basira_store_original_next(basira_store *st, int all, int64_t acked_seq,
                                       int64_t after_image, basira_original *out, int *found,
                                       basira_error *err)
{
    memset(out, 0, sizeof *out);
    *found = 0;
    sqlite3_stmt *s = NULL;
    pthread_mutex_lock(&st->lock);
    /* Only photos whose budgeted copy the hub acknowledged: the original follows it. */
    basira_code rc = store_prepare(
        st,
        "SELECT i.id, i.case_id, p.mime, p.data FROM images i JOIN photos p ON p.image_id = i.id "
        "JOIN cases c ON c.id = i.case_id LEFT JOIN sync_originals o ON o.image_id = i.id WHERE "
        "c.consent_remote_review = 1 AND i.id > ? AND o.sent_at IS NULL AND (? OR "
        "o.requested_at IS NOT NULL) AND EXISTS(SELECT 1 FROM sync_outbox x WHERE x.kind = "
        "'image' AND x.image_id = i.id AND x.seq <= ?) ORDER BY i.id LIMIT 1",
        &s, err);
    if (!rc) {
        sqlite3_bind_int64(s, 1, after_image);
        sqlite3_bind_int(s, 2, all ? 1 : 0);
        sqlite3_bind_int64(s, 3, acked_seq);
        int step = sqlite3_step(s);
        if (step == SQLITE_ROW) {
            int n = sqlite3_column_bytes(s, 3);
            out->image_id = sqlite3_column_int64(s, 0);
            out->case_id = sqlite3_column_int64(s, 1);
            const unsigned char *m = sqlite3_column_text(s, 2);
            snprintf(out->mime, sizeof out->mime, "%s", m ? (const char *)m : "image/jpeg");
            if (n <= 0 || !(out->photo = malloc((size_t)n))) {
                rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
            } else {
                memcpy(out->photo, sqlite3_column_blob(s, 3), (size_t)n);
                out->photo_len = (size_t)n;
                *found = 1;
            }
        } else if (step != SQLITE_DONE) {
            rc = store_sql_error(st, "reading the originals to send", err);
        }
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

basira_code basira_store_original_sent(basira_store *st, int64_t image_id, basira_error *err)
{
    sqlite3_stmt *s = NULL;
    pthread_mutex_lock(&st->lock);
    basira_code rc =
        store_prepare(st, "INSERT OR IGNORE INTO sync_originals(image_id) VALUES(?)", &s, err);
    if (!rc) {
        sqlite3_bind_int64(s, 1, image_id);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = store_sql_error(st, "recording an original as sent", err);
        sqlite3_finalize(s);
        s = NULL;
    }
    if (!rc && !(rc = store_prepare(st, "UPDATE sync_originals SET sent_at = ? WHERE image_id = ?",
                                    &s, err))) {
        sqlite3_bind_int64(s, 1, store_now());
        sqlite3_bind_int64(s, 2, image_id);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = store_sql_error(st, "recording an original as sent", err);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

basira_code store_sync_reply_summary_locked(basira_store *st, int64_t case_id, json_t *item,
                                            basira_error *err)
{
    sqlite3_stmt *s = NULL;
    basira_code rc = store_prepare(st,
                                   "SELECT plan, diagnosis, author, replied_at, (SELECT count(*) "
                                   "FROM sync_replies u WHERE u.case_id = r.case_id AND u.read_at "
                                   "IS NULL), (SELECT count(*) FROM sync_replies u WHERE "
                                   "u.case_id = r.case_id) FROM sync_replies r WHERE r.case_id = ? "
                                   "ORDER BY hub_id DESC LIMIT 1",
                                   &s, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, case_id);
    json_t *reply = json_null();
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        char when[32];
        store_iso_time(sqlite3_column_int64(s, 3), when);
        json_decref(reply);
        /* The latest reply, and whether any reply has not been opened here yet. */
        reply = json_pack("{s:s?, s:s?, s:s?, s:s, s:b, s:I}", "plan", store_col_text(s, 0),
                          "diagnosis", store_col_text(s, 1), "author", store_col_text(s, 2),
                          "replied_at", when, "unread", sqlite3_column_int64(s, 4) > 0, "count",
                          (json_int_t)sqlite3_column_int64(s, 5));
    } else if (step != SQLITE_DONE) {
        rc = store_sql_error(st, "reading the hub's replies", err);
    }
    sqlite3_finalize(s);
    if (!rc && (!reply || json_object_set_new(item, "reply", reply)))
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
    return rc;
}

basira_code store_sync_replies_read_locked(basira_store *st, int64_t case_id,
                                           const basira_actor *who, basira_error *err)
{
    sqlite3_stmt *s = NULL;
    basira_code rc = store_prepare(st,
                                   "UPDATE sync_replies SET read_at = ?, read_by = ? WHERE case_id "
                                   "= ? AND read_at IS NULL",
                                   &s, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, store_now());
    sqlite3_bind_text(s, 2, who && who->username ? who->username : "?", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, case_id);
    if (sqlite3_step(s) != SQLITE_DONE)
        rc = store_sql_error(st, "marking the hub's replies read", err);
    sqlite3_finalize(s);
    return rc;
}
