/*
 * test_fault_serve.c - a full disk end to end over HTTP (issue 13): the real
 * `basira serve` runs with the fault shim (faultshim.c, LD_PRELOAD) playing a
 * disk that fills up, driven through the shim's control file. Over HTTP:
 *   - while there is room, cases, photos and a decision are acknowledged;
 *   - the disk fills: writes (create a case, upload a photo, record a decision)
 *     get 507 "disk_full" with a clear message in the request's language (en, fr,
 *     ar), at once and every time;
 *   - reads (the worklist, a case, a photo) and sign-in keep working, and each
 *     read of patient data still has its audit entry (docs/clinic-node.md: the
 *     audit entries of reads are always written, from the space reserve);
 *   - space returns: writes work again; a retry with the same Idempotency-Key
 *     after an unclear answer (a 507, or an answer the client lost) never
 *     makes a second case;
 *   - after a restart without the shim every acknowledged write is there and
 *     `basira audit verify` passes.
 * argv[1]: the shim; argv[2]: tests/triage's make_fixtures (a tiny model and a
 * photo, so that uploads are analysed).
 */
#include "server/serve_proc.h"
#include "test.h"

static char ctl[300], model[400];
static unsigned char photo[1 << 20];
static size_t photo_len;

enum { MAX_ACK = 512 };
static long long acked_case[MAX_ACK], acked_image[MAX_ACK];
static int n_case, n_image;

/* Send a command to the shim inside the server; 0 once it was applied (the file is gone). */
static int shim(const char *cmd)
{
    char t[340];
    snprintf(t, sizeof t, "%s.tmp", ctl);
    write_file(t, cmd, strlen(cmd));
    if (rename(t, ctl) != 0)
        return -1;
    for (int i = 0; i < 400; i++) {
        if (access(ctl, F_OK) != 0)
            return 0;
        sleep_ms(25);
    }
    return -1;
}

static long create_case(http_client *c, const char *ref, const char *key)
{
    char body[300];
    snprintf(body, sizeof body,
             "{\"patient_ref\": \"%s\", \"age\": 50, \"consent\": {\"care\": true, "
             "\"recorded_by\": \"gp1\"}}",
             ref);
    snprintf(c->idem_header, sizeof c->idem_header, "Idempotency-Key: %s", key);
    long st = http_json(c, "POST", "/cases", body);
    c->idem_header[0] = '\0';
    return st;
}

static long long id_of(const http_client *c, const char *field)
{
    return json_integer_value(json_object_get(c->json, field));
}

static long upload(http_client *c, long long case_id)
{
    char path[64];
    snprintf(path, sizeof path, "/cases/%lld/images", case_id);
    return http_req(c, "POST", path, "image/jpeg", photo, photo_len, 1);
}

static long decide(http_client *c, long long case_id)
{
    char path[64];
    snprintf(path, sizeof path, "/cases/%lld/decision", case_id);
    return http_json(c, "POST", path, "{\"accept_ai\": true, \"referral\": \"requested\"}");
}

static int cases_with_ref(http_client *c, const char *ref)
{
    char path[128];
    snprintf(path, sizeof path, "/cases?patient_ref=%s&limit=100", ref);
    if (http_req(c, "GET", path, NULL, NULL, 0, 0) != 200)
        return -1;
    return (int)json_array_size(json_object_get(c->json, "items"));
}

static const char *error_message(const http_client *c)
{
    const char *m =
        json_string_value(json_object_get(json_object_get(c->json, "error"), "message"));
    return m ? m : "";
}

/* A write refused for the full disk: 507, code disk_full, the message in the right language. */
static void check_refused(const http_client *c, long st, const char *what, const char *words)
{
    CHECK_MSG(st == 507, "%s while the disk is full -> %ld %.200s", what, st,
              c->body.data ? c->body.data : "");
    const char *code = http_error_code(c);
    CHECK_MSG(code && !strcmp(code, "disk_full"), "%s: code %s", what, code ? code : "(none)");
    CHECK_MSG(strstr(error_message(c), words) != NULL, "%s: message '%s' lacks '%s'", what,
              error_message(c), words);
}

