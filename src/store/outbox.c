/*
 * outbox.c - the store's side of the sync with the regional hub: schema step 2
 * (consent for remote review, the outbox and its triggers, sync state,
 * replies), reading the outbox, applying replies.
 *
 * Why triggers: the outbox entry is written by SQLite in the statement that
 * makes the change, hence in its transaction. A case, photo or decision can
 * never be committed without being queued, and no store function had to learn
 * about the hub. The WHEN clauses are the consent rule: only cases with
 * consent_remote_review = 1 produce entries.
 */
#include "basira/store_sync.h"
#include "core/i18n.h"
#include "store_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

const char store_migration_sync[] =
    "ALTER TABLE cases ADD COLUMN consent_remote_review INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE sync_outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,"
    " case_id INTEGER NOT NULL, image_id INTEGER, payload TEXT, created_at INTEGER NOT NULL);"
    "CREATE TABLE sync_state(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE sync_replies(hub_id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL"
    " REFERENCES cases(id) ON DELETE CASCADE, diagnosis TEXT, plan TEXT NOT NULL, message TEXT,"
    " author TEXT NOT NULL, replied_at INTEGER NOT NULL, received_at INTEGER NOT NULL);"
    "CREATE INDEX sync_replies_case ON sync_replies(case_id);"
    "CREATE TRIGGER sync_case_new AFTER INSERT ON cases WHEN NEW.consent_remote_review = 1"
    " BEGIN INSERT INTO sync_outbox(kind, case_id, created_at)"
    " VALUES('case', NEW.id, NEW.created_at); END;"
    "CREATE TRIGGER sync_image_new AFTER INSERT ON images WHEN"
    " (SELECT consent_remote_review FROM cases WHERE id = NEW.case_id) = 1"
    " BEGIN INSERT INTO sync_outbox(kind, case_id, image_id, created_at)"
    " VALUES('image', NEW.case_id, NEW.id, NEW.created_at); END;"
    "CREATE TRIGGER sync_decision AFTER UPDATE OF decision ON cases WHEN"
    " NEW.consent_remote_review = 1 AND NEW.decision IS NOT NULL"
    " AND NEW.decision IS NOT OLD.decision"
    " BEGIN INSERT INTO sync_outbox(kind, case_id, payload, created_at)"
    " VALUES('decision', NEW.id, NEW.decision, NEW.updated_at); END;"
    "CREATE TRIGGER sync_case_erased AFTER DELETE ON cases WHEN OLD.consent_remote_review = 1"
    " BEGIN INSERT INTO sync_outbox(kind, case_id, created_at)"
    " VALUES('erase', OLD.id, CAST(strftime('%s','now') AS INTEGER)); END;"
    "CREATE TRIGGER sync_photo_erased AFTER DELETE ON photos WHEN"
    " (SELECT consent_remote_review FROM cases c JOIN images i ON i.case_id = c.id"
    " WHERE i.id = OLD.image_id) = 1"
    " BEGIN INSERT INTO sync_outbox(kind, case_id, image_id, created_at)"
    " SELECT 'photo_erase', case_id, id, CAST(strftime('%s','now') AS INTEGER) FROM images"
    " WHERE id = OLD.image_id; END;";

static const char *col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? (const char *)t : NULL;
}

void basira_outbox_item_clear(basira_outbox_item *it)
{
    if (!it)
        return;
    json_decref(it->record);
    free(it->photo);
    memset(it, 0, sizeof *it);
}

/* The case record as it travels: no images (they travel as their own entries), no replies. */
static basira_code fill_case(basira_store *st, basira_outbox_item *it, basira_error *err)
{
    json_t *j = NULL;
    basira_code rc = store_case_json_locked(st, it->case_id, &j, err);
    if (rc == BASIRA_E_NOT_FOUND)
        return BASIRA_OK; /* erased since: a tombstone; its "erase" entry follows */
    if (rc)
        return rc;
    json_object_del(j, "images");
    json_object_del(j, "replies");
    it->record = j;
    return BASIRA_OK;
}

static basira_code fill_image(basira_store *st, basira_outbox_item *it, basira_error *err)
{
    sqlite3_stmt *s;
    basira_code rc = store_prepare(st,
                                   "SELECT i.kind, i.created_at, i.created_by, i.result, p.mime, "
                                   "p.data FROM images i LEFT JOIN photos p ON p.image_id = i.id "
                                   "WHERE i.id = ?",
                                   &s, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, it->image_id);
    if (sqlite3_step(s) == SQLITE_ROW) {
        const char *res = col_text(s, 3);
        json_t *result = res ? json_loads(res, 0, NULL) : NULL;
        it->record = json_pack("{s:s?, s:I, s:s?, s:o}", "kind", col_text(s, 0), "created_at",
                               (json_int_t)sqlite3_column_int64(s, 1), "created_by", col_text(s, 2),
                               "result", result ? result : json_null());
        int n = sqlite3_column_bytes(s, 5);
        const void *blob = sqlite3_column_blob(s, 5);
        if (!it->record) {
            rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        } else if (blob && n > 0) {
            it->photo = malloc((size_t)n);
            if (!it->photo) {
                rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
            } else {
                memcpy(it->photo, blob, (size_t)n);
                it->photo_len = (size_t)n;
                snprintf(it->mime, sizeof it->mime, "%s", col_text(s, 4) ? col_text(s, 4) : "");
            }
        }
    }
    sqlite3_finalize(s);
    return rc;
}

