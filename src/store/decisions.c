/*
 * decisions.c - clinician decisions as versions that are never overwritten, the
 * optimistic lock that keeps two clinicians from silently undoing each other, and
 * the patients that link cases over time.
 *
 * Why versions: a dermatologist's "high, referral requested, because ..." must not
 * vanish when a GP later records "low". Each decision is a new row of `decisions`;
 * the case keeps a copy of the latest (its worklist risk, referral and follow-up)
 * and a version number that grows with every decision and every accepted photo.
 * A writer that says which version it saw (If-Match) is refused when the case has
 * moved on, so the later clinician sees what changed before deciding again.
 */
#include "core/i18n.h"
#include "store_internal.h"

#include <inttypes.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

/* ---- patient references ---- */

/* Next code point of UTF-8 text, or -1 when malformed (overlong, surrogate, > U+10FFFF). */
static long utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    long c;
    int n;
    if (s[0] < 0x80) {
        *p = s + 1;
        return s[0];
    } else if ((s[0] & 0xe0) == 0xc0) {
        c = s[0] & 0x1f;
        n = 1;
    } else if ((s[0] & 0xf0) == 0xe0) {
        c = s[0] & 0x0f;
        n = 2;
    } else if ((s[0] & 0xf8) == 0xf0) {
        c = s[0] & 0x07;
        n = 3;
    } else {
        return -1;
    }
    for (int i = 1; i <= n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return -1;
        c = (c << 6) | (s[i] & 0x3f);
    }
    static const long min[4] = {0, 0x80, 0x800, 0x10000};
    if (c < min[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return -1;
    *p = s + n + 1;
    return c;
}

long store_utf8_length(const char *s)
{
    long n = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (utf8_next(&p) < 0)
            return -1;
        n++;
    }
    return n;
}

static int is_bidi_control(long c)
{
    return (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

static int is_invisible(long c)
{
    return (c >= 0x200b && c <= 0x200f) || c == 0x2060 || c == 0xfeff || c == 0x00ad || c == 0x061c;
}

static int is_space(long c)
{
    return c == ' ' || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 ||
           c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

basira_code basira_patient_ref_check(const char *ref, basira_error *err)
{
    if (!ref || !*ref)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("patient_ref must be 1 to 64 printable characters"));
    const unsigned char *p = (const unsigned char *)ref;
    long n = 0, visible = 0;
    while (*p) {
        long c = utf8_next(&p);
        if (c < 0)
            return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                     N_("patient_ref is not valid UTF-8 text"));
        if (c < 0x20 || (c >= 0x7f && c < 0xa0))
            return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                     N_("patient_ref must be 1 to 64 printable characters"));
        if (is_bidi_control(c))
            return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                     N_("patient_ref must not contain bidirectional override or "
                                        "isolate characters (U+202A to U+202E, U+2066 to "
                                        "U+2069): they make one reference look like another"));
        if (!is_invisible(c) && !is_space(c))
            visible++;
        n++;
    }
    if (n > 64)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("patient_ref must be 1 to 64 printable characters"));
    if (!visible)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("patient_ref is blank: it holds only spaces or invisible "
                                    "characters"));
    return BASIRA_OK;
}

/* ---- decisions ---- */

/* A note may span lines; no other control character. At most 2000 characters. */
static int note_ok(const char *s)
{
    if (!s)
        return 1;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
            return 0;
    long n = store_utf8_length(s);
    return n >= 0 && n <= 2000;
}

static json_t *opt_text(sqlite3_stmt *s, int i)
{
    const char *t = store_col_text(s, i);
    return t ? json_string(t) : json_null();
}

static json_t *opt_time(sqlite3_stmt *s, int i)
{
    if (sqlite3_column_type(s, i) == SQLITE_NULL)
        return json_null();
    char when[32];
    store_iso_time(sqlite3_column_int64(s, i), when);
    return json_string(when);
}

#define DECISION_COLUMNS                                                                           \
    "version, decided_by, role, decided_at, outcome, category, ai_category, referral, reason, "    \
    "note, follow_up_at"

