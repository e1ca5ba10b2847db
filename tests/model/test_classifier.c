/* test_classifier.c - "basira" metadata parsing, model loading and prediction (TTA, temperature).
 */
#include "basira/image.h"
#include "basira/model.h"
#include "basira/nn.h"
#include "test.h"
#include "tiny_model.h"

#include <pthread.h>
#include <sodium.h>
#include <unistd.h>

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", tmpdir, name);
    return buf[i];
}

static void test_meta_valid_and_round_trip(void)
{
    tiny_model_opts o;
    tiny_model_opts_default(&o);
    json_t *meta = tiny_model_meta(&o);
    CHECK(meta != NULL);
    if (!meta)
        return;
    basira_model_info info, again;
    basira_error err;
    CHECK_EQ_INT(basira_model_info_from_json(meta, &info, &err), BASIRA_OK);
    CHECK_EQ_INT(info.num_classes, 7);
    CHECK_STR(info.name, "tiny-test");
    CHECK_STR(info.classes[4].code, "mel");
    CHECK(info.classes[4].malignant && info.classes[0].malignant && info.classes[1].malignant);
    /* No "partition" in the file: from the malignant flag. */
    CHECK_EQ_INT(info.classes[4].partition, BASIRA_PARTITION_MALIGNANT);
    CHECK_EQ_INT(info.classes[5].partition, BASIRA_PARTITION_BENIGN);
    CHECK(!info.classes[2].malignant && !info.classes[5].malignant && !info.classes[6].malignant);
    CHECK_STR(basira_model_class_name(&info.classes[4], "fr"), "Mélanome");
    CHECK_STR(basira_model_class_name(&info.classes[1], "en"), "Basal cell carcinoma");
    CHECK_STR(basira_model_class_name(&info.classes[1], "ar"), "سرطانة الخلايا القاعدية");
    CHECK_STR(basira_model_class_name(&info.classes[1], "de"), "Basal cell carcinoma");
    CHECK_EQ_INT(info.preprocess.input_w, 32);
    CHECK_NEAR(info.threshold_high, 0.40, 1e-12);
    CHECK_NEAR(info.threshold_medium, 0.08, 1e-12);
    json_t *j = basira_model_info_to_json(&info);
    char *text = json_dumps(j, 0);
    CHECK_EQ_INT(basira_model_info_parse(text, strlen(text), &again, &err), BASIRA_OK);
    CHECK(again.num_classes == info.num_classes && again.tta == info.tta);
    CHECK_STR(again.classes[0].name_ar, info.classes[0].name_ar);
    for (int c = 0; c < info.num_classes; c++)
        CHECK_EQ_INT(again.classes[c].partition, info.classes[c].partition);
    free(text);
    /* A class marked non-neoplastic keeps its partition through a round trip. */
    json_object_set_new(json_array_get(json_object_get(j, "classes"), 5), "partition",
                        json_string("non-neoplastic"));
    CHECK_EQ_INT(basira_model_info_from_json(j, &again, &err), BASIRA_OK);
    CHECK_EQ_INT(again.classes[5].partition, BASIRA_PARTITION_NON_NEOPLASTIC);
    json_t *j2 = basira_model_info_to_json(&again);
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(j2, "classes"), 5), "partition")),
              "non-neoplastic");
    json_decref(j2);
    /* No bias unless recalibrated: absent from the document; one round-trips. */
    CHECK(info.malignant_bias == 0.0 && !json_object_get(j, "malignant_bias"));
    json_object_set_new(j, "malignant_bias", json_real(1.5));
    CHECK_EQ_INT(basira_model_info_from_json(j, &again, &err), BASIRA_OK);
    CHECK_NEAR(again.malignant_bias, 1.5, 1e-12);
    j2 = basira_model_info_to_json(&again);
    CHECK_NEAR(json_number_value(json_object_get(j2, "malignant_bias")), 1.5, 1e-12);
    json_decref(j2);
    /* The shift: malignant akiec, bcc, mel; odds of P(malignant) 0.25 / 0.75 times 3 = 1. */
    float pr[7] = {0.05f, 0.10f, 0.30f, 0.05f, 0.10f, 0.35f, 0.05f};
    basira_model_shift_malignant(&info, pr, log(3.0));
    CHECK_NEAR(pr[0] + pr[1] + pr[4], 0.5, 1e-6);
    CHECK_NEAR(pr[4] / pr[0], 2.0, 1e-5);       /* within a side, ratios kept */
    CHECK_NEAR(pr[2] / 0.30 * 0.75, 0.5, 1e-6); /* benign side scaled to 0.5 */
    /* No slope unless fitted: absent, 1; one round-trips, and the model's map applies it:
     * P(malignant) 0.25 -> sigmoid(2 logit(0.25) + 0.5). */
    CHECK(info.malignant_slope == 1.0 && !json_object_get(j, "malignant_slope"));
    json_object_set_new(j, "malignant_slope", json_real(2.0));
    json_object_set_new(j, "malignant_bias", json_real(0.5));
    CHECK_EQ_INT(basira_model_info_from_json(j, &again, &err), BASIRA_OK);
    CHECK_NEAR(again.malignant_slope, 2.0, 1e-12);
    j2 = basira_model_info_to_json(&again);
    CHECK_NEAR(json_number_value(json_object_get(j2, "malignant_slope")), 2.0, 1e-12);
    json_decref(j2);
    float pq[7] = {0.05f, 0.10f, 0.30f, 0.05f, 0.10f, 0.35f, 0.05f};
    basira_model_map_malignant(&again, pq);
    double want = 1.0 / (1.0 + exp(-(2.0 * log(0.25 / 0.75) + 0.5)));
    CHECK_NEAR(pq[0] + pq[1] + pq[4], want, 1e-6);
    CHECK_NEAR(pq[4] / pq[0], 2.0, 1e-5);
    CHECK_NEAR(pq[5] / pq[2], 0.35 / 0.30, 1e-5);
    /* Slope 1: the same as the bias alone, bit for bit. */
    float ps[7] = {0.05f, 0.10f, 0.30f, 0.05f, 0.10f, 0.35f, 0.05f}, pb[7];
    memcpy(pb, ps, sizeof ps);
    again.malignant_slope = 1.0;
    basira_model_map_malignant(&again, ps);
    basira_model_shift_malignant(&again, pb, 0.5);
    CHECK(!memcmp(ps, pb, sizeof ps));
    json_decref(j);
    json_decref(meta);
}

