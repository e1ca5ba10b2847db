/*
 * test_serve_floor.c - issue 13's photo floors on a running `basira serve`:
 * eight concurrent uploads of 10000 x 10000 photos (GIF, progressive JPEG,
 * interlaced PNG, baseline JPEG - decoded shrinking, the others refused by the
 * decode budget - and the four mixed), each run on a fresh server, keep its peak
 * RSS (VmHWM of /proc/PID/status) under 400 MB, each upload analysed (201, or
 * 200 with quality advice) or refused (413/422); a zTXt-bomb PNG (ten chunks of
 * 50 MB of zeros) is refused within 2 s of the server's CPU time (utime + stime
 * of /proc/PID/stat). The figures are printed. Labelled slow; peak memory means
 * nothing under AddressSanitizer.
 * argv[1]: tests/triage's make_fixtures (a tiny model, so uploads are analysed).
 */
#include "server/serve_proc.h"
#include "test.h"
#include "intake/png_chunks.h"

#include <pthread.h>
#include <vips/vips.h>

static char model[400];

#define N_FORMATS 4
static const char *const names[N_FORMATS] = {"GIF", "progressive JPEG", "interlaced PNG",
                                             "baseline JPEG"};
static const char *const files[N_FORMATS] = {"big.gif", "big.jpg", "big.png", "base.jpg"};
static const char *const specs[N_FORMATS] = {"", "[interlace]", "[interlace]", ""};
static const char *const mimes[N_FORMATS] = {"image/gif", "image/jpeg", "image/png", "image/jpeg"};
static blob bodies[N_FORMATS], bomb;

/* The photo as the field "image" of multipart/form-data, with its true type: how a
 * browser sends it (and how a GIF gets past the declared-type gate). */
static int as_multipart(blob *b, const char *mime)
{
    char head[256];
    static const char tail[] = "\r\n--fl00r--\r\n";
    int h = snprintf(head, sizeof head,
                     "--fl00r\r\nContent-Disposition: form-data; name=\"image\"; "
                     "filename=\"photo\"\r\nContent-Type: %s\r\n\r\n",
                     mime);
    size_t n = (size_t)h + b->len + sizeof tail - 1;
    unsigned char *m = g_malloc(n);
    memcpy(m, head, (size_t)h);
    memcpy(m + h, b->data, b->len);
    memcpy(m + (size_t)h + b->len, tail, sizeof tail - 1);
    g_free(b->data);
    b->data = m;
    b->len = n;
    return 0;
}

static int read_whole(const char *path, blob *b)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b->data = g_malloc((size_t)n);
    b->len = fread(b->data, 1, (size_t)n, f);
    fclose(f);
    return b->len == (size_t)n ? 0 : -1;
}

/* The photos, made with libvips in a child process (its memory is not the server's). */
static int make_files(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        VipsImage *x = NULL, *k = NULL, *g = NULL, *rgb = NULL, *n = NULL, *u = NULL, *sm = NULL;
        if (vips_init("floor") || vips_xyz(&x, 10000, 10000, NULL) ||
            vips_extract_band(x, &k, 0, NULL) ||
            vips_linear1(k, &g, 0.01, 100, "uchar", TRUE, NULL))
            _exit(1);
        VipsImage *three[3] = {g, g, g};
        if (vips_bandjoin(three, &rgb, 3, NULL))
            _exit(1);
        for (int i = 0; i < N_FORMATS; i++) {
            char spec[600];
            snprintf(spec, sizeof spec, "%s/%s%s", tmp, files[i], specs[i]);
            if (vips_image_write_to_file(rgb, spec, NULL))
                _exit(2);
        }
        /* The bomb's carrier: a small noisy PNG. */
        char p[600];
        snprintf(p, sizeof p, "%s/small.png", tmp);
        if (vips_gaussnoise(&n, 96, 96, "mean", 128.0, "sigma", 30.0, NULL) ||
            vips_cast_uchar(n, &u, NULL))
            _exit(3);
        VipsImage *b3[3] = {u, u, u};
        if (vips_bandjoin(b3, &sm, 3, NULL) || vips_image_write_to_file(sm, p, NULL))
            _exit(3);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    for (int i = 0; i < N_FORMATS; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", tmp, files[i]);
        if (read_whole(p, &bodies[i]) || as_multipart(&bodies[i], mimes[i]))
            return -1;
    }
    char p[600];
    snprintf(p, sizeof p, "%s/small.png", tmp);
    blob small;
    if (read_whole(p, &small))
        return -1;
    size_t zn = 0;
    unsigned char *z = ztxt_payload((size_t)50 << 20, &zn);
    bomb = with_chunks(&small, "zTXt", z, zn, 10);
    free(z);
    g_free(small.data);
    return 0;
}

