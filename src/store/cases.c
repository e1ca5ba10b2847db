/* cases.c - cases with consent, photos and their analyses, clinician decisions, worklist. */
#include "core/i18n.h"
#include "store_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const risk_codes[] = {"low", "medium", "high"};

const char *store_risk_code(int r)
{
    return r >= 0 && r <= 2 ? risk_codes[r] : "high";
}

int store_risk_parse(const char *s)
{
    for (int i = 0; s && i < 3; i++)
        if (!strcmp(s, risk_codes[i]))
            return i;
    return -1;
}

int store_text_ok(const char *s, size_t max, int required)
{
    if (!s)
        return !required;
    size_t n = strlen(s);
    if ((required && n == 0) || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

int store_one_of(const char *s, const char *const *set)
{
    for (; s && *set; set++)
        if (!strcmp(s, *set))
            return 1;
    return 0;
}

static json_t *tristate(int v)
{
    return v < 0 ? json_null() : json_boolean(v);
}

/*
 * No case without consent for care: nothing of the case is stored, but the
 * refusal is, in its own transaction; if that audit entry cannot be written
 * the error says so instead.
 */
static basira_code consent_refused(basira_store *st, const basira_actor *who, basira_error *err)
{
    basira_code rc;
    pthread_mutex_lock(&st->lock);
    if (!(rc = store_begin(st, err)) &&
        !(rc = store_audit_append_locked(st, who, "case_create", 0, "consent_refused", NULL, err)))
        rc = store_commit(st, err);
    if (rc)
        store_rollback(st);
    pthread_mutex_unlock(&st->lock);
    if (rc)
        return rc;
    return basira_error_setm(err, BASIRA_E_CONSENT,
                             N_("the patient's consent for care is required before a case is "
                                "recorded; nothing was stored"));
}

basira_code basira_store_case_create(basira_store *st, const basira_actor *who,
                                     const basira_case_new *c, int64_t *id, basira_error *err)
{
    basira_code space = store_space_for_write(st, err);
    if (space)
        return space;
    static const char *const sexes[] = {"female", "male", "other", "unknown", NULL};
    if (!c->consent_care)
        return consent_refused(st, who, err);
    basira_code rc = basira_patient_ref_check(c->patient_ref, err);
    if (rc)
        return rc;
    if (c->age < -1 || c->age > 130)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("age must be between 0 and 130 years"));
    if (!store_one_of(c->sex, sexes))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("sex must be female, male, other or unknown"));
    if (!store_text_ok(c->body_site, 64, 0))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("body_site must be at most 64 printable characters"));
    if (!store_text_ok(c->consent_recorded_by, 64, 1))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("consent.recorded_by must name who recorded the consent"));
    if (!isfinite(c->duration_months) || c->duration_months > 1200)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("duration_months must be between 0 and 1200"));
    json_t *hist =
        json_pack("{s:o, s:o, s:o, s:o, s:o}", "changed", tristate(c->changed), "bleeding",
                  tristate(c->bleeding), "rapid_growth", tristate(c->rapid_growth), "itching",
                  tristate(c->itching), "duration_months",
                  c->duration_months < 0 ? json_null() : json_real(c->duration_months));
    char *hist_text = hist ? store_json_text(hist) : NULL;
    json_decref(hist);
    if (!hist_text)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);

    int64_t now = store_now();
    sqlite3_stmt *s = NULL;
    pthread_mutex_lock(&st->lock);
    if (!(rc = store_begin(st, err)) &&
        !(rc = store_prepare(st,
                             "INSERT INTO cases(patient_ref, age, sex, body_site, history, "
                             "consent_care, consent_research, consent_recorded_by, "
                             "consent_recorded_at, created_by, created_at, updated_at, "
                             "consent_remote_review) VALUES(?,?,?,?,?,1,?,?,?,?,?,?,?)",
                             &s, err))) {
        store_bound(st, sqlite3_bind_text(s, 1, c->patient_ref, -1, SQLITE_STATIC));
        if (c->age >= 0)
            store_bound(st, sqlite3_bind_int(s, 2, c->age));
        store_bound(st, sqlite3_bind_text(s, 3, c->sex, -1, SQLITE_STATIC));
        if (c->body_site)
            store_bound(st, sqlite3_bind_text(s, 4, c->body_site, -1, SQLITE_STATIC));
        store_bound(st, sqlite3_bind_text(s, 5, hist_text, -1, SQLITE_STATIC));
        store_bound(st, sqlite3_bind_int(s, 6, c->consent_research ? 1 : 0));
        store_bound(st, sqlite3_bind_text(s, 7, c->consent_recorded_by, -1, SQLITE_STATIC));
        store_bound(st, sqlite3_bind_int64(s, 8, now));
        store_bound(st, sqlite3_bind_text(s, 9, who && who->username ? who->username : "?", -1,
                                          SQLITE_STATIC));
        store_bound(st, sqlite3_bind_int64(s, 10, now));
        store_bound(st, sqlite3_bind_int64(s, 11, now));
        store_bound(st, sqlite3_bind_int(s, 12, c->consent_remote_review ? 1 : 0));
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = store_sql_error(st, "recording a case", err);
        sqlite3_finalize(s);
        if (!rc) {
            *id = sqlite3_last_insert_rowid(st->db);
            rc = store_audit_append_locked(
                st, who, "case_create", *id, "ok",
                c->consent_remote_review
                    ? (c->consent_research ? "consent=care,research,remote_review"
                                           : "consent=care,remote_review")
                    : (c->consent_research ? "consent=care,research" : "consent=care"),
                err);
        }
        if (!rc)
            rc = store_commit(st, err);
    }
    if (rc)
        store_rollback(st);
    pthread_mutex_unlock(&st->lock);
    free(hist_text);
    return rc;
}

