/*
 * orthanc.c - the national archive's REST client (libcurl) for Orthanc.
 *
 * Every request is bounded: connection and total time-outs, the size of an answer
 * (BASIRA_ARCHIVE_MAX_RESPONSE), HTTP(S) only, no redirects. What the server answers is
 * untrusted input: JSON is parsed strictly (jansson), identifiers are checked before they
 * become file names, and a stored instance is only "pushed" once it has been read back and
 * found byte-identical to the file sent.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basira/archive.h"
#include "basira/deid.h"
#include "core/i18n.h"

#define MAX_DICOM_FILE ((size_t)1 << 30)

struct basira_archive {
    CURL *curl;
    char url[1024];
    char userpwd[512];
};

typedef struct buf {
    char *data;
    size_t len, cap;
    int overflow;
} buf;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    buf *b = arg;
    size_t add = size * n;
    if (b->len + add > BASIRA_ARCHIVE_MAX_RESPONSE) {
        b->overflow = 1;
        return 0;
    }
    if (b->len + add + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + add + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, add);
    b->len += add;
    b->data[b->len] = 0;
    return add;
}

basira_code basira_archive_open(const char *url, const char *user, const char *password,
                                basira_archive **out, basira_error *err)
{
    *out = NULL;
    if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("the archive URL must start with http:// or https://"));
    basira_archive *a = calloc(1, sizeof *a);
    if (!a)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    snprintf(a->url, sizeof a->url, "%s", url);
    size_t n = strlen(a->url);
    while (n && a->url[n - 1] == '/')
        a->url[--n] = 0;
    if (user)
        snprintf(a->userpwd, sizeof a->userpwd, "%s:%s", user, password ? password : "");
    a->curl = curl_easy_init();
    if (!a->curl) {
        free(a);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    *out = a;
    return BASIRA_OK;
}

void basira_archive_close(basira_archive *a)
{
    if (!a)
        return;
    curl_easy_cleanup(a->curl);
    memset(a->userpwd, 0, sizeof a->userpwd);
    free(a);
}

/* One request; the answer's body in *resp (caller frees resp->data). */
static basira_code request(basira_archive *a, const char *method, const char *path,
                           const void *body, size_t len, const char *type, buf *resp,
                           basira_error *err)
{
    memset(resp, 0, sizeof *resp);
    char url[2048];
    snprintf(url, sizeof url, "%s%s", a->url, path);
    CURL *c = a->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    if (a->userpwd[0]) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, a->userpwd);
    }
    struct curl_slist *h = NULL;
    if (body) {
        char ct[128];
        snprintf(ct, sizeof ct, "Content-Type: %s", type);
        h = curl_slist_append(h, ct);
        h = curl_slist_append(h, "Expect:");
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (strcmp(method, "GET") && strcmp(method, "POST"))
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    basira_code rc = BASIRA_OK;
    if (resp->overflow)
        rc = basira_error_set(err, BASIRA_E_LIMIT, _("the archive's answer to %s is too large"),
                              path);
    else if (cc != CURLE_OK)
        rc = basira_error_set(err, BASIRA_E_IO, _("cannot reach the archive at %s: %s"), a->url,
                              curl_easy_strerror(cc));
    else if (status == 401 || status == 403)
        rc = basira_error_set(err, BASIRA_E_AUTH,
                              _("the archive refused the credentials (HTTP %ld)"), status);
    else if (status < 200 || status > 299)
        rc = basira_error_set(err, BASIRA_E_IO, _("the archive answered HTTP %ld to %s %s"), status,
                              method, path);
    if (rc) {
        free(resp->data);
        memset(resp, 0, sizeof *resp);
    }
    return rc;
}

static basira_code parse_json(const buf *b, const char *what, json_t **out, basira_error *err)
{
    json_error_t je;
    *out = b->data ? json_loadb(b->data, b->len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!*out)
        return basira_error_set(err, BASIRA_E_FORMAT, _("the archive's answer to %s is not JSON"),
                                what);
    return BASIRA_OK;
}

/* Orthanc identifiers: hex digits and dashes, as a file name they cannot escape a folder. */
static int valid_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n < 64 && strspn(s, "0123456789abcdef-") == n;
}

static basira_code read_file(const char *path, char **data, size_t *len, basira_error *err)
{
    *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return basira_error_set(err, BASIRA_E_IO, _("cannot read %s: %s"), path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || (size_t)st.st_size > MAX_DICOM_FILE) {
        fclose(f);
        return basira_error_set(err, BASIRA_E_LIMIT, _("%s is too large"), path);
    }
    *len = (size_t)st.st_size;
    *data = malloc(*len ? *len : 1);
    if (!*data || fread(*data, 1, *len, f) != *len) {
        fclose(f);
        free(*data);
        *data = NULL;
        return basira_error_set(err, BASIRA_E_IO, _("cannot read %s: %s"), path,
                                strerror(errno ? errno : EIO));
    }
    fclose(f);
    return BASIRA_OK;
}

