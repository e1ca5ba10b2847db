/*
 * test_routing.c - which model scores a photo (src/triage/route.c, issue 11): the
 * photo-kind detector, the declared kind and its confirmation, the clinical model's
 * slot, and the refusal of a picture that shows no skin. Tiny random models made
 * here: a main model, a "clinical" model (another seed: another SHA-256) and a
 * detector whose classes are dermoscopic / clinical. Their predictions mean nothing;
 * what is checked is that each photo goes where the rules say, and that the result
 * says so, in the user's language.
 */
#include "basira/i18n.h"
#include "basira/image.h"
#include "basira/triage.h"
#include "test.h"
#include "tiny_model.h"

#include <unistd.h>

typedef struct fixture {
    char dir[256], main_path[512], clinical_path[512], detector_path[512];
    char main_sha[65], clinical_sha[65];
} fixture;

/* A tiny detector: two classes from models/modality-classes.json. */
static basira_code save_detector(const char *path, basira_error *err)
{
    const char *src = getenv("BASIRA_SOURCE_DIR");
    char cpath[4096];
    snprintf(cpath, sizeof cpath, "%s/models/modality-classes.json", src ? src : ".");
    json_t *classes = json_load_file(cpath, 0, NULL);
    if (!classes)
        return basira_error_set(err, BASIRA_E_NOT_FOUND, "%s", cpath);
    json_t *meta =
        json_pack("{s:s, s:s, s:o, s:{s:i, s:[f,f,f], s:[f,f,f], s:s}, s:f, "
                  "s:{s:f, s:f}, s:i}",
                  "name", "tiny-detector", "version", "0.0.1", "classes", classes, "preprocessing",
                  "input_size", 32, "mean", 0.5, 0.5, 0.5, "std", 0.2, 0.2, 0.2, "colour_constancy",
                  "none", "temperature", 0.05, "thresholds", "high", 0.5, "medium", 0.5, "tta", 1);
    tiny_model_opts o;
    tiny_model_opts_default(&o);
    o.num_classes_net = 2;
    o.seed = 5;
    basira_code rc = tiny_model_save_meta(&o, meta, path, err);
    json_decref(meta);
    return rc;
}

static basira_code save_named(const char *path, const char *name, unsigned long long seed,
                              basira_error *err)
{
    tiny_model_opts o;
    tiny_model_opts_default(&o);
    o.seed = seed;
    json_t *meta = tiny_model_meta(&o);
    if (!meta)
        return basira_error_set(err, BASIRA_E_NOT_FOUND, "classes");
    json_object_set_new(meta, "name", json_string(name));
    basira_code rc = tiny_model_save_meta(&o, meta, path, err);
    json_decref(meta);
    return rc;
}

/* Textured skin with a dark blob, as JPEG (the shape of test_pipeline.c's photo). */
static unsigned char *skin_jpeg(int w, int h, unsigned seed, size_t *len)
{
    unsigned char *rgb = malloc((size_t)w * h * 3);
    unsigned s = seed;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            s = s * 1103515245u + 12345u;
            int noise = (int)((s >> 16) % 24) - 12;
            double dx = (x - w / 2.0) / (w / 5.0), dy = (y - h / 2.0) / (h / 6.0);
            int in = dx * dx + dy * dy < 1.0;
            int base[3] = {in ? 90 : 200, in ? 55 : 150, in ? 45 : 130};
            for (int c = 0; c < 3; c++) {
                int v = base[c] + noise;
                rgb[((size_t)y * w + x) * 3 + c] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    basira_image *img = NULL;
    unsigned char *out = NULL;
    basira_error e;
    if (!basira_image_from_rgb(rgb, w, h, &img, &e))
        basira_image_encode_jpeg(img, 90, &out, len, &e);
    basira_image_free(img);
    free(rgb);
    return out;
}

/* A page of "text": white paper, rows of dark word-shaped bars. */
static unsigned char *document_jpeg(size_t *len)
{
    int w = 600, h = 800;
    unsigned char *rgb = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int line = y % 28 < 14 && y > 60 && y < h - 60;
            int word = (x / 9 + (y / 28) * 3) % 7 != 0 && x > 50 && x < w - 50;
            unsigned char v = line && word ? 30 : 248;
            for (int c = 0; c < 3; c++)
                rgb[((size_t)y * w + x) * 3 + c] = v;
        }
    basira_image *img = NULL;
    unsigned char *out = NULL;
    basira_error e;
    if (!basira_image_from_rgb(rgb, w, h, &img, &e))
        basira_image_encode_jpeg(img, 85, &out, len, &e);
    basira_image_free(img);
    free(rgb);
    return out;
}

