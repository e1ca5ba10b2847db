/*
 * test_server_load.c - the bounded load test of issue 13: 64 clients, each from
 * its own loopback address, for 60 s (BASIRA_LOAD_SECONDS to change), each in a
 * loop signing in, creating a case, uploading a photo analysed by the bundled
 * model, reading the case and the worklist, signing out. Zero errors allowed: every
 * request gets its expected status. Labelled slow.
 */
#include "basira/image.h"
#include "basira/server.h"
#include "basira/store.h"
#include "basira/triage.h"
#include "http_client.h"
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

static const basira_store_options test_fast_store = {BASIRA_ARGON2_MINIMUM};

#define CLIENTS 64

static unsigned port;
static uint8_t *photo;
static size_t photo_len;
static double seconds = 60;
static atomic_long requests, errors, rounds;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static basira_code analyze(void *ctx, const void *data, size_t len, const basira_history *history,
                           basira_triage_result *out, basira_error *err)
{
    basira_triage_request req = {.history = history, .force = 0};
    return basira_pipeline_analyze(ctx, data, len, &req, NULL, out, err);
}

static void expect(long got, long want, const char *what, int client)
{
    atomic_fetch_add(&requests, 1);
    if (got != want) {
        if (atomic_fetch_add(&errors, 1) < 10)
            fprintf(stderr, "client %d: %s answered %ld, expected %ld\n", client, what, got, want);
    }
}

static void *client(void *arg)
{
    int k = (int)(intptr_t)arg;
    char user[32], iface[32], body[256], path[96];
    snprintf(user, sizeof user, "load%02d", k);
    snprintf(iface, sizeof iface, "host!127.0.1.%d", k + 1); /* one address per client */
    double end = now_s() + seconds;
    while (now_s() < end) {
        http_client c;
        http_init(&c, "http", port);
        curl_easy_setopt(c.curl, CURLOPT_INTERFACE, iface);
        expect(http_login(&c, user, "password-123"), 200, "sign-in", k);
        snprintf(body, sizeof body,
                 "{\"patient_ref\": \"L-%d-%ld\", \"age\": 50, \"consent\": {\"care\": true, "
                 "\"recorded_by\": \"%s\"}}",
                 k, atomic_load(&rounds), user);
        long st = http_json(&c, "POST", "/cases", body);
        expect(st, 201, "create", k);
        long long id = json_integer_value(json_object_get(c.json, "id"));
        if (st == 201 && id > 0) {
            snprintf(path, sizeof path, "/cases/%lld/images", id);
            st = http_req(&c, "POST", path, "image/jpeg", photo, photo_len, 1);
            atomic_fetch_add(&requests, 1);
            if (st != 201 && st != 200 && atomic_fetch_add(&errors, 1) < 10)
                fprintf(stderr, "client %d: upload answered %ld: %.200s\n", k, st,
                        c.body.data ? c.body.data : "");
            snprintf(path, sizeof path, "/cases/%lld", id);
            expect(http_req(&c, "GET", path, NULL, NULL, 0, 0), 200, "read", k);
        }
        expect(http_req(&c, "GET", "/cases?limit=20", NULL, NULL, 0, 0), 200, "worklist", k);
        expect(http_req(&c, "DELETE", "/session", NULL, NULL, 0, 1), 200, "sign-out", k);
        http_free(&c);
        atomic_fetch_add(&rounds, 1);
    }
    return NULL;
}

int main(void)
{
    setenv("BASIRA_ARGON2_FAST", "1", 1);
    const char *sec = getenv("BASIRA_LOAD_SECONDS");
    if (sec && atof(sec) > 0)
        seconds = atof(sec);
    curl_global_init(CURL_GLOBAL_ALL);
    char tmpdir[] = "/tmp/basira-load-XXXXXX";
    if (!mkdtemp(tmpdir))
        return 1;
    basira_error err;
    basira_store *store = NULL;
    basira_store_key key = {"load test passphrase", NULL};
    if (basira_store_open(tmpdir, &key, 1, &test_fast_store, &store, &err)) {
        fprintf(stderr, "store: %s\n", err.message);
        return 1;
    }
    basira_actor setup = {"setup", "local"};
    for (int k = 0; k < CLIENTS; k++) {
        char user[32];
        snprintf(user, sizeof user, "load%02d", k);
        if (basira_store_user_add(store, &setup, user, k % 2 ? BASIRA_ROLE_GP : BASIRA_ROLE_NURSE,
                                  "password-123", &err))
            return 1;
    }
    basira_pipeline *pipe = NULL;
    if (basira_pipeline_new(NULL, NULL, &pipe, &err))
        TEST_SKIP("no bundled model: %s", err.message);
    /* A 320 x 240 photo-like image: a skin-coloured field with a darker lesion. */
    int w = 320, h = 240;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int dx = x - w / 2, dy = y - h / 2, in = dx * dx + dy * dy < 40 * 40;
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(in ? 120 : 215 - (x + y) % 17);
            p[1] = (uint8_t)(in ? 70 : 170 - (x * 3 + y) % 13);
            p[2] = (uint8_t)(in ? 50 : 140 - (x + y * 5) % 11);
        }
    basira_image *img = NULL;
    CHECK_EQ_INT(basira_image_from_rgb(rgb, w, h, &img, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_image_encode_jpeg(img, 90, &photo, &photo_len, &err), BASIRA_OK);
    basira_image_free(img);
    free(rgb);

    char api[4096];
    const char *src = getenv("BASIRA_SOURCE_DIR");
    snprintf(api, sizeof api, "%s/docs/openapi.json", src ? src : ".");
    basira_server_config cfg;
    basira_server_config_default(&cfg);
    cfg.port = 0;
    cfg.openapi_path = api;
    basira_analyzer an = {.analyze = analyze, .ctx = pipe};
    basira_server *server = NULL;
    if (basira_server_new(store, &an, &cfg, &server, &err) || basira_server_start(server, &err)) {
        fprintf(stderr, "server: %s\n", err.message);
        return 1;
    }
    port = basira_server_port(server);
    pthread_t th[CLIENTS];
    double t0 = now_s();
    for (int k = 0; k < CLIENTS; k++)
        pthread_create(&th[k], NULL, client, (void *)(intptr_t)k);
    for (int k = 0; k < CLIENTS; k++)
        pthread_join(th[k], NULL);
    double took = now_s() - t0;
    fprintf(stderr,
            "load: %d clients for %.0f s: %ld rounds (sign-in, create, upload, read, worklist, "
            "sign-out), %ld requests (%.0f/s), %ld errors\n",
            CLIENTS, took, atomic_load(&rounds), atomic_load(&requests),
            (double)atomic_load(&requests) / took, atomic_load(&errors));
    CHECK(atomic_load(&rounds) >= CLIENTS);
    CHECK_EQ_INT(atomic_load(&errors), 0);
    basira_audit_report rep;
    CHECK_EQ_INT(basira_store_audit_verify(store, &rep, &err), BASIRA_OK);
    basira_server_stop(server, 5);
    basira_server_free(server);
    basira_pipeline_free(pipe);
    basira_store_free(store);
    free(photo);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    curl_global_cleanup();
    return test_summary();
}
