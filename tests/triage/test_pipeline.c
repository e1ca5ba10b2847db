/* test_pipeline.c - the whole pipeline with a tiny random model: result shape, rules applied
 * end to end, bad input, thread safety, real photos when ../shared/data is present. */
#include "basira/image.h"
#include "basira/model.h"
#include "basira/paths.h"
#include "basira/triage.h"
#include "test.h"
#include "tiny_model.h"

#include <pthread.h>
#include <unistd.h>

static char tmpdir[256];
static char model_path[512];

/* A synthetic photo: textured skin with a dark irregular blob, encoded as JPEG. */
static unsigned char *synthetic_jpeg(int w, int h, unsigned seed, size_t *len)
{
    unsigned char *rgb = malloc((size_t)w * h * 3);
    unsigned s = seed;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            s = s * 1103515245u + 12345u;
            int noise = (int)((s >> 16) % 24) - 12;
            double dx = (x - w / 2.0) / (w / 5.0), dy = (y - h / 2.0) / (h / 6.0);
            double r2 = dx * dx + dy * dy + 0.3 * sin(x * 0.2) * cos(y * 0.15);
            int in = r2 < 1.0;
            int base[3] = {in ? 90 : 200, in ? 55 : 150, in ? 45 : 130};
            for (int c = 0; c < 3; c++) {
                int v = base[c] + noise + (in ? (x * 7 + y * 3) % 25 : 0);
                rgb[3 * ((size_t)y * w + x) + c] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    basira_image *img = NULL;
    unsigned char *out = NULL;
    if (!basira_image_from_rgb(rgb, w, h, &img, NULL))
        basira_image_encode_jpeg(img, 92, &out, len, NULL);
    basira_image_free(img);
    free(rgb);
    return out;
}

static basira_pipeline *pipeline_with(double high, double medium)
{
    basira_triage_config cfg;
    basira_triage_config_default(&cfg);
    cfg.high_threshold = high;
    cfg.medium_threshold = medium;
    basira_pipeline *p = NULL;
    basira_error err;
    if (basira_pipeline_new(model_path, &cfg, &p, &err))
        fprintf(stderr, "pipeline: %s\n", err.message);
    return p;
}

static int has_model_and_disclaimer(const json_t *r)
{
    const json_t *m = json_object_get(r, "model");
    const char *sha = json_string_value(json_object_get(m, "sha256"));
    return json_is_object(m) &&
           !strcmp(json_string_value(json_object_get(m, "name")), "tiny-test") && sha &&
           strlen(sha) == 64 && json_is_string(json_object_get(r, "disclaimer")) &&
           strlen(json_string_value(json_object_get(r, "disclaimer"))) > 10;
}

/* Checks every invariant of a scored result; returns its category code. */
static const char *check_scored(const json_t *r)
{
    CHECK_STR(json_string_value(json_object_get(r, "status")), "ok");
    CHECK(has_model_and_disclaimer(r));
    CHECK(json_is_object(json_object_get(r, "quality")));
    CHECK(json_is_boolean(json_object_get(json_object_get(r, "quality"), "ok")));
    CHECK(json_object_get(r, "skin_tone") != NULL);
    const json_t *pr = json_object_get(r, "probabilities");
    CHECK_EQ_INT(json_object_size(pr), 7);
    static const char *const codes[] = {"akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"};
    double sum = 0, mal = 0, maxp = 0;
    for (int i = 0; i < 7; i++) {
        const json_t *v = json_object_get(pr, codes[i]);
        CHECK_MSG(json_is_number(v), "missing %s", codes[i]);
        double p = json_number_value(v);
        sum += p;
        if (i == 0 || i == 1 || i == 4)
            mal += p;
        if (p > maxp)
            maxp = p;
    }
    CHECK_NEAR(sum, 1.0, 1e-4);
    const json_t *cand = json_object_get(r, "candidates");
    CHECK_EQ_INT(json_array_size(cand), 3);
    double prev = 2;
    for (size_t i = 0; i < json_array_size(cand); i++) {
        const json_t *c = json_array_get(cand, i);
        const char *code = json_string_value(json_object_get(c, "code"));
        double p = json_number_value(json_object_get(c, "probability"));
        CHECK(code && json_is_string(json_object_get(c, "name")));
        CHECK(p <= prev + 1e-9);
        CHECK_NEAR(p, json_number_value(json_object_get(pr, code ? code : "")), 1e-6);
        prev = p;
    }
    CHECK_NEAR(json_number_value(json_object_get(json_array_get(cand, 0), "probability")), maxp,
               1e-6);
    const json_t *risk = json_object_get(r, "risk");
    double pm = json_number_value(json_object_get(risk, "malignant_probability"));
    CHECK_NEAR(pm, mal, 1e-5);
    CHECK_EQ_INT(json_integer_value(json_object_get(risk, "index")),
                 (long long)floor(100 * pm + 0.5));
    CHECK(json_is_string(json_object_get(risk, "action")));
    CHECK(json_is_array(json_object_get(risk, "raised_by")));
    const char *cat = json_string_value(json_object_get(risk, "category"));
    CHECK(cat != NULL);
    return cat ? cat : "";
}

static int raised_by(const json_t *r, const char *why)
{
    const json_t *a = json_object_get(json_object_get(r, "risk"), "raised_by");
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!strcmp(json_string_value(json_array_get(a, i)), why))
            return 1;
    return 0;
}

