/*
 * audit.c - the hash-chained audit trail, and retention (purge).
 *
 * Entry n stores hash_n = SHA-256(prev_hash || fields of n), with prev_hash =
 * hash_{n-1}. Ids are consecutive, and meta holds the head (last id and hash,
 * updated in the same transaction as each append) and the anchor (last purged
 * entry), so verification detects an edited entry (its hash no longer matches),
 * an inserted or deleted one (an id gap or a broken link), and entries cut from
 * the end (the head no longer matches).
 *
 * Limit, by design of any unkeyed chain: someone holding the database key can
 * rewrite the whole chain consistently. Exporting the head hash elsewhere
 * (printed by `basira audit verify`) is what catches that.
 */
#include "core/i18n.h"
#include "store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

/* Length-prefixed fields, so no choice of separators can make two entries collide. */
static void hash_field(crypto_hash_sha256_state *h, const char *s)
{
    char len[24];
    size_t n = s ? strlen(s) : 0;
    int k = snprintf(len, sizeof len, "%zu:", n);
    crypto_hash_sha256_update(h, (const unsigned char *)len, (unsigned long long)k);
    if (n)
        crypto_hash_sha256_update(h, (const unsigned char *)s, n);
}

void basira_audit_entry_hash(int64_t id, int64_t ts, const char *actor, const char *action,
                             int64_t case_id, const char *ip, const char *outcome,
                             const char *detail, const char *prev, char out[65])
{
    crypto_hash_sha256_state h;
    char num[3][24];
    unsigned char bin[crypto_hash_sha256_BYTES];
    snprintf(num[0], sizeof num[0], "%" PRId64, id);
    snprintf(num[1], sizeof num[1], "%" PRId64, ts);
    snprintf(num[2], sizeof num[2], "%" PRId64, case_id);
    crypto_hash_sha256_init(&h);
    hash_field(&h, prev);
    hash_field(&h, num[0]);
    hash_field(&h, num[1]);
    hash_field(&h, actor);
    hash_field(&h, action);
    hash_field(&h, num[2]);
    hash_field(&h, ip);
    hash_field(&h, outcome);
    hash_field(&h, detail);
    crypto_hash_sha256_final(&h, bin);
    sodium_bin2hex(out, 65, bin, sizeof bin);
}

static basira_code meta_get(basira_store *st, const char *key, char *out, size_t outsz,
                            const char *dflt, basira_error *err)
{
    sqlite3_stmt *s;
    basira_code rc = store_prepare(st, "SELECT value FROM meta WHERE key = ?", &s, err);
    if (rc)
        return rc;
    store_bound(st, sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC));
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW)
        snprintf(out, outsz, "%s", (const char *)sqlite3_column_text(s, 0));
    else if (step == SQLITE_DONE)
        snprintf(out, outsz, "%s", dflt);
    else
        rc = store_sql_error(st, "reading settings", err);
    sqlite3_finalize(s);
    return rc;
}

static basira_code meta_set(basira_store *st, const char *key, const char *value, basira_error *err)
{
    sqlite3_stmt *s;
    basira_code rc =
        store_prepare(st, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", &s, err);
    if (rc)
        return rc;
    store_bound(st, sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC));
    store_bound(st, sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC));
    if (sqlite3_step(s) != SQLITE_DONE)
        rc = store_sql_error(st, "writing settings", err);
    sqlite3_finalize(s);
    return rc;
}