const char *store_col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? (const char *)t : NULL;
}

static json_t *col_json(sqlite3_stmt *s, int i)
{
    const char *t = store_col_text(s, i);
    json_t *j = t ? json_loads(t, 0, NULL) : NULL;
    return j ? j : json_null();
}

static json_t *col_risk(sqlite3_stmt *s, int i)
{
    if (sqlite3_column_type(s, i) == SQLITE_NULL)
        return json_null();
    int r = sqlite3_column_int(s, i);
    return r >= 0 && r <= 2 ? json_string(risk_codes[r]) : json_null();
}

static json_t *col_time(sqlite3_stmt *s, int i)
{
    char when[32];
    store_iso_time(sqlite3_column_int64(s, i), when);
    return json_string(when);
}

#define CASE_COLUMNS STORE_CASE_COLUMNS

json_t *store_case_summary(sqlite3_stmt *s)
{
    json_t *j = json_object();
    if (!j)
        return NULL;
    json_object_set_new(j, "id", json_integer(sqlite3_column_int64(s, 0)));
    json_object_set_new(j, "patient_ref", json_string(store_col_text(s, 1)));
    json_object_set_new(j, "age",
                        sqlite3_column_type(s, 2) == SQLITE_NULL
                            ? json_null()
                            : json_integer(sqlite3_column_int(s, 2)));
    json_object_set_new(j, "sex", json_string(store_col_text(s, 3)));
    json_object_set_new(j, "body_site",
                        store_col_text(s, 4) ? json_string(store_col_text(s, 4)) : json_null());
    json_object_set_new(j, "status", json_string(store_col_text(s, 5)));
    json_object_set_new(j, "risk", col_risk(s, 6));
    json_object_set_new(j, "ai_risk", col_risk(s, 7));
    json_object_set_new(j, "ai_risk_index",
                        sqlite3_column_type(s, 8) == SQLITE_NULL
                            ? json_null()
                            : json_real(sqlite3_column_double(s, 8)));
    json_object_set_new(j, "created_at", col_time(s, 9));
    json_object_set_new(j, "created_by", json_string(store_col_text(s, 10)));
    json_object_set_new(j, "updated_at", col_time(s, 11));
    json_object_set_new(j, "decision", col_json(s, 12));
    json_object_set_new(j, "version", json_integer(sqlite3_column_int64(s, 13)));
    json_object_set_new(j, "referral",
                        store_col_text(s, 14) ? json_string(store_col_text(s, 14)) : json_null());
    int64_t fu = sqlite3_column_int64(s, 15);
    json_object_set_new(j, "follow_up", fu ? col_time(s, 15) : json_null());
    json_object_set_new(j, "overdue", json_boolean(fu && fu < store_now()));
    json_object_set_new(j, "thumbnail",
                        sqlite3_column_type(s, 16) == SQLITE_NULL
                            ? json_null()
                            : json_integer(sqlite3_column_int64(s, 16)));
    return j;
}

