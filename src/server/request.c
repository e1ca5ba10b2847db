/*
 * request.c - parsing what clients send: JSON bodies and multipart uploads.
 *
 * Everything here reads untrusted bytes, is pure (no I/O) and is fuzzed
 * (fuzz/fuzz_http_json.c). Multipart is parsed here rather than with
 * libmicrohttpd's post processor because that one needs a live connection and
 * streams field by field; the server already holds the whole (size-limited)
 * body, and a pure function can be fuzzed and unit-tested on its own.
 */
#include "basira/server.h"
#include "core/i18n.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static basira_code load_object(const char *body, size_t len, json_t **out, basira_error *err)
{
    json_error_t jerr;
    *out = NULL;
    if (!body || len == 0)
        return basira_error_setm(err, BASIRA_E_FORMAT, N_("the request body is empty; send JSON"));
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return basira_error_setm(err, BASIRA_E_FORMAT,
                                 N_("malformed JSON at line %d column %d: %s"), jerr.line,
                                 jerr.column, jerr.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return basira_error_setm(err, BASIRA_E_FORMAT,
                                 N_("the request body must be a JSON object"));
    }
    *out = j;
    return BASIRA_OK;
}

/* Refuse fields we do not know: a typo ("concent") must not silently drop data. */
static basira_code only_keys(const json_t *obj, const char *const *allowed, const char *where,
                             basira_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = !strcmp(key, *a);
        if (!ok)
            return basira_error_setm(err, BASIRA_E_FORMAT, N_("unknown field '%.64s' in %s"), key,
                                     where);
    }
    return BASIRA_OK;
}

static basira_code get_string(const json_t *obj, const char *key, int required, const char **out,
                              basira_error *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required)
            return basira_error_setm(err, BASIRA_E_FORMAT, N_("missing field '%s'"), key);
        return BASIRA_OK;
    }
    if (!json_is_string(v))
        return basira_error_setm(err, BASIRA_E_FORMAT, N_("field '%s' must be a string"), key);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return basira_error_setm(err, BASIRA_E_FORMAT, N_("field '%s' must not contain NUL"), key);
    *out = json_string_value(v);
    return BASIRA_OK;
}

/* true/false -> 1/0, null or absent -> -1. */
static basira_code get_tristate(const json_t *obj, const char *key, int *out, basira_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        *out = -1;
    else if (json_is_boolean(v))
        *out = json_is_true(v);
    else
        return basira_error_setm(err, BASIRA_E_FORMAT, N_("field '%s' must be true, false or null"),
                                 key);
    return BASIRA_OK;
}

basira_code basira_request_parse_case(const char *body, size_t len, basira_case_new *c,
                                      json_t **holder, basira_error *err)
{
    static const char *const top[] = {"patient_ref", "age",     "sex", "body_site",
                                      "history",     "consent", NULL};
    static const char *const hist_keys[] = {"changed", "bleeding",        "rapid_growth",
                                            "itching", "duration_months", NULL};
    static const char *const consent_keys[] = {"care", "research", "remote_review", "recorded_by",
                                               NULL};
    memset(c, 0, sizeof *c);
    c->age = -1;
    c->changed = c->bleeding = c->itching = c->rapid_growth = -1;
    c->duration_months = -1;
    c->sex = "unknown";
    json_t *j;
    basira_code rc = load_object(body, len, &j, err);
    if (rc)
        return rc;
    if ((rc = only_keys(j, top, "the case", err)) ||
        (rc = get_string(j, "patient_ref", 1, &c->patient_ref, err)) ||
        (rc = get_string(j, "body_site", 0, &c->body_site, err)))
        goto fail;
    const char *sex = NULL;
    if ((rc = get_string(j, "sex", 0, &sex, err)))
        goto fail;
    if (sex)
        c->sex = sex;
    json_t *age = json_object_get(j, "age");
    if (age && !json_is_null(age)) {
        if (!json_is_integer(age) || json_integer_value(age) < 0 || json_integer_value(age) > 130) {
            rc = basira_error_setm(err, BASIRA_E_FORMAT,
                                   N_("field 'age' must be a whole number of years from 0 to 130"));
            goto fail;
        }
        c->age = (int)json_integer_value(age);
    }
    json_t *h = json_object_get(j, "history");
    if (h && !json_is_null(h)) {
        if (!json_is_object(h)) {
            rc = basira_error_setm(err, BASIRA_E_FORMAT, N_("field 'history' must be an object"));
            goto fail;
        }
        if ((rc = only_keys(h, hist_keys, "history", err)) ||
            (rc = get_tristate(h, "changed", &c->changed, err)) ||
            (rc = get_tristate(h, "bleeding", &c->bleeding, err)) ||
            (rc = get_tristate(h, "rapid_growth", &c->rapid_growth, err)) ||
            (rc = get_tristate(h, "itching", &c->itching, err)))
            goto fail;
        json_t *d = json_object_get(h, "duration_months");
        if (d && !json_is_null(d)) {
            if (!json_is_number(d) || !(json_number_value(d) >= 0) || json_number_value(d) > 1200) {
                rc = basira_error_setm(err, BASIRA_E_FORMAT,
                                       N_("field 'history.duration_months' must be a number from "
                                          "0 to 1200"));
                goto fail;
            }
            c->duration_months = json_number_value(d);
        }
    }
    json_t *cons = json_object_get(j, "consent");
    if (!json_is_object(cons)) {
        rc = basira_error_setm(err, BASIRA_E_CONSENT,
                               N_("the case needs \"consent\": {\"care\": true, \"recorded_by\": "
                                  "...}; nothing was stored"));
        goto fail;
    }
    int care = -1, research = -1, remote = -1;
    if ((rc = only_keys(cons, consent_keys, "consent", err)) ||
        (rc = get_tristate(cons, "care", &care, err)) ||
        (rc = get_tristate(cons, "research", &research, err)) ||
        (rc = get_tristate(cons, "remote_review", &remote, err)))
        goto fail;
    if (care != 1) {
        rc = basira_error_setm(err, BASIRA_E_CONSENT,
                               N_("the patient's consent for care is required before a case is "
                                  "recorded; nothing was stored"));
        goto fail;
    }
    c->consent_care = 1;
    c->consent_research = research == 1;
    c->consent_remote_review = remote == 1; /* false or absent: the case stays at the clinic */
    if ((rc = get_string(cons, "recorded_by", 1, &c->consent_recorded_by, err)))
        goto fail;
    *holder = j;
    return BASIRA_OK;
fail:
    json_decref(j);
    return rc;
}