basira_code store_audit_append_locked(basira_store *st, const basira_actor *who, const char *action,
                                      int64_t case_id, const char *outcome, const char *detail,
                                      basira_error *err)
{
    char head_id[32], prev[80], hash[65];
    basira_code rc;
    if ((rc = meta_get(st, "audit_head_id", head_id, sizeof head_id, "0", err)) ||
        (rc = meta_get(st, "audit_head_hash", prev, sizeof prev, ZERO_HASH, err)))
        return rc;
    int64_t id = strtoll(head_id, NULL, 10) + 1;
    int64_t ts = store_now();
    const char *actor = who && who->username ? who->username : "?";
    const char *ip = who && who->ip ? who->ip : "?";
    basira_audit_entry_hash(id, ts, actor, action, case_id, ip, outcome, detail, prev, hash);
    sqlite3_stmt *s;
    if ((rc = store_prepare(st,
                            "INSERT INTO audit(id, ts, actor, action, case_id, ip, outcome, "
                            "detail, prev_hash, hash) VALUES(?,?,?,?,?,?,?,?,?,?)",
                            &s, err)))
        return rc;
    store_bound(st, sqlite3_bind_int64(s, 1, id));
    store_bound(st, sqlite3_bind_int64(s, 2, ts));
    store_bound(st, sqlite3_bind_text(s, 3, actor, -1, SQLITE_STATIC));
    store_bound(st, sqlite3_bind_text(s, 4, action, -1, SQLITE_STATIC));
    if (case_id)
        store_bound(st, sqlite3_bind_int64(s, 5, case_id));
    else
        store_bound(st, sqlite3_bind_null(s, 5));
    store_bound(st, sqlite3_bind_text(s, 6, ip, -1, SQLITE_STATIC));
    store_bound(st, sqlite3_bind_text(s, 7, outcome, -1, SQLITE_STATIC));
    if (detail)
        store_bound(st, sqlite3_bind_text(s, 8, detail, -1, SQLITE_STATIC));
    else
        store_bound(st, sqlite3_bind_null(s, 8));
    store_bound(st, sqlite3_bind_text(s, 9, prev, -1, SQLITE_STATIC));
    store_bound(st, sqlite3_bind_text(s, 10, hash, -1, SQLITE_STATIC));
    if (sqlite3_step(s) != SQLITE_DONE)
        rc = store_sql_error(st, "writing the audit trail", err);
    sqlite3_finalize(s);
    char idbuf[32];
    snprintf(idbuf, sizeof idbuf, "%" PRId64, id);
    if (!rc && !(rc = meta_set(st, "audit_head_id", idbuf, err)))
        rc = meta_set(st, "audit_head_hash", hash, err);
    return rc;
}

basira_code basira_store_audit_append(basira_store *st, const basira_actor *who, const char *action,
                                      int64_t case_id, const char *outcome, const char *detail,
                                      basira_error *err)
{
    basira_code rc;
    pthread_mutex_lock(&st->lock);
    if (!(rc = store_begin(st, err)) &&
        !(rc = store_audit_append_locked(st, who, action, case_id, outcome, detail, err)))
        rc = store_commit(st, err);
    if (rc)
        store_rollback(st);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? (const char *)t : NULL;
}

basira_code basira_store_audit_list(basira_store *st, const basira_actor *who, int64_t after_id,
                                    int limit, json_t **out, basira_error *err)
{
    if (limit < 1 || limit > 1000)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("limit must be between 1 and 1000"));
    json_t *items = json_array();
    if (!items)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    sqlite3_stmt *s;
    basira_code rc;
    pthread_mutex_lock(&st->lock);
    if (!(rc = store_begin(st, err)) &&
        !(rc = store_prepare(st,
                             "SELECT id, ts, actor, action, case_id, ip, outcome, detail, hash "
                             "FROM audit WHERE id > ? ORDER BY id LIMIT ?",
                             &s, err))) {
        store_bound(st, sqlite3_bind_int64(s, 1, after_id));
        store_bound(st, sqlite3_bind_int(s, 2, limit));
        while (sqlite3_step(s) == SQLITE_ROW) {
            char when[32];
            store_iso_time(sqlite3_column_int64(s, 1), when);
            json_t *e = json_pack("{s:I, s:s, s:s?, s:s?, s:s?, s:s?, s:s?}", "id",
                                  (json_int_t)sqlite3_column_int64(s, 0), "at", when, "actor",
                                  col_text(s, 2), "action", col_text(s, 3), "ip", col_text(s, 5),
                                  "outcome", col_text(s, 6), "hash", col_text(s, 8));
            if (e && sqlite3_column_type(s, 4) != SQLITE_NULL)
                json_object_set_new(e, "case_id", json_integer(sqlite3_column_int64(s, 4)));
            if (e && col_text(s, 7))
                json_object_set_new(e, "detail", json_string(col_text(s, 7)));
            json_array_append_new(items, e);
        }
        sqlite3_finalize(s);
        /* Reading the trail is itself recorded, in the same transaction. */
        char detail[64];
        snprintf(detail, sizeof detail, "after=%lld returned=%zu", (long long)after_id,
                 json_array_size(items));
        if (!(rc = store_audit_append_locked(st, who, "audit_read", 0, "ok", detail, err)))
            rc = store_commit(st, err);
    }
    if (rc)
        store_rollback(st);
    pthread_mutex_unlock(&st->lock);
    if (rc) {
        json_decref(items);
        return rc;
    }
    *out = json_pack("{s:o}", "items", items);
    return *out ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, NULL);
}

