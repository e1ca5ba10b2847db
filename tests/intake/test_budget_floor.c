/*
 * test_budget_floor.c - the floor: eight concurrent uploads of 10000 x
 * 10000 photos (GIF, progressive JPEG, interlaced PNG, baseline JPEG, PNG) decoded
 * with the node's shared budget keep the process under 400 MB, and every one
 * either decodes or is refused with image_too_large; none fails otherwise.
 *
 * The files are made in a child process before this one starts libvips, so the
 * memory their encoding takes does not count. Labelled slow (about 20 s of CPU to
 * make the files); its peak memory means nothing under AddressSanitizer.
 */
#include "basira/image.h"
#include "test.h"

#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vips/vips.h>

#define N_FORMATS 5
static const char *const names[N_FORMATS] = {"gif", "progressive.jpg", "interlaced.png",
                                             "baseline.jpg", "plain.png"};
static const char *const save_opts[N_FORMATS] = {"", "[interlace]", "[interlace]", "", ""};
static const char *const exts[N_FORMATS] = {".gif", ".jpg", ".png", ".jpg", ".png"};

static char dir[] = "/tmp/basira-floor-XXXXXX";

static void path_of(int i, char *out, size_t n)
{
    snprintf(out, n, "%s/%d%s", dir, i, exts[i]);
}

static int make_files(void)
{
    if (!mkdtemp(dir))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        VipsImage *k = NULL, *g = NULL, *x = NULL;
        /* A gentle gradient: small files, like the 75 KB GIF. */
        if (vips_init("floor") || vips_xyz(&x, 10000, 10000, NULL) ||
            vips_extract_band(x, &k, 0, NULL) ||
            vips_linear1(k, &g, 0.01, 100, "uchar", TRUE, NULL))
            _exit(1);
        VipsImage *three[3] = {g, g, g}, *rgb = NULL;
        if (vips_bandjoin(three, &rgb, 3, NULL))
            _exit(1);
        for (int i = 0; i < N_FORMATS; i++) {
            char p[256];
            path_of(i, p, sizeof p);
            char spec[300];
            snprintf(spec, sizeof spec, "%s%s", p, save_opts[i]);
            if (vips_image_write_to_file(rgb, spec, NULL))
                _exit(2);
        }
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static long hwm_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

typedef struct job {
    int format;
    basira_intake_options *o;
    basira_code rc;
    char message[BASIRA_ERROR_MESSAGE_MAX];
} job;

static void *run(void *arg)
{
    job *j = arg;
    char p[256];
    path_of(j->format, p, sizeof p);
    basira_image *img = NULL;
    basira_error err;
    basira_error_clear(&err);
    j->rc = basira_image_load_file(p, j->o, &img, &err);
    snprintf(j->message, sizeof j->message, "%s", err.message);
    basira_image_free(img);
    return NULL;
}

static void test_eight_at_once(void)
{
    basira_decode_budget *bud = NULL;
    basira_error err;
    CHECK_EQ_INT(basira_decode_budget_new(0, &bud, &err), BASIRA_OK);
    basira_intake_options o;
    basira_intake_options_default(&o);
    o.budget = bud;
    o.max_seconds = 120; /* a loaded 2-core machine: the limit here is memory, not time */
    job jobs[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        jobs[i] = (job){i % N_FORMATS, &o, BASIRA_E_INTERNAL, ""};
        pthread_create(&th[i], NULL, run, &jobs[i]);
    }
    int decoded = 0, refused = 0, streamed = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        fprintf(stderr, "  %-16s %s %s\n", names[jobs[i].format], basira_code_name(jobs[i].rc),
                jobs[i].message);
        CHECK(jobs[i].rc == BASIRA_OK || jobs[i].rc == BASIRA_E_IMAGE_TOO_LARGE);
        decoded += jobs[i].rc == BASIRA_OK;
        streamed += jobs[i].format >= 3;
        refused += jobs[i].rc == BASIRA_E_IMAGE_TOO_LARGE;
    }
    long mb = hwm_kb() / 1024;
    fprintf(stderr,
            "8 concurrent 10000 x 10000 photos (budget %zu MB): %d decoded, %d refused, "
            "peak RSS %ld MB\n",
            basira_decode_budget_total(bud) >> 20, decoded, refused, mb);
    CHECK_MSG(mb > 0 && mb < 400, "peak RSS %ld MB", mb);
    /* The streamed formats (baseline JPEG, plain PNG) always decode; the others are refused. */
    CHECK_EQ_INT(decoded, streamed);
    basira_decode_budget_free(bud);
}

int main(void)
{
    if (make_files() != 0) {
        fprintf(stderr, "could not make the test files in %s\n", dir);
        return 1;
    }
    RUN(test_eight_at_once);
    for (int i = 0; i < N_FORMATS; i++) {
        char p[256];
        path_of(i, p, sizeof p);
        unlink(p);
    }
    rmdir(dir);
    return test_summary();
}