basira_code basira_request_parse_decision(const char *body, size_t len, basira_decision *d,
                                          json_t **holder, basira_error *err)
{
    static const char *const keys[] = {"accept_ai", "category",  "reason", "referral",
                                       "note",      "follow_up", NULL};
    memset(d, 0, sizeof *d);
    json_t *j;
    basira_code rc = load_object(body, len, &j, err);
    if (rc)
        return rc;
    int accept = -1;
    if ((rc = only_keys(j, keys, "the decision", err)) ||
        (rc = get_tristate(j, "accept_ai", &accept, err)) ||
        (rc = get_string(j, "category", 0, &d->category, err)) ||
        (rc = get_string(j, "reason", 0, &d->reason, err)) ||
        (rc = get_string(j, "referral", 0, &d->referral, err)) ||
        (rc = get_string(j, "note", 0, &d->note, err)))
        goto fail;
    const char *fu = NULL;
    if ((rc = get_string(j, "follow_up", 0, &fu, err)) ||
        (fu && (rc = basira_parse_time(fu, 0, &d->follow_up_at, err))))
        goto fail;
    if (accept < 0) {
        rc = basira_error_setm(err, BASIRA_E_FORMAT,
                               N_("field 'accept_ai' (true or false) is required"));
        goto fail;
    }
    d->accept_ai = accept;
    *holder = j;
    return BASIRA_OK;
fail:
    json_decref(j);
    return rc;
}

/* Value of parameter `name` in a header like `multipart/form-data; boundary="x"`. */
static int header_param(const char *h, const char *name, char *out, size_t outsz)
{
    size_t nlen = strlen(name);
    for (const char *p = strchr(h, ';'); p; p = strchr(p + 1, ';')) {
        const char *q = p + 1;
        while (*q == ' ' || *q == '\t')
            q++;
        if (strncasecmp(q, name, nlen) || q[nlen] != '=')
            continue;
        q += nlen + 1;
        size_t n = 0;
        if (*q == '"') {
            q++;
            while (q[n] && q[n] != '"')
                n++;
            if (q[n] != '"')
                return -1;
        } else {
            while (q[n] && q[n] != ';' && q[n] != ' ' && q[n] != '\t')
                n++;
        }
        if (n == 0 || n >= outsz)
            return -1;
        memcpy(out, q, n);
        out[n] = '\0';
        return 0;
    }
    return -1;
}