/*
 * The anchor (last purged entry) may only be where the latest purge put it; a
 * purge records it in its own entry ("anchor=ID:HASH"). No purge at all: no anchor.
 */
static basira_code check_anchor_against_purges(basira_store *st, basira_audit_report *rep,
                                               basira_error *err)
{
    sqlite3_stmt *s;
    basira_code rc = store_prepare(
        st, "SELECT detail FROM audit WHERE action = 'purge' ORDER BY id DESC LIMIT 1", &s, err);
    if (rc)
        return rc;
    int step = sqlite3_step(s);
    const char *detail = step == SQLITE_ROW ? col_text(s, 0) : NULL;
    const char *a = detail ? strstr(detail, " anchor=") : NULL;
    long long id = -1;
    char hash[65] = "";
    if (a && sscanf(a, " anchor=%lld:%64[0-9a-f]", &id, hash) != 2)
        id = -1;
    if (step == SQLITE_DONE && rep->anchor_id != 0)
        rc = basira_error_setm(err, BASIRA_E_TAMPERED,
                               N_("the audit trail starts after entry %" PRId64
                                  " but no purge ever removed entries (the oldest entries were "
                                  "deleted)"),
                               rep->anchor_id);
    else if (a && (id != rep->anchor_id || strcmp(hash, rep->anchor_hash)))
        rc = basira_error_setm(err, BASIRA_E_TAMPERED,
                               N_("the audit trail starts after entry %" PRId64
                                  " but the last purge left it starting after entry %lld (the "
                                  "oldest entries were deleted or the anchor rewritten)"),
                               rep->anchor_id, id);
    else if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = store_sql_error(st, "reading the audit trail", err);
    if (rc == BASIRA_E_TAMPERED)
        rep->bad_id = rep->anchor_id + 1;
    sqlite3_finalize(s);
    return rc;
}

/* The trail against the latest checkpoint written outside the database. */
static basira_code check_against_checkpoint(basira_store *st, basira_audit_report *rep,
                                            basira_error *err)
{
    basira_audit_checkpoint c;
    int found = 0;
    basira_code rc = store_checkpoint_latest(st, &c, &found, err);
    if (rc || !found)
        return rc;
    rep->checkpoint_at = c.at;
    rep->checkpoint_head_id = c.head_id;
    char when[32];
    store_iso_time(c.at, when);
    if (c.head_id > rep->head_id) {
        rep->bad_id = rep->head_id + 1;
        return basira_error_setm(err, BASIRA_E_TAMPERED,
                                 N_("the audit trail ends at entry %" PRId64
                                    " but the checkpoint of %s recorded entry %" PRId64
                                    " (entries were removed from the end)"),
                                 rep->head_id, when, c.head_id);
    }
    if (rep->anchor_id < c.anchor_id ||
        (rep->anchor_id == c.anchor_id && strcmp(rep->anchor_hash, c.anchor_hash))) {
        rep->bad_id = rep->anchor_id + 1;
        return basira_error_setm(err, BASIRA_E_TAMPERED,
                                 N_("the audit trail's anchor differs from the checkpoint of %s "
                                    "(the oldest entries were rewritten)"),
                                 when);
    }
    if (c.head_id > rep->anchor_id) {
        sqlite3_stmt *s;
        if ((rc = store_prepare(st, "SELECT hash FROM audit WHERE id = ?", &s, err)))
            return rc;
        store_bound(st, sqlite3_bind_int64(s, 1, c.head_id));
        int same =
            sqlite3_step(s) == SQLITE_ROW && col_text(s, 0) && !strcmp(col_text(s, 0), c.head_hash);
        sqlite3_finalize(s);
        if (!same) {
            rep->bad_id = c.head_id;
            return basira_error_setm(err, BASIRA_E_TAMPERED,
                                     N_("audit entry %" PRId64
                                        " differs from the checkpoint of %s (the trail was "
                                        "rewritten)"),
                                     c.head_id, when);
        }
    }
    return BASIRA_OK;
}