/* Each corruption of a valid document must be refused with BASIRA_E_MODEL and a message
 * naming what is wrong. */
static void test_meta_strict(void)
{
    tiny_model_opts o;
    tiny_model_opts_default(&o);
    static const struct {
        const char *path;  /* "key" or "key.sub" to edit */
        const char *value; /* JSON, or NULL to delete */
        const char *mention;
    } cases[] = {
        {"name", NULL, "name"},
        {"name", "\"\"", "name"},
        {"name", "42", "name"},
        {"version", NULL, "version"},
        {"classes", NULL, "classes"},
        {"classes", "[]", "classes"},
        {"classes",
         "[{\"code\":\"a\",\"names\":{\"en\":\"A\",\"fr\":\"A\",\"ar\":\"A\"},"
         "\"malignant\":false},{\"code\":\"b\",\"names\":{\"en\":\"B\",\"fr\":\"B\","
         "\"ar\":\"B\"},\"malignant\":false}]",
         "malignant"},
        {"classes",
         "[{\"code\":\"a\",\"names\":{\"en\":\"A\",\"fr\":\"A\",\"ar\":\"A\"},"
         "\"malignant\":true},{\"code\":\"a\",\"names\":{\"en\":\"B\",\"fr\":\"B\","
         "\"ar\":\"B\"},\"malignant\":false}]",
         "twice"},
        {"classes",
         "[{\"code\":\"a b\",\"names\":{\"en\":\"A\",\"fr\":\"A\",\"ar\":\"A\"},"
         "\"malignant\":true},{\"code\":\"c\",\"names\":{\"en\":\"B\",\"fr\":\"B\","
         "\"ar\":\"B\"},\"malignant\":false}]",
         "code"},
        {"classes",
         "[{\"code\":\"a\",\"names\":{\"en\":\"A\",\"fr\":\"A\"},"
         "\"malignant\":true},{\"code\":\"c\",\"names\":{\"en\":\"B\",\"fr\":\"B\","
         "\"ar\":\"B\"},\"malignant\":false}]",
         "names"},
        {"classes",
         "[{\"code\":\"a\",\"names\":{\"en\":\"A\",\"fr\":\"A\",\"ar\":\"A\"},"
         "\"malignant\":1},{\"code\":\"c\",\"names\":{\"en\":\"B\",\"fr\":\"B\","
         "\"ar\":\"B\"},\"malignant\":false}]",
         "malignant"},
        /* a partition that is not one of the three, or a benign class said malignant */
        {"classes",
         "[{\"code\":\"a\",\"names\":{\"en\":\"A\",\"fr\":\"A\",\"ar\":\"A\"},"
         "\"malignant\":true},{\"code\":\"c\",\"names\":{\"en\":\"B\",\"fr\":\"B\","
         "\"ar\":\"B\"},\"malignant\":false,\"partition\":\"inflammatory\"}]",
         "partition"},
        {"classes",
         "[{\"code\":\"a\",\"names\":{\"en\":\"A\",\"fr\":\"A\",\"ar\":\"A\"},"
         "\"malignant\":true},{\"code\":\"c\",\"names\":{\"en\":\"B\",\"fr\":\"B\","
         "\"ar\":\"B\"},\"malignant\":false,\"partition\":\"malignant\"}]",
         "partition"},
        {"preprocessing", NULL, "preprocessing"},
        {"preprocessing.std", "[1,0,1]", "std"},
        {"temperature", NULL, "temperature"},
        {"temperature", "0", "temperature"},
        {"temperature", "-1", "temperature"},
        {"thresholds", NULL, "thresholds"},
        {"thresholds.high", "1.5", "thresholds"},
        {"thresholds.medium", "0.9", "thresholds"}, /* above high */
        {"thresholds.medium", "\"low\"", "thresholds"},
        {"tta", NULL, "tta"},
        {"tta", "3", "tta"},
        {"tta", "16", "tta"},
        {"tta", "2.0", "tta"},
        {"malignant_bias", "9", "malignant_bias"},
        {"malignant_bias", "\"1\"", "malignant_bias"},
        {"malignant_slope", "0.1", "malignant_slope"},
        {"malignant_slope", "5", "malignant_slope"},
        {"malignant_slope", "-1", "malignant_slope"},
        {"malignant_slope", "\"1\"", "malignant_slope"},
        {"int8", "42", "int8"},
        {"int8", "{}", "int8"},
        {"int8", "{\"default\":1}", "int8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *meta = tiny_model_meta(&o);
        if (!meta) {
            CHECK(meta != NULL);
            return;
        }
        char key[64];
        snprintf(key, sizeof key, "%s", cases[i].path);
        json_t *obj = meta;
        char *dot = strchr(key, '.');
        if (dot) {
            *dot = '\0';
            obj = json_object_get(meta, key);
            memmove(key, dot + 1, strlen(dot + 1) + 1);
        }
        if (cases[i].value)
            json_object_set_new(obj, key, json_loads(cases[i].value, JSON_DECODE_ANY, NULL));
        else
            json_object_del(obj, key);
        basira_model_info info;
        basira_error err;
        basira_error_clear(&err);
        basira_code rc = basira_model_info_from_json(meta, &info, &err);
        CHECK_MSG(rc == BASIRA_E_MODEL, "case %zu (%s) gave %d", i, cases[i].path, (int)rc);
        CHECK_MSG(strstr(err.message, cases[i].mention) != NULL, "case %zu: message '%s'", i,
                  err.message);
        json_decref(meta);
    }
    /* TTA 8 needs a square input. */
    json_t *meta = tiny_model_meta(&o);
    json_object_set_new(meta, "tta", json_integer(8));
    json_object_set_new(json_object_get(meta, "preprocessing"), "input_size",
                        json_pack("[i,i]", 32, 24));
    basira_model_info info;
    basira_error err;
    CHECK_EQ_INT(basira_model_info_from_json(meta, &info, &err), BASIRA_E_MODEL);
    json_decref(meta);
    /* Text that is not JSON. */
    CHECK_EQ_INT(basira_model_info_parse("{\"name\":", 8, &info, &err), BASIRA_E_MODEL);
    CHECK_EQ_INT(basira_model_info_parse("", 0, &info, &err), BASIRA_E_MODEL);
}

static int write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, n, f);
    fclose(f);
    return w == n ? 0 : -1;
}