static int has_warning(const json_t *r, const char *code)
{
    size_t i;
    json_t *w;
    json_array_foreach(
        json_object_get(json_object_get(r, "validation"), "warnings"), i,
        w) if (!strcmp(json_string_value(json_object_get(w, "code")), code)) return 1;
    return 0;
}

static const char *warning_text(const json_t *r, const char *code)
{
    size_t i;
    json_t *w;
    json_array_foreach(
        json_object_get(json_object_get(r, "validation"), "warnings"), i,
        w) if (!strcmp(json_string_value(json_object_get(w, "code")),
                       code)) return json_string_value(json_object_get(w, "message"));
    return NULL;
}

static const char *sha_of(const json_t *r)
{
    return json_string_value(json_object_get(json_object_get(r, "model"), "sha256"));
}

static const char *kind_of(const json_t *r, const char *key)
{
    return json_string_value(json_object_get(json_object_get(r, "modality"), key));
}

static json_t *run(basira_pipeline *p, const unsigned char *jpg, size_t len, basira_photo_kind k,
                   int confirmed)
{
    basira_triage_request req = {
        .history = NULL, .force = 1, .photo_kind = k, .kind_confirmed = confirmed};
    json_t *r = NULL;
    basira_error e;
    CHECK_EQ_INT(basira_pipeline_run_buffer(p, jpg, len, &req, &r, &e), BASIRA_OK);
    return r;
}

static void shas(fixture *f)
{
    basira_pipeline *p = NULL;
    basira_error e;
    const char *paths[2] = {f->main_path, f->clinical_path};
    char *out[2] = {f->main_sha, f->clinical_sha};
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(basira_pipeline_new(paths[i], NULL, &p, &e), BASIRA_OK);
        json_t *m = basira_pipeline_model_json(p);
        snprintf(out[i], 65, "%s", json_string_value(json_object_get(m, "sha256")));
        json_decref(m);
        basira_pipeline_free(p);
    }
    CHECK(strcmp(f->main_sha, f->clinical_sha) != 0);
}

/* Without a detector the declaration decides, confirmed or not. */
static void test_declared_only(fixture *f)
{
    basira_pipeline *p = NULL;
    basira_error e;
    CHECK_EQ_INT(basira_pipeline_new(f->main_path, NULL, &p, &e), BASIRA_OK);
    if (!p)
        return;
    basira_pipeline_clear_detector(p);
    CHECK(!basira_pipeline_has_detector(p));
    CHECK_EQ_INT(basira_pipeline_set_kind_model(p, BASIRA_PHOTO_CLINICAL, f->clinical_path, &e),
                 BASIRA_OK);
    CHECK_EQ_INT(basira_pipeline_set_kind_model(p, BASIRA_PHOTO_DERMOSCOPIC, f->clinical_path, &e),
                 BASIRA_E_INVALID_ARGUMENT);
    size_t len = 0;
    unsigned char *jpg = skin_jpeg(240, 180, 3, &len);
    json_t *r = run(p, jpg, len, BASIRA_PHOTO_CLINICAL, 0);
    CHECK_STR(json_string_value(json_object_get(r, "status")), "ok");
    CHECK_STR(kind_of(r, "kind"), "clinical");
    CHECK_STR(kind_of(r, "declared"), "clinical");
    CHECK(kind_of(r, "detected") == NULL);
    CHECK(json_is_null(json_object_get(json_object_get(r, "modality"), "probability")));
    CHECK_STR(sha_of(r), f->clinical_sha);
    json_decref(r);
    r = run(p, jpg, len, BASIRA_PHOTO_DERMOSCOPIC, 0);
    CHECK_STR(sha_of(r), f->main_sha);
    CHECK(!json_is_true(json_object_get(json_object_get(r, "modality"), "disagreement")));
    json_decref(r);
    /* Nothing said, nothing detected: the main model, and the kind is unknown. */
    r = run(p, jpg, len, BASIRA_PHOTO_UNKNOWN, 0);
    CHECK_STR(sha_of(r), f->main_sha);
    CHECK(kind_of(r, "kind") == NULL);
    /* The three-partition view is always there; a model without non-neoplastic says 0. */
    json_t *part = json_object_get(r, "partition");
    CHECK_NEAR(json_number_value(json_object_get(part, "non-neoplastic")), 0, 1e-12);
    CHECK_NEAR(
        json_number_value(json_object_get(part, "malignant")),
        json_number_value(json_object_get(json_object_get(r, "risk"), "malignant_probability")),
        1e-12);
    json_decref(r);
    free(jpg);
    basira_pipeline_free(p);
}