/* The head and anchor now (lock held). */
static basira_code current_checkpoint(basira_store *st, basira_audit_checkpoint *c,
                                      basira_error *err)
{
    char hid[32], aid[32];
    basira_code rc;
    memset(c, 0, sizeof *c);
    if ((rc = meta_get(st, "audit_head_id", hid, sizeof hid, "0", err)) ||
        (rc = meta_get(st, "audit_head_hash", c->head_hash, sizeof c->head_hash, ZERO_HASH, err)) ||
        (rc = meta_get(st, "audit_anchor_id", aid, sizeof aid, "0", err)) ||
        (rc = meta_get(st, "audit_anchor_hash", c->anchor_hash, sizeof c->anchor_hash, ZERO_HASH,
                       err)))
        return rc;
    c->at = store_now();
    c->head_id = strtoll(hid, NULL, 10);
    c->anchor_id = strtoll(aid, NULL, 10);
    return BASIRA_OK;
}

basira_code basira_store_audit_checkpoint(basira_store *st, basira_audit_checkpoint *out,
                                          basira_error *err)
{
    basira_audit_checkpoint c;
    pthread_mutex_lock(&st->lock);
    basira_code rc = current_checkpoint(st, &c, err);
    /* Written under the lock: checkpoints in the file follow the order of the trail. */
    if (!rc)
        rc = store_checkpoint_append(st, &c, err);
    pthread_mutex_unlock(&st->lock);
    if (!rc && out)
        *out = c;
    return rc;
}

basira_code basira_store_audit_verify(basira_store *st, basira_audit_report *rep, basira_error *err)
{
    memset(rep, 0, sizeof *rep);
    char anchor_id[32], anchor_hash[80], head_id[32], head_hash[80];
    sqlite3_stmt *s = NULL;
    basira_code rc;
    pthread_mutex_lock(&st->lock);
    /* One read transaction: a consistent snapshot while the server keeps appending. */
    if ((rc = store_exec(st, "BEGIN", err)))
        goto out;
    if ((rc = meta_get(st, "audit_anchor_id", anchor_id, sizeof anchor_id, "0", err)) ||
        (rc = meta_get(st, "audit_anchor_hash", anchor_hash, sizeof anchor_hash, ZERO_HASH, err)) ||
        (rc = meta_get(st, "audit_head_id", head_id, sizeof head_id, "0", err)) ||
        (rc = meta_get(st, "audit_head_hash", head_hash, sizeof head_hash, ZERO_HASH, err)) ||
        (rc = store_prepare(st,
                            "SELECT id, ts, actor, action, case_id, ip, outcome, detail, "
                            "prev_hash, hash FROM audit ORDER BY id",
                            &s, err)))
        goto out;
    int64_t expect = strtoll(anchor_id, NULL, 10) + 1;
    char prev[80];
    snprintf(prev, sizeof prev, "%s", anchor_hash);
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(s, 0);
        const char *stored_prev = col_text(s, 8), *stored = col_text(s, 9);
        char h[65];
        basira_audit_entry_hash(
            id, sqlite3_column_int64(s, 1), col_text(s, 2), col_text(s, 3),
            sqlite3_column_type(s, 4) == SQLITE_NULL ? 0 : sqlite3_column_int64(s, 4),
            col_text(s, 5), col_text(s, 6), col_text(s, 7), stored_prev, h);
        if (id > expect) {
            rep->bad_id = expect;
            rc = basira_error_setm(err, BASIRA_E_TAMPERED,
                                   N_("audit entry %" PRId64 " is missing (deleted)"), expect);
        } else if (id < expect) {
            rep->bad_id = id;
            rc = basira_error_setm(err, BASIRA_E_TAMPERED,
                                   N_("audit entry %" PRId64 " is out of sequence (inserted)"), id);
        } else if (!stored_prev || strcmp(stored_prev, prev)) {
            rep->bad_id = id;
            rc = basira_error_setm(err, BASIRA_E_TAMPERED,
                                   N_("audit entry %" PRId64 " does not follow entry %" PRId64
                                      " (an entry was inserted, replaced or removed)"),
                                   id, id - 1);
        } else if (!stored || strcmp(stored, h)) {
            rep->bad_id = id;
            rc = basira_error_setm(err, BASIRA_E_TAMPERED,
                                   N_("audit entry %" PRId64 " has been edited (its hash does not "
                                      "match its content)"),
                                   id);
        }
        if (rc)
            goto out;
        snprintf(prev, sizeof prev, "%s", stored);
        rep->checked++;
        expect++;
    }
    if (step != SQLITE_DONE) {
        rc = store_sql_error(st, "reading the audit trail", err);
        goto out;
    }
    int64_t head = strtoll(head_id, NULL, 10);
    rep->head_id = head;
    rep->anchor_id = strtoll(anchor_id, NULL, 10);
    snprintf(rep->head_hash, sizeof rep->head_hash, "%.64s", head_hash);
    snprintf(rep->anchor_hash, sizeof rep->anchor_hash, "%.64s", anchor_hash);
    if (expect - 1 != head || strcmp(prev, head_hash)) {
        rep->bad_id = expect;
        rc = basira_error_setm(err, BASIRA_E_TAMPERED,
                               N_("the audit trail ends at entry %" PRId64
                                  " but its head is entry %" PRId64 " (entries were removed)"),
                               expect - 1, head);
    }
    if (!rc)
        rc = check_anchor_against_purges(st, rep, err);
    if (!rc)
        rc = check_against_checkpoint(st, rep, err);