static basira_code case_exists_locked(basira_store *st, int64_t id, basira_error *err)
{
    sqlite3_stmt *s;
    basira_code rc = store_prepare(st, "SELECT 1 FROM cases WHERE id = ?", &s, err);
    if (rc)
        return rc;
    store_bound(st, sqlite3_bind_int64(s, 1, id));
    if (sqlite3_step(s) != SQLITE_ROW)
        rc = basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no case %" PRId64), id);
    sqlite3_finalize(s);
    return rc;
}

/* "patient": {"ref", "cases": [the other cases of the same patient_ref]}. */
static basira_code related_cases_locked(basira_store *st, json_t *kase, basira_error *err)
{
    sqlite3_stmt *s;
    const char *ref = json_string_value(json_object_get(kase, "patient_ref"));
    basira_code rc = store_prepare(st,
                                   "SELECT id, created_at, body_site, risk FROM cases WHERE "
                                   "patient_ref = ? AND id != ? ORDER BY created_at, id",
                                   &s, err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, ref ? ref : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, json_integer_value(json_object_get(kase, "id")));
    json_t *others = json_array();
    while (others && sqlite3_step(s) == SQLITE_ROW)
        json_array_append_new(
            others,
            json_pack("{s:I, s:o, s:o, s:o}", "id", (json_int_t)sqlite3_column_int64(s, 0),
                      "created_at", col_time(s, 1), "body_site",
                      store_col_text(s, 2) ? json_string(store_col_text(s, 2)) : json_null(),
                      "risk", col_risk(s, 3)));
    sqlite3_finalize(s);
    if (!others)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    json_object_set_new(kase, "patient",
                        json_pack("{s:s, s:o}", "ref", ref ? ref : "", "cases", others));
    return BASIRA_OK;
}