basira_code basira_archive_push(basira_archive *a, const char *path, basira_archive_pushed *out,
                                basira_error *err)
{
    memset(out, 0, sizeof *out);
    basira_code rc = basira_deid_check_file(path, NULL, err);
    if (rc)
        return rc;
    char *data = NULL;
    size_t len = 0;
    if ((rc = read_file(path, &data, &len, err)))
        return rc;
    buf r;
    json_t *j = NULL;
    rc = request(a, "POST", "/instances", data, len, "application/dicom", &r, err);
    if (!rc)
        rc = parse_json(&r, "/instances", &j, err);
    free(r.data);
    const char *id = json_string_value(json_object_get(j, "ID"));
    const char *status = json_string_value(json_object_get(j, "Status"));
    if (!rc && (!valid_id(id) || !status))
        rc = basira_error_set(err, BASIRA_E_FORMAT, _("the archive did not say where it stored %s"),
                              path);
    if (!rc) {
        snprintf(out->instance, sizeof out->instance, "%s", id);
        snprintf(out->status, sizeof out->status, "%s", status);
    }
    json_decref(j);
    /* Read back what the archive holds and compare it with what was sent. */
    if (!rc) {
        char p[128];
        snprintf(p, sizeof p, "/instances/%s/file", out->instance);
        rc = request(a, "GET", p, NULL, 0, NULL, &r, err);
        if (!rc && (r.len != len || memcmp(r.data, data, len)))
            rc = basira_error_set(err, BASIRA_E_CORRUPT,
                                  _("the archive stored %s differently from what was sent "
                                    "(instance %s)"),
                                  path, out->instance);
        free(r.data);
        out->verified = !rc;
    }
    free(data);
    return rc;
}

static int write_csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n"))
        return fputs(s, f) < 0 ? -1 : 0;
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    return fputc('"', f) == EOF ? -1 : 0;
}

static basira_code write_bytes(const char *path, const buf *b, basira_error *err)
{
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s.partial", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), tmp, strerror(errno));
    int bad = fwrite(b->data, 1, b->len, f) != b->len;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path)) {
        unlink(tmp);
        return basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), path,
                                strerror(errno ? errno : EIO));
    }
    return BASIRA_OK;
}

basira_code basira_archive_pull(basira_archive *a, const basira_archive_query *q,
                                const char *out_dir, size_t *n_out, basira_error *err)
{
    *n_out = 0;
    if (!q->label_tag)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("the attribute holding the label is required"));
    json_t *query = json_object();
    for (int i = 0; i < q->n; i++)
        json_object_set_new(query, q->keys[i], json_string(q->values[i]));
    json_t *body =
        json_pack("{s:s, s:o}", "Level", q->level ? q->level : "Instance", "Query", query);
    if (q->limit)
        json_object_set_new(body, "Limit", json_integer((json_int_t)q->limit));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    buf r;
    json_t *ids = NULL;
    basira_code rc =
        request(a, "POST", "/tools/find", text, strlen(text), "application/json", &r, err);
    free(text);
    if (!rc)
        rc = parse_json(&r, "/tools/find", &ids, err);
    free(r.data);
    if (!rc && !json_is_array(ids))
        rc = basira_error_set(err, BASIRA_E_FORMAT, _("the archive's answer to %s is not JSON"),
                              "/tools/find");
    char images[4096], csv[4096], tmpcsv[4200];
    snprintf(images, sizeof images, "%s/images", out_dir);
    snprintf(csv, sizeof csv, "%s/labels.csv", out_dir);
    snprintf(tmpcsv, sizeof tmpcsv, "%s.partial", csv);
    if (!rc &&
        ((mkdir(out_dir, 0755) && errno != EEXIST) || (mkdir(images, 0755) && errno != EEXIST)))
        rc = basira_error_set(err, BASIRA_E_IO, _("cannot create %s: %s"), images, strerror(errno));
    FILE *f = rc ? NULL : fopen(tmpcsv, "w");
    if (!rc && !f)
        rc = basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), tmpcsv, strerror(errno));
    if (f)
        fputs("file,label,patient\n", f);
    for (size_t i = 0; !rc && i < json_array_size(ids); i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        if (!valid_id(id)) {
            rc = basira_error_set(err, BASIRA_E_FORMAT,
                                  _("the archive returned an invalid "
                                    "instance identifier"));
            break;
        }
        char p[256], file[4300];
        json_t *tags = NULL;
        snprintf(p, sizeof p, "/instances/%s/simplified-tags", id);
        rc = request(a, "GET", p, NULL, 0, NULL, &r, err);
        if (!rc)
            rc = parse_json(&r, p, &tags, err);
        free(r.data);
        const char *label = json_string_value(json_object_get(tags, q->label_tag));
        const char *patient = json_string_value(json_object_get(tags, "PatientID"));
        if (!rc && (!label || !*label)) {
            json_decref(tags);
            continue; /* an instance without a label is no training example */
        }
        if (!rc) {
            snprintf(p, sizeof p, "/instances/%s/preview", id);
            rc = request(a, "GET", p, NULL, 0, NULL, &r, err);
            snprintf(file, sizeof file, "%s/%s.png", images, id);
            if (!rc && (r.len < 8 || memcmp(r.data, "\x89PNG", 4)))
                rc = basira_error_set(err, BASIRA_E_FORMAT,
                                      _("the archive's rendering of %s is not a PNG image"), id);
            if (!rc)
                rc = write_bytes(file, &r, err);
            free(r.data);
        }
        if (!rc) {
            char name[128];
            snprintf(name, sizeof name, "%s.png", id);
            if (write_csv_field(f, name) || fputc(',', f) == EOF || write_csv_field(f, label) ||
                fputc(',', f) == EOF || write_csv_field(f, patient ? patient : "") ||
                fputc('\n', f) == EOF)
                rc = basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), tmpcsv,
                                      strerror(errno ? errno : EIO));
            else
                (*n_out)++;
        }
        json_decref(tags);
    }
    json_decref(ids);
    if (f) {
        if (fclose(f) && !rc)
            rc = basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), tmpcsv,
                                  strerror(errno));
        if (!rc && rename(tmpcsv, csv))
            rc = basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), csv, strerror(errno));
        if (rc)
            unlink(tmpcsv);
    }
    return rc;
}