static void test_load_errors(void)
{
    basira_classifier *c = NULL;
    basira_error err;
    CHECK_EQ_INT(basira_classifier_load(tmp_path("absent.safetensors"), &c, &err),
                 BASIRA_E_NOT_FOUND);
    CHECK(c == NULL && strstr(err.message, "absent.safetensors"));

    CHECK(write_bytes(tmp_path("garbage.safetensors"), "this is not a model", 19) == 0);
    CHECK_EQ_INT(basira_classifier_load(tmp_path("garbage.safetensors"), &c, &err), BASIRA_E_MODEL);
    CHECK(write_bytes(tmp_path("empty.safetensors"), "", 0) == 0);
    CHECK(basira_classifier_load(tmp_path("empty.safetensors"), &c, &err) != BASIRA_OK);
    CHECK(c == NULL);

    tiny_model_opts o;
    tiny_model_opts_default(&o);
    /* A valid net without our metadata is not a classifier. */
    CHECK_EQ_INT(tiny_model_save_meta(&o, NULL, tmp_path("nometa.safetensors"), &err), BASIRA_OK);
    CHECK_EQ_INT(basira_classifier_load(tmp_path("nometa.safetensors"), &c, &err), BASIRA_E_MODEL);
    CHECK(strstr(err.message, "basira") != NULL);
    /* Outputs and classes disagree. */
    o.num_classes_net = 5;
    CHECK_EQ_INT(tiny_model_save(&o, tmp_path("k5.safetensors"), &err), BASIRA_OK);
    CHECK_EQ_INT(basira_classifier_load(tmp_path("k5.safetensors"), &c, &err), BASIRA_E_MODEL);
    /* Input size and preprocessing disagree. */
    o.num_classes_net = 0;
    o.input_size_meta = 48;
    CHECK_EQ_INT(tiny_model_save(&o, tmp_path("in48.safetensors"), &err), BASIRA_OK);
    CHECK_EQ_INT(basira_classifier_load(tmp_path("in48.safetensors"), &c, &err), BASIRA_E_MODEL);
    CHECK(c == NULL);
    /* A directory is not a model file. */
    CHECK(basira_classifier_load(tmpdir, &c, &err) != BASIRA_OK);
}

/* Asymmetric test image (values depend on x and y differently). */
static basira_image *make_image(int w, int h, int symmetric)
{
    unsigned char *rgb = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int v;
            if (symmetric) {
                /* invariant under every symmetry of the square: depends on the sorted
                 * distances to the nearest borders only */
                int dx = x < w - 1 - x ? x : w - 1 - x, dy = y < h - 1 - y ? y : h - 1 - y;
                int a = dx < dy ? dx : dy, b = dx < dy ? dy : dx;
                v = 40 + 9 * a + 3 * b;
            } else {
                v = 30 + 5 * x + 2 * y + (x * y) % 17;
            }
            rgb[3 * (y * w + x)] = (unsigned char)(v % 256);
            rgb[3 * (y * w + x) + 1] = (unsigned char)((v * 3 / 4) % 256);
            rgb[3 * (y * w + x) + 2] = (unsigned char)((v / 2) % 256);
        }
    basira_image *img = NULL;
    basira_image_from_rgb(rgb, w, h, &img, NULL);
    free(rgb);
    return img;
}