basira_code store_case_json_locked(basira_store *st, int64_t id, json_t **out, basira_error *err)
{
    sqlite3_stmt *s = NULL;
    json_t *j = NULL;
    basira_code rc;
    *out = NULL;
    if ((rc = store_prepare(st,
                            "SELECT " CASE_COLUMNS ", history, consent_care, consent_research, "
                            "consent_recorded_by, consent_recorded_at, consent_remote_review "
                            "FROM cases WHERE id = ?",
                            &s, err)))
        return rc;
    store_bound(st, sqlite3_bind_int64(s, 1, id));
    if (sqlite3_step(s) != SQLITE_ROW) {
        rc = basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no case %" PRId64), id);
    } else if (!(j = store_case_summary(s))) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
    } else {
        const int k = STORE_CASE_NCOLUMNS;
        json_object_set_new(j, "history", col_json(s, k));
        json_object_set_new(
            j, "consent",
            json_pack("{s:b, s:b, s:b, s:s, s:o}", "care", sqlite3_column_int(s, k + 1), "research",
                      sqlite3_column_int(s, k + 2), "remote_review", sqlite3_column_int(s, k + 5),
                      "recorded_by", store_col_text(s, k + 3), "recorded_at", col_time(s, k + 4)));
    }
    sqlite3_finalize(s);
    s = NULL;
    if (rc)
        return rc;
    if ((rc = store_prepare(st,
                            "SELECT i.id, i.kind, i.created_at, i.created_by, i.result, "
                            "p.image_id IS NOT NULL, m.kind, m.declared FROM images i "
                            "LEFT JOIN photos p ON p.image_id = i.id LEFT JOIN image_modality m "
                            "ON m.image_id = i.id WHERE i.case_id = ? ORDER BY i.id",
                            &s, err))) {
        json_decref(j);
        return rc;
    }
    store_bound(st, sqlite3_bind_int64(s, 1, id));
    json_t *images = json_array();
    while (sqlite3_step(s) == SQLITE_ROW)
        json_array_append_new(
            images, json_pack("{s:I, s:s, s:o, s:s, s:o, s:b, s:s?, s:s?}", "id",
                              (json_int_t)sqlite3_column_int64(s, 0), "kind", store_col_text(s, 1),
                              "created_at", col_time(s, 2), "created_by", store_col_text(s, 3),
                              "result", col_json(s, 4), "photo_stored", sqlite3_column_int(s, 5),
                              "modality", (const char *)sqlite3_column_text(s, 6),
                              "modality_declared", (const char *)sqlite3_column_text(s, 7)));
    json_object_set_new(j, "images", images);
    sqlite3_finalize(s);
    json_t *decisions = NULL;
    if (!(rc = store_decisions_locked(st, id, &decisions, err)))
        json_object_set_new(j, "decisions", decisions);
    if (rc || (rc = related_cases_locked(st, j, err)) ||
        /* The regional hub's replies (src/store/outbox.c), oldest first. */
        (rc = store_sync_replies_locked(st, id, j, err))) {
        json_decref(j);
        return rc;
    }
    *out = j;
    return BASIRA_OK;
}

basira_code basira_store_case_get(basira_store *st, const basira_actor *who, int64_t id,
                                  json_t **out, basira_error *err)
{
    json_t *j = NULL;
    basira_code rc;
    pthread_mutex_lock(&st->lock);
    if ((rc = store_begin(st, err)))
        goto out;
    rc = store_case_json_locked(st, id, &j, err);
    /* Opening the case reads the hub's replies: the worklist stops flagging them. */
    if (!rc && (rc = store_sync_replies_read_locked(st, id, who, err))) {
        json_decref(j);
        j = NULL;
    }
    if (rc && rc != BASIRA_E_NOT_FOUND)
        goto out;
    /* Reading a case is an access to patient data: audited, including refusals. */
    basira_error aerr;
    if (store_audit_append_locked(st, who, "case_read", id, rc ? "not_found" : "ok", NULL, &aerr) ||
        store_commit(st, &aerr)) {
        if (!rc) {
            rc = aerr.code;
            if (err)
                *err = aerr;
        }
    }
out:
    store_rollback(st);
    pthread_mutex_unlock(&st->lock);
    if (rc) {
        json_decref(j);
        return rc;
    }
    *out = j;
    return BASIRA_OK;
}

static int col_tristate(const json_t *h, const char *key)
{
    const json_t *v = json_object_get(h, key);
    return json_is_boolean(v) ? json_is_true(v) : -1;
}