basira_code basira_store_outbox_read(basira_store *st, int64_t after, size_t max,
                                     basira_outbox_item *items, size_t *n, basira_error *err)
{
    *n = 0;
    sqlite3_stmt *s = NULL;
    basira_code rc;
    pthread_mutex_lock(&st->lock);
    /* One read transaction: the entries and the records they name are one snapshot. */
    if ((rc = store_exec(st, "BEGIN", err)))
        goto out;
    if ((rc = store_prepare(st,
                            "SELECT seq, kind, case_id, image_id, payload FROM sync_outbox "
                            "WHERE seq > ? ORDER BY seq LIMIT ?",
                            &s, err)))
        goto out;
    sqlite3_bind_int64(s, 1, after);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
    while (!rc && *n < max && sqlite3_step(s) == SQLITE_ROW) {
        basira_outbox_item *it = &items[*n];
        memset(it, 0, sizeof *it);
        it->seq = sqlite3_column_int64(s, 0);
        snprintf(it->kind, sizeof it->kind, "%s", col_text(s, 1) ? col_text(s, 1) : "");
        it->case_id = sqlite3_column_int64(s, 2);
        it->image_id = sqlite3_column_int64(s, 3);
        (*n)++;
        if (!strcmp(it->kind, "case")) {
            rc = fill_case(st, it, err);
        } else if (!strcmp(it->kind, "image")) {
            rc = fill_image(st, it, err);
        } else if (!strcmp(it->kind, "decision")) {
            const char *p = col_text(s, 4);
            it->record = p ? json_loads(p, 0, NULL) : NULL;
        }
    }
out:
    sqlite3_finalize(s);
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    pthread_mutex_unlock(&st->lock);
    if (rc) {
        for (size_t i = 0; i < *n; i++)
            basira_outbox_item_clear(&items[i]);
        *n = 0;
    }
    return rc;
}

