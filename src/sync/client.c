/*
 * client.c - the node's HTTP side of the sync: one signed, compressed POST to
 * the hub with libcurl, with the link cap and the byte count.
 */
#include "core/i18n.h"
#include "sync_internal.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

typedef struct buf {
    char *data;
    size_t len, max;
    int too_big;
} buf;

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    buf *b = ud;
    size_t k = size * n;
    if (k > b->max || b->len > b->max - k) {
        b->too_big = 1;
        return 0;
    }
    char *nd = realloc(b->data, b->len + k + 1);
    if (!nd)
        return 0;
    memcpy(nd + b->len, p, k);
    b->data = nd;
    b->len += k;
    b->data[b->len] = '\0';
    return k;
}

static basira_code post_once(const basira_sync_options *o, const char *path, const char *node,
                             const unsigned char *sk, const void *data, size_t len, int compress,
                             size_t answer_max, json_t **answer, basira_sync_report *rep,
                             basira_error *err)
{
    *answer = NULL;
    const char *json = data;
    unsigned char *z = NULL;
    const unsigned char *body = data;
    size_t body_len = len;
    if (compress && len > 512) {
        uLongf zlen = compressBound((uLong)len);
        z = malloc(zlen);
        if (!z)
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        if (compress2(z, &zlen, (const Bytef *)json, (uLong)len, 6) != Z_OK) {
            free(z);
            return basira_error_set(err, BASIRA_E_INTERNAL, _("cannot compress the batch"));
        }
        body = z;
        body_len = zlen;
    }
    char sig_hex[2 * crypto_sign_BYTES + 1], h_sig[200], h_node[120], url[2300];
    if (sk) {
        unsigned char sig[crypto_sign_BYTES];
        crypto_sign_detached(sig, NULL, body, body_len, sk);
        sodium_bin2hex(sig_hex, sizeof sig_hex, sig, sizeof sig);
    }
    snprintf(url, sizeof url, "%s%s", o->hub_url, path);
    CURL *c = curl_easy_init();
    if (!c) {
        free(z);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    struct curl_slist *h =
        curl_slist_append(NULL, compress ? "Content-Type: application/json"
                                         : "Content-Type: application/octet-stream");
    h = curl_slist_append(h, "Expect:");
    if (z)
        h = curl_slist_append(h, "Content-Encoding: deflate");
    if (sk) {
        snprintf(h_sig, sizeof h_sig, "X-Basira-Signature: %s", sig_hex);
        snprintf(h_node, sizeof h_node, "X-Basira-Node: %s", node);
        h = curl_slist_append(h, h_sig);
        h = curl_slist_append(h, h_node);
    }
    buf b = {NULL, 0, answer_max, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, o->request_timeout_s);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (o->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
    if (o->max_kbps > 0) {
        curl_off_t bps = (curl_off_t)o->max_kbps * 1000 / 8;
        curl_easy_setopt(c, CURLOPT_MAX_SEND_SPEED_LARGE, bps);
        curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE, bps);
    }
    CURLcode cr = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rep) {
        curl_off_t up = 0, down = 0;
        long req = 0, hdr = 0;
        curl_easy_getinfo(c, CURLINFO_SIZE_UPLOAD_T, &up);
        curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &down);
        curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &req);
        curl_easy_getinfo(c, CURLINFO_HEADER_SIZE, &hdr);
        rep->bytes_up += (int64_t)up + req;
        rep->bytes_down += (int64_t)down + hdr;
        rep->requests++;
        curl_off_t us = 0;
        curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &us);
        /* The link's speed, measured on requests big enough to say something (chunks). */
        if (cr == CURLE_OK && body_len >= 32 * 1024 && us > 0) {
            long kbps = (long)((double)up * 8.0 * 1000.0 / (double)us);
            if (kbps > rep->link_kbps)
                rep->link_kbps = kbps;
        }
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    free(z);
    basira_code rc = BASIRA_OK;
    /* A cut or oversized answer is not parsed: it is refused below whatever it holds. */
    json_t *j = b.data && !b.too_big && cr == CURLE_OK ? json_loadb(b.data, b.len, 0, NULL) : NULL;
    if (b.too_big) {
        /* Not a cut link: the same answer would come again, so it is not retried. */
        rc = basira_error_set(err, BASIRA_E_LIMIT,
                              _("the hub's answer is larger than %zu MB: refused"),
                              answer_max >> 20);
    } else if (cr != CURLE_OK) {
        rc = basira_error_set(err, BASIRA_E_IO, _("cannot reach the hub at %s: %s"), o->hub_url,
                              curl_easy_strerror(cr));
    } else if (status != 200) {
        const char *msg =
            json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        const char *code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
        basira_code bc = BASIRA_E_UNSUPPORTED; /* an answer, not a cut link: not retried */
        if (code && !strcmp(code, "store_error"))
            bc = BASIRA_E_IO; /* the hub's database was unreachable: worth a retry */
        else if (code && !strcmp(code, "unauthenticated"))
            bc = BASIRA_E_AUTH;
        else if (code && !strcmp(code, "conflict"))
            bc = BASIRA_E_CONFLICT;
        rc = basira_error_set(err, bc, _("the hub answered %ld: %s"), status, msg ? msg : "?");
    } else if (!json_is_object(j)) {
        rc = basira_error_set(err, BASIRA_E_FORMAT, _("the hub's answer is not valid JSON"));
    }
    free(b.data);
    if (rc) {
        json_decref(j);
        return rc;
    }
    *answer = j;
    return BASIRA_OK;
}