static long proc_status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    size_t fl = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':') {
            kb = atol(line + fl + 1);
            break;
        }
    if (f)
        fclose(f);
    return kb;
}

/* Reset the peak RSS (VmHWM) of pid to its current RSS; 0 on success. */
static int reset_peak(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/clear_refs", (int)pid);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* CPU seconds (user + system) pid has used. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* after the command name */
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Eight nurses' phones, signed in once (sign-ins from one address are rate-limited). */
static http_client phones[8];

typedef struct upload_job {
    http_client *c;
    int format;
    long status;
    char code[64];
    char curl_error[CURL_ERROR_SIZE];
} upload_job;

static void *upload_one(void *arg)
{
    upload_job *j = arg;
    http_client *c = j->c;
    long st = http_json(c, "POST", "/cases",
                        "{\"patient_ref\": \"FLOOR\", \"consent\": {\"care\": true, "
                        "\"recorded_by\": \"nurse1\"}}");
    snprintf(j->code, sizeof j->code, "case %ld", st);
    if (st == 201) {
        char path[64];
        snprintf(path, sizeof path, "/cases/%lld/images",
                 (long long)json_integer_value(json_object_get(c->json, "id")));
        curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, j->curl_error);
        j->status = http_req(c, "POST", path, "multipart/form-data; boundary=fl00r",
                             bodies[j->format].data, bodies[j->format].len, 1);
        curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL);
        const char *code = http_error_code(c);
        snprintf(j->code, sizeof j->code, "%s", code ? code : "");
    }
    return NULL;
}

/* Eight uploads at once (format -1: the three formats mixed); the peak RSS in MB. */
static long eight_at_once(const server_proc *sp, int format, int *answered, int *decoded)
{
    CHECK_EQ_INT(reset_peak(sp->pid), 0);
    upload_job jobs[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        jobs[i] = (upload_job){&phones[i], format < 0 ? i % N_FORMATS : format, 0, "", ""};
        pthread_create(&th[i], NULL, upload_one, &jobs[i]);
    }
    *answered = *decoded = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        long s = jobs[i].status;
        CHECK_MSG(s == 200 || s == 201 || s == 413 || s == 422, "%s upload -> %ld %s%s",
                  names[jobs[i].format], s, jobs[i].code, jobs[i].curl_error);
        *answered += s == 200 || s == 201 || s == 413 || s == 422;
        *decoded += s == 200 || s == 201; /* 200: analysed, quality advice */
    }
    return proc_status_kb(sp->pid, "VmHWM") / 1024;
}

/* Start the server and sign the eight phones in; 0 on success. */
static int start_and_sign_in(server_proc *sp)
{
    const char *extra[] = {"--model", model, "--threads", "8", NULL};
    if (start_server(sp, keyf, extra) != 0 || !sp->pid)
        return -1;
    int ok = 1;
    for (int i = 0; i < 8; i++) {
        http_init(&phones[i], "http", sp->port);
        curl_easy_setopt(phones[i].curl, CURLOPT_TIMEOUT, 240L);
        ok &= http_login(&phones[i], "nurse1", "password-123") == 200;
    }
    return ok ? 0 : -1;
}

static void stop_and_sign_out(server_proc *sp)
{
    for (int i = 0; i < 8; i++)
        http_free(&phones[i]);
    CHECK_EQ_INT(stop_server(sp, SIGTERM), 0);
}

/*
 * One fresh server per run: freed memory stays in the process (malloc keeps it), so a
 * peak measured after another run would be that run's.
 */
