/*
 * http_client.h - a small libcurl client for the API tests: one cookie jar per
 * client (a signed-in person), the CSRF token read back from its cookie.
 */
#ifndef BASIRA_TEST_HTTP_CLIENT_H
#define BASIRA_TEST_HTTP_CLIENT_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct http_buf {
    char *data;
    size_t len;
} http_buf;

typedef struct http_client {
    CURL *curl;
    char base[128];
    char csrf[80];
    char set_cookies[2048]; /* Set-Cookie header lines of the last response */
    long status;
    http_buf body;
    json_t *json; /* parsed body of the last response, or NULL */
    /* Send "Expect: 100-continue" with a body: wait for the server's go-ahead (or its
     * refusal) before sending it, as curl does by itself for bodies over 1 MiB. */
    int expect_continue;
    const char *accept_language; /* sent as Accept-Language when set */
    char csp[512];               /* Content-Security-Policy of the last response ("" if none) */
} http_client;

static size_t http_write_(char *p, size_t sz, size_t n, void *ud)
{
    http_buf *b = ud;
    char *nb = realloc(b->data, b->len + sz * n + 1);
    if (!nb)
        return 0;
    memcpy(nb + b->len, p, sz * n);
    b->data = nb;
    b->len += sz * n;
    b->data[b->len] = '\0';
    return sz * n;
}

static size_t http_header_(char *p, size_t sz, size_t n, void *ud)
{
    http_client *c = ud;
    if (n * sz > 11 && !strncasecmp(p, "Set-Cookie:", 11)) {
        size_t used = strlen(c->set_cookies);
        size_t room = sizeof c->set_cookies - used - 1;
        size_t k = n * sz < room ? n * sz : room;
        memcpy(c->set_cookies + used, p, k);
        c->set_cookies[used + k] = '\0';
    }
    if (n * sz > 24 && !strncasecmp(p, "Content-Security-Policy:", 24)) {
        size_t k = n * sz - 24 < sizeof c->csp - 1 ? n * sz - 24 : sizeof c->csp - 1;
        memcpy(c->csp, p + 24, k);
        c->csp[k] = '\0';
    }
    return sz * n;
}

static inline void http_init(http_client *c, const char *scheme, unsigned port)
{
    memset(c, 0, sizeof *c);
    c->curl = curl_easy_init();
    snprintf(c->base, sizeof c->base, "%s://127.0.0.1:%u/api/v1", scheme, port);
    curl_easy_setopt(c->curl, CURLOPT_COOKIEFILE, ""); /* in-memory cookie engine */
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 0L);
}

static inline void http_free(http_client *c)
{
    curl_easy_cleanup(c->curl);
    free(c->body.data);
    json_decref(c->json);
    memset(c, 0, sizeof *c);
}

/* Perform a request; returns the HTTP status (0 when the transfer failed). */
static inline long http_req(http_client *c, const char *method, const char *path,
                            const char *content_type, const void *body, size_t len, int send_csrf)
{
    char url[512], ct[160], tok[128];
    struct curl_slist *h = NULL;
    snprintf(url, sizeof url, "%s%s", c->base, path);
    free(c->body.data);
    c->body.data = NULL;
    c->body.len = 0;
    json_decref(c->json);
    c->json = NULL;
    c->set_cookies[0] = '\0';
    c->csp[0] = '\0';
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, http_write_);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &c->body);
    curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, http_header_);
    curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, c);
    if (body) {
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
        curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    }
    if (content_type) {
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        h = curl_slist_append(h, ct);
    }
    h = curl_slist_append(h, c->expect_continue ? "Expect: 100-continue" : "Expect:");
    char al[160];
    if (c->accept_language) {
        snprintf(al, sizeof al, "Accept-Language: %s", c->accept_language);
        h = curl_slist_append(h, al);
    }
    if (send_csrf && c->csrf[0]) {
        snprintf(tok, sizeof tok, "X-CSRF-Token: %s", c->csrf);
        h = curl_slist_append(h, tok);
    }
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
    CURLcode rc = curl_easy_perform(c->curl);
    curl_slist_free_all(h);
    c->status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &c->status);
    if (c->body.data)
        c->json = json_loadb(c->body.data, c->body.len, 0, NULL);
    return c->status;
}

static inline long http_json(http_client *c, const char *method, const char *path,
                             const char *json_text)
{
    return http_req(c, method, path, "application/json", json_text,
                    json_text ? strlen(json_text) : 0, 1);
}

/* Sign in and pick the CSRF token from the cookie whose name contains "csrf". */
static inline long http_login(http_client *c, const char *user, const char *pass)
{
    char body[256];
    snprintf(body, sizeof body, "{\"username\": \"%s\", \"password\": \"%s\"}", user, pass);
    long st = http_req(c, "POST", "/session", "application/json", body, strlen(body), 0);
    c->csrf[0] = '\0';
    struct curl_slist *cookies = NULL;
    curl_easy_getinfo(c->curl, CURLINFO_COOKIELIST, &cookies);
    for (struct curl_slist *k = cookies; k; k = k->next) {
        /* Netscape format: domain, flag, path, secure, expiry, name, value (tabs). */
        char *fields[7] = {0};
        char line[512];
        snprintf(line, sizeof line, "%s", k->data);
        char *save = NULL, *t = strtok_r(line, "\t", &save);
        for (int i = 0; i < 7 && t; i++, t = strtok_r(NULL, "\t", &save))
            fields[i] = t;
        if (fields[5] && fields[6] && strstr(fields[5], "csrf"))
            snprintf(c->csrf, sizeof c->csrf, "%s", fields[6]);
    }
    curl_slist_free_all(cookies);
    return st;
}

static inline const char *http_error_code(const http_client *c)
{
    return json_string_value(json_object_get(json_object_get(c->json, "error"), "code"));
}

#endif