out:
    sqlite3_finalize(s);
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

/* ---- retention ---- */

void basira_retention_default(basira_retention *r)
{
    r->cases_days = 3650;
    r->photos_days = 1825;
    r->quality_events_days = 365;
    r->audit_days = 7300;
}

basira_code basira_retention_from_json(const json_t *cfg, const char *source, basira_retention *r,
                                       basira_error *err)
{
    basira_retention_default(r);
    if (!cfg)
        return BASIRA_OK;
    const char *path = source ? source : "config.json";
    static const struct {
        const char *key;
        size_t offset;
    } kinds[] = {
        {"cases", offsetof(basira_retention, cases_days)},
        {"photos", offsetof(basira_retention, photos_days)},
        {"quality_events", offsetof(basira_retention, quality_events_days)},
        {"audit", offsetof(basira_retention, audit_days)},
    };
    basira_code rc = BASIRA_OK;
    json_t *ret = json_object_get(cfg, "retention_days");
    if (ret && !json_is_object(ret))
        rc = basira_error_setm(err, BASIRA_E_FORMAT, N_("%s: retention_days must be an object"),
                               path);
    for (size_t i = 0; !rc && ret && i < sizeof kinds / sizeof kinds[0]; i++) {
        json_t *v = json_object_get(ret, kinds[i].key);
        if (!v)
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 36500) {
            rc = basira_error_setm(err, BASIRA_E_FORMAT,
                                   N_("%s: retention_days.%s must be a whole number of days from 1 "
                                      "to 36500"),
                                   path, kinds[i].key);
            break;
        }
        *(long *)((char *)r + kinds[i].offset) = (long)json_integer_value(v);
    }
    return rc;
}

/* Run a DELETE with one bound time and return how many rows it removed. */
static basira_code purge_step(basira_store *st, const char *sql, int64_t cutoff, long *count,
                              basira_error *err)
{
    sqlite3_stmt *s;
    basira_code rc = store_prepare(st, sql, &s, err);
    if (rc)
        return rc;
    store_bound(st, sqlite3_bind_int64(s, 1, cutoff));
    if (sqlite3_step(s) != SQLITE_DONE)
        rc = store_sql_error(st, "purging", err);
    else
        *count = sqlite3_changes(st->db);
    sqlite3_finalize(s);
    return rc;
}