basira_code basira_multipart_find(const char *content_type, const unsigned char *body, size_t len,
                                  const char *field, const unsigned char **part, size_t *part_len,
                                  char part_type[64], basira_error *err)
{
    char boundary[80], delim[84];
    *part = NULL;
    *part_len = 0;
    part_type[0] = '\0';
    if (!content_type || strncasecmp(content_type, "multipart/form-data", 19) ||
        header_param(content_type, "boundary", boundary, 71) != 0)
        return basira_error_setm(err, BASIRA_E_FORMAT,
                                 N_("multipart upload without a valid boundary"));
    /* An empty body arrives as (NULL, 0): memmem/memcmp must not see a NULL pointer. */
    if (!body || len == 0)
        return basira_error_setm(err, BASIRA_E_FORMAT, N_("malformed multipart body"));
    int dl = snprintf(delim, sizeof delim, "\r\n--%s", boundary);
    /* The first delimiter may open the body directly (no preceding CRLF). */
    const unsigned char *p = NULL;
    if (len >= (size_t)dl - 2 && !memcmp(body, delim + 2, (size_t)dl - 2))
        p = body + dl - 2;
    else {
        p = memmem(body, len, delim, (size_t)dl);
        if (p)
            p += dl;
    }
    const unsigned char *end = body + len;
    while (p) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            break; /* closing delimiter */
        /* Transport padding, then CRLF. */
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return basira_error_setm(err, BASIRA_E_FORMAT, N_("malformed multipart body"));
        p += 2;
        const unsigned char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!hend || hend - p > 8192)
            return basira_error_setm(err, BASIRA_E_FORMAT, N_("malformed multipart part headers"));
        char name[128] = "", ctype[64] = "";
        int named = 0;
        for (const unsigned char *line = p; line < hend;) {
            const unsigned char *eol = memmem(line, (size_t)(hend - line), "\r\n", 2);
            if (!eol)
                eol = hend;
            char hdr[1024];
            size_t hl = (size_t)(eol - line);
            if (hl >= sizeof hdr)
                return basira_error_setm(err, BASIRA_E_FORMAT,
                                         N_("malformed multipart part headers"));
            memcpy(hdr, line, hl);
            hdr[hl] = '\0';
            if (memchr(hdr, '\0', hl))
                return basira_error_setm(err, BASIRA_E_FORMAT,
                                         N_("malformed multipart part headers"));
            if (!strncasecmp(hdr, "content-disposition:", 20)) {
                named = header_param(hdr, "name", name, sizeof name) == 0;
            } else if (!strncasecmp(hdr, "content-type:", 13)) {
                const char *v = hdr + 13;
                while (*v == ' ' || *v == '\t')
                    v++;
                size_t n = strcspn(v, "; \t");
                if (n >= sizeof ctype)
                    n = sizeof ctype - 1;
                memcpy(ctype, v, n);
                ctype[n] = '\0';
            }
            line = eol + 2;
        }
        const unsigned char *data = hend + 4;
        const unsigned char *next = memmem(data, (size_t)(end - data), delim, (size_t)dl);
        if (!next)
            return basira_error_setm(err, BASIRA_E_FORMAT,
                                     N_("malformed multipart body: a part is not terminated"));
        if (named && !strcmp(name, field)) {
            *part = data;
            *part_len = (size_t)(next - data);
            snprintf(part_type, 64, "%s", ctype);
            return BASIRA_OK;
        }
        p = next + dl;
    }
    if (!p)
        return basira_error_setm(err, BASIRA_E_FORMAT, N_("malformed multipart body"));
    return basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("the upload has no field '%s'"), field);
}

basira_code basira_parse_time(const char *s, int end_of_day, int64_t *out, basira_error *err)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = s ? strptime(s, "%Y-%m-%d", &tm) : NULL;
    int date_only = rest && *rest == '\0';
    if (rest && !date_only) {
        if (*rest != 'T')
            rest = NULL;
        else {
            rest = strptime(rest + 1, "%H:%M:%S", &tm);
            if (rest && *rest == 'Z')
                rest++;
        }
    }
    if (!rest || *rest || tm.tm_year < 70 || tm.tm_year > 1100)
        return basira_error_setm(err, BASIRA_E_FORMAT,
                                 N_("invalid date '%.40s' (expected YYYY-MM-DD or "
                                    "YYYY-MM-DDTHH:MM:SSZ)"),
                                 s ? s : "");
    if (date_only && end_of_day) {
        tm.tm_hour = 23;
        tm.tm_min = 59;
        tm.tm_sec = 59;
    }
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return basira_error_setm(err, BASIRA_E_FORMAT, N_("invalid date '%.40s'"), s);
    *out = (int64_t)t;
    return BASIRA_OK;
}

/*
 * If-Match: "7" (or W/"7", or 7): the version the decider saw. Absent: -1 (no
 * check, for older clients); "*": any. Malformed: -2.
 */
int64_t basira_request_if_match(const char *v)
{
    if (!v)
        return -1;
    while (*v == ' ')
        v++;
    if (!strcmp(v, "*"))
        return -1;
    if (!strncmp(v, "W/", 2))
        v += 2;
    int quoted = *v == '"';
    v += quoted;
    if (!(*v >= '0' && *v <= '9'))
        return -2;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || n < 0 || (quoted && *end++ != '"'))
        return -2;
    while (*end == ' ')
        end++;
    return *end ? -2 : n;
}