/* With a detector: it decides unless the user confirmed another kind; both are shown. */
static void test_detector_and_confirmation(fixture *f)
{
    basira_pipeline *p = NULL;
    basira_error e;
    CHECK_EQ_INT(basira_pipeline_new(f->main_path, NULL, &p, &e), BASIRA_OK);
    if (!p)
        return;
    /* A model that is not a detector is refused as one. */
    CHECK_EQ_INT(basira_pipeline_set_detector(p, f->main_path, &e), BASIRA_E_MODEL);
    CHECK_EQ_INT(basira_pipeline_set_detector(p, f->detector_path, &e), BASIRA_OK);
    CHECK_EQ_INT(basira_pipeline_set_kind_model(p, BASIRA_PHOTO_CLINICAL, f->clinical_path, &e),
                 BASIRA_OK);
    CHECK(basira_pipeline_has_detector(p));
    basira_translator *tr = NULL;
    CHECK_EQ_INT(basira_translator_new(&tr, &e), BASIRA_OK);
    int seen[3] = {0, 0, 0};
    for (unsigned seed = 1; seed <= 6; seed++) {
        size_t len = 0;
        unsigned char *jpg = skin_jpeg(200 + 16 * (int)seed, 150 + 8 * (int)seed, seed, &len);
        json_t *r = run(p, jpg, len, BASIRA_PHOTO_UNKNOWN, 0);
        char det[16] = "";
        if (kind_of(r, "detected"))
            snprintf(det, sizeof det, "%s", kind_of(r, "detected"));
        CHECK(!strcmp(det, "clinical") || !strcmp(det, "dermoscopic"));
        if (!*det) {
            json_decref(r);
            free(jpg);
            continue;
        }
        int clinical = !strcmp(det, "clinical");
        seen[clinical]++;
        double pk =
            json_number_value(json_object_get(json_object_get(r, "modality"), "probability"));
        CHECK(pk >= 0.5 && pk <= 1.0);
        CHECK_STR(kind_of(r, "kind"), det);
        CHECK_STR(sha_of(r), clinical ? f->clinical_sha : f->main_sha);
        json_decref(r);
        basira_photo_kind other = clinical ? BASIRA_PHOTO_DERMOSCOPIC : BASIRA_PHOTO_CLINICAL;
        const char *other_code = clinical ? "dermoscopic" : "clinical";
        /* Declared otherwise, not confirmed: the detector wins and the result says so. */
        r = run(p, jpg, len, other, 0);
        CHECK_STR(kind_of(r, "kind"), det);
        CHECK_STR(kind_of(r, "declared"), other_code);
        CHECK(json_is_true(json_object_get(json_object_get(r, "modality"), "disagreement")));
        CHECK(has_warning(r, "modality_disagreement"));
        CHECK_STR(sha_of(r), clinical ? f->clinical_sha : f->main_sha);
        /* ... in the user's language, whatever the process's. */
        basira_triage_localize(r, tr, "fr");
        const char *fr = warning_text(r, "modality_disagreement");
        CHECK_MSG(fr && strstr(fr, "Le type de photo"), "fr: %s", fr ? fr : "(none)");
        basira_triage_localize(r, tr, "ar");
        const char *ar = warning_text(r, "modality_disagreement");
        CHECK_MSG(ar && strstr(ar, "نوع الصورة"), "ar: %s", ar ? ar : "(none)");
        json_decref(r);
        /* Confirmed: the declaration wins, the disagreement is still shown. */
        r = run(p, jpg, len, other, 1);
        CHECK_STR(kind_of(r, "kind"), other_code);
        CHECK(json_is_true(json_object_get(json_object_get(r, "modality"), "confirmed")));
        CHECK(has_warning(r, "modality_declared_confirmed"));
        CHECK(!has_warning(r, "modality_disagreement"));
        CHECK_STR(sha_of(r), clinical ? f->main_sha : f->clinical_sha);
        json_decref(r);
        /* Declared as detected: no disagreement, confirmed or not. */
        r = run(p, jpg, len, clinical ? BASIRA_PHOTO_CLINICAL : BASIRA_PHOTO_DERMOSCOPIC, 0);
        CHECK(!json_is_true(json_object_get(json_object_get(r, "modality"), "disagreement")));
        CHECK(!has_warning(r, "modality_disagreement"));
        json_decref(r);
        free(jpg);
    }
    printf("  tiny detector: %d photos detected dermoscopic, %d clinical\n", seen[0], seen[1]);
    basira_translator_free(tr);
    basira_pipeline_free(p);
}