static void test_new_errors(void)
{
    basira_pipeline *p = NULL;
    basira_error err;
    char missing[600];
    snprintf(missing, sizeof missing, "%s/none.safetensors", tmpdir);
    CHECK_EQ_INT(basira_pipeline_new(missing, NULL, &p, &err), BASIRA_E_NOT_FOUND);
    CHECK(p == NULL);
    basira_triage_config cfg;
    basira_triage_config_default(&cfg);
    cfg.high_threshold = 0.1;
    cfg.medium_threshold = 0.5;
    CHECK_EQ_INT(basira_pipeline_new(model_path, &cfg, &p, &err), BASIRA_E_INVALID_ARGUMENT);
    basira_triage_config_default(&cfg);
    cfg.medium_threshold = 0.9; /* above the model's high (0.40) */
    CHECK_EQ_INT(basira_pipeline_new(model_path, &cfg, &p, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(p == NULL);
    /* The bundled model: when it is not installed the message names --model. */
    char path[4096];
    if (basira_data_file("models/basira-derm.safetensors", path, sizeof path, NULL)) {
        CHECK_EQ_INT(basira_pipeline_new(NULL, NULL, &p, &err), BASIRA_E_NOT_FOUND);
        CHECK(strstr(err.message, "--model") != NULL);
    }
}

static void test_bad_input(void)
{
    basira_pipeline *p = pipeline_with(-1, -1);
    CHECK(p != NULL);
    if (!p)
        return;
    basira_error err;
    json_t *r = NULL;
    static const char garbage[] = "GIF89a this is not really an image at all";
    CHECK_EQ_INT(basira_pipeline_run_buffer(p, garbage, sizeof garbage, NULL, &r, &err), BASIRA_OK);
    CHECK_STR(json_string_value(json_object_get(r, "status")), "error");
    CHECK(json_is_string(json_object_get(json_object_get(r, "error"), "code")));
    CHECK(json_object_get(r, "risk") == NULL);
    CHECK(has_model_and_disclaimer(r));
    json_decref(r);
    r = NULL;
    CHECK_EQ_INT(basira_pipeline_run_buffer(p, "", 0, NULL, &r, &err), BASIRA_OK);
    CHECK_STR(json_string_value(json_object_get(r, "status")), "error");
    json_decref(r);
    r = NULL;
    char nofile[600];
    snprintf(nofile, sizeof nofile, "%s/absent.jpg", tmpdir);
    CHECK_EQ_INT(basira_pipeline_run_file(p, nofile, NULL, &r, &err), BASIRA_OK);
    CHECK_STR(json_string_value(json_object_get(r, "status")), "error");
    json_decref(r);
    /* A truncated JPEG. */
    size_t len = 0;
    unsigned char *jpg = synthetic_jpeg(200, 150, 1, &len);
    CHECK(jpg != NULL);
    r = NULL;
    if (jpg)
        CHECK_EQ_INT(basira_pipeline_run_buffer(p, jpg, len / 3, NULL, &r, &err), BASIRA_OK);
    CHECK(r && strcmp(json_string_value(json_object_get(r, "status")), "ok"));
    json_decref(r);
    free(jpg);
    CHECK_EQ_INT(basira_pipeline_run_buffer(p, NULL, 5, NULL, &r, &err), BASIRA_E_INVALID_ARGUMENT);
    basira_pipeline_free(p);
}

static basira_code failing_encoder(const basira_image *img, uint8_t **buf, size_t *len,
                                   basira_error *err)
{
    (void)img;
    (void)buf;
    (void)len;
    return basira_error_set(err, BASIRA_E_IO, "disk full while encoding");
}

/*
 * basira_pipeline_analyze: one decode, typed values that agree with the
 * document, the cleaned photo; a failing re-encode refuses the photo.
 */
static void test_analyze_typed(void)
{
    size_t len = 0;
    unsigned char *jpg = synthetic_jpeg(240, 180, 11, &len);
    basira_pipeline *hi = pipeline_with(1e-9, 0);
    CHECK(jpg && hi);
    if (!jpg || !hi) {
        free(jpg);
        basira_pipeline_free(hi);
        return;
    }
    basira_error err;
    basira_triage_request req = {.history = NULL, .force = 1};
    basira_triage_result r;
    CHECK_EQ_INT(basira_pipeline_analyze(hi, jpg, len, &req, NULL, &r, &err), BASIRA_OK);
    CHECK_EQ_INT(r.status, BASIRA_TRIAGE_OK);
    CHECK_EQ_INT(r.category, BASIRA_RISK_HIGH);
    CHECK_STR(check_scored(r.document), "high");
    const json_t *risk = json_object_get(r.document, "risk");
    CHECK_EQ_INT(r.risk_index, json_integer_value(json_object_get(risk, "index")));
    CHECK(fabs(r.malignant_probability -
               json_number_value(json_object_get(risk, "malignant_probability"))) < 1e-9);
    CHECK_EQ_INT(r.quality_ok,
                 json_is_true(json_object_get(json_object_get(r.document, "quality"), "ok")));
    /* The cleaned photo is a JPEG of the decoded pixels, not the upload's bytes. */
    CHECK(r.clean && r.clean_len > 2 && r.clean[0] == 0xff && r.clean[1] == 0xd8);
    CHECK_STR(r.clean_mime, "image/jpeg");
    basira_triage_result_clear(&r);
    CHECK(r.document == NULL && r.clean == NULL);

    /* The re-encode fails: refused, nothing handed back to store. */
    CHECK_EQ_INT(basira_pipeline_analyze(hi, jpg, len, &req, failing_encoder, &r, &err),
                 BASIRA_E_IO);
    CHECK(strstr(err.message, "disk full") != NULL);
    CHECK(r.document == NULL && r.clean == NULL && r.status != BASIRA_TRIAGE_OK);
    basira_triage_result_clear(&r);

    /* Undecodable: status ERROR with the decoder's code, no photo. */
    static const char garbage[] = "GIF89a not an image";
    CHECK_EQ_INT(basira_pipeline_analyze(hi, garbage, sizeof garbage, &req, NULL, &r, &err),
                 BASIRA_OK);
    CHECK_EQ_INT(r.status, BASIRA_TRIAGE_ERROR);
    CHECK(r.error.code != BASIRA_OK && r.clean == NULL);
    CHECK_STR(json_string_value(json_object_get(r.document, "status")), "error");
    basira_triage_result_clear(&r);
    free(jpg);
    basira_pipeline_free(hi);
}

/* Rules applied end to end, steered by site thresholds: any photo is "high" with a tiny
 * high threshold and "low" with thresholds of 1 (a probability of exactly 1 never occurs). */
static void test_rules_end_to_end(void)
{
    size_t len = 0;
    unsigned char *jpg = synthetic_jpeg(240, 180, 7, &len);
    CHECK(jpg != NULL);
    if (!jpg)
        return;
    basira_pipeline *hi = pipeline_with(1e-9, 0), *lo = pipeline_with(1, 1);
    CHECK(hi && lo);
    basira_error err;
    basira_triage_request req = {.history = NULL, .force = 1};
    json_t *r = NULL;
    if (hi && !basira_pipeline_run_buffer(hi, jpg, len, &req, &r, &err)) {
        CHECK_STR(check_scored(r), "high");
        json_decref(r);
    }
    r = NULL;
    if (lo && !basira_pipeline_run_buffer(lo, jpg, len, &req, &r, &err)) {
        int qok = json_is_true(json_object_get(json_object_get(r, "quality"), "ok"));
        /* low, unless the photo failed the gate (then medium, rule 2) */
        CHECK_STR(check_scored(r), qok ? "low" : "medium");
        CHECK(qok || raised_by(r, "quality"));
        CHECK(qok || json_is_true(json_object_get(r, "forced")));
        json_decref(r);
    }
    /* history raises low to medium */
    basira_history h;
    basira_history_init(&h);
    basira_history_parse("bleeding", &h, NULL);
    req.history = &h;
    r = NULL;
    if (lo && !basira_pipeline_run_buffer(lo, jpg, len, &req, &r, &err)) {
        CHECK_STR(check_scored(r), "medium");
        CHECK(raised_by(r, "history"));
        json_decref(r);
    }
    /* without force, a rejected photo has no risk */
    req.force = 0;
    req.history = NULL;
    r = NULL;
    if (lo && !basira_pipeline_run_buffer(lo, jpg, len, &req, &r, &err)) {
        const char *st = json_string_value(json_object_get(r, "status"));
        if (json_is_true(json_object_get(json_object_get(r, "quality"), "ok"))) {
            CHECK_STR(st, "ok");
        } else {
            CHECK_STR(st, "rejected");
            CHECK(json_object_get(r, "risk") == NULL);
            CHECK(json_object_get(r, "probabilities") == NULL);
            CHECK(has_model_and_disclaimer(r));
        }
        json_decref(r);
    }
    basira_pipeline_free(hi);
    basira_pipeline_free(lo);
    free(jpg);
}

static int has_warning(const json_t *r, const char *code)
{
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(json_object_get(r, "validation"), "warnings"), i, w)
    {
        if (!strcmp(json_string_value(json_object_get(w, "code")), code))
            return 1;
    }
    return 0;
}

/* Every scored result explains itself: thresholds, uncertainty, what was validated. */
static void test_explained(void)
{
    size_t len = 0;
    unsigned char *jpg = synthetic_jpeg(240, 180, 7, &len);
    basira_pipeline *p = NULL, *tiny = pipeline_with(-1, -1);
    basira_error err;
    /* The bundled model says what it was validated on; the tiny test model does not. */
    CHECK_EQ_INT(basira_pipeline_new(NULL, NULL, &p, &err), BASIRA_OK);
    CHECK(jpg && p && tiny);
    /* The declared kind alone (routing with the detector: test_routing.c). */
    basira_pipeline_clear_detector(p);
    basira_triage_request req = {.history = NULL, .force = 1};
    json_t *r = NULL;
    if (tiny && jpg && !basira_pipeline_run_buffer(tiny, jpg, len, &req, &r, &err)) {
        CHECK(has_warning(r, "validation_unknown"));
        json_decref(r);
    }
    basira_pipeline_free(tiny);
    if (!jpg || !p) {
        free(jpg);
        basira_pipeline_free(p);
        return;
    }
    CHECK_EQ_INT(basira_pipeline_run_buffer(p, jpg, len, &req, &r, &err), BASIRA_OK);
    json_t *risk = json_object_get(r, "risk");
    json_t *th = json_object_get(risk, "thresholds");
    CHECK(json_number_value(json_object_get(th, "high")) >
          json_number_value(json_object_get(th, "medium")));
    json_t *u = json_object_get(risk, "uncertainty");
    /* The range is over 8 symmetry views of one network, or an ensemble's (view, member)
     * pairs: 4 to 8 of them, a whole number of views each (model_classifier checks values). */
    char bundled[4096];
    basira_classifier *bc = NULL;
    CHECK_EQ_INT(basira_data_file("models/basira-derm.safetensors", bundled, sizeof bundled, &err),
                 BASIRA_OK);
    CHECK_EQ_INT(basira_classifier_load(bundled, &bc, &err), BASIRA_OK);
    json_int_t views = json_integer_value(json_object_get(u, "views"));
    if (bc && basira_classifier_spread_by_member(bc)) {
        int members = basira_classifier_members(bc);
        CHECK_STR(json_string_value(json_object_get(u, "method")), "ensemble");
        CHECK_MSG(views >= 4 && views <= 8 && members > 1 && views % members == 0,
                  "%d views, %d nets", (int)views, members);
    } else {
        CHECK_STR(json_string_value(json_object_get(u, "method")), "tta");
        CHECK_EQ_INT(views, 8);
    }
    basira_classifier_free(bc);
    json_int_t idx = json_integer_value(json_object_get(risk, "index"));
    json_int_t lo = json_integer_value(json_object_get(u, "low"));
    json_int_t hi = json_integer_value(json_object_get(u, "high"));
    CHECK_MSG(lo <= idx && idx <= hi && lo >= 0 && hi <= 100, "%d <= %d <= %d", (int)lo, (int)idx,
              (int)hi);
    json_t *v = json_object_get(r, "validation");
    CHECK_STR(json_string_value(json_object_get(v, "data_set")), "HAM10000");
    CHECK_STR(json_string_value(json_array_get(json_object_get(v, "photo_kinds"), 0)),
              "dermoscopic");
    CHECK(has_warning(r, "photo_kind_unknown"));
    json_decref(r);
    req.photo_kind = BASIRA_PHOTO_CLINICAL;
    CHECK_EQ_INT(basira_pipeline_run_buffer(p, jpg, len, &req, &r, &err), BASIRA_OK);
    const char *scored_by = json_string_value(json_object_get(json_object_get(r, "model"), "name"));
    if (scored_by && !strcmp(scored_by, "basira-clinical")) {
        /* The bundled clinical model took it, and says it is below its floors. */
        CHECK(has_warning(r, "model_below_floors"));
        CHECK(!has_warning(r, "photo_kind_outside"));
    } else {
        CHECK(has_warning(r, "photo_kind_outside"));
    }
    CHECK(!has_warning(r, "photo_kind_unknown"));
    json_decref(r);
    req.photo_kind = BASIRA_PHOTO_DERMOSCOPIC;
    CHECK_EQ_INT(basira_pipeline_run_buffer(p, jpg, len, &req, &r, &err), BASIRA_OK);
    CHECK(!has_warning(r, "photo_kind_outside") && !has_warning(r, "photo_kind_unknown"));
    /* The point estimate is the model's own (its TTA), not the average of the 8 views. */
    float probs[16];
    int k = 0;
    basira_image *img = NULL;
    CHECK_EQ_INT(basira_image_load_buffer(jpg, len, NULL, &img, &err), BASIRA_OK);
    if (img && !basira_pipeline_predict(p, img, probs, &k, &err)) {
        float best = 0;
        for (int i = 0; i < k; i++)
            best = probs[i] > best ? probs[i] : best;
        json_t *c0 = json_array_get(json_object_get(r, "candidates"), 0);
        CHECK_NEAR(json_number_value(json_object_get(c0, "probability")), best, 1e-7);
    }
    basira_image_free(img);
    json_decref(r);
    basira_pipeline_free(p);
    free(jpg);
}

typedef struct worker {
    basira_pipeline *p;
    const unsigned char *data;
    size_t len;
    char *out[8];
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    basira_triage_request req = {.history = NULL, .force = 1};
    for (int i = 0; i < 8; i++) {
        json_t *r = NULL;
        w->out[i] = NULL;
        if (!basira_pipeline_run_buffer(w->p, w->data, w->len, &req, &r, NULL))
            w->out[i] = json_dumps(r, JSON_SORT_KEYS);
        json_decref(r);
    }
    return NULL;
}

/* Many threads on one pipeline give exactly the sequential answer. */
static void test_threads(void)
{
    size_t len = 0;
    unsigned char *jpg = synthetic_jpeg(200, 150, 3, &len);
    basira_pipeline *p = pipeline_with(-1, -1);
    CHECK(jpg && p);
    if (!jpg || !p) {
        free(jpg);
        basira_pipeline_free(p);
        return;
    }
    worker ref = {p, jpg, len, {0}};
    work(&ref);
    worker ws[4];
    pthread_t th[4];
    for (int t = 0; t < 4; t++) {
        ws[t] = (worker){p, jpg, len, {0}};
        pthread_create(&th[t], NULL, work, &ws[t]);
    }
    int same = 1;
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        for (int i = 0; i < 8; i++) {
            if (!ws[t].out[i] || !ref.out[0] || strcmp(ws[t].out[i], ref.out[0]))
                same = 0;
            free(ws[t].out[i]);
        }
    }
    CHECK(same);
    for (int i = 0; i < 8; i++)
        free(ref.out[i]);
    basira_pipeline_free(p);
    free(jpg);
}