/* Saved, then loaded as `basira triage` does (chosen 0), or at a chosen precision. */
static basira_classifier *load_opts_at(const tiny_model_opts *o, const char *name, int chosen,
                                       basira_precision precision)
{
    basira_error err;
    basira_classifier *c = NULL;
    if (tiny_model_save(o, tmp_path(name), &err)) {
        fprintf(stderr, "cannot save tiny model: %s\n", err.message);
        return NULL;
    }
    if (chosen ? basira_classifier_load_precision(tmp_path(name), precision, &c, &err)
               : basira_classifier_load(tmp_path(name), &c, &err)) {
        fprintf(stderr, "cannot load tiny model: %s\n", err.message);
        return NULL;
    }
    return c;
}

static basira_classifier *load_opts(const tiny_model_opts *o, const char *name)
{
    return load_opts_at(o, name, 0, BASIRA_PRECISION_FP32);
}

static void test_predict(void)
{
    tiny_model_opts o;
    tiny_model_opts_default(&o);
    basira_classifier *c = load_opts(&o, "tiny.safetensors");
    CHECK(c != NULL);
    if (!c)
        return;
    basira_error err;
    /* The identity is the SHA-256 of the file's bytes. */
    FILE *f = fopen(tmp_path("tiny.safetensors"), "rb");
    unsigned char *buf = malloc(64 << 20);
    size_t n = f ? fread(buf, 1, 64 << 20, f) : 0;
    if (f)
        fclose(f);
    unsigned char h[32];
    char hex[65];
    CHECK(sodium_init() >= 0);
    crypto_hash_sha256(h, buf, n);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    CHECK_STR(basira_classifier_sha256(c), hex);
    free(buf);

    basira_image *img = make_image(80, 60, 0);
    float p1[16], p2[16];
    CHECK_MSG(basira_classifier_predict(c, img, p1, &err) == BASIRA_OK, "%s", err.message);
    double s = 0;
    for (int i = 0; i < 7; i++) {
        CHECK(p1[i] >= 0 && p1[i] <= 1);
        s += p1[i];
    }
    CHECK_NEAR(s, 1.0, 1e-5);
    CHECK_MSG(basira_classifier_predict(c, img, p2, &err) == BASIRA_OK, "%s", err.message);
    CHECK(!memcmp(p1, p2, sizeof(float) * 7)); /* deterministic */
    CHECK_EQ_INT(basira_classifier_predict(c, NULL, p1, &err), BASIRA_E_INVALID_ARGUMENT);
    basira_image_free(img);
    basira_classifier_free(c);
}

/* softmax(z / T) from softmax(z): p_T ∝ p^(1/T). */
static void test_temperature(void)
{
    tiny_model_opts o;
    tiny_model_opts_default(&o);
    basira_classifier *c1 = load_opts(&o, "t1.safetensors");
    o.temperature = 2.5;
    basira_classifier *c2 = load_opts(&o, "t25.safetensors");
    CHECK(c1 && c2);
    if (!c1 || !c2) {
        basira_classifier_free(c1);
        basira_classifier_free(c2);
        return;
    }
    basira_image *img = make_image(64, 64, 0);
    float p1[16], p2[16];
    basira_error err;
    CHECK_MSG(basira_classifier_predict(c1, img, p1, &err) == BASIRA_OK, "%s", err.message);
    CHECK_MSG(basira_classifier_predict(c2, img, p2, &err) == BASIRA_OK, "%s", err.message);
    double z = 0, want[7];
    for (int i = 0; i < 7; i++)
        z += want[i] = pow(p1[i], 1 / 2.5);
    for (int i = 0; i < 7; i++)
        CHECK_NEAR(p2[i], want[i] / z, 1e-4);
    basira_image_free(img);
    basira_classifier_free(c1);
    basira_classifier_free(c2);
}

/* TTA: on an image invariant under all 8 symmetries every view gives the same answer;
 * on an asymmetric image TTA 2 is the mean of the image and its mirror. */