/* No clinical model: a clinical photo is scored by the main model, and the result says so. */
static void test_no_model_for_kind(fixture *f)
{
    basira_pipeline *p = NULL;
    basira_error e;
    CHECK_EQ_INT(basira_pipeline_new(f->main_path, NULL, &p, &e), BASIRA_OK);
    if (!p)
        return;
    basira_pipeline_clear_detector(p);
    size_t len = 0;
    unsigned char *jpg = skin_jpeg(240, 180, 9, &len);
    json_t *r = run(p, jpg, len, BASIRA_PHOTO_CLINICAL, 0);
    CHECK_STR(sha_of(r), f->main_sha);
    /* "tiny-test" states no kind: not validated for clinical photos. */
    CHECK(has_warning(r, "no_model_for_kind"));
    CHECK(json_is_false(json_object_get(json_object_get(r, "modality"), "model_validated")));
    json_decref(r);
    free(jpg);
    basira_pipeline_free(p);
}

/* A picture of a document is refused before any model scores it, even with --force. */
static void test_document_refused(fixture *f)
{
    basira_pipeline *p = NULL;
    basira_error e;
    CHECK_EQ_INT(basira_pipeline_new(f->main_path, NULL, &p, &e), BASIRA_OK);
    if (!p)
        return;
    size_t len = 0;
    unsigned char *doc = document_jpeg(&len);
    basira_triage_request req = {.history = NULL, .force = 0};
    basira_triage_result tr;
    CHECK_EQ_INT(basira_pipeline_analyze(p, doc, len, &req, NULL, &tr, &e), BASIRA_OK);
    CHECK_EQ_INT(tr.status, BASIRA_TRIAGE_REJECTED);
    CHECK(tr.clean == NULL);
    json_t *err = json_object_get(tr.document, "error");
    CHECK_STR(json_string_value(json_object_get(err, "code")), "not_skin");
    CHECK(json_is_false(json_object_get(json_object_get(tr.document, "scene"), "shows_skin")));
    CHECK(json_object_get(tr.document, "risk") == NULL);
    basira_translator *t = NULL;
    CHECK_EQ_INT(basira_translator_new(&t, &e), BASIRA_OK);
    basira_triage_localize(tr.document, t, "fr");
    const char *fr = json_string_value(json_object_get(err, "message"));
    CHECK_MSG(fr && strstr(fr, "peau"), "fr: %s", fr ? fr : "(none)");
    basira_triage_localize(tr.document, t, "ar");
    const char *ar = json_string_value(json_object_get(err, "message"));
    CHECK_MSG(ar && strstr(ar, "جلد"), "ar: %s", ar ? ar : "(none)");
    basira_translator_free(t);
    basira_triage_result_clear(&tr);
    /* Forced by a clinician: scored, never "low", marked forced. */
    json_t *r = run(p, doc, len, BASIRA_PHOTO_UNKNOWN, 0);
    CHECK_STR(json_string_value(json_object_get(r, "status")), "ok");
    CHECK(json_is_true(json_object_get(r, "forced")));
    CHECK(strcmp(json_string_value(json_object_get(json_object_get(r, "risk"), "category")),
                 "low") != 0);
    json_decref(r);
    free(doc);
    basira_pipeline_free(p);
}