static json_t *decision_row(sqlite3_stmt *s)
{
    char when[32];
    store_iso_time(sqlite3_column_int64(s, 3), when);
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:o}", "version",
                     (json_int_t)sqlite3_column_int64(s, 0), "decided_by", store_col_text(s, 1),
                     "role", store_col_text(s, 2), "decided_at", when, "outcome",
                     store_col_text(s, 4), "category", store_col_text(s, 5), "ai_category",
                     opt_text(s, 6), "referral", store_col_text(s, 7), "reason", opt_text(s, 8),
                     "note", opt_text(s, 9), "follow_up", opt_time(s, 10));
}

basira_code store_decisions_locked(basira_store *st, int64_t case_id, json_t **out,
                                   basira_error *err)
{
    sqlite3_stmt *s;
    basira_code rc = store_prepare(st,
                                   "SELECT " DECISION_COLUMNS " FROM decisions WHERE case_id = ? "
                                   "ORDER BY version",
                                   &s, err);
    if (rc)
        return rc;
    json_t *a = json_array();
    store_bound(st, sqlite3_bind_int64(s, 1, case_id));
    int step;
    while (a && (step = sqlite3_step(s)) == SQLITE_ROW)
        if (json_array_append_new(a, decision_row(s))) {
            json_decref(a);
            a = NULL;
        }
    sqlite3_finalize(s);
    if (!a)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    *out = a;
    return BASIRA_OK;
}

static basira_code decision_check(const basira_decision *d, int final, basira_error *err)
{
    static const char *const referrals[] = {"none", "requested", "sent", "completed", NULL};
    const char *referral = d->referral ? d->referral : "none";
    if (!d->accept_ai && !store_text_ok(d->reason, 500, 1))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("an override needs a reason (up to 500 characters)"));
    if (d->reason && !store_text_ok(d->reason, 500, 0))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("the reason must be at most 500 printable characters"));
    if (!store_one_of(referral, referrals))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("referral must be none, requested, sent or completed"));
    if (!note_ok(d->note))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("the note must be at most 2000 characters of text"));
    if (final == 2 && !strcmp(referral, "none") && !(d->reason && *d->reason))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("a high category without a referral needs a reason: say why "
                                    "this patient is not referred"));
    return BASIRA_OK;
}

/* The audit row holds the whole decision (no patient identifier: the case id names it). */
static char *decision_audit_detail(int64_t version, const basira_decision *d, basira_role role,
                                   const char *category, const char *ai, int64_t follow_up)
{
    char fu[32] = "";
    if (follow_up)
        store_iso_time(follow_up, fu);
    json_t *j = json_pack("{s:I, s:s, s:s, s:s, s:s?, s:s, s:s?, s:s?, s:s?}", "version",
                          (json_int_t)version, "role", basira_role_name(role), "outcome",
                          d->accept_ai ? "accepted" : "overridden", "category", category,
                          "ai_category", ai, "referral", d->referral ? d->referral : "none",
                          "reason", d->reason, "note", d->note, "follow_up", follow_up ? fu : NULL);
    /* Checked by parsing it back: jansson can emit malformed JSON when memory runs out. */
    char *text = store_json_text(j);
    json_decref(j);
    return text;
}