/* Real dermoscopy photos: the documented shape on an "ok" result. */
static void test_real_photos(void)
{
    const char *d = test_data_dir();
    if (!d) {
        fprintf(stderr, "(no ../shared/data: real-photo checks skipped)\n");
        return;
    }
    static const char *const ids[] = {"ISIC_0024306", "ISIC_0024307", "ISIC_0024308"};
    basira_pipeline *p = pipeline_with(-1, -1);
    CHECK(p != NULL);
    int scored = 0;
    for (size_t i = 0; p && i < sizeof ids / sizeof ids[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/ham10000/images/%s.jpg", d, ids[i]);
        if (access(path, R_OK))
            continue;
        json_t *r = NULL;
        basira_error err;
        CHECK_EQ_INT(basira_pipeline_run_file(p, path, NULL, &r, &err), BASIRA_OK);
        const char *st = json_string_value(json_object_get(r, "status"));
        CHECK(st && strcmp(st, "error"));
        if (st && !strcmp(st, "ok")) {
            check_scored(r);
            scored++;
        }
        json_decref(r);
    }
    fprintf(stderr, "(%d real photos scored)\n", scored);
    basira_pipeline_free(p);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/basira-pipeline-test-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(model_path, sizeof model_path, "%s/tiny.safetensors", tmpdir);
    tiny_model_opts o;
    tiny_model_opts_default(&o);
    basira_error err;
    if (tiny_model_save(&o, model_path, &err)) {
        fprintf(stderr, "cannot create the tiny model: %s\n", err.message);
        return 1;
    }
    RUN(test_new_errors);
    RUN(test_bad_input);
    RUN(test_rules_end_to_end);
    RUN(test_analyze_typed);

    RUN(test_explained);
    RUN(test_threads);
    RUN(test_real_photos);
    unlink(model_path);
    rmdir(tmpdir);
    return test_summary();
}