/*
 * A "clinical" model whose first class is malignant and the six others non-neoplastic. At
 * temperature 20 its random net gives nearly even probabilities: P(malignant) about 1/7,
 * P(non-neoplastic) about 6/7. nn <= 0: no "non_neoplastic" threshold in its metadata.
 */
static basira_code save_non_neoplastic(const char *path, double medium, double nn,
                                       basira_error *err)
{
    tiny_model_opts o;
    tiny_model_opts_default(&o);
    o.seed = 44;
    o.temperature = 20;
    o.medium = medium;
    o.high = 0.9;
    json_t *meta = tiny_model_meta(&o);
    if (!meta)
        return basira_error_set(err, BASIRA_E_NOT_FOUND, "classes");
    json_object_set_new(meta, "name", json_string("tiny-clinical"));
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(meta, "classes"), i, c)
    {
        json_object_set_new(c, "malignant", json_boolean(i == 0));
        json_object_set_new(c, "partition", json_string(i == 0 ? "malignant" : "non-neoplastic"));
    }
    if (nn > 0)
        json_object_set_new(json_object_get(meta, "thresholds"), "non_neoplastic", json_real(nn));
    basira_code rc = tiny_model_save_meta(&o, meta, path, err);
    json_decref(meta);
    return rc;
}

/* Analyse jpg with a model made by save_non_neoplastic (the model's or the pipeline's error). */
static basira_code primary_care_case(const char *path, double medium, double nn,
                                     const basira_history *h, const unsigned char *jpg, size_t len,
                                     basira_triage_result *tr)
{
    basira_error e;
    basira_pipeline *p = NULL;
    basira_triage_result_init(tr);
    basira_code rc = save_non_neoplastic(path, medium, nn, &e);
    if (!rc)
        rc = basira_pipeline_new(path, NULL, &p, &e);
    if (rc)
        return rc;
    basira_pipeline_clear_detector(p);
    basira_triage_request req = {.history = h, .force = 1, .photo_kind = BASIRA_PHOTO_CLINICAL};
    rc = basira_pipeline_analyze(p, jpg, len, &req, NULL, tr, &e);
    basira_pipeline_free(p);
    return rc;
}

