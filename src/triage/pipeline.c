/*
 * pipeline.c - one photo through every step of a case: intake -> quality gate ->
 * skin tone -> classifier -> triage, as one JSON result (a line of `basira triage
 * --json`, a response of the clinic node's API).
 *
 * The model is loaded once per pipeline and shared by all the photos and threads that
 * use it. Decoding, the quality gate, the skin tone and the preprocessing run in
 * parallel in the calling threads; the classifier runs the network on its own thread
 * and serialises the forward passes (see classifier.c: a forward pass of the small
 * model takes milliseconds, so the queue stays short).
 */
#include "basira/drift.h"
#include "basira/json.h"
#include "basira/model.h"
#include "basira/paths.h"
#include "basira/quality.h"
#include "basira/release.h"
#include "basira/triage.h"
#include "basira/i18n.h"
#include "core/i18n.h"
#include "triage_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define BUNDLED_MODEL "models/basira-derm.safetensors"
#define N_CANDIDATES 3

#define BUNDLED_CLINICAL "models/basira-clinical.safetensors"
#define BUNDLED_DETECTOR "models/basira-modality.safetensors"

/* One scoring model and the thresholds in force for it. */
typedef struct pipeline_model {
    basira_classifier *clf;        /* NULL: none */
    const basira_model_info *info; /* the classifier's, read-only */
    double high, medium;           /* thresholds in force (model's or the site's) */
    basira_photo_kind kind;        /* the kind it was validated on (UNKNOWN: not stated) */
} pipeline_model;

struct basira_pipeline {
    pthread_mutex_t lock;         /* main.high and main.medium change while photos are analysed */
    pipeline_model main;          /* --model, or the bundled dermoscopy model */
    pipeline_model clinical;      /* the model for clinical photos when it is another one */
    basira_classifier *detector;  /* photo-kind detector; NULL: the declaration only */
    basira_intake_options intake; /* limits photos are decoded under */
    /*
     * basira_pipeline_new_lazy(): the main model, the bundled detector and the clinical
     * model still to be loaded, when the first photo needs them (malloc'd paths; NULL:
     * nothing pending). A load that failed is not tried again: its error answers every
     * photo that needs it. main_cfg: the site's thresholds, applied when main loads.
     */
    pthread_mutex_t lazy;
    char *main_pending, *detector_pending, *clinical_pending;
    basira_code main_rc, detector_rc, clinical_rc;
    basira_error main_err, detector_err, clinical_err;
    basira_triage_config main_cfg;
};

/* The thresholds in force for a model of info under cfg (the site's where it sets them). */
static basira_code thresholds_of(const basira_model_info *info, const basira_triage_config *cfg,
                                 double *high, double *medium, basira_error *err)
{
    *high = cfg && cfg->high_threshold >= 0 ? cfg->high_threshold : info->threshold_high;
    *medium = cfg && cfg->medium_threshold >= 0 ? cfg->medium_threshold : info->threshold_medium;
    if (!(*high > 0 && *high <= 1 && *medium >= 0 && *medium <= *high))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("triage thresholds must satisfy 0 <= medium <= high <= 1 and "
                                    "high > 0 (high %g, medium %g)"),
                                 *high, *medium);
    return BASIRA_OK;
}

static basira_code model_load(const char *path, const basira_triage_config *cfg, pipeline_model *m,
                              basira_error *err)
{
    basira_code rc = basira_classifier_load(path, &m->clf, err);
    if (rc)
        return rc;
    m->info = basira_classifier_info(m->clf);
    m->kind = triage_model_kind(m->info->name);
    rc = thresholds_of(m->info, cfg, &m->high, &m->medium, err);
    if (rc) {
        basira_classifier_free(m->clf);
        memset(m, 0, sizeof *m);
    }
    return rc;
}