static void full_disk_over_http(void)
{
    static char preload[600], control[400];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", getenv("BASIRA_TEST_SHIM"));
    snprintf(control, sizeof control, "BASIRA_FAULT_CONTROL=%s", ctl);
    const char *shim_env[] = {preload, control, NULL};
    serve_env = shim_env;
    const char *extra[] = {"--model", model, NULL};
    server_proc sp;
    CHECK_EQ_INT(start_server(&sp, keyf, extra), 0);
    if (!sp.pid)
        return;
    http_client gp;
    http_init(&gp, "http", sp.port);
    CHECK_EQ_INT(http_login(&gp, "gp1", "password-123"), 200);

    /* Room: a case with a photo and a decision; an answer lost and retried is replayed. */
    CHECK_EQ_INT(create_case(&gp, "ROOM-1", "room-1"), 201);
    long long first = id_of(&gp, "id");
    acked_case[n_case++] = first;
    long st = upload(&gp, first);
    CHECK_MSG(st == 201, "upload with room -> %ld %.200s", st, gp.body.data);
    if (st == 201)
        acked_image[n_image++] = id_of(&gp, "image_id");
    CHECK_EQ_INT(decide(&gp, first), 200);
    CHECK_EQ_INT(create_case(&gp, "ROOM-1", "room-1"), 201); /* the retry of a lost answer */
    CHECK_EQ_INT(id_of(&gp, "id"), first);

    /* The disk fills up (400 KB left). */
    CHECK_EQ_INT(shim("disk 400000"), 0);
    char fill_ref[32] = "", fill_key[32] = "";
    for (int i = 0; i < 400; i++) {
        char ref[32], key[32];
        snprintf(ref, sizeof ref, "FILL-%d", i);
        snprintf(key, sizeof key, "fill-%d", i);
        st = create_case(&gp, ref, key);
        if (st != 201) {
            snprintf(fill_ref, sizeof fill_ref, "%s", ref);
            snprintf(fill_key, sizeof fill_key, "%s", key);
            break;
        }
        long long id = id_of(&gp, "id");
        if (n_case < MAX_ACK)
            acked_case[n_case++] = id;
        st = upload(&gp, id);
        if (st != 201)
            break;
        if (n_image < MAX_ACK)
            acked_image[n_image++] = id_of(&gp, "image_id");
    }
    check_refused(&gp, st, "the write that found the disk full", "disk is full");
    /* The store freed its 16 MiB reserve (the shim counts the unlinked bytes as free
     * again); from here on reads and sign-ins write their audit entries into it. */

    /* Every write is refused at once, in the request's language. */
    static const struct {
        const char *lang, *words;
    } langs[] = {
        {"en", "disk is full"}, {"fr", "disque du poste est plein"}, {"ar", "قرص الخادم ممتلئ"}};
    for (size_t i = 0; i < sizeof langs / sizeof langs[0]; i++) {
        gp.accept_language = langs[i].lang;
        char what[64];
        snprintf(what, sizeof what, "create (%s)", langs[i].lang);
        check_refused(&gp, create_case(&gp, "FULL-RETRY", "full-retry"), what, langs[i].words);
        snprintf(what, sizeof what, "upload (%s)", langs[i].lang);
        check_refused(&gp, upload(&gp, first), what, langs[i].words);
        snprintf(what, sizeof what, "decision (%s)", langs[i].lang);
        check_refused(&gp, decide(&gp, acked_case[n_case - 1]), what, langs[i].words);
    }
    gp.accept_language = NULL;
    /* Retrying the write that found the disk full: refused again, not a conflict. */
    if (fill_key[0])
        check_refused(&gp, create_case(&gp, fill_ref, fill_key), "retry of the refused write",
                      "disk is full");

    /* Reads and sign-in keep working; each read of patient data is audited. */
    http_client aud;
    http_init(&aud, "http", sp.port);
    CHECK_EQ_INT(http_login(&aud, "aud1", "password-123"), 200);
    CHECK_EQ_INT(http_req(&aud, "GET", "/audit/verify", NULL, NULL, 0, 0), 200);
    CHECK(json_is_true(json_object_get(aud.json, "ok")));
    long long head = id_of(&aud, "head_id");
    http_client gp2;
    http_init(&gp2, "http", sp.port);
    CHECK_EQ_INT(http_login(&gp2, "gp1", "password-123"), 200);
    CHECK_EQ_INT(http_req(&gp2, "GET", "/session", NULL, NULL, 0, 0), 200);
    CHECK_EQ_INT(http_req(&gp2, "GET", "/cases", NULL, NULL, 0, 0), 200);
    int read_ok = 0, photos_ok = 0;
    for (int i = 0; i < n_case; i++) {
        char path[64];
        snprintf(path, sizeof path, "/cases/%lld", acked_case[i]);
        read_ok += http_req(&gp2, "GET", path, NULL, NULL, 0, 0) == 200;
    }
    CHECK_EQ_INT(read_ok, n_case);
    for (int i = 0; i < n_image && i < 5; i++) {
        char path[96];
        /* Case i got photo i (the last case may have none: its upload found the disk full). */
        snprintf(path, sizeof path, "/cases/%lld/images/%lld", acked_case[i], acked_image[i]);
        photos_ok += http_req(&gp2, "GET", path, NULL, NULL, 0, 0) == 200;
    }
    CHECK_MSG(photos_ok == (n_image < 5 ? n_image : 5), "%d photos read while full", photos_ok);
    char apath[96];
    snprintf(apath, sizeof apath, "/audit?after=%lld&limit=1000", head);
    CHECK_EQ_INT(http_req(&aud, "GET", apath, NULL, NULL, 0, 0), 200);
    json_t *items = json_object_get(aud.json, "items");
    int read_audits = 0, sign_ins = 0;
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *it = json_array_get(items, i);
        const char *action = json_string_value(json_object_get(it, "action"));
        const char *actor = json_string_value(json_object_get(it, "actor"));
        if (!action || !actor || strcmp(actor, "gp1"))
            continue;
        read_audits += !strcmp(action, "case_read");
        sign_ins += strstr(action, "login") != NULL || strstr(action, "sign") != NULL;
    }
    CHECK_MSG(read_audits >= n_case, "%d case reads audited while full, %d made", read_audits,
              n_case);
    CHECK_MSG(sign_ins >= 1, "the sign-in while full is not in the audit trail");
    fprintf(stderr,
            "  disk full: %d cases and %d photos acknowledged before it filled; writes refused "
            "with 507 in en/fr/ar; %d case reads, %d photo reads and a sign-in served while "
            "full, %d read audits written\n",
            n_case, n_image, read_ok, photos_ok, read_audits);

    /* Space returns: writes again; retries with the same key never duplicate. */
    CHECK_EQ_INT(shim("free 67108864"), 0);
    CHECK_EQ_INT(create_case(&gp, "FULL-RETRY", "full-retry"), 201);
    long long retried = id_of(&gp, "id");
    acked_case[n_case++] = retried;
    CHECK_EQ_INT(create_case(&gp, "FULL-RETRY", "full-retry"), 201); /* answer lost: again */
    CHECK_EQ_INT(id_of(&gp, "id"), retried);
    CHECK_EQ_INT(cases_with_ref(&gp, "FULL-RETRY"), 1);
    if (fill_key[0]) {
        CHECK_EQ_INT(create_case(&gp, fill_ref, fill_key), 201);
        acked_case[n_case++] = id_of(&gp, "id");
        CHECK_EQ_INT(create_case(&gp, fill_ref, fill_key), 201);
        CHECK_EQ_INT(id_of(&gp, "id"), acked_case[n_case - 1]);
        CHECK_EQ_INT(cases_with_ref(&gp, fill_ref), 1);
    }
    CHECK_EQ_INT(cases_with_ref(&gp, "ROOM-1"), 1);
    st = upload(&gp, retried);
    CHECK_MSG(st == 201, "upload after space returned -> %ld", st);
    if (st == 201)
        acked_image[n_image++] = id_of(&gp, "image_id");
    CHECK_EQ_INT(decide(&gp, retried), 200);
    CHECK_EQ_INT(shim("off"), 0);
    http_free(&gp);
    http_free(&gp2);
    http_free(&aud);
    CHECK_EQ_INT(stop_server(&sp, SIGTERM), 0);

    /* Restart without the shim: every acknowledged write is there, the chain verifies. */
    serve_env = NULL;
    CHECK_EQ_INT(start_server(&sp, keyf, extra), 0);
    http_client c;
    http_init(&c, "http", sp.port);
    CHECK_EQ_INT(http_login(&c, "gp1", "password-123"), 200);
    int present = 0, images = 0, decided = 0;
    for (int i = 0; i < n_case; i++) {
        char path[64];
        snprintf(path, sizeof path, "/cases/%lld", acked_case[i]);
        if (http_req(&c, "GET", path, NULL, NULL, 0, 0) != 200)
            continue;
        present++;
        images += (int)json_array_size(json_object_get(c.json, "images"));
        json_t *d = json_object_get(c.json, "decision");
        decided += d && !json_is_null(d);
    }
    CHECK_EQ_INT(present, n_case);
    CHECK_MSG(images >= n_image, "%d photos present after restart, %d acknowledged", images,
              n_image);
    CHECK_EQ_INT(decided, 2);
    http_free(&c);
    CHECK_EQ_INT(stop_server(&sp, SIGTERM), 0);
    char err[4096];
    const char *verify[] = {"audit", "verify", "--data", data, "--key-file", keyf, NULL};
    CHECK_MSG(run_cli(err, sizeof err, verify) == 0, "audit verify: %s", err);
    fprintf(stderr,
            "  after restart: %d of %d acknowledged cases, %d photos (%d acknowledged), %d "
            "decisions; audit verify passed\n",
            present, n_case, images, n_image, decided);
}