/* The non-neoplastic rule (issue 11): typed field, document, advice in fr/ar, and its limits. */
static void test_primary_care(fixture *f)
{
    char path[600];
    snprintf(path, sizeof path, "%s/nonneo.safetensors", f->dir);
    size_t len = 0;
    unsigned char *jpg = skin_jpeg(240, 180, 7, &len);
    basira_triage_result tr;
    /* Low (medium 0.5) and P(non-neoplastic) about 0.86: the rule applies. */
    CHECK_EQ_INT(primary_care_case(path, 0.5, 0, NULL, jpg, len, &tr), BASIRA_OK);
    CHECK_EQ_INT(tr.status, BASIRA_TRIAGE_OK);
    CHECK_EQ_INT(tr.category, BASIRA_RISK_LOW);
    CHECK_MSG(tr.non_neoplastic_probability >= 0.8, "P(non-neo) %g", tr.non_neoplastic_probability);
    CHECK(tr.primary_care);
    json_t *pc = json_object_get(tr.document, "primary_care");
    CHECK(json_is_true(json_object_get(pc, "applies")));
    CHECK_NEAR(json_number_value(json_object_get(pc, "threshold")), BASIRA_NON_NEOPLASTIC_THRESHOLD,
               1e-12);
    CHECK_EQ_INT((int)json_integer_value(json_object_get(pc, "refer_after_weeks")), 4);
    CHECK_NEAR(json_number_value(json_object_get(pc, "non_neoplastic_probability")),
               json_number_value(
                   json_object_get(json_object_get(tr.document, "partition"), "non-neoplastic")),
               1e-12);
    basira_translator *t = NULL;
    basira_error e;
    CHECK_EQ_INT(basira_translator_new(&t, &e), BASIRA_OK);
    basira_triage_localize(tr.document, t, "fr");
    const char *fr = json_string_value(json_object_get(pc, "advice"));
    CHECK_MSG(fr && strstr(fr, "soins primaires") && strstr(fr, "4\u202fsemaines"), "fr: %s",
              fr ? fr : "(none)");
    basira_triage_localize(tr.document, t, "ar");
    const char *ar = json_string_value(json_object_get(pc, "advice"));
    CHECK_MSG(ar && strstr(ar, "أسابيع"), "ar: %s", ar ? ar : "(none)");
    basira_translator_free(t);
    basira_triage_result_clear(&tr);
    /* Bleeding raises the category to medium: no primary care, no advice. */
    basira_history h;
    basira_history_init(&h);
    h.bleeding = 1;
    CHECK_EQ_INT(primary_care_case(path, 0.5, 0, &h, jpg, len, &tr), BASIRA_OK);
    CHECK_EQ_INT(tr.category, BASIRA_RISK_MEDIUM);
    CHECK(!tr.primary_care);
    pc = json_object_get(tr.document, "primary_care");
    CHECK(json_is_false(json_object_get(pc, "applies")));
    CHECK(json_object_get(pc, "advice") == NULL);
    basira_triage_result_clear(&tr);
    /* P(malignant) at or above medium (0.01): the malignant category stands. */
    CHECK_EQ_INT(primary_care_case(path, 0.01, 0, NULL, jpg, len, &tr), BASIRA_OK);
    CHECK(tr.category != BASIRA_RISK_LOW);
    CHECK(!tr.primary_care);
    basira_triage_result_clear(&tr);
    /* The model's own threshold (0.99, above what it gives) wins over the default. */
    CHECK_EQ_INT(primary_care_case(path, 0.5, 0.99, NULL, jpg, len, &tr), BASIRA_OK);
    CHECK_EQ_INT(tr.category, BASIRA_RISK_LOW);
    CHECK(!tr.primary_care);
    CHECK_NEAR(json_number_value(
                   json_object_get(json_object_get(tr.document, "primary_care"), "threshold")),
               0.99, 1e-12);
    basira_triage_result_clear(&tr);
    /* A threshold out of (0, 1] makes the model file invalid. */
    CHECK_EQ_INT(primary_care_case(path, 0.5, 1.5, NULL, jpg, len, &tr), BASIRA_E_MODEL);
    /* A model without non-neoplastic classes never sends anyone to primary care. */
    basira_pipeline *p = NULL;
    CHECK_EQ_INT(basira_pipeline_new(f->main_path, NULL, &p, &e), BASIRA_OK);
    basira_pipeline_clear_detector(p);
    json_t *r = run(p, jpg, len, BASIRA_PHOTO_DERMOSCOPIC, 0);
    pc = json_object_get(r, "primary_care");
    CHECK(json_is_false(json_object_get(pc, "applies")));
    CHECK_NEAR(json_number_value(json_object_get(pc, "non_neoplastic_probability")), 0, 1e-12);
    json_decref(r);
    basira_pipeline_free(p);
    unlink(path);
    free(jpg);
}

/*
 * The photo is fitted to the detector's input once, and that copy goes to the model when
 * it takes the same size (pipeline.c, fitted()). The risk must be what the model gives the
 * decoded photo directly, both when the sizes agree (32 px, the copy is shared) and when
 * they do not (48 px, the model fits its own). Handing the detector's 32 px copy to the
 * 48 px model moves P(malignant) by about 5e-5 (a mutation this test catches); the models'
 * temperature is low so that a random net's small logit differences show.
 */