basira_code basira_store_case_history(basira_store *st, int64_t id, basira_case_history *out,
                                      basira_error *err)
{
    sqlite3_stmt *s;
    basira_code rc;
    out->changed = out->bleeding = out->itching = out->rapid_growth = -1;
    out->duration_months = -1.0;
    pthread_mutex_lock(&st->lock);
    if (!(rc = store_prepare(st, "SELECT history FROM cases WHERE id = ?", &s, err))) {
        store_bound(st, sqlite3_bind_int64(s, 1, id));
        if (sqlite3_step(s) == SQLITE_ROW) {
            json_t *h = col_json(s, 0);
            const json_t *d = json_object_get(h, "duration_months");
            out->changed = col_tristate(h, "changed");
            out->bleeding = col_tristate(h, "bleeding");
            out->itching = col_tristate(h, "itching");
            out->rapid_growth = col_tristate(h, "rapid_growth");
            if (json_is_number(d))
                out->duration_months = json_number_value(d);
            json_decref(h);
        } else {
            rc = basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no case %" PRId64), id);
        }
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

void basira_case_filter_init(basira_case_filter *f)
{
    memset(f, 0, sizeof *f);
    f->risk = -1;
    f->limit = 50;
}

basira_code basira_store_case_list(basira_store *st, const basira_actor *who,
                                   const basira_case_filter *f, json_t **out, basira_error *err)
{
    static const char *const statuses[] = {"new", "triaged", "reviewed", NULL};
    if (f->status && !store_one_of(f->status, statuses))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("status must be new, triaged or reviewed"));
    if (f->risk < -1 || f->risk > 2)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("risk must be low, medium or high"));
    if (f->limit < 1 || f->limit > 500 || f->offset < 0)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("limit must be between 1 and 500 and offset not negative"));
    if (f->patient_ref && basira_patient_ref_check(f->patient_ref, err))
        return err ? err->code : BASIRA_E_INVALID_ARGUMENT;
    /*
     * The dermatologist's queue: photos triaged by the AI and not reviewed yet, or a
     * referral requested and not yet sent. Overdue: the follow-up date has passed.
     */
    const char *where = " WHERE (?1 IS NULL OR status = ?1) AND (?2 < 0 OR risk = ?2)"
                        " AND (?3 = 0 OR created_at >= ?3) AND (?4 = 0 OR created_at <= ?4)"
                        " AND (?7 IS NULL OR patient_ref = ?7)"
                        " AND (?8 = 0 OR (follow_up_at IS NOT NULL AND follow_up_at < ?8))"
                        " AND (?9 = 0 OR status = 'triaged' OR referral = 'requested')";
    char sql[1024];
    json_t *items = json_array();
    sqlite3_stmt *s = NULL;
    basira_code rc;
    json_int_t total = 0;
    if (!items)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    pthread_mutex_lock(&st->lock);
    if ((rc = store_begin(st, err)))
        goto out;
    for (int pass = 0; pass < 2 && !rc; pass++) {
        if (pass == 0)
            snprintf(sql, sizeof sql, "SELECT count(*) FROM cases%s", where);
        else
            /* Worklist order: highest risk first, then who has waited longest. */
            snprintf(sql, sizeof sql,
                     "SELECT " CASE_COLUMNS " FROM cases%s ORDER BY COALESCE(risk, -1) DESC, "
                     "created_at ASC, id ASC LIMIT ?5 OFFSET ?6",
                     where);
        if ((rc = store_prepare(st, sql, &s, err)))
            break;
        if (f->status)
            store_bound(st, sqlite3_bind_text(s, 1, f->status, -1, SQLITE_STATIC));
        store_bound(st, sqlite3_bind_int(s, 2, f->risk));
        store_bound(st, sqlite3_bind_int64(s, 3, f->from));
        store_bound(st, sqlite3_bind_int64(s, 4, f->to));
        if (f->patient_ref)
            store_bound(st, sqlite3_bind_text(s, 7, f->patient_ref, -1, SQLITE_STATIC));
        store_bound(st,
                    sqlite3_bind_int64(
                        s, 8, f->overdue ? (f->overdue_now ? f->overdue_now : store_now()) : 0));
        store_bound(st, sqlite3_bind_int(s, 9, f->awaiting_review ? 1 : 0));
        if (pass == 1) {
            store_bound(st, sqlite3_bind_int(s, 5, f->limit));
            store_bound(st, sqlite3_bind_int(s, 6, f->offset));
        }
        int step;
        while ((step = sqlite3_step(s)) == SQLITE_ROW) {
            if (pass == 0)
                total = sqlite3_column_int64(s, 0);
            else if (json_array_append_new(items, store_case_summary(s)) ||
                     /* The worklist shows that a dermatologist replied (originals.c). */
                     (rc = store_sync_reply_summary_locked(
                          st, sqlite3_column_int64(s, 0),
                          json_array_get(items, json_array_size(items) - 1), err)))
                break;
        }
        if (!rc && step != SQLITE_DONE && step != SQLITE_ROW)
            rc = store_sql_error(st, "listing cases", err);
        else if (!rc && step == SQLITE_ROW)
            rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        sqlite3_finalize(s);
        s = NULL;
    }
    if (!rc) {
        char detail[64];
        snprintf(detail, sizeof detail, "returned=%zu", json_array_size(items));
        if (!(rc = store_audit_append_locked(st, who, "case_list", 0, "ok", detail, err)))
            rc = store_commit(st, err);
    }