static void test_tta(void)
{
    tiny_model_opts o;
    tiny_model_opts_default(&o);
    basira_classifier *c1 = load_opts(&o, "tta1.safetensors");
    o.tta = 8;
    basira_classifier *c8 = load_opts(&o, "tta8.safetensors");
    o.tta = 2;
    basira_classifier *c2 = load_opts(&o, "tta2.safetensors");
    CHECK(c1 && c8 && c2);
    if (!c1 || !c8 || !c2)
        goto out;
    basira_error err;
    const basira_preprocess *pp = &basira_classifier_info(c1)->preprocess;
    size_t npix = (size_t)pp->input_w * pp->input_h;
    float *x = malloc(sizeof(float) * 3 * npix), *m = malloc(sizeof(float) * 3 * npix);
    float a[16], b[16], mirror[16], t2[16];

    basira_image *sym = make_image(32, 32, 1);
    CHECK_EQ_INT(basira_preprocess_image(pp, sym, x, &err), BASIRA_OK);
    CHECK_MSG(basira_classifier_predict_chw(c1, x, a, &err) == BASIRA_OK, "%s", err.message);
    CHECK_MSG(basira_classifier_predict_chw(c8, x, b, &err) == BASIRA_OK, "%s", err.message);
    for (int i = 0; i < 7; i++)
        CHECK_NEAR(a[i], b[i], 1e-5);

    basira_image *asym = make_image(32, 32, 0);
    CHECK_EQ_INT(basira_preprocess_image(pp, asym, x, &err), BASIRA_OK);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < pp->input_h; y++)
            for (int xx = 0; xx < pp->input_w; xx++)
                m[c * npix + y * pp->input_w + xx] =
                    x[c * npix + y * pp->input_w + (pp->input_w - 1 - xx)];
    CHECK_MSG(basira_classifier_predict_chw(c1, x, a, &err) == BASIRA_OK, "%s", err.message);
    CHECK_MSG(basira_classifier_predict_chw(c1, m, mirror, &err) == BASIRA_OK, "%s", err.message);
    CHECK_MSG(basira_classifier_predict_chw(c2, x, t2, &err) == BASIRA_OK, "%s", err.message);
    double diff = 0;
    for (int i = 0; i < 7; i++) {
        CHECK_NEAR(t2[i], 0.5 * (a[i] + mirror[i]), 1e-5);
        diff += fabs(a[i] - mirror[i]);
    }
    CHECK(diff > 1e-6); /* the mirror really is a different input for this net */
    /* Overriding the model's views: 2 on the 1-view model gives the 2-view model's answer;
     * a count other than 1, 2, 4, 8 is refused and leaves the classifier as it was. */
    float s2[16];
    CHECK_EQ_INT(basira_classifier_set_tta(c1, 3, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_classifier_set_tta(c1, 0, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_classifier_info(c1)->tta, 1);
    CHECK_EQ_INT(basira_classifier_set_tta(c1, 2, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_classifier_info(c1)->tta, 2);
    CHECK_MSG(basira_classifier_predict_chw(c1, x, s2, &err) == BASIRA_OK, "%s", err.message);
    for (int i = 0; i < 7; i++)
        CHECK_NEAR(s2[i], t2[i], 1e-6);
    CHECK_EQ_INT(basira_classifier_set_tta(c1, 8, &err), BASIRA_OK); /* square input */
    basira_image_free(sym);
    basira_image_free(asym);
    free(x);
    free(m);
out:
    basira_classifier_free(c1);
    basira_classifier_free(c2);
    basira_classifier_free(c8);
}

typedef struct thread_job {
    basira_classifier *c;
    const basira_image *img;
    float probs[4][16];
    int rc;
} thread_job;

static void *predict_thread(void *arg)
{
    thread_job *j = arg;
    j->rc = 0;
    for (int i = 0; i < 4; i++)
        j->rc |= basira_classifier_predict(j->c, j->img, j->probs[i], NULL);
    return NULL;
}

/* A classifier loaded on one thread answers identically from several others at once
 * (oneDNN primitives must not migrate between threads: the classifier's own thread
 * runs them). */
static void test_threads(void)
{
    tiny_model_opts o;
    tiny_model_opts_default(&o);
    o.tta = 2;
    basira_classifier *c = load_opts(&o, "threads.safetensors");
    CHECK(c != NULL);
    if (!c)
        return;
    basira_image *img = make_image(50, 40, 0);
    float ref[16];
    basira_error err;
    CHECK_MSG(basira_classifier_predict(c, img, ref, &err) == BASIRA_OK, "%s", err.message);
    thread_job jobs[3];
    pthread_t th[3];
    for (int t = 0; t < 3; t++) {
        jobs[t].c = c;
        jobs[t].img = img;
        CHECK(pthread_create(&th[t], NULL, predict_thread, &jobs[t]) == 0);
    }
    int same = 1;
    for (int t = 0; t < 3; t++) {
        pthread_join(th[t], NULL);
        CHECK_EQ_INT(jobs[t].rc, 0);
        for (int i = 0; i < 4; i++)
            if (memcmp(jobs[t].probs[i], ref, sizeof(float) * 7))
                same = 0;
    }
    CHECK(same);
    basira_image_free(img);
    basira_classifier_free(c);
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#endif

#ifndef UNDER_ASAN
static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n))
            v = atol(line + n);
    if (f)
        fclose(f);
    return v;
}
#endif

/*
 * The model and its runtime stay under 50 MB: a model of the size the trainer uses by
 * default (MobileNetV2, width 32, 128x128, about 2.2 M parameters) with 8 TTA views,
 * measured as the growth of the process's private memory (RssAnon) over loading and
 * a few predictions. Not meaningful under AddressSanitizer (shadow memory, quarantine).
 */
static void test_memory_budget(void)
{
#ifdef UNDER_ASAN
    fprintf(stderr, "(memory budget not measured under AddressSanitizer)\n");
#else
    tiny_model_opts o;
    tiny_model_opts_default(&o);
    o.family = "mobilenetv2";
    o.width = 32;
    o.depth = 10;
    o.input_size = 128;
    o.tta = 8;
    basira_error err;
    CHECK_EQ_INT(tiny_model_save(&o, tmp_path("big.safetensors"), &err), BASIRA_OK);
    long before = status_kb("RssAnon:");
    basira_classifier *c = NULL;
    CHECK_MSG(basira_classifier_load(tmp_path("big.safetensors"), &c, &err) == BASIRA_OK, "%s",
              err.message);
    if (!c)
        return;
    float *x = malloc(sizeof(float) * 3 * 128 * 128), p[16];
    for (int i = 0; i < 3 * 128 * 128; i++)
        x[i] = (float)((i * 7919) % 255) / 128.0f - 1.0f;
    for (int i = 0; i < 3; i++)
        CHECK_MSG(basira_classifier_predict_chw(c, x, p, &err) == BASIRA_OK, "%s", err.message);
    long after = status_kb("RssAnon:");
    fprintf(stderr, "(model + runtime: %ld kB private memory, %zu kB counted by the classifier)\n",
            after - before, basira_classifier_memory(c) / 1024);
    CHECK(before > 0 && after > 0);
    CHECK_MSG(after - before < 50 * 1024, "%ld kB", after - before);
    free(x);
    basira_classifier_free(c);
#endif
}