/* path NULL: the bundled file rel when it is installed; *use 0 when it is not. */
static basira_code resolve(const char *path, const char *rel, char *buf, size_t n, int *use)
{
    *use = 1;
    if (path) {
        snprintf(buf, n, "%s", path);
        return BASIRA_OK;
    }
    if (basira_data_file(rel, buf, n, NULL))
        *use = 0;
    return BASIRA_OK;
}

basira_code basira_pipeline_set_kind_model(basira_pipeline *p, basira_photo_kind kind,
                                           const char *path, basira_error *err)
{
    if (!p || kind != BASIRA_PHOTO_CLINICAL)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    char file[4096];
    int use;
    resolve(path, BUNDLED_CLINICAL, file, sizeof file, &use);
    if (!use)
        return BASIRA_OK;
    pipeline_model m;
    memset(&m, 0, sizeof m);
    /* A clinical model has its own calibration: a site's thresholds are for the main model. */
    basira_code rc = model_load(file, NULL, &m, err);
    if (rc)
        return rc;
    basira_classifier_free(p->clinical.clf);
    p->clinical = m;
    free(p->clinical_pending);
    p->clinical_pending = NULL;
    return BASIRA_OK;
}

basira_code basira_pipeline_set_detector(basira_pipeline *p, const char *path, basira_error *err)
{
    if (!p)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    char file[4096];
    int use;
    resolve(path, BUNDLED_DETECTOR, file, sizeof file, &use);
    if (!use)
        return BASIRA_OK;
    basira_classifier *d = NULL;
    basira_code rc = basira_classifier_load(file, &d, err);
    if (!rc)
        rc = triage_detector_check(basira_classifier_info(d), err);
    if (rc) {
        basira_classifier_free(d);
        return rc;
    }
    basira_classifier_free(p->detector);
    p->detector = d;
    free(p->detector_pending);
    p->detector_pending = NULL;
    return BASIRA_OK;
}

void basira_pipeline_clear_detector(basira_pipeline *p)
{
    if (!p)
        return;
    basira_classifier_free(p->detector);
    p->detector = NULL;
    free(p->detector_pending);
    p->detector_pending = NULL;
}

int basira_pipeline_has_detector(const basira_pipeline *p)
{
    return p && (p->detector || p->detector_pending);
}

/* The bundled file rel, to be loaded later: *pending gets its path (NULL: not installed). */
static basira_code defer(const char *rel, char **pending, basira_error *err)
{
    char file[4096];
    int use;
    resolve(NULL, rel, file, sizeof file, &use);
    if (!use)
        return BASIRA_OK;
    if (!(*pending = strdup(file)))
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    return BASIRA_OK;
}

static basira_code load_clinical(basira_pipeline *p, const char *path, basira_error *err)
{
    return basira_pipeline_set_kind_model(p, BASIRA_PHOTO_CLINICAL, path, err);
}

/* The main model, with the site's thresholds given at creation. */
static basira_code load_main(basira_pipeline *p, const char *path, basira_error *err)
{
    return model_load(path, &p->main_cfg, &p->main, err);
}

/*
 * A deferred model (*pending), loaded now by load, once: rc and saved keep the outcome,
 * whose error answers every later call too. Under p->lazy, so a photo on another thread
 * waits for the load rather than seeing half of it.
 */
static basira_code need(basira_pipeline *p, char **pending, basira_code *rc, basira_error *saved,
                        basira_code (*load)(basira_pipeline *, const char *, basira_error *),
                        basira_error *err)
{
    pthread_mutex_lock(&p->lazy);
    if (*pending) {
        char *path = *pending;
        *pending = NULL;
        *rc = load(p, path, saved);
        free(path);
    }
    basira_code out = *rc;
    if (out && err)
        *err = *saved;
    pthread_mutex_unlock(&p->lazy);
    return out;
}

/* The detector / the clinical model, loaded now if it was deferred. */
static basira_code need_detector(basira_pipeline *p, basira_error *err)
{
    return need(p, &p->detector_pending, &p->detector_rc, &p->detector_err,
                basira_pipeline_set_detector, err);
}