/*
 * A cut or refused connection is retried a few times (0.5, 1, 2 s apart):
 * pushes and pulls are idempotent, so resending is always safe, and on a link
 * that drops one connection in twenty a round should not fail for one drop.
 * Answers from the hub (HTTP errors) are not retried. Enrolment (unsigned) is
 * sent once: a token is spent by the first delivery that arrives.
 */
static basira_code post_retried(const basira_sync_options *o, const char *path, const char *node,
                                const unsigned char *sk, const void *body, size_t len, int compress,
                                size_t answer_max, json_t **answer, basira_sync_report *rep,
                                basira_error *err)
{
    basira_code rc = BASIRA_OK;
    for (int attempt = 0; attempt < (sk ? 4 : 1); attempt++) {
        if (attempt) {
            struct timespec ts = {0, 500000000L};
            for (int i = 1; i < attempt; i++) {
                ts.tv_sec = ts.tv_sec * 2 + (ts.tv_nsec * 2) / 1000000000L;
                ts.tv_nsec = (ts.tv_nsec * 2) % 1000000000L;
            }
            nanosleep(&ts, NULL);
        }
        rc = post_once(o, path, node, sk, body, len, compress, answer_max, answer, rep, err);
        if (rc != BASIRA_E_IO || !o->retry_transport)
            break;
    }
    return rc;
}

basira_code sync_post(const basira_sync_options *o, const char *path, const char *node,
                      const unsigned char *sk, const char *json, json_t **answer,
                      basira_sync_report *rep, basira_error *err)
{
    return sync_post_capped(o, path, node, sk, json, SYNC_ANSWER_MAX, answer, rep, err);
}

basira_code sync_post_capped(const basira_sync_options *o, const char *path, const char *node,
                             const unsigned char *sk, const char *json, size_t answer_max,
                             json_t **answer, basira_sync_report *rep, basira_error *err)
{
    return post_retried(o, path, node, sk, json, strlen(json), 1, answer_max, answer, rep, err);
}

basira_code sync_post_raw(const basira_sync_options *o, const char *path, const char *node,
                          const unsigned char *sk, const void *body, size_t len, json_t **answer,
                          basira_sync_report *rep, basira_error *err)
{
    return post_retried(o, path, node, sk, body, len, 0, SYNC_ANSWER_MAX, answer, rep, err);
}