int main(int argc, char **argv)
{
    cli = getenv("BASIRA_CLI");
    if (!cli || access(cli, X_OK))
        TEST_SKIP("BASIRA_CLI does not name the basira program");
    if (argc < 3 || access(argv[1], R_OK) || access(argv[2], X_OK))
        TEST_SKIP("usage: test_fault_serve SHIM MAKE_FIXTURES");
    setenv("BASIRA_TEST_SHIM", argv[1], 1);
    curl_global_init(CURL_GLOBAL_ALL);
    if (serve_test_dirs("basira-fault-serve"))
        return 1;
    snprintf(ctl, sizeof ctl, "%s/fault.control", tmp);
    snprintf(model, sizeof model, "%s/tiny.safetensors", tmp);
    char cmd[1200], err[4096], photo_path[400];
    snprintf(cmd, sizeof cmd, "'%s' '%s' >/dev/null 2>&1", argv[2], tmp);
    if (system(cmd) != 0)
        TEST_SKIP("make_fixtures failed: no tiny model");
    snprintf(photo_path, sizeof photo_path, "%s/photo.jpg", tmp);
    FILE *f = fopen(photo_path, "rb");
    photo_len = f ? fread(photo, 1, sizeof photo, f) : 0;
    if (f)
        fclose(f);
    CHECK(photo_len > 0);
    const char *users[][2] = {{"gp", "gp1"}, {"auditor", "aud1"}};
    for (int i = 0; i < 2; i++) {
        const char *a[] = {"user",   "add",       "--data",          data, "--key-file", keyf,
                           "--role", users[i][0], "--password-file", pwf,  users[i][1],  NULL};
        CHECK_MSG(run_cli(err, sizeof err, a) == 0, "user add: %s", err);
    }
    RUN(full_disk_over_http);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    curl_global_cleanup();
    return test_summary();
}