static basira_code need_clinical(basira_pipeline *p, basira_error *err)
{
    return need(p, &p->clinical_pending, &p->clinical_rc, &p->clinical_err, load_clinical, err);
}

/*
 * The main model, loaded now if it was deferred: a clinical photo of `basira triage`
 * never reads, hashes or prepares the dermoscopy model (about a tenth of a cold clinical
 * triage). On failure *err says why and p->main stays empty.
 */
static basira_code need_main(basira_pipeline *p, basira_error *err)
{
    return need(p, &p->main_pending, &p->main_rc, &p->main_err, load_main, err);
}

/*
 * The main model for a result that names it (an error before the photo's kind is known):
 * loaded if deferred; when it cannot be, an empty model and the result names none.
 */
static const pipeline_model *main_for_result(basira_pipeline *p)
{
    (void)need_main(p, NULL);
    return &p->main;
}

static basira_code pipeline_new(const char *model_path, const basira_triage_config *cfg, int lazy,
                                basira_pipeline **out, basira_error *err)
{
    if (!out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *out = NULL;
    char bundled[4096];
    int use_bundled = !model_path;
    if (!model_path) {
        if (basira_data_file(BUNDLED_MODEL, bundled, sizeof bundled, NULL))
            return basira_error_setm(err, BASIRA_E_NOT_FOUND,
                                     N_("the bundled model %s is not installed: give a model "
                                        "file with --model FILE"),
                                     BUNDLED_MODEL);
        model_path = bundled;
    }
    /* A node's folder of releases (basira/release.h): the current one, if it still verifies. */
    char released[4096];
    struct stat sb;
    if (stat(model_path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        basira_code rc = basira_release_current(model_path, released, sizeof released, NULL, err);
        if (rc)
            return rc;
        model_path = released;
    }
    basira_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    if (pthread_mutex_init(&p->lazy, NULL)) {
        free(p);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    if (pthread_mutex_init(&p->lock, NULL)) {
        pthread_mutex_destroy(&p->lazy);
        free(p);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    basira_intake_options_default(&p->intake);
    basira_triage_config_default(&p->main_cfg);
    if (cfg)
        p->main_cfg = *cfg;
    /*
     * The bundled models come together: the detector, and the clinical model when installed.
     * Lazy: the bundled main model too (a model the user named is loaded now, so that its
     * error comes first, once), but a site's thresholds that are wrong whatever the model
     * (outside [0, 1], medium above high) are refused here, as eagerly.
     */
    basira_code rc = BASIRA_OK;
    if (lazy && use_bundled) {
        basira_model_info any;
        memset(&any, 0, sizeof any);
        any.threshold_high = 1;
        double h, m;
        rc = thresholds_of(&any, cfg, &h, &m, err);
        if (!rc && !(p->main_pending = strdup(model_path)))
            rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
    } else {
        rc = model_load(model_path, cfg, &p->main, err);
    }
    if (!rc && use_bundled)
        rc = lazy ? defer(BUNDLED_CLINICAL, &p->clinical_pending, err)
                  : basira_pipeline_set_kind_model(p, BASIRA_PHOTO_CLINICAL, NULL, err);
    if (!rc)
        rc = lazy ? defer(BUNDLED_DETECTOR, &p->detector_pending, err)
                  : basira_pipeline_set_detector(p, NULL, err);
    if (rc) {
        basira_pipeline_free(p);
        return rc;
    }
    *out = p;
    return BASIRA_OK;
}

basira_code basira_pipeline_new(const char *model_path, const basira_triage_config *cfg,
                                basira_pipeline **out, basira_error *err)
{
    return pipeline_new(model_path, cfg, 0, out, err);
}

basira_code basira_pipeline_new_lazy(const char *model_path, const basira_triage_config *cfg,
                                     basira_pipeline **out, basira_error *err)
{
    return pipeline_new(model_path, cfg, 1, out, err);
}

void basira_pipeline_set_intake(basira_pipeline *p, const basira_intake_options *opts)
{
    if (!p)
        return;
    if (opts)
        p->intake = *opts;
    else
        basira_intake_options_default(&p->intake);
}

void basira_pipeline_free(basira_pipeline *p)
{
    if (!p)
        return;
    basira_classifier_free(p->main.clf);
    basira_classifier_free(p->clinical.clf);
    basira_classifier_free(p->detector);
    free(p->main_pending);
    free(p->detector_pending);
    free(p->clinical_pending);
    pthread_mutex_destroy(&p->lazy);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

basira_code basira_pipeline_set_thresholds(basira_pipeline *p, const basira_triage_config *cfg,
                                           basira_error *err)
{
    if (!p)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    double high, medium;
    basira_code rc = need_main(p, err);
    if (rc)
        return rc;
    if ((rc = thresholds_of(p->main.info, cfg, &high, &medium, err)))
        return rc;
    pthread_mutex_lock(&p->lock);
    p->main.high = high;
    p->main.medium = medium;
    pthread_mutex_unlock(&p->lock);
    return BASIRA_OK;
}

static json_t *model_json(const pipeline_model *m)
{
    return json_pack("{s:s, s:s, s:s}", "name", m->info->name, "version", m->info->version,
                     "sha256", basira_classifier_sha256(m->clf));
}

json_t *basira_pipeline_model_json(basira_pipeline *p)
{
    if (!p || need_main(p, NULL))
        return NULL;
    return model_json(&p->main);
}

basira_code basira_pipeline_predict(basira_pipeline *p, const basira_image *img, float *probs,
                                    int *num_classes, basira_error *err)
{
    if (!p || !img || !probs)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    basira_code rc = need_main(p, err);
    if (rc)
        return rc;
    /* The caller's buffer holds 16 floats (contract of triage.h). */
    if (p->main.info->num_classes > 16)
        return basira_error_set(err, BASIRA_E_INTERNAL, NULL);
    rc = basira_classifier_predict(p->main.clf, img, probs, err);
    if (!rc && num_classes)
        *num_classes = p->main.info->num_classes;
    return rc;
}

/* ---- the result object ------------------------------------------------------------- */

/* Adds a new reference to obj; returns -1 (and drops the value) when out of memory. */
static int put(json_t *obj, const char *key, json_t *value)
{
    if (!value)
        return -1;
    return json_object_set_new(obj, key, value) ? -1 : 0;
}

static json_t *result_base(const char *status)
{
    json_t *r = json_object();
    if (r && put(r, "status", json_string(status))) {
        json_decref(r);
        return NULL;
    }
    return r;
}

/*
 * Every result, whatever its status, ends with the model that produced it and the
 * decision-support sentence. Consumes r; returns NULL (r freed) when out of memory.
 */
static json_t *finish_result(const pipeline_model *m, json_t *r)
{
    if (!r)
        return NULL;
    /* m->clf NULL: the main model of a lazy pipeline could not be loaded (the error says why). */
    if ((m->clf && put(r, "model", model_json(m))) ||
        put(r, "disclaimer", json_string(basira_disclaimer()))) {
        json_decref(r);
        return NULL;
    }
    return r;
}

static json_t *error_result(const pipeline_model *m, const basira_error *e)
{
    json_t *r = result_base("error");
    if (r && put(r, "error", basira_json_error(e))) {
        json_decref(r);
        return NULL;
    }
    return finish_result(m, r);
}

/* The message of the first failed check: what the photographer should do. */
static const char *first_failure(const basira_quality_report *q)
{
    for (int i = 0; i < q->n_checks && i < BASIRA_QUALITY_MAX_CHECKS; i++)
        if (!q->checks[i].passed && q->checks[i].message)
            return q->checks[i].message;
    return "";
}

/* The risk index shown to people: 100 x the malignant probability, rounded, 0..100. */
static int risk_index_of(double pmal)
{
    double idx = floor(100.0 * pmal + 0.5);
    return idx < 0 ? 0 : idx > 100 ? 100 : (int)idx;
}

/*
 * P(non-neoplastic) of the three-partition view (issue 11): the classes of that partition
 * (inflammatory, infectious), 0 for a dermoscopy model, which has none; never more than what
 * P(malignant) leaves.
 */
static double non_neoplastic_of(const basira_model_info *info, const float *probs, double pmal)
{
    double nonneo = 0.0;
    for (int i = 0; i < info->num_classes; i++)
        if (info->classes[i].partition == BASIRA_PARTITION_NON_NEOPLASTIC)
            nonneo += probs[i];
    return fmax(0.0, fmin(nonneo, 1.0 - pmal));
}

/* The threshold of the primary-care rule in force for a model (triage.h). */
static double non_neoplastic_threshold(const basira_model_info *info)
{
    return info->threshold_non_neoplastic > 0 ? info->threshold_non_neoplastic
                                              : BASIRA_NON_NEOPLASTIC_THRESHOLD;
}

/* "primary_care": whether the rule applies, on what, and its advice when it does. */
static json_t *primary_care_json(const basira_model_info *info, double nonneo, int applies)
{
    json_t *j = json_pack("{s:b, s:f, s:f, s:i}", "applies", applies, "non_neoplastic_probability",
                          nonneo, "threshold", non_neoplastic_threshold(info), "refer_after_weeks",
                          BASIRA_PRIMARY_CARE_WEEKS);
    if (j && applies && put(j, "advice", json_string(basira_primary_care_advice()))) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static json_t *scores_json(const pipeline_model *p, const float *probs, double pmal, double nonneo,
                           basira_risk_category cat, unsigned raised, int primary_care)
{
    const basira_model_info *info = p->info;
    const char *lang = basira_language();
    int k = info->num_classes;
    json_t *out = json_object();
    json_t *pr = json_object(), *cand = json_array();
    if (!out || !pr || !cand)
        goto oom;
    for (int i = 0; i < k; i++)
        if (put(pr, info->classes[i].code, json_real(probs[i])))
            goto oom;
    /* Most likely first; ties keep the model's class order (selection sort, k <= 16). */
    int order[BASIRA_MODEL_MAX_CLASSES];
    for (int i = 0; i < k; i++)
        order[i] = i;
    for (int i = 0; i < k && i < N_CANDIDATES; i++) {
        int best = i;
        for (int j = i + 1; j < k; j++)
            if (probs[order[j]] > probs[order[best]])
                best = j;
        int t = order[i];
        order[i] = order[best];
        order[best] = t;
        const basira_model_class *c = &info->classes[order[i]];
        if (json_array_append_new(cand, json_pack("{s:s, s:s, s:f}", "code", c->code, "name",
                                                  basira_model_class_name(c, lang), "probability",
                                                  (double)probs[order[i]])))
            goto oom;
    }
    json_t *why = json_array();
    if (!why)
        goto oom;
    if (raised & BASIRA_TRIAGE_RAISED_HISTORY)
        json_array_append_new(why, json_string("history"));
    if (raised & BASIRA_TRIAGE_RAISED_QUALITY)
        json_array_append_new(why, json_string("quality"));
    if (raised & BASIRA_TRIAGE_RAISED_INVALID)
        json_array_append_new(why, json_string("invalid_probability"));
    json_t *risk =
        json_pack("{s:I, s:f, s:s, s:s, s:o, s:{s:f, s:f}}", "index",
                  (json_int_t)risk_index_of(pmal), "malignant_probability", pmal, "category",
                  basira_risk_category_code(cat), "action", basira_risk_action(cat), "raised_by",
                  why, "thresholds", "high", p->high, "medium", p->medium);
    if (put(out, "probabilities", pr)) {
        pr = NULL;
        goto oom;
    }
    pr = NULL;
    if (put(out, "candidates", cand)) {
        cand = NULL;
        goto oom;
    }
    cand = NULL;
    if (put(out, "risk", risk))
        goto oom;
    /*
     * The three-partition view every model gives (issue 11): malignant is the calibrated
     * P(malignant) above, non-neoplastic from non_neoplastic_of(), benign the rest.
     */
    if (put(out, "partition",
            json_pack("{s:f, s:f, s:f}", "malignant", pmal, "benign",
                      fmax(0.0, 1.0 - pmal - nonneo), "non-neoplastic", nonneo)) ||
        put(out, "primary_care", primary_care_json(info, nonneo, primary_care)))
        goto oom;
    return out;
oom:
    json_decref(pr);
    json_decref(cand);
    json_decref(out);
    return NULL;
}

/* Refuse a photo: status "rejected", error {code, message}; typed gets the same. */
static json_t *refuse(const pipeline_model *m, json_t *r, const char *code, basira_error *e,
                      basira_triage_result *typed)
{
    if (put(r, "error", json_pack("{s:s, s:s}", "code", code, "message", e->message))) {
        json_decref(r);
        return NULL;
    }
    if (typed) {
        typed->status = BASIRA_TRIAGE_REJECTED;
        typed->error = *e;
    }
    return finish_result(m, r);
}

/*
 * The photo fitted to a model's input, made once per size: the photo-kind detector and
 * the model it routes to take the same size (128 x 128 for the bundled ones), and
 * basira_preprocess_image() skips its resize for an image of that size, so both get
 * exactly the pixels each would have made, for one resize instead of two.
 */
typedef struct fitted_photo {
    basira_image *img; /* owned; NULL until made */
} fitted_photo;

/* The photo at clf's input size; NULL with *err set when out of memory. */
static const basira_image *fitted(fitted_photo *f, const basira_image *img,
                                  const basira_classifier *clf, basira_error *err)
{
    const basira_preprocess *pp = &basira_classifier_info(clf)->preprocess;
    if (f->img && basira_image_width(f->img) == pp->input_w &&
        basira_image_height(f->img) == pp->input_h)
        return f->img;
    basira_image_free(f->img);
    f->img = NULL;
    if (basira_preprocess_fit(img, pp->input_w, pp->input_h, &f->img, err))
        return NULL;
    return f->img;
}

/*
 * Everything after decoding. Returns NULL only when out of memory. typed (may
 * be NULL) gets the values the result document shows.
 */
static json_t *run_fitted(basira_pipeline *p, const basira_image *img,
                          const basira_triage_request *req, basira_triage_result *typed,
                          fitted_photo *fit)
{
    basira_error e;
    basira_error_clear(&e);
    basira_quality_report q;
    basira_skin_tone tone;
    basira_scene scene;
    if (basira_photo_assess_scene(img, &q, &tone, &scene, &e)) {
        if (typed)
            typed->error = e;
        return error_result(main_for_result(p), &e);
    }
    /* Which kind of photo, and so which model (route.c). */
    triage_modality mod;
    const basira_image *dimg = img;
    if (need_detector(p, &e) || (p->detector && !(dimg = fitted(fit, img, p->detector, &e))) ||
        triage_route(p->detector, dimg, req, &mod, &e) ||
        (mod.used == BASIRA_PHOTO_CLINICAL && need_clinical(p, &e))) {
        if (typed)
            typed->error = e;
        return error_result(main_for_result(p), &e);
    }
    /* One pair of thresholds for the whole photo, even if the site's change meanwhile. */
    pipeline_model main_now;
    const pipeline_model *m = &main_now;
    if (mod.used == BASIRA_PHOTO_CLINICAL && p->clinical.clf) {
        m = &p->clinical;
    } else if (need_main(p, &e)) {
        if (typed)
            typed->error = e;
        return error_result(&p->main, &e);
    } else {
        pthread_mutex_lock(&p->lock);
        main_now = p->main;
        pthread_mutex_unlock(&p->lock);
    }
    if (typed)
        typed->quality_ok = q.ok;
    json_t *tone_json = basira_skin_tone_json(&tone);
    int force = req && req->force;
    int scored = (q.ok && scene.shows_skin) || force;
    json_t *r = result_base(scored ? "ok" : "rejected");
    if (!r || put(r, "quality", basira_quality_report_json(&q))) {
        json_decref(tone_json);
        json_decref(r);
        return NULL;
    }
    if (put(r, "skin_tone", tone_json) || put(r, "scene", basira_scene_json(&scene)) ||
        put(r, "modality", triage_modality_json(&mod))) {
        json_decref(r);
        return NULL;
    }
    /* Mean colour and brightness: what the hub's drift monitor compares across clinics. */
    basira_drift_case st;
    basira_drift_image_stats(basira_image_pixels(img), basira_image_width(img),
                             basira_image_height(img), &st);
    if (put(r, "image_stats",
            json_pack("{s:[f, f, f], s:f}", "mean_rgb", st.mean_rgb[0], st.mean_rgb[1],
                      st.mean_rgb[2], "brightness", st.brightness))) {
        json_decref(r);
        return NULL;
    }
    if (!scored && !scene.shows_skin) {
        /* Nothing a model says about a document or a screen means anything. */
        basira_error_set(&e, BASIRA_E_INVALID_ARGUMENT, "%s", _(triage_not_skin_msgid()));
        return refuse(m, r, "not_skin", &e, typed);
    }
    if (!scored) {
        /* Say why in one sentence; the checks in "quality" give every detail. */
        basira_error_setm(&e, BASIRA_E_INVALID_ARGUMENT,
                          N_("the photo did not pass the quality check: %s"), first_failure(&q));
        return refuse(m, r, "quality_rejected", &e, typed);
    }
    float probs[BASIRA_MODEL_MAX_CLASSES], per_view[8 * BASIRA_MODEL_MAX_CLASSES];
    int k = m->info->num_classes, n_views = 0;
    const basira_image *mimg = NULL;
    if (k > BASIRA_MODEL_MAX_CLASSES || !(mimg = fitted(fit, img, m->clf, &e)) ||
        basira_classifier_predict_views(m->clf, mimg, probs, per_view, &n_views, &e)) {
        if (k > BASIRA_MODEL_MAX_CLASSES)
            basira_error_set(&e, BASIRA_E_INTERNAL, NULL);
        json_decref(r);
        if (typed)
            typed->error = e;
        return error_result(m, &e);
    }
    const basira_model_info *info = m->info;
    double pmal = 0;
    for (int i = 0; i < k; i++)
        if (info->classes[i].malignant)
            pmal += probs[i];
    if (pmal > 1)
        pmal = 1;
    /* Shown but never scored without saying so: forced past the quality gate or the scene. */
    int ok = q.ok && scene.shows_skin;
    unsigned raised = 0;
    basira_risk_category cat =
        basira_triage_decide_ex(pmal, m->high, m->medium, req ? req->history : NULL, ok, &raised);
    double nonneo = non_neoplastic_of(info, probs, pmal);
    int primary_care =
        basira_triage_primary_care(cat, pmal, m->medium, nonneo, non_neoplastic_threshold(info));
    json_t *s = scores_json(m, probs, pmal, nonneo, cat, raised, primary_care);
    int outside = mod.used != BASIRA_PHOTO_UNKNOWN && m->kind != mod.used;
    if (!s || json_object_update(r, s) ||
        put(json_object_get(r, "risk"), "uncertainty",
            triage_uncertainty_json(m->info, per_view, n_views,
                                    basira_classifier_spread_by_member(m->clf))) ||
        put(r, "validation", triage_validation_json(m->info->name, &tone, mod.used)) ||
        (outside && triage_add_warning(json_object_get(r, "validation"), "no_model_for_kind")) ||
        (mod.disagreement && triage_add_warning(json_object_get(r, "validation"),
                                                mod.confirmed ? "modality_declared_confirmed"
                                                              : "modality_disagreement")) ||
        put(json_object_get(r, "modality"), "model_validated", json_boolean(!outside))) {
        json_decref(s);
        json_decref(r);
        return NULL;
    }
    json_decref(s);
    if (!ok && put(r, "forced", json_true())) {
        json_decref(r);
        return NULL;
    }
    if (typed) {
        typed->status = BASIRA_TRIAGE_OK;
        typed->category = cat;
        typed->risk_index = risk_index_of(pmal);
        typed->malignant_probability = pmal;
        typed->raised = raised;
        typed->primary_care = primary_care;
        typed->non_neoplastic_probability = nonneo;
    }
    return finish_result(m, r);
}

static json_t *run_image(basira_pipeline *p, const basira_image *img,
                         const basira_triage_request *req, basira_triage_result *typed)
{
    fitted_photo fit = {NULL};
    json_t *r = run_fitted(p, img, req, typed, &fit);
    basira_image_free(fit.img);
    return r;
}

static basira_code finish(json_t *r, json_t **result, basira_error *err)
{
    if (!r)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    *result = r;
    return BASIRA_OK;
}

basira_code basira_pipeline_run_buffer(basira_pipeline *p, const void *data, size_t len,
                                       const basira_triage_request *req, json_t **result,
                                       basira_error *err)
{
    if (!p || !result || (!data && len))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *result = NULL;
    basira_error e;
    basira_error_clear(&e);
    basira_image *img = NULL;
    if (basira_image_load_buffer(data, len, &p->intake, &img, &e))
        return finish(error_result(main_for_result(p), &e), result, err);
    json_t *r = run_image(p, img, req, NULL);
    basira_image_free(img);
    return finish(r, result, err);
}

basira_code basira_pipeline_run_file(basira_pipeline *p, const char *path,
                                     const basira_triage_request *req, json_t **result,
                                     basira_error *err)
{
    if (!p || !path || !result)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *result = NULL;
    basira_error e;
    basira_error_clear(&e);
    basira_image *img = NULL;
    if (basira_image_load_file(path, &p->intake, &img, &e))
        return finish(error_result(main_for_result(p), &e), result, err);
    json_t *r = run_image(p, img, req, NULL);
    basira_image_free(img);
    return finish(r, result, err);
}

static basira_code encode_default(const basira_image *img, uint8_t **buf, size_t *len,
                                  basira_error *err)
{
    return basira_image_encode_jpeg(img, 92, buf, len, err);
}

basira_code basira_pipeline_analyze(basira_pipeline *p, const void *data, size_t len,
                                    const basira_triage_request *req, basira_photo_encoder encode,
                                    basira_triage_result *out, basira_error *err)
{
    if (!p || !out || (!data && len))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    basira_triage_result_init(out);
    basira_image *img = NULL;
    if (basira_image_load_buffer(data, len, &p->intake, &img, &out->error)) {
        out->document = error_result(main_for_result(p), &out->error);
        return out->document ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    basira_code rc = BASIRA_OK;
    out->document = run_image(p, img, req, out);
    if (!out->document) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
    } else if (out->status == BASIRA_TRIAGE_OK) {
        /*
         * Keep what intake decoded, re-encoded: the upload's EXIF (GPS, device
         * serials, capture times) never reaches the database. When that fails
         * the photo is refused, never kept as received (fail closed).
         */
        basira_error e;
        basira_error_clear(&e);
        rc = (encode ? encode : encode_default)(img, &out->clean, &out->clean_len, &e);
        if (!rc && !out->clean)
            rc = basira_error_set(&e, BASIRA_E_INTERNAL, NULL);
        if (rc)
            basira_error_setm(err, rc,
                              N_("the photo could not be stripped of its metadata (%s); it was "
                                 "not stored"),
                              e.message);
        out->clean_mime = "image/jpeg";
    }
    basira_image_free(img);
    if (rc)
        basira_triage_result_clear(out);
    return rc;
}