static basira_code decision_insert(basira_store *st, const basira_actor *who, basira_role role,
                                   int64_t case_id, int64_t version, const basira_decision *d,
                                   const char *category, const char *ai, int64_t now,
                                   int64_t follow_up, basira_error *err)
{
    sqlite3_stmt *s;
    basira_code rc = store_prepare(st,
                                   "INSERT INTO decisions(case_id, version, decided_by, role, "
                                   "decided_at, outcome, category, ai_category, referral, reason, "
                                   "note, follow_up_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
                                   &s, err);
    if (rc)
        return rc;
    store_bound(st, sqlite3_bind_int64(s, 1, case_id));
    store_bound(st, sqlite3_bind_int64(s, 2, version));
    store_bound(
        st, sqlite3_bind_text(s, 3, who && who->username ? who->username : "?", -1, SQLITE_STATIC));
    store_bound(st, sqlite3_bind_text(s, 4, basira_role_name(role), -1, SQLITE_STATIC));
    store_bound(st, sqlite3_bind_int64(s, 5, now));
    store_bound(
        st, sqlite3_bind_text(s, 6, d->accept_ai ? "accepted" : "overridden", -1, SQLITE_STATIC));
    store_bound(st, sqlite3_bind_text(s, 7, category, -1, SQLITE_STATIC));
    if (ai)
        store_bound(st, sqlite3_bind_text(s, 8, ai, -1, SQLITE_STATIC));
    store_bound(st, sqlite3_bind_text(s, 9, d->referral ? d->referral : "none", -1, SQLITE_STATIC));
    if (d->reason && *d->reason)
        store_bound(st, sqlite3_bind_text(s, 10, d->reason, -1, SQLITE_STATIC));
    if (d->note && *d->note)
        store_bound(st, sqlite3_bind_text(s, 11, d->note, -1, SQLITE_STATIC));
    if (follow_up)
        store_bound(st, sqlite3_bind_int64(s, 12, follow_up));
    if (sqlite3_step(s) != SQLITE_DONE)
        rc = store_sql_error(st, "recording a decision", err);
    sqlite3_finalize(s);
    return rc;
}

/* Copy of the latest decision on the case row: worklist risk, referral, follow-up, version. */
static basira_code case_update(basira_store *st, int64_t case_id, int64_t version, int final,
                               const char *referral, int64_t follow_up, int64_t now,
                               basira_error *err)
{
    json_t *all = NULL;
    basira_code rc = store_decisions_locked(st, case_id, &all, err);
    if (rc)
        return rc;
    char *latest = store_json_text(json_array_get(all, json_array_size(all) - 1));
    json_decref(all);
    if (!latest)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    sqlite3_stmt *s;
    if (!(rc = store_prepare(st,
                             "UPDATE cases SET decision = ?, risk = ?, status = 'reviewed', "
                             "version = ?, referral = ?, follow_up_at = ?, updated_at = ? "
                             "WHERE id = ?",
                             &s, err))) {
        store_bound(st, sqlite3_bind_text(s, 1, latest, -1, SQLITE_STATIC));
        store_bound(st, sqlite3_bind_int(s, 2, final));
        store_bound(st, sqlite3_bind_int64(s, 3, version));
        store_bound(st, sqlite3_bind_text(s, 4, referral, -1, SQLITE_STATIC));
        if (follow_up)
            store_bound(st, sqlite3_bind_int64(s, 5, follow_up));
        store_bound(st, sqlite3_bind_int64(s, 6, now));
        store_bound(st, sqlite3_bind_int64(s, 7, case_id));
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = store_sql_error(st, "recording a decision", err);
        sqlite3_finalize(s);
    }
    free(latest);
    return rc;
}