basira_code basira_store_outbox_pending(basira_store *st, int64_t after, int64_t *count,
                                        int64_t *last_seq, basira_error *err)
{
    sqlite3_stmt *s;
    pthread_mutex_lock(&st->lock);
    basira_code rc = store_prepare(
        st, "SELECT count(*), coalesce(max(seq), 0) FROM sync_outbox WHERE seq > ?", &s, err);
    if (!rc) {
        sqlite3_bind_int64(s, 1, after);
        if (sqlite3_step(s) == SQLITE_ROW) {
            *count = sqlite3_column_int64(s, 0);
            *last_seq = sqlite3_column_int64(s, 1);
        } else {
            rc = store_sql_error(st, "reading the outbox", err);
        }
        sqlite3_finalize(s);
    }
    if (!rc && *last_seq == 0) {
        /* Entries may all be acknowledged: the last seq is still the cursor to keep. */
        if (!(rc = store_prepare(st, "SELECT coalesce(max(seq), 0) FROM sync_outbox", &s, err))) {
            if (sqlite3_step(s) == SQLITE_ROW)
                *last_seq = sqlite3_column_int64(s, 0);
            sqlite3_finalize(s);
        }
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

basira_code basira_store_audit_raw(basira_store *st, int64_t after, int limit, json_t **out,
                                   int64_t *head_id, basira_error *err)
{
    json_t *arr = json_array();
    if (!arr)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    sqlite3_stmt *s = NULL;
    basira_code rc;
    pthread_mutex_lock(&st->lock);
    if ((rc = store_exec(st, "BEGIN", err)))
        goto out;
    if ((rc = store_prepare(st,
                            "SELECT id, ts, actor, action, case_id, ip, outcome, detail, "
                            "prev_hash, hash FROM audit WHERE id > ? ORDER BY id LIMIT ?",
                            &s, err)))
        goto out;
    sqlite3_bind_int64(s, 1, after);
    sqlite3_bind_int(s, 2, limit);
    while (sqlite3_step(s) == SQLITE_ROW) {
        json_t *e = json_pack(
            "{s:I, s:I, s:s?, s:s?, s:I, s:s?, s:s?, s:s?, s:s?, s:s?}", "id",
            (json_int_t)sqlite3_column_int64(s, 0), "ts", (json_int_t)sqlite3_column_int64(s, 1),
            "actor", col_text(s, 2), "action", col_text(s, 3), "case_id",
            (json_int_t)(sqlite3_column_type(s, 4) == SQLITE_NULL ? 0 : sqlite3_column_int64(s, 4)),
            "ip", col_text(s, 5), "outcome", col_text(s, 6), "detail", col_text(s, 7), "prev_hash",
            col_text(s, 8), "hash", col_text(s, 9));
        if (!e || json_array_append_new(arr, e)) {
            rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
            break;
        }
    }
    sqlite3_finalize(s);
    s = NULL;
    if (!rc && !(rc = store_prepare(st, "SELECT coalesce(max(id), 0) FROM audit", &s, err))) {
        *head_id = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    }
out:
    sqlite3_finalize(s);
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    pthread_mutex_unlock(&st->lock);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return BASIRA_OK;
}

basira_code basira_store_sync_get(basira_store *st, const char *key, char *out, size_t outsz,
                                  basira_error *err)
{
    sqlite3_stmt *s;
    pthread_mutex_lock(&st->lock);
    basira_code rc = store_prepare(st, "SELECT value FROM sync_state WHERE key = ?", &s, err);
    if (!rc) {
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        int step = sqlite3_step(s);
        if (step == SQLITE_ROW)
            snprintf(out, outsz, "%s", col_text(s, 0) ? col_text(s, 0) : "");
        else if (step == SQLITE_DONE)
            rc = basira_error_set(err, BASIRA_E_NOT_FOUND, _("this node has no sync setting %s"),
                                  key);
        else
            rc = store_sql_error(st, "reading the sync state", err);
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

basira_code basira_store_sync_set(basira_store *st, const char *key, const char *value,
                                  basira_error *err)
{
    sqlite3_stmt *s;
    pthread_mutex_lock(&st->lock);
    basira_code rc =
        store_prepare(st, "INSERT OR REPLACE INTO sync_state(key, value) VALUES(?, ?)", &s, err);
    if (!rc) {
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = store_sql_error(st, "writing the sync state", err);
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

basira_code basira_store_reply_apply(basira_store *st, const basira_hub_reply *r, int *applied,
                                     basira_error *err)
{
    static const char *const plans[] = {"urgent_visit", "biopsy", "follow_up", "reassure"};
    int plan_ok = 0;
    for (size_t i = 0; r->plan && i < sizeof plans / sizeof plans[0]; i++)
        plan_ok |= !strcmp(r->plan, plans[i]);
    *applied = 0;
    if (!plan_ok || !r->author || r->hub_id <= 0)
        return basira_error_set(err, BASIRA_E_FORMAT,
                                _("the hub sent a malformed reply (plan must be urgent_visit, "
                                  "biopsy, follow_up or reassure)"));
    sqlite3_stmt *s = NULL;
    basira_code rc;
    pthread_mutex_lock(&st->lock);
    if ((rc = store_begin(st, err)))
        goto out;
    if ((rc = store_prepare(st,
                            "INSERT OR IGNORE INTO sync_replies(hub_id, case_id, diagnosis, plan, "
                            "message, author, replied_at, received_at) SELECT ?,id,?,?,?,?,?,? "
                            "FROM cases WHERE id = ?",
                            &s, err)))
        goto out;
    sqlite3_bind_int64(s, 1, r->hub_id);
    if (r->diagnosis)
        sqlite3_bind_text(s, 2, r->diagnosis, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, r->plan, -1, SQLITE_STATIC);
    if (r->message)
        sqlite3_bind_text(s, 4, r->message, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, r->author, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, r->replied_at);
    sqlite3_bind_int64(s, 7, store_now());
    sqlite3_bind_int64(s, 8, r->case_id);
    if (sqlite3_step(s) != SQLITE_DONE) {
        rc = store_sql_error(st, "recording a reply from the hub", err);
        goto out;
    }
    *applied = sqlite3_changes(st->db) > 0;
    if (*applied) {
        char detail[96];
        snprintf(detail, sizeof detail, "hub_reply=%" PRId64 " plan=%s", r->hub_id, r->plan);
        basira_actor hub = {r->author, "hub"};
        if ((rc = store_audit_append_locked(st, &hub, "hub_reply", r->case_id, "ok", detail, err)))
            goto out;
    }
    rc = store_commit(st, err);
out:
    sqlite3_finalize(s);
    if (rc) {
        *applied = 0;
        store_rollback(st);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

basira_code store_sync_replies_locked(basira_store *st, int64_t id, json_t *j, basira_error *err)
{
    sqlite3_stmt *s;
    basira_code rc = store_prepare(st,
                                   "SELECT hub_id, diagnosis, plan, message, author, replied_at, "
                                   "read_at FROM sync_replies WHERE case_id = ? ORDER BY hub_id",
                                   &s, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    json_t *arr = json_array();
    while (arr && sqlite3_step(s) == SQLITE_ROW) {
        char when[32], read[32];
        store_iso_time(sqlite3_column_int64(s, 5), when);
        int unread = sqlite3_column_type(s, 6) == SQLITE_NULL;
        if (!unread)
            store_iso_time(sqlite3_column_int64(s, 6), read);
        json_array_append_new(arr, json_pack("{s:I, s:s?, s:s?, s:s?, s:s?, s:s, s:s?}", "hub_id",
                                             (json_int_t)sqlite3_column_int64(s, 0), "diagnosis",
                                             col_text(s, 1), "plan", col_text(s, 2), "message",
                                             col_text(s, 3), "author", col_text(s, 4), "replied_at",
                                             when, "read_at", unread ? NULL : read));
    }
    sqlite3_finalize(s);
    if (!arr)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    json_object_set_new(j, "replies", arr);
    return BASIRA_OK;
}