static void cleanup(void)
{
    static const char *const names[] = {
        "garbage.safetensors", "empty.safetensors", "nometa.safetensors", "k5.safetensors",
        "in48.safetensors",    "tiny.safetensors",  "t1.safetensors",     "t25.safetensors",
        "tta1.safetensors",    "tta8.safetensors",  "tta2.safetensors",   "big.safetensors",
        "int8.safetensors"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(tmp_path(names[i]));
    rmdir(tmpdir);
}

/*
 * Loaded as `basira triage` loads it, a classifier has given up its networks' float32
 * weights (basira_net_release_values): it predicts as before, the same to the bit as one
 * that kept them, calibrates in fp32, and refuses the switch to int8 that would need
 * them, still predicting afterwards.
 */
static void test_released_weights(void)
{
    tiny_model_opts o;
    tiny_model_opts_default(&o);
    basira_classifier *lean = load_opts(&o, "lean.safetensors");
    basira_classifier *kept = load_opts_at(&o, "kept.safetensors", 1, BASIRA_PRECISION_FP32);
    CHECK(lean && kept);
    float *x = NULL;
    if (!lean || !kept)
        goto out;
    basira_error err;
    const basira_preprocess *pp = &basira_classifier_info(lean)->preprocess;
    x = malloc(sizeof(float) * 3 * (size_t)pp->input_w * (size_t)pp->input_h);
    basira_image *img = make_image(32, 32, 0);
    CHECK(x && img && basira_preprocess_image(pp, img, x, &err) == BASIRA_OK);
    basira_image_free(img);
    float a[16], b[16], c2[16];
    CHECK_EQ_INT(basira_classifier_predict_chw(lean, x, a, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_classifier_predict_chw(kept, x, b, &err), BASIRA_OK);
    CHECK_EQ_INT(memcmp(a, b, 7 * sizeof(float)), 0);
    CHECK_MSG(basira_classifier_calibrate_chw(lean, x, &err) == BASIRA_OK, "%s", err.message);
    CHECK_EQ_INT(basira_classifier_use_int8(lean, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "load the model again") != NULL);
    CHECK_EQ_INT(basira_classifier_precision(lean), BASIRA_PRECISION_FP32);
    CHECK_EQ_INT(basira_classifier_predict_chw(lean, x, c2, &err), BASIRA_OK);
    CHECK_EQ_INT(memcmp(a, c2, 7 * sizeof(float)), 0);
out:
    free(x);
    basira_classifier_free(lean);
    basira_classifier_free(kept);
    unlink(tmp_path("lean.safetensors"));
    unlink(tmp_path("kept.safetensors"));
}

/* Reduced precision: int8 refused before calibration, then close to fp32 after it; the
 * precision asked for at load is the one reported. */
static void test_precision(void)
{
    tiny_model_opts o;
    tiny_model_opts_default(&o);
    basira_classifier *c = load_opts_at(&o, "int8.safetensors", 1, BASIRA_PRECISION_FP32);
    CHECK(c != NULL);
    if (!c)
        return;
    basira_error err;
    CHECK_EQ_INT(basira_classifier_precision(c), BASIRA_PRECISION_FP32);
    CHECK_EQ_INT(basira_classifier_use_int8(c, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_classifier_calibrate_chw(c, NULL, &err), BASIRA_E_INVALID_ARGUMENT);
    const basira_preprocess *pp = &basira_classifier_info(c)->preprocess;
    float *x = malloc(sizeof(float) * 3 * (size_t)pp->input_w * (size_t)pp->input_h);
    float a[16], b[16];
    basira_image *img = make_image(32, 32, 0);
    CHECK_EQ_INT(basira_preprocess_image(pp, img, x, &err), BASIRA_OK);
    CHECK_MSG(basira_classifier_predict_chw(c, x, a, &err) == BASIRA_OK, "%s", err.message);
    CHECK_MSG(basira_classifier_calibrate_chw(c, x, &err) == BASIRA_OK, "%s", err.message);
    CHECK_MSG(basira_classifier_use_int8(c, &err) == BASIRA_OK, "%s", err.message);
    CHECK_EQ_INT(basira_classifier_precision(c), BASIRA_PRECISION_INT8);
    CHECK_MSG(basira_classifier_predict_chw(c, x, b, &err) == BASIRA_OK, "%s", err.message);
    double d = 0;
    for (int i = 0; i < 7; i++)
        d = fmax(d, fabs((double)a[i] - b[i]));
    CHECK_MSG(d < 0.05, "int8 probabilities differ from fp32 by %g", d);
    basira_image_free(img);
    free(x);
    basira_classifier_free(c);
    /* bf16 at load: refused without bf16 instructions, reported as asked otherwise. */
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path("int8.safetensors"));
    basira_code rc = basira_classifier_load_precision(path, BASIRA_PRECISION_BF16, &c, &err);
    if (basira_nn_bf16_supported()) {
        CHECK_EQ_INT(rc, BASIRA_OK);
        if (!rc)
            CHECK_EQ_INT(basira_classifier_precision(c), BASIRA_PRECISION_BF16);
        basira_classifier_free(c);
    } else {
        CHECK_EQ_INT(rc, BASIRA_E_UNSUPPORTED);
    }
}

/* "int8": {"default": true} (basira quantize): basira_classifier_load() runs int8, an explicit
 * precision still wins, and a file that claims int8 without its calibration is refused. */
static void test_int8_default(void)
{
    tiny_model_opts o;
    tiny_model_opts_default(&o);
    basira_error err;
    json_t *meta = tiny_model_meta(&o);
    json_object_set_new(meta, "int8", json_pack("{s:b}", "default", 1));
    const char *uncal = tmp_path("int8-uncal.safetensors");
    CHECK_EQ_INT(tiny_model_save_meta(&o, meta, uncal, &err), BASIRA_OK);
    basira_classifier *c = NULL;
    CHECK_EQ_INT(basira_classifier_load(uncal, &c, &err), BASIRA_E_MODEL);
    CHECK_MSG(strstr(err.message, "int8") != NULL, "%s", err.message);
    CHECK_EQ_INT(basira_classifier_load_precision(uncal, BASIRA_PRECISION_FP32, &c, &err),
                 BASIRA_OK);
    basira_classifier_free(c);
    c = NULL;

    /* Calibrated on one image and saved: the ranges travel with the file. */
    basira_net *net = NULL;
    CHECK_EQ_INT(basira_net_load(uncal, &net, &err), BASIRA_OK);
    int ch, h, w;
    basira_net_input_shape(net, &ch, &h, &w);
    float *x = calloc((size_t)ch * h * w, sizeof *x);
    for (int i = 0; x && i < ch * h * w; i++)
        x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    CHECK(x && basira_net_prepare_inference(net, 1, &err) == BASIRA_OK);
    CHECK(x && basira_net_calibrate(net, x, 1, &err) == BASIRA_OK);
    CHECK(basira_net_int8_calibrated(net));
    const char *cal = tmp_path("int8-cal.safetensors");
    CHECK_EQ_INT(basira_net_save(net, cal, &err), BASIRA_OK);
    basira_net_free(net);
    CHECK_EQ_INT(basira_classifier_load(cal, &c, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_classifier_precision(c), BASIRA_PRECISION_INT8);
    CHECK_EQ_INT(basira_classifier_info(c)->int8_default, 1);
    basira_classifier_free(c);
    CHECK_EQ_INT(basira_classifier_load_precision(cal, BASIRA_PRECISION_FP32, &c, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_classifier_precision(c), BASIRA_PRECISION_FP32);
    basira_classifier_free(c);
    /* Not marked as default: fp32, though the ranges are there. */
    CHECK_EQ_INT(basira_net_load(cal, &net, &err), BASIRA_OK);
    json_t *plain = tiny_model_meta(&o);
    char *text = json_dumps(plain, JSON_COMPACT);
    json_object_set_new(basira_net_metadata(net), "basira", json_string(text));
    free(text);
    json_decref(plain);
    CHECK(basira_net_int8_calibrated(net));
    CHECK_EQ_INT(basira_net_save(net, cal, &err), BASIRA_OK);
    basira_net_free(net);
    CHECK_EQ_INT(basira_classifier_load(cal, &c, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_classifier_precision(c), BASIRA_PRECISION_FP32);
    basira_classifier_free(c);
    /* The round trip of the metadata drops the mark (a rewritten model is measured again). */
    basira_model_info info;
    CHECK_EQ_INT(basira_model_info_from_json(meta, &info, &err), BASIRA_OK);
    json_t *back = basira_model_info_to_json(&info);
    CHECK(back && json_object_get(back, "int8") == NULL);
    json_decref(back);
    free(x);
    json_decref(meta);
    unlink(uncal);
    unlink(cal);
}

/* An ensemble file: the mean of its members' probabilities, view by view, at the model's
 * temperature; calibrated for int8 member by member. */
static void test_ensemble(void)
{
    tiny_model_opts o;
    tiny_model_opts_default(&o);
    o.temperature = 1.5;
    o.tta = 2;
    basira_error err;
    const char *pa = tmp_path("ens-a.safetensors"), *pb = tmp_path("ens-b.safetensors"),
               *pe = tmp_path("ens.safetensors");
    CHECK_EQ_INT(tiny_model_save(&o, pa, &err), BASIRA_OK);
    o.seed = 43;
    CHECK_EQ_INT(tiny_model_save(&o, pb, &err), BASIRA_OK);
    basira_net *nets[2] = {NULL, NULL};
    CHECK_EQ_INT(basira_net_load(pa, &nets[0], &err), BASIRA_OK);
    CHECK_EQ_INT(basira_net_load(pb, &nets[1], &err), BASIRA_OK);
    CHECK_MSG(basira_net_save_ensemble((const basira_net *const *)nets, 2, pe, &err) == BASIRA_OK,
              "%s", err.message);
    basira_net_free_ensemble(nets, 2);
    basira_classifier *a = NULL, *b = NULL, *e = NULL;
    CHECK_EQ_INT(basira_classifier_load(pa, &a, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_classifier_load(pb, &b, &err), BASIRA_OK);
    /* At a chosen precision: it is switched to int8 below. */
    CHECK_MSG(basira_classifier_load_precision(pe, BASIRA_PRECISION_FP32, &e, &err) == BASIRA_OK,
              "%s", err.message);
    if (!a || !b || !e)
        goto out;
    CHECK_EQ_INT(basira_classifier_members(a), 1);
    CHECK_EQ_INT(basira_classifier_members(e), 2);
    CHECK(basira_classifier_memory(e) > basira_classifier_memory(a));
    basira_image *img = make_image(40, 30, 0);
    float pa_[16], pb_[16], pe_[16], va[8 * 16], vb[8 * 16], ve[8 * 16];
    int na = 0, nb = 0, ne = 0;
    CHECK_EQ_INT(basira_classifier_predict_views(a, img, pa_, va, &na, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_classifier_predict_views(b, img, pb_, vb, &nb, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_classifier_predict_views(e, img, pe_, ve, &ne, &err), BASIRA_OK);
    /* Two members at 2 views: the spread is each member on each view, 4 samples, and
     * costs no forward pass beyond the prediction. */
    CHECK(na == 8 && nb == 8 && ne == 4);
    CHECK_EQ_INT(basira_classifier_spread_by_member(e), 1);
    CHECK_EQ_INT(basira_classifier_spread_by_member(a), 0);
    double diff = 0;
    for (int i = 0; i < 7; i++) {
        CHECK_NEAR(pe_[i], 0.5 * (pa_[i] + pb_[i]), 1e-5);
        diff += fabs(pa_[i] - pb_[i]);
    }
    CHECK(diff > 1e-4); /* the two members really differ */
    for (int v = 0; v < 2; v++)
        for (int i = 0; i < 7; i++) {
            CHECK_NEAR(ve[(v * 2 + 0) * 7 + i], va[v * 7 + i], 1e-5);
            CHECK_NEAR(ve[(v * 2 + 1) * 7 + i], vb[v * 7 + i], 1e-5);
        }
    /* The prediction is the same whether or not the spread is asked for. */
    float plain[16];
    CHECK_EQ_INT(basira_classifier_predict(e, img, plain, &err), BASIRA_OK);
    for (int i = 0; i < 7; i++)
        CHECK_EQ_INT(plain[i] == pe_[i], 1);
    /* At 8 views the 16 pairs are too many: the 8 views of the averaged ensemble. */
    CHECK_EQ_INT(basira_classifier_set_tta(e, 8, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_classifier_spread_by_member(e), 0);
    CHECK_EQ_INT(basira_classifier_predict_views(e, img, pe_, ve, &ne, &err), BASIRA_OK);
    CHECK_EQ_INT(ne, 8);
    for (int i = 0; i < 8 * 7; i++)
        CHECK_NEAR(ve[i], 0.5 * (va[i] + vb[i]), 1e-5);
    /* At 1 view, 2 pairs are too few: each member also runs view 2, for 4 samples, and the
     * prediction stays that of view 1 alone. */
    CHECK_EQ_INT(basira_classifier_set_tta(e, 1, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_classifier_spread_by_member(e), 1);
    CHECK_EQ_INT(basira_classifier_predict_views(e, img, pe_, ve, &ne, &err), BASIRA_OK);
    CHECK_EQ_INT(ne, 4);
    for (int v = 0; v < 2; v++)
        for (int i = 0; i < 7; i++) {
            CHECK_NEAR(ve[(v * 2 + 0) * 7 + i], va[v * 7 + i], 1e-5);
            CHECK_NEAR(ve[(v * 2 + 1) * 7 + i], vb[v * 7 + i], 1e-5);
        }
    CHECK_EQ_INT(basira_classifier_predict(e, img, plain, &err), BASIRA_OK);
    for (int i = 0; i < 7; i++) {
        CHECK_EQ_INT(plain[i] == pe_[i], 1);
        CHECK_NEAR(pe_[i], 0.5 * (va[i] + vb[i]), 1e-5);
    }
    CHECK_EQ_INT(basira_classifier_set_tta(e, 2, &err), BASIRA_OK);
    /* int8: every member gets its ranges; the ensemble then runs in int8. */
    const basira_preprocess *pp = &basira_classifier_info(e)->preprocess;
    float *x = malloc(sizeof(float) * 3 * (size_t)pp->input_w * (size_t)pp->input_h);
    CHECK(x && basira_preprocess_image(pp, img, x, &err) == BASIRA_OK);
    CHECK(x && basira_classifier_calibrate_chw(e, x, &err) == BASIRA_OK);
    CHECK_EQ_INT(basira_classifier_use_int8(e, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_classifier_precision(e), BASIRA_PRECISION_INT8);
    float q[16];
    CHECK(x && basira_classifier_predict_chw(e, x, q, &err) == BASIRA_OK);
    double sum = 0;
    for (int i = 0; i < 7; i++)
        sum += q[i];
    CHECK_NEAR(sum, 1.0, 1e-4);
    free(x);
    basira_image_free(img);
out:
    basira_classifier_free(a);
    basira_classifier_free(b);
    basira_classifier_free(e);
    unlink(pa);
    unlink(pb);
    unlink(pe);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/basira-model-test-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_meta_valid_and_round_trip);
    RUN(test_meta_strict);
    RUN(test_load_errors);
    RUN(test_predict);
    RUN(test_temperature);
    RUN(test_tta);
    RUN(test_threads);
    RUN(test_memory_budget);
    RUN(test_released_weights);
    RUN(test_precision);
    RUN(test_int8_default);
    RUN(test_ensemble);
    cleanup();
    return test_summary();
}