out:
    store_rollback(st);
    pthread_mutex_unlock(&st->lock);
    if (rc) {
        json_decref(items);
        return rc;
    }
    *out = json_pack("{s:o, s:I, s:i, s:i}", "items", items, "total", total, "limit", f->limit,
                     "offset", f->offset);
    return *out ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, NULL);
}

basira_code basira_store_image_add(basira_store *st, const basira_actor *who, int64_t case_id,
                                   const void *data, size_t len, const char *mime,
                                   const basira_image_record *rec, int accepted, int64_t *image_id,
                                   basira_error *err)
{
    basira_code space = store_space_for_write(st, err);
    if (space)
        return space;
    if (!rec || (accepted && (!data || !len || !mime)))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT, N_("no photo to store"));
    if (accepted && (rec->risk < -1 || rec->risk > 2))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    char *text = store_json_text(rec->result);
    if (!text)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    double risk_index = rec->risk_index >= 0 && rec->risk_index <= 100 ? rec->risk_index : NAN;
    int risk = accepted ? rec->risk : -1;
    int64_t now = store_now();
    sqlite3_stmt *s = NULL;
    basira_code rc;
    pthread_mutex_lock(&st->lock);
    if ((rc = store_begin(st, err)) || (rc = case_exists_locked(st, case_id, err)))
        goto out;
    if ((rc = store_prepare(st,
                            "INSERT INTO images(case_id, kind, created_at, created_by, result) "
                            "VALUES(?,?,?,?,?)",
                            &s, err)))
        goto out;
    store_bound(st, sqlite3_bind_int64(s, 1, case_id));
    store_bound(st,
                sqlite3_bind_text(s, 2, accepted ? "photo" : "quality_event", -1, SQLITE_STATIC));
    store_bound(st, sqlite3_bind_int64(s, 3, now));
    store_bound(
        st, sqlite3_bind_text(s, 4, who && who->username ? who->username : "?", -1, SQLITE_STATIC));
    store_bound(st, sqlite3_bind_text(s, 5, text, -1, SQLITE_STATIC));
    if (sqlite3_step(s) != SQLITE_DONE)
        rc = store_sql_error(st, "storing an image", err);
    sqlite3_finalize(s);
    s = NULL;
    if (rc)
        goto out;
    *image_id = sqlite3_last_insert_rowid(st->db);
    /* The photo's kind, as the pipeline treated it and as declared (issue 11). */
    const json_t *mod = json_object_get(rec->result, "modality");
    if (json_is_object(mod)) {
        if ((rc = store_prepare(st,
                                "INSERT INTO image_modality(image_id, kind, declared) "
                                "VALUES(?,?,?)",
                                &s, err)))
            goto out;
        store_bound(st, sqlite3_bind_int64(s, 1, *image_id));
        store_bound(st, sqlite3_bind_text(s, 2, json_string_value(json_object_get(mod, "kind")), -1,
                                          SQLITE_TRANSIENT));
        store_bound(st, sqlite3_bind_text(s, 3, json_string_value(json_object_get(mod, "declared")),
                                          -1, SQLITE_TRANSIENT));
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = store_sql_error(st, "storing the photo kind", err);
        sqlite3_finalize(s);
        s = NULL;
        if (rc)
            goto out;
    }
    if (accepted) {
        if ((rc = store_prepare(st,
                                "INSERT INTO photos(image_id, mime, created_at, data) "
                                "VALUES(?,?,?,?)",
                                &s, err)))
            goto out;
        store_bound(st, sqlite3_bind_int64(s, 1, *image_id));
        store_bound(st, sqlite3_bind_text(s, 2, mime, -1, SQLITE_STATIC));
        store_bound(st, sqlite3_bind_int64(s, 3, now));
        store_bound(st, sqlite3_bind_blob64(s, 4, data, len, SQLITE_STATIC));
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = store_sql_error(st, "storing a photo", err);
        sqlite3_finalize(s);
        s = NULL;
        if (rc)
            goto out;
        if (risk >= 0) {
            /*
             * The case's AI risk is the highest over its photos; until a clinician
             * decides, the worklist risk is the AI's.
             */
            if ((rc = store_prepare(st,
                                    "UPDATE cases SET ai_risk = max(COALESCE(ai_risk, -1), ?1), "
                                    "ai_risk_index = max(COALESCE(ai_risk_index, -1), ?2), "
                                    "risk = CASE WHEN status = 'reviewed' THEN risk ELSE "
                                    "max(COALESCE(ai_risk, -1), ?1) END, status = CASE WHEN "
                                    "status = 'new' THEN 'triaged' ELSE status END, "
                                    "version = version + 1, updated_at = ?3 WHERE id = ?4",
                                    &s, err)))
                goto out;
            store_bound(st, sqlite3_bind_int(s, 1, risk));
            if (isnan(risk_index))
                store_bound(st, sqlite3_bind_double(s, 2, -1));
            else
                store_bound(st, sqlite3_bind_double(s, 2, risk_index));
            store_bound(st, sqlite3_bind_int64(s, 3, now));
            store_bound(st, sqlite3_bind_int64(s, 4, case_id));
            if (sqlite3_step(s) != SQLITE_DONE)
                rc = store_sql_error(st, "updating a case", err);
            sqlite3_finalize(s);
            s = NULL;
            if (rc)
                goto out;
        }
    }
    char detail[64];
    snprintf(detail, sizeof detail, "image=%" PRId64, *image_id);
    if ((rc = store_audit_append_locked(st, who, accepted ? "image_add" : "quality_event", case_id,
                                        "ok", detail, err)) ||
        (rc = store_commit(st, err)))
        goto out;