static void test_fitted_once(fixture *f)
{
    char paths[2][600];
    const char *models[2] = {paths[0], paths[1]};
    basira_error e;
    for (int mi = 0; mi < 2; mi++) {
        snprintf(paths[mi], sizeof paths[mi], "%s/main%d.safetensors", f->dir, mi ? 48 : 32);
        tiny_model_opts o;
        tiny_model_opts_default(&o);
        o.input_size = mi ? 48 : 32;
        o.seed = 44;
        o.temperature = 0.05; /* a random net's logits barely differ: make them count */
        json_t *meta = tiny_model_meta(&o);
        CHECK(meta && tiny_model_save_meta(&o, meta, paths[mi], &e) == BASIRA_OK);
        json_decref(meta);
    }
    for (int mi = 0; mi < 2; mi++) {
        basira_pipeline *p = NULL;
        basira_classifier *c = NULL;
        CHECK_EQ_INT(basira_pipeline_new(models[mi], NULL, &p, &e), BASIRA_OK);
        CHECK_EQ_INT(basira_classifier_load(models[mi], &c, &e), BASIRA_OK);
        if (!p || !c) {
            basira_pipeline_free(p);
            basira_classifier_free(c);
            continue;
        }
        CHECK_EQ_INT(basira_pipeline_set_detector(p, f->detector_path, &e), BASIRA_OK);
        basira_intake_options io;
        basira_intake_options_default(&io);
        const basira_model_info *info = basira_classifier_info(c);
        for (unsigned seed = 1; seed <= 3; seed++) {
            size_t len = 0;
            unsigned char *jpg = skin_jpeg(220 + 24 * (int)seed, 160 + 12 * (int)seed, seed, &len);
            /* Declared and confirmed: the main model scores it, whatever the detector says. */
            json_t *r = run(p, jpg, len, BASIRA_PHOTO_DERMOSCOPIC, 1);
            basira_image *img = NULL;
            float probs[BASIRA_MODEL_MAX_CLASSES], per_view[8 * BASIRA_MODEL_MAX_CLASSES];
            int nv = 0;
            double want = 0;
            if (basira_image_load_buffer(jpg, len, &io, &img, &e) == BASIRA_OK &&
                basira_classifier_predict_views(c, img, probs, per_view, &nv, &e) == BASIRA_OK)
                for (int i = 0; i < info->num_classes; i++)
                    if (info->classes[i].malignant)
                        want += probs[i];
            double got = json_number_value(
                json_object_get(json_object_get(r, "risk"), "malignant_probability"));
            CHECK_MSG(fabs(got - want) <= 1e-7, /* the same floats, printed to 9 digits or more */
                      "%d px model, photo %u: P(malignant) %.8g in the result, %.8g directly",
                      mi ? 48 : 32, seed, got, want);
            basira_image_free(img);
            json_decref(r);
            free(jpg);
        }
        basira_classifier_free(c);
        basira_pipeline_free(p);
    }
    unlink(paths[0]);
    unlink(paths[1]);
}

int main(void)
{
    fixture f;
    snprintf(f.dir, sizeof f.dir, "/tmp/basira-routing-XXXXXX");
    if (!mkdtemp(f.dir))
        return 1;
    snprintf(f.main_path, sizeof f.main_path, "%s/main.safetensors", f.dir);
    snprintf(f.clinical_path, sizeof f.clinical_path, "%s/clinical.safetensors", f.dir);
    snprintf(f.detector_path, sizeof f.detector_path, "%s/detector.safetensors", f.dir);
    basira_error e;
    CHECK_EQ_INT(save_named(f.main_path, "tiny-test", 42, &e), BASIRA_OK);
    CHECK_EQ_INT(save_named(f.clinical_path, "tiny-clinical", 43, &e), BASIRA_OK);
    CHECK_EQ_INT(save_detector(f.detector_path, &e), BASIRA_OK);
    shas(&f);
    test_declared_only(&f);
    fprintf(stderr, "ok   test_declared_only\n");
    test_detector_and_confirmation(&f);
    fprintf(stderr, "ok   test_detector_and_confirmation\n");
    test_no_model_for_kind(&f);
    test_document_refused(&f);
    test_primary_care(&f);
    fprintf(stderr, "ok   test_primary_care\n");
    test_fitted_once(&f);
    fprintf(stderr, "ok   test_fitted_once\n");
    unlink(f.main_path);
    unlink(f.clinical_path);
    unlink(f.detector_path);
    rmdir(f.dir);
    return test_summary();
}