static void test_eight_uploads(void)
{
    long peaks[N_FORMATS + 1], idle_mb = 0;
    for (int f = -1; f < N_FORMATS; f++) {
        server_proc sp;
        CHECK_EQ_INT(start_and_sign_in(&sp), 0);
        if (!sp.pid)
            return;
        idle_mb = proc_status_kb(sp.pid, "VmRSS") / 1024;
        int answered = 0, decoded = 0;
        long mb = eight_at_once(&sp, f, &answered, &decoded);
        peaks[f + 1] = mb;
        fprintf(stderr,
                "  8 concurrent 10000 x 10000 %s: %d answered (%d analysed, %d refused), peak "
                "RSS %ld MB (%ld MB before)\n",
                f < 0 ? "mixed (2 of each format)" : names[f], answered, decoded,
                answered - decoded, mb, idle_mb);
        CHECK_EQ_INT(answered, 8);
        CHECK_MSG(mb > 0 && mb < 400, "peak RSS %ld MB", mb);
        stop_and_sign_out(&sp);
    }
    fprintf(stderr,
            "  serve peak RSS with 8 concurrent uploads: mixed %ld, GIF (%zu KB) %ld, progressive "
            "JPEG (%zu KB) %ld, interlaced PNG (%zu KB) %ld, baseline JPEG (%zu KB, decoded "
            "shrinking) %ld MB (floor 400)\n",
            peaks[0], bodies[0].len / 1024, peaks[1], bodies[1].len / 1024, peaks[2],
            bodies[2].len / 1024, peaks[3], bodies[3].len / 1024, peaks[4]);
}

/* The zTXt bomb: refused, within 2 s of the server's CPU (it took 22 s before). */
static void test_ztxt_bomb(void)
{
    server_proc sp;
    CHECK_EQ_INT(start_and_sign_in(&sp), 0);
    if (!sp.pid)
        return;
    http_client *c = &phones[0];
    CHECK_EQ_INT(http_json(c, "POST", "/cases",
                           "{\"patient_ref\": \"BOMB\", \"consent\": {\"care\": true, "
                           "\"recorded_by\": \"nurse1\"}}"),
                 201);
    char path[64];
    snprintf(path, sizeof path, "/cases/%lld/images",
             (long long)json_integer_value(json_object_get(c->json, "id")));
    double cpu0 = proc_cpu_s(sp.pid);
    long st = http_req(c, "POST", path, "image/png", bomb.data, bomb.len, 1);
    double cpu = proc_cpu_s(sp.pid) - cpu0;
    const char *code = http_error_code(c);
    fprintf(stderr,
            "  zTXt bomb (%zu KB, ten chunks of 50 MB of zeros): %ld %s after %.2f s of the "
            "server's CPU (clock ticks of %.0f ms)\n",
            bomb.len / 1024, st, code ? code : "", cpu, 1000.0 / (double)sysconf(_SC_CLK_TCK));
    CHECK_MSG(st == 413 || st == 422, "bomb -> %ld", st);
    CHECK_MSG(cpu0 >= 0 && cpu < 2.0, "%.2f s of CPU", cpu);
    stop_and_sign_out(&sp);
}

int main(int argc, char **argv)
{
    cli = getenv("BASIRA_CLI");
    if (!cli || access(cli, X_OK))
        TEST_SKIP("BASIRA_CLI does not name the basira program");
    if (argc < 2 || access(argv[1], X_OK))
        TEST_SKIP("no tiny model maker (tests/triage's make_fixtures)");
    curl_global_init(CURL_GLOBAL_ALL);
    if (serve_test_dirs("basira-serve-floor"))
        return 1;
    snprintf(model, sizeof model, "%s/tiny.safetensors", tmp);
    char cmd[1200], err[4096];
    snprintf(cmd, sizeof cmd, "'%s' '%s' >/dev/null 2>&1", argv[1], tmp);
    if (system(cmd) != 0)
        TEST_SKIP("make_fixtures failed: no tiny model");
    if (make_files() != 0) {
        fprintf(stderr, "could not make the photos in %s\n", tmp);
        return 1;
    }
    const char *add[] = {"user",   "add",   "--data",          data, "--key-file", keyf,
                         "--role", "nurse", "--password-file", pwf,  "nurse1",     NULL};
    CHECK_MSG(run_cli(err, sizeof err, add) == 0, "user add: %s", err);
    RUN(test_eight_uploads);
    RUN(test_ztxt_bomb);
    for (int i = 0; i < N_FORMATS; i++)
        g_free(bodies[i].data);
    g_free(bomb.data);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    curl_global_cleanup();
    return test_summary();
}