basira_code basira_store_decision_add(basira_store *st, const basira_actor *who, basira_role role,
                                      int64_t case_id, const basira_decision *d, int64_t if_match,
                                      int64_t *version_out, basira_error *err)
{
    basira_code space = store_space_for_write(st, err);
    if (space)
        return space;
    int override = store_risk_parse(d->category);
    if (!d->accept_ai && override < 0)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("an override needs a category: low, medium or high"));
    if ((int)role < 0 || role >= BASIRA_ROLE_COUNT_)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT, N_("invalid role"));
    int64_t now = store_now();
    if (d->follow_up_at &&
        (d->follow_up_at < now - 86400 || d->follow_up_at > now + 5 * 366 * 86400))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("the follow-up date must be between today and five years from "
                                    "now"));
    sqlite3_stmt *s = NULL;
    basira_code rc;
    int ai = -1;
    int64_t version = 0;
    char *detail = NULL;
    pthread_mutex_lock(&st->lock);
    if ((rc = store_begin(st, err)) ||
        (rc = store_prepare(st, "SELECT ai_risk, version FROM cases WHERE id = ?", &s, err)))
        goto out;
    store_bound(st, sqlite3_bind_int64(s, 1, case_id));
    if (sqlite3_step(s) != SQLITE_ROW) {
        rc = basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no case %" PRId64), case_id);
        goto out;
    }
    if (sqlite3_column_type(s, 0) != SQLITE_NULL)
        ai = sqlite3_column_int(s, 0);
    version = sqlite3_column_int64(s, 1);
    sqlite3_finalize(s);
    s = NULL;
    if (if_match >= 0 && if_match != version) {
        rc = basira_error_setm(err, BASIRA_E_PRECONDITION,
                               N_("this case was changed since you opened it (you saw version "
                                  "%" PRId64 ", it is now at version %" PRId64
                                  "): read the new decisions before deciding"),
                               if_match, version);
        goto out;
    }
    if (d->accept_ai && ai < 0) {
        rc = basira_error_setm(err, BASIRA_E_CONFLICT,
                               N_("this case has no AI category yet to accept; upload a photo or "
                                  "override with a category and a reason"));
        goto out;
    }
    int final = d->accept_ai ? ai : override;
    if ((rc = decision_check(d, final, err)))
        goto out;
    int64_t follow_up = d->follow_up_at;
    if (!follow_up && final == 1)
        follow_up = now + (int64_t)BASIRA_FOLLOW_UP_DAYS * 86400;
    const char *category = store_risk_code(final), *ai_code = ai >= 0 ? store_risk_code(ai) : NULL;
    version++;
    if ((rc = decision_insert(st, who, role, case_id, version, d, category, ai_code, now, follow_up,
                              err)) ||
        (rc = case_update(st, case_id, version, final, d->referral ? d->referral : "none",
                          follow_up, now, err)))
        goto out;
    if (!(detail = decision_audit_detail(version, d, role, category, ai_code, follow_up))) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto out;
    }
    if (!(rc = store_audit_append_locked(st, who, "decision", case_id, "ok", detail, err)))
        rc = store_commit(st, err);
out:
    sqlite3_finalize(s);
    if (rc)
        store_rollback(st);
    pthread_mutex_unlock(&st->lock);
    free(detail);
    if (!rc && version_out)
        *version_out = version;
    return rc;
}

basira_code basira_store_decision(basira_store *st, const basira_actor *who, int64_t case_id,
                                  const basira_decision *d, basira_error *err)
{
    return basira_store_decision_add(st, who, BASIRA_ROLE_GP, case_id, d, -1, NULL, err);
}

static const char *jstr(const json_t *o, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : dflt;
}

/* "2026-01-02T03:04:05Z" to unix time; fallback when malformed. */
static int64_t parse_iso(const char *s, int64_t fallback)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
    if (!end || *end)
        return fallback;
    return (int64_t)timegm(&tm);
}

basira_code store_migrate_decisions(basira_store *st, basira_error *err)
{
    sqlite3_stmt *s;
    basira_code rc = store_prepare(st,
                                   "SELECT id, decision, updated_at FROM cases WHERE decision "
                                   "IS NOT NULL",
                                   &s, err);
    if (rc)
        return rc;
    while (!rc && sqlite3_step(s) == SQLITE_ROW) {
        int64_t case_id = sqlite3_column_int64(s, 0);
        json_t *d = json_loads(store_col_text(s, 1), 0, NULL);
        if (!json_is_object(d)) {
            json_decref(d);
            continue; /* nothing readable to keep */
        }
        const char *who = jstr(d, "decided_by", "?");
        basira_actor a = {who, "migration"};
        basira_decision dec = {!strcmp(jstr(d, "outcome", ""), "accepted"),
                               NULL,
                               json_string_value(json_object_get(d, "reason")),
                               jstr(d, "referral", "none"),
                               NULL,
                               0};
        const char *category = jstr(d, "category", "high");
        rc = decision_insert(st, &a, BASIRA_ROLE_COUNT_, case_id, 1, &dec,
                             store_risk_parse(category) < 0 ? "high" : category,
                             json_string_value(json_object_get(d, "ai_category")),
                             parse_iso(jstr(d, "decided_at", NULL), sqlite3_column_int64(s, 2)), 0,
                             err);
        sqlite3_stmt *u;
        if (!rc && !(rc = store_prepare(
                         st, "UPDATE cases SET version = 1, referral = ? WHERE id = ?", &u, err))) {
            store_bound(st, sqlite3_bind_text(u, 1, dec.referral, -1, SQLITE_TRANSIENT));
            store_bound(st, sqlite3_bind_int64(u, 2, case_id));
            if (sqlite3_step(u) != SQLITE_DONE)
                rc = store_sql_error(st, "migrating decisions", err);
            sqlite3_finalize(u);
        }
        json_decref(d);
    }
    sqlite3_finalize(s);
    return rc;
}