out:
    if (rc)
        store_rollback(st);
    pthread_mutex_unlock(&st->lock);
    free(text);
    return rc;
}

basira_code basira_store_photo_get(basira_store *st, const basira_actor *who, int64_t image_id,
                                   unsigned char **data, size_t *len, char mime[32],
                                   int64_t *case_id_out, basira_error *err)
{
    sqlite3_stmt *s = NULL;
    basira_code rc;
    int64_t case_id = 0;
    *data = NULL;
    pthread_mutex_lock(&st->lock);
    if ((rc = store_begin(st, err)) ||
        (rc = store_prepare(st,
                            "SELECT p.mime, p.data, i.case_id FROM photos p JOIN images i ON "
                            "i.id = p.image_id WHERE p.image_id = ?",
                            &s, err)))
        goto out;
    store_bound(st, sqlite3_bind_int64(s, 1, image_id));
    if (sqlite3_step(s) != SQLITE_ROW) {
        rc = basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no stored photo %" PRId64), image_id);
        goto out;
    }
    snprintf(mime, 32, "%s", store_col_text(s, 0));
    *len = (size_t)sqlite3_column_bytes(s, 1);
    case_id = sqlite3_column_int64(s, 2);
    *data = malloc(*len ? *len : 1);
    if (!*data) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto out;
    }
    if (*len)
        memcpy(*data, sqlite3_column_blob(s, 1), *len);
    sqlite3_finalize(s);
    s = NULL;
    char detail[64];
    snprintf(detail, sizeof detail, "image=%" PRId64, image_id);
    if (!(rc = store_audit_append_locked(st, who, "photo_read", case_id, "ok", detail, err)))
        rc = store_commit(st, err);
out:
    sqlite3_finalize(s);
    store_rollback(st);
    pthread_mutex_unlock(&st->lock);
    if (rc) {
        free(*data);
        *data = NULL;
    } else if (case_id_out) {
        *case_id_out = case_id;
    }
    return rc;
}
