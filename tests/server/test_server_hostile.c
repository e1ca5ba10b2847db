/*
 * test_server_hostile.c - the clinic node against a hostile network (issue 13):
 * strict request heads (NUL in the path, Content-Length with Transfer-Encoding,
 * conflicting lengths, HTTP/1.1 without Host) and connections that a slow client
 * cannot starve (per-address cap, global cap leaving room, hard header deadline,
 * every cut connection logged).
 */
#include "basira/server.h"
#include "basira/store.h"
#include "http_client.h"
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const basira_store_options test_fast_store = {BASIRA_ARGON2_MINIMUM};

static basira_store *store;
static basira_server *server;
static unsigned port;
static char tmpdir[256];
static char logpath[512];

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A TCP connection to the node from 127.0.0.<from> (the whole of 127/8 is loopback). */
static int connect_from(int from)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in src = {0}, dst = {0};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000000u | (unsigned)from);
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)port);
    dst.sin_addr.s_addr = htonl(0x7f000001u);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0 ||
        connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Send a raw request and read everything until the node closes (or timeout_s passes). */
static size_t raw_exchange(const char *req, size_t len, char *out, size_t outsz, double timeout_s)
{
    int fd = connect_from(1);
    if (fd < 0)
        return 0;
    CHECK(write(fd, req, len) == (ssize_t)len);
    struct timeval tv = {(time_t)timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < outsz && (n = read(fd, out + got, outsz - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(fd);
    return got;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_nul_in_path(void)
{
    http_client c;
    http_init(&c, "http", port);
    CHECK_EQ_INT(http_login(&c, "gp", "password-123"), 200);
    const char *body = "{\"patient_ref\": \"P-1\", \"consent\": {\"care\": true, \"recorded_by\": "
                       "\"gp\"}}";
    CHECK_EQ_INT(http_json(&c, "POST", "/cases", body), 201);
    long long id = json_integer_value(json_object_get(c.json, "id"));
    CHECK(id > 0);
    char path[64];
    snprintf(path, sizeof path, "/cases/%lld", id);
    CHECK_EQ_INT(http_req(&c, "GET", path, NULL, NULL, 0, 0), 200);
    /* libmicrohttpd decoded %00 into a NUL that ended the path: /cases/1%00 was case 1. */
    snprintf(path, sizeof path, "/cases/%lld%%00", id);
    CHECK_EQ_INT(http_req(&c, "GET", path, NULL, NULL, 0, 0), 400);
    CHECK(json_object_get(c.json, "patient_ref") == NULL);
    snprintf(path, sizeof path, "/cases/%lld%%00.pdf", id);
    CHECK_EQ_INT(http_req(&c, "GET", path, NULL, NULL, 0, 0), 400);
    /* Other escapes still decode. */
    snprintf(path, sizeof path, "/cases/%%3%lld", id); /* %31 = '1' when id is 1..9 */
    if (id < 10)
        CHECK_EQ_INT(http_req(&c, "GET", path, NULL, NULL, 0, 0), 200);
    http_free(&c);
}

static void test_smuggling(void)
{
    char out[8192];
    /* Content-Length and Transfer-Encoding: 400, connection closed, the pipelined request
     * hidden in the body never runs. */
    const char *both = "POST /api/v1/session HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       "application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "0\r\n\r\nGET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n";
    raw_exchange(both, strlen(both), out, sizeof out, 5);
    CHECK_MSG(!strncmp(out, "HTTP/1.1 400", 12), "got: %.80s", out);
    CHECK_EQ_INT(count(out, "HTTP/1.1 "), 1);
    CHECK(strstr(out, "Transfer-Encoding") != NULL);

    /* Two different Content-Lengths. */
    const char *two = "POST /api/v1/session HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      "application/json\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}";
    raw_exchange(two, strlen(two), out, sizeof out, 5);
    CHECK_MSG(!strncmp(out, "HTTP/1.1 400", 12), "got: %.80s", out);

    /* HTTP/1.1 without Host; HTTP/1.0 without Host is fine. */
    const char *nohost = "GET /api/v1/health HTTP/1.1\r\n\r\n";
    raw_exchange(nohost, strlen(nohost), out, sizeof out, 5);
    CHECK_MSG(!strncmp(out, "HTTP/1.1 400", 12), "got: %.80s", out);
    const char *old = "GET /api/v1/health HTTP/1.0\r\n\r\n";
    raw_exchange(old, strlen(old), out, sizeof out, 5);
    CHECK_MSG(strstr(out, " 200 ") != NULL, "got: %.80s", out);
    /* And an ordinary request still works. */
    const char *fine = "GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    raw_exchange(fine, strlen(fine), out, sizeof out, 5);
    CHECK_MSG(!strncmp(out, "HTTP/1.1 200", 12), "got: %.80s", out);
}

/*
 * The floor: 300 connections that send a few bytes of a request head and
 * go quiet (from 20 addresses, 15 each) do not keep a fresh client waiting: it gets
 * its answer within 2 s. An address over its cap is turned away at once; the slow
 * ones are cut at the header deadline, and each cut is in the access log.
 */
static void test_slow_connections(void)
{
    enum { N_ADDR = 20, PER_ADDR = 15 };
    int fds[N_ADDR * PER_ADDR];
    int open_ok = 0;
    double t0 = now_s();
    for (int a = 0; a < N_ADDR; a++)
        for (int k = 0; k < PER_ADDR; k++) {
            int fd = connect_from(10 + a);
            fds[a * PER_ADDR + k] = fd;
            if (fd >= 0 && write(fd, "GET /api/v1/health HTTP/1.1\r\nHo", 31) == 31)
                open_ok++;
        }
    CHECK_EQ_INT(open_ok, N_ADDR * PER_ADDR);
    usleep(200000);

    double t1 = now_s();
    http_client c;
    http_init(&c, "http", port);
    CHECK_EQ_INT(http_req(&c, "GET", "/health", NULL, NULL, 0, 0), 200);
    double waited = now_s() - t1;
    http_free(&c);
    fprintf(stderr, "fresh client answered in %.3f s with %d slow connections held\n", waited,
            open_ok);
    CHECK_MSG(waited < 2.0, "%.2f s", waited);

    /* Over the per-address cap (16): the 17th connection from one address is closed at once. */
    int extra[2];
    for (int i = 0; i < 2; i++)
        extra[i] = connect_from(10);
    char b;
    struct timeval tv = {3, 0};
    setsockopt(extra[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    double t2 = now_s();
    ssize_t n = extra[1] >= 0 ? read(extra[1], &b, 1) : 0;
    CHECK_MSG(n == 0 && now_s() - t2 < 2.5, "read %zd after %.1f s", n, now_s() - t2);
    for (int i = 0; i < 2; i++)
        if (extra[i] >= 0)
            close(extra[i]);

    /* The header deadline (3 s here) is hard: a head trickling in one byte every 0.4 s, never
     * idle, is cut too. */
    int trickle = connect_from(40);
    const char *head = "GET /api/v1/health HTTP/1.1\r\nX-Slow: ";
    CHECK(write(trickle, head, strlen(head)) == (ssize_t)strlen(head));
    double t3 = now_s();
    int cut = 0;
    while (now_s() - t3 < 8 && !cut) {
        usleep(400000);
        cut = write(trickle, "a", 1) != 1;
    }
    double held = now_s() - t3;
    CHECK_MSG(cut && held < 6.0, "trickling head held %.1f s", held);
    close(trickle);

    /* The 300 quiet ones were cut by then as well (reads see the end of the stream). */
    int closed = 0;
    for (int i = 0; i < N_ADDR * PER_ADDR; i++) {
        struct timeval tv2 = {0, 100000};
        setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv2, sizeof tv2);
        char buf[64];
        closed += read(fds[i], buf, sizeof buf) >= 0;
        close(fds[i]);
    }
    CHECK_MSG(closed == N_ADDR * PER_ADDR, "%d of %d closed after %.1f s", closed,
              N_ADDR * PER_ADDR, now_s() - t0);

    /* Every cut connection left a line in the access log. */
    usleep(300000);
    FILE *f = fopen(logpath, "r");
    char line[1024];
    int cuts = 0, refused = 0;
    while (f && fgets(line, sizeof line, f)) {
        cuts += strstr(line, "\"header_deadline\"") != NULL;
        /* The connection over the per-address cap was turned away, and that is logged too. */
        refused += strstr(line, "\"refused\"") && strstr(line, "\"per_address_limit\"") &&
                   strstr(line, "\"127.0.0.10\"");
    }
    if (f)
        fclose(f);
    CHECK_MSG(cuts >= N_ADDR * PER_ADDR + 1, "%d cuts logged", cuts);
    CHECK_MSG(refused >= 1, "the refusal at the per-address cap is not in the access log");
}

/* Count audit entries with this outcome. */
static int audited(const char *outcome)
{
    json_t *list = NULL;
    basira_error err;
    int n = 0;
    int64_t after = 0;
    for (;;) {
        if (basira_store_audit_list(store, NULL, after, 1000, &list, &err))
            break;
        json_t *items = json_object_get(list, "items");
        size_t i;
        json_t *e;
        json_array_foreach(items, i, e)
        {
            const char *o = json_string_value(json_object_get(e, "outcome"));
            n += o && !strcmp(o, outcome);
            after = json_integer_value(json_object_get(e, "id"));
        }
        size_t got = json_array_size(items);
        json_decref(list);
        if (got < 1000)
            break;
    }
    return n;
}

/*
 * Refusals (no session, a forged one, a wrong CSRF token) are audited, but a flood of
 * them cannot fill the disk: a burst of 60, then one a second, and what was dropped is
 * counted in one entry.
 */
static void test_refusals_audited(void)
{
    http_client c;
    http_init(&c, "http", port);
    int before = audited("bad_session") + audited("no_session");
    CHECK_EQ_INT(http_req(&c, "GET", "/cases", NULL, NULL, 0, 0), 401);
    curl_easy_setopt(c.curl, CURLOPT_COOKIE,
                     "basira_session=00112233445566778899aabbccddeeff00112233445566778899aabbccdd"
                     "eeff");
    CHECK_EQ_INT(http_req(&c, "GET", "/cases", NULL, NULL, 0, 0), 401);
    CHECK_EQ_INT(audited("bad_session") + audited("no_session") - before, 2);
    /* A flood of 300 forged requests: at most the burst is written. */
    for (int i = 0; i < 300; i++)
        http_req(&c, "GET", "/cases", NULL, NULL, 0, 0);
    int flood = audited("bad_session") - before;
    CHECK_MSG(flood >= 30 && flood <= 70, "%d refusals audited", flood);
    sleep(2);
    CHECK_EQ_INT(http_req(&c, "GET", "/cases", NULL, NULL, 0, 0), 401);
    CHECK(audited("suppressed") >= 1);
    http_free(&c);

    /* A wrong CSRF token on a signed-in session. */
    http_client g;
    http_init(&g, "http", port);
    CHECK_EQ_INT(http_login(&g, "gp", "password-123"), 200);
    snprintf(g.csrf, sizeof g.csrf, "%s",
             "0000000000000000000000000000000000000000000000000000000000000000");
    sleep(1);
    CHECK_EQ_INT(http_json(&g, "POST", "/cases", "{}"), 403);
    CHECK(audited("csrf_refused") >= 1);
    http_free(&g);
}

/* A retry with the same Idempotency-Key never records twice (issue 10, item 10). */
static void test_idempotency(void)
{
    http_client c;
    http_init(&c, "http", port);
    CHECK_EQ_INT(http_login(&c, "gp", "password-123"), 200);
    const char *body = "{\"patient_ref\": \"IDEM-1\", \"consent\": {\"care\": true, "
                       "\"recorded_by\": \"gp\"}}";
    snprintf(c.idem_header, sizeof c.idem_header, "Idempotency-Key: offline-queue-0001");
    CHECK_EQ_INT(http_json(&c, "POST", "/cases", body), 201);
    long long first = json_integer_value(json_object_get(c.json, "id"));
    CHECK(first > 0);
    /* The retry after an unclear answer: the same answer, the same case. */
    CHECK_EQ_INT(http_json(&c, "POST", "/cases", body), 201);
    CHECK_EQ_INT(json_integer_value(json_object_get(c.json, "id")), first);
    c.idem_header[0] = '\0';
    CHECK_EQ_INT(http_req(&c, "GET", "/cases?limit=500", NULL, NULL, 0, 0), 200);
    int copies = 0;
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(c.json, "items"), i, it)
    {
        const char *ref = json_string_value(json_object_get(it, "patient_ref"));
        copies += ref && !strcmp(ref, "IDEM-1");
    }
    CHECK_EQ_INT(copies, 1);
    /* The same key on another request is refused. */
    char path[64];
    snprintf(path, sizeof path, "/cases/%lld/decision", first);
    snprintf(c.idem_header, sizeof c.idem_header, "Idempotency-Key: offline-queue-0001");
    CHECK_EQ_INT(http_json(&c, "POST", path,
                           "{\"accept_ai\": false, \"category\": \"low\", \"reason\": \"seen\"}"),
                 422);
    /* A request that failed did nothing: its key can be sent again. */
    snprintf(c.idem_header, sizeof c.idem_header, "Idempotency-Key: offline-queue-0002");
    CHECK(http_json(&c, "POST", "/cases", "{\"patient_ref\": \"IDEM-2\"}") >= 400);
    CHECK_EQ_INT(http_json(&c, "POST", "/cases",
                           "{\"patient_ref\": \"IDEM-2\", \"consent\": {\"care\": true, "
                           "\"recorded_by\": \"gp\"}}"),
                 201);
    /* A first attempt interrupted between its write and its answer: a conflict, never a
     * second case. */
    basira_user u;
    basira_error err;
    CHECK_EQ_INT(basira_store_sign_in(store, "gp", "password-123", "t", &u, NULL, &err), BASIRA_OK);
    basira_idem id;
    CHECK_EQ_INT(
        basira_store_idem_begin(store, u.id, "offline-queue-0003", "POST /api/v1/cases", &id, &err),
        BASIRA_OK);
    CHECK_EQ_INT(id.state, BASIRA_IDEM_NEW);
    snprintf(c.idem_header, sizeof c.idem_header, "Idempotency-Key: offline-queue-0003");
    CHECK_EQ_INT(http_json(&c, "POST", "/cases", body), 409);
    /* A malformed key. */
    snprintf(c.idem_header, sizeof c.idem_header, "Idempotency-Key: bad key with spaces");
    CHECK_EQ_INT(http_json(&c, "POST", "/cases", body), 400);
    http_free(&c);
}

/* Bulk export: the data steward's permission alone, audited, one a minute. */
static void test_bulk_export(void)
{
    http_client g, d;
    http_init(&g, "http", port);
    http_init(&d, "http", port);
    CHECK_EQ_INT(http_login(&g, "gp", "password-123"), 200);
    CHECK_EQ_INT(http_req(&g, "GET", "/export?format=csv", NULL, NULL, 0, 0), 403);
    CHECK_EQ_INT(http_login(&d, "steward", "password-123"), 200);
    CHECK_EQ_INT(http_req(&d, "GET", "/export?format=csv", NULL, NULL, 0, 0), 200);
    CHECK(d.body.data && !strncmp(d.body.data, "case_id,", 8));
    CHECK_EQ_INT(http_req(&d, "GET", "/export?format=json", NULL, NULL, 0, 0), 429);
    CHECK_STR(http_error_code(&d), "limit_exceeded");
    /* Nothing else is open to the role. */
    CHECK_EQ_INT(http_req(&d, "GET", "/cases", NULL, NULL, 0, 0), 403);
    CHECK_EQ_INT(http_req(&d, "GET", "/audit", NULL, NULL, 0, 0), 403);
    http_free(&g);
    http_free(&d);
    CHECK(audited("rate_limited") >= 1);
}

/* The node writes an audit checkpoint at start-up (and every checkpoint_interval_s). */
static void test_checkpoint_written(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/audit-checkpoints.jsonl", tmpdir);
    FILE *f = NULL;
    for (int i = 0; i < 50 && !(f = fopen(path, "r")); i++)
        usleep(100000);
    CHECK(f != NULL);
    int lines = 0;
    char line[1024];
    while (f && fgets(line, sizeof line, f))
        lines += strstr(line, "\"head_hash\"") != NULL;
    if (f)
        fclose(f);
    CHECK(lines >= 1);
    basira_audit_report rep;
    basira_error err;
    CHECK_EQ_INT(basira_store_audit_verify(store, &rep, &err), BASIRA_OK);
    CHECK(rep.checkpoint_at > 0);
}

int main(void)
{
    setenv("BASIRA_ARGON2_FAST", "1", 1);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    curl_global_init(CURL_GLOBAL_ALL);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/basira-hostile-test-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    basira_error err;
    basira_store_key key = {"test passphrase", NULL};
    basira_actor setup = {"setup", "local"};
    if (basira_store_open(tmpdir, &key, 1, &test_fast_store, &store, &err) ||
        basira_store_user_add(store, &setup, "gp", BASIRA_ROLE_GP, "password-123", &err) ||
        basira_store_user_add(store, &setup, "steward", BASIRA_ROLE_DATA_STEWARD, "password-123",
                              &err)) {
        fprintf(stderr, "store: %s\n", err.message);
        return 1;
    }
    char api[4096];
    const char *src = getenv("BASIRA_SOURCE_DIR");
    snprintf(api, sizeof api, "%s/docs/openapi.json", src ? src : ".");
    snprintf(logpath, sizeof logpath, "%s/access.log", tmpdir);
    FILE *log = fopen(logpath, "w+");
    basira_server_config cfg;
    basira_server_config_default(&cfg);
    cfg.port = 0;
    cfg.threads = 4;
    cfg.header_time_s = 3;
    cfg.openapi_path = api;
    cfg.access_log = log;
    if (basira_server_new(store, NULL, &cfg, &server, &err) || basira_server_start(server, &err)) {
        fprintf(stderr, "server: %s\n", err.message);
        return 1;
    }
    port = basira_server_port(server);

    RUN(test_nul_in_path);
    RUN(test_smuggling);
    RUN(test_slow_connections);
    RUN(test_refusals_audited);
    RUN(test_checkpoint_written);
    RUN(test_idempotency);
    RUN(test_bulk_export);

    basira_server_stop(server, 5);
    basira_server_free(server);
    basira_store_free(store);
    fclose(log);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    curl_global_cleanup();
    return test_summary();
}