/* ---- patients over time ---- */

static basira_code patient_images(basira_store *st, json_t *kase, basira_error *err)
{
    sqlite3_stmt *s;
    basira_code rc = store_prepare(st,
                                   "SELECT i.id, i.created_at, p.image_id IS NOT NULL, "
                                   "i.result FROM images i "
                                   "LEFT JOIN photos p ON p.image_id = i.id WHERE i.case_id = ? "
                                   "AND i.kind = 'photo' ORDER BY i.id",
                                   &s, err);
    if (rc)
        return rc;
    json_t *images = json_array();
    store_bound(st, sqlite3_bind_int64(s, 1, json_integer_value(json_object_get(kase, "id"))));
    while (images && sqlite3_step(s) == SQLITE_ROW) {
        char when[32];
        store_iso_time(sqlite3_column_int64(s, 1), when);
        json_t *result = json_loads(store_col_text(s, 3) ? store_col_text(s, 3) : "", 0, NULL);
        json_t *risk = json_object_get(result, "risk");
        json_t *index = json_object_get(risk, "index"), *cat = json_object_get(risk, "category");
        json_array_append_new(images,
                              json_pack("{s:I, s:s, s:b, s:O?, s:O?}", "id",
                                        (json_int_t)sqlite3_column_int64(s, 0), "created_at", when,
                                        "photo_stored", sqlite3_column_int(s, 2), "risk_index",
                                        json_is_number(index) ? index : NULL, "category",
                                        json_is_string(cat) ? cat : NULL));
        json_decref(result);
    }
    sqlite3_finalize(s);
    if (!images)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    json_object_set_new(kase, "images", images);
    return BASIRA_OK;
}

basira_code basira_store_patient_get(basira_store *st, const basira_actor *who,
                                     const char *patient_ref, json_t **out, basira_error *err)
{
    basira_code rc = basira_patient_ref_check(patient_ref, err);
    if (rc)
        return rc;
    sqlite3_stmt *s = NULL;
    json_t *cases = json_array();
    if (!cases)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    pthread_mutex_lock(&st->lock);
    if ((rc = store_begin(st, err)) ||
        (rc = store_prepare(st,
                            "SELECT " STORE_CASE_COLUMNS " FROM cases WHERE patient_ref = ? "
                            "ORDER BY created_at, id",
                            &s, err)))
        goto out;
    store_bound(st, sqlite3_bind_text(s, 1, patient_ref, -1, SQLITE_STATIC));
    while (sqlite3_step(s) == SQLITE_ROW)
        json_array_append_new(cases, store_case_summary(s));
    sqlite3_finalize(s);
    s = NULL;
    for (size_t i = 0; !rc && i < json_array_size(cases); i++)
        rc = patient_images(st, json_array_get(cases, i), err);
    if (rc)
        goto out;
    int found = json_array_size(cases) > 0;
    char detail[64];
    snprintf(detail, sizeof detail, "cases=%zu", json_array_size(cases));
    if ((rc = store_audit_append_locked(st, who, "patient_read", 0, found ? "ok" : "not_found",
                                        detail, err)) ||
        (rc = store_commit(st, err)))
        goto out;
    if (!found)
        rc = basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no case for this patient reference"));
out:
    sqlite3_finalize(s);
    store_rollback(st);
    pthread_mutex_unlock(&st->lock);
    if (rc) {
        json_decref(cases);
        return rc;
    }
    *out = json_pack("{s:s, s:o}", "patient_ref", patient_ref, "cases", cases);
    return *out ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, NULL);
}