basira_code basira_store_purge(basira_store *st, const basira_actor *who, const basira_retention *r,
                               int64_t now, basira_purge_report *rep, basira_error *err)
{
    memset(rep, 0, sizeof *rep);
    const int64_t day = 86400;
    basira_code rc;
    pthread_mutex_lock(&st->lock);
    if ((rc = store_begin(st, err)))
        goto out;
    /* Photos first (their cases may stay), then quality events, then whole cases. */
    if ((rc = purge_step(st, "DELETE FROM photos WHERE created_at < ?", now - r->photos_days * day,
                         &rep->photos, err)) ||
        (rc = purge_step(st, "DELETE FROM images WHERE kind = 'quality_event' AND created_at < ?",
                         now - r->quality_events_days * day, &rep->quality_events, err)))
        goto out;
    long case_photos = 0;
    if ((rc = purge_step(st,
                         "DELETE FROM photos WHERE image_id IN (SELECT i.id FROM images i JOIN "
                         "cases c ON c.id = i.case_id WHERE c.created_at < ?)",
                         now - r->cases_days * day, &case_photos, err)) ||
        (rc = purge_step(st, "DELETE FROM cases WHERE created_at < ?", now - r->cases_days * day,
                         &rep->cases, err)))
        goto out;
    rep->photos += case_photos;

    /*
     * Old audit entries: the newest purged entry becomes the anchor the chain
     * starts from, so verification still covers everything that remains.
     */
    int64_t cutoff = now - r->audit_days * day;
    sqlite3_stmt *s;
    if ((rc = store_prepare(st, "SELECT id, hash FROM audit WHERE ts < ? ORDER BY id DESC LIMIT 1",
                            &s, err)))
        goto out;
    store_bound(st, sqlite3_bind_int64(s, 1, cutoff));
    char anchor_id[32] = "", anchor_hash[65] = "";
    if (sqlite3_step(s) == SQLITE_ROW) {
        snprintf(anchor_id, sizeof anchor_id, "%" PRId64, (int64_t)sqlite3_column_int64(s, 0));
        snprintf(anchor_hash, sizeof anchor_hash, "%s", col_text(s, 1));
    }
    sqlite3_finalize(s);
    if (anchor_id[0]) {
        if ((rc = store_prepare(st, "DELETE FROM audit WHERE id <= ?", &s, err)))
            goto out;
        store_bound(st, sqlite3_bind_int64(s, 1, strtoll(anchor_id, NULL, 10)));
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = store_sql_error(st, "purging the audit trail", err);
        rep->audit_entries = sqlite3_changes(st->db);
        sqlite3_finalize(s);
        if (rc || (rc = meta_set(st, "audit_anchor_id", anchor_id, err)) ||
            (rc = meta_set(st, "audit_anchor_hash", anchor_hash, err)))
            goto out;
    }
    /* The anchor in force after this purge goes into its entry: verify checks it. */
    char cur_id[32], cur_hash[80];
    if ((rc = meta_get(st, "audit_anchor_id", cur_id, sizeof cur_id, "0", err)) ||
        (rc = meta_get(st, "audit_anchor_hash", cur_hash, sizeof cur_hash, ZERO_HASH, err)))
        goto out;
    char detail[256];
    snprintf(detail, sizeof detail,
             "cases=%ld photos=%ld quality_events=%ld audit=%ld anchor=%s:%s", rep->cases,
             rep->photos, rep->quality_events, rep->audit_entries, cur_id, cur_hash);
    if ((rc = store_audit_append_locked(st, who, "purge", 0, "ok", detail, err)) ||
        (rc = store_commit(st, err)))
        goto out;
    /* And the new anchor goes on record outside the database. */
    basira_audit_checkpoint cp;
    if ((rc = current_checkpoint(st, &cp, err)) || (rc = store_checkpoint_append(st, &cp, err)))
        goto out;
    /* Copies of deleted pages may sit in the WAL: fold it back and truncate it. */
    sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
out:
    if (rc)
        store_rollback(st);
    pthread_mutex_unlock(&st->lock);
    return rc;
}
