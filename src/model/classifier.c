/*
 * classifier.c - the dermatology classifier: a basira_net and the "basira" metadata
 * of its model file (parsed strictly by model_info.c), used to turn a photo into
 * calibrated class probabilities.
 */
#include "basira/fs.h"
#include "basira/model.h"
#include "basira/nn.h"
#include "core/i18n.h"
#include "core/memory.h"

#include <errno.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <nettle/sha2.h>

/* A model far larger than this is not a Basira model (ours is a few MB); refuse early. */
#define MODEL_MAX_FILE_BYTES ((size_t)256 << 20)

/*
 * Threads. oneDNN, as Debian builds it, keeps one scratchpad per thread and its
 * primitives must run on the thread that created them: a net prepared on one thread
 * and run on another crashed under AddressSanitizer. So each classifier owns one
 * thread that loads the net, runs every forward pass and frees it; the public
 * functions hand their work to it and wait. Callers may therefore use a classifier
 * from any thread (calls are serialised), and preprocessing, decoding and the rest
 * stay parallel in the callers.
 */
enum { JOB_IDLE, JOB_PENDING, JOB_DONE };
enum { JOB_PREDICT, JOB_CALIBRATE, JOB_INT8 };

struct basira_classifier {
    /* Read-only once loaded: readable from any thread. */
    basira_model_info info;
    char sha256[65];
    int views;      /* TTA views actually run */
    size_t in_size; /* floats of one input tensor */
    size_t memory;

    int members; /* networks averaged (an ensemble, nn.h), 1..BASIRA_NET_MAX_MEMBERS */

    /* Owned by the inference thread. */
    basira_net *nets[BASIRA_NET_MAX_MEMBERS];
    float *views_buf;
    float *logits;
    float *probs;

    pthread_t thread;
    pthread_mutex_t submit; /* one caller at a time uses the job slot */
    pthread_mutex_t lock;   /* protects what follows */
    pthread_cond_t cond;
    int loaded, quit, job;
    const char *path;           /* only while loading */
    basira_precision precision; /* asked for at load; then the one the net runs in */
    int model_default;          /* at load: the model's own precision (int8_default) instead */
    basira_code load_rc;
    basira_error load_err;
    const float *job_chw;
    float *job_probs;
    float *job_each; /* NULL, or room for job_nviews x num_classes: every view's probabilities */
    int job_nviews;
    int job_kind; /* JOB_PREDICT, JOB_CALIBRATE (job_chw), JOB_INT8 */
    basira_code job_rc;
    basira_error job_err;
};

/* ---- loading ------------------------------------------------------------------------ */

/* Read a whole file (bounded) into a malloc'd buffer. */
static basira_code read_file(const char *path, unsigned char **buf, size_t *len, basira_error *err)
{
    basira_error rerr;
    basira_code rc = basira_fs_read(path, MODEL_MAX_FILE_BYTES, buf, len, &rerr);
    if (rc == BASIRA_E_NOT_FOUND)
        return basira_error_set(err, rc, _("model file %s does not exist"), path);
    if (rc == BASIRA_E_LIMIT)
        return basira_error_set(err, rc,
                                _("model file %s is larger than %zu MB: not a Basira model"), path,
                                MODEL_MAX_FILE_BYTES >> 20);
    if (rc && err)
        *err = rerr;
    return rc;
}

/*
 * The model's identity, hashed on every load: a safety feature (the result names the
 * exact weights that produced it), so it must be cheap enough never to be skipped.
 * Nettle's SHA-256 uses the processor's SHA extensions where it has them (x86 SHA-NI,
 * ARMv8 crypto): about 5 ms for the 6 MB of the bundled models on one core, where
 * libsodium's portable C took 30 ms, a fifth of a whole one-photo triage. Nettle is
 * already in the process (libvips and GnuTLS load it).
 */
static void sha256_hex(const unsigned char *data, size_t len, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char h[SHA256_DIGEST_SIZE];
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, len, data);
    sha256_digest(&ctx, sizeof h, h);
    for (size_t i = 0; i < sizeof h; i++) {
        hex[2 * i] = digits[h[i] >> 4];
        hex[2 * i + 1] = digits[h[i] & 15];
    }
    hex[64] = '\0';
}

static basira_code check_net(basira_classifier *c, const basira_net *net, basira_error *err)
{
    int ch = 0, h = 0, w = 0;
    basira_net_input_shape(net, &ch, &h, &w);
    const basira_preprocess *p = &c->info.preprocess;
    if (ch != 3 || h != p->input_h || w != p->input_w)
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model: the network takes %dx%dx%d inputs but the metadata "
                                  "says 3x%dx%d"),
                                ch, h, w, p->input_h, p->input_w);
    if (basira_net_num_classes(net) != c->info.num_classes)
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model: the network has %d outputs but the metadata lists %d "
                                  "classes"),
                                basira_net_num_classes(net), c->info.num_classes);
    return BASIRA_OK;
}

/* Everything loading does, on the inference thread. On failure the caller thread frees. */
static basira_code load_here(basira_classifier *c, const char *path, basira_error *err)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    basira_code rc = read_file(path, &buf, &len, err);
    if (rc)
        return rc;
    /*
     * The identity is the hash of exactly the bytes the net is built from (one read),
     * so a file replaced while Basira runs can never be reported under another hash.
     */
    sha256_hex(buf, len, c->sha256);
    rc = basira_net_load_ensemble_buffer(buf, len, c->nets, &c->members, err);
    free(buf);
    if (rc)
        return rc;
    const char *meta =
        json_string_value(json_object_get(basira_net_metadata(c->nets[0]), "basira"));
    if (!meta)
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model %s has no \"basira\" metadata: it is not a Basira "
                                  "classifier"),
                                path);
    if ((rc = basira_model_info_parse(meta, strlen(meta), &c->info, err)))
        return rc;
    for (int m = 0; m < c->members; m++)
        if ((rc = check_net(c, c->nets[m], err)))
            return rc;
    /*
     * The TTA views run one after another at batch size 1 rather than as one batch:
     * activations of a batch of 8 cost about 25 MB more, which would break the 50 MB
     * budget of the model and its runtime, for no gain in latency on a CPU with few
     * cores.
     */
    c->views = c->info.tta;
    c->in_size =
        (size_t)3 * (size_t)c->info.preprocess.input_w * (size_t)c->info.preprocess.input_h;
    size_t k = (size_t)c->info.num_classes;
    c->views_buf = malloc(sizeof(float) * c->in_size);
    c->logits = malloc(sizeof(float) * k);
    c->probs = malloc(sizeof(float) * k);
    if (!c->views_buf || !c->logits || !c->probs)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    if (c->model_default)
        c->precision = c->info.int8_default ? BASIRA_PRECISION_INT8 : BASIRA_PRECISION_FP32;
    c->memory = sizeof *c + sizeof(float) * (c->in_size + 2 * k);
    basira_precision asked = c->precision;
    for (int m = 0; m < c->members; m++) {
        basira_net *net = c->nets[m];
        if (c->model_default && c->info.int8_default && !basira_net_int8_calibrated(net))
            return basira_error_set(err, BASIRA_E_MODEL,
                                    _("the model is marked to run in int8 but carries no int8 "
                                      "calibration: run basira quantize again"));
        if ((rc = basira_net_set_inference_precision(net, asked, err)) ||
            (rc = basira_net_prepare_inference(net, 1, err)))
            return rc;
        /*
         * Loaded as `basira triage` loads it (basira_classifier_load), it only predicts:
         * its plan keeps the weights, and the net's own copy goes. Loaded at a chosen
         * precision (basira_classifier_load_precision), it may still be calibrated and
         * switched to int8, which needs them.
         */
        if (c->model_default && (rc = basira_net_release_values(net, err)))
            return rc;
        /* The precision reported is the lowest any member runs in (all agree in practice). */
        if (!m || basira_net_inference_precision(net) == BASIRA_PRECISION_FP32)
            c->precision = basira_net_inference_precision(net);
        c->memory += basira_net_num_params(net) * sizeof(float);
    }
    return BASIRA_OK;
}

static basira_code run_views(basira_classifier *c, const float *chw, float *probs, int nviews,
                             float *each, basira_error *err);

static void *inference_thread(void *arg)
{
    basira_classifier *c = arg;
    basira_error err;
    basira_error_clear(&err);
    /*
     * One photo at a time through a network of a few million parameters takes a few
     * milliseconds on one core; spreading such small layers over OpenMP threads costs
     * more in barriers than it gains, and idle OpenMP threads spin on the cores that
     * decode and check the next photos. The setting only applies to this thread.
     */
    basira_nn_set_threads(1);
    basira_code rc = load_here(c, c->path, &err);
    pthread_mutex_lock(&c->lock);
    c->load_rc = rc;
    c->load_err = err;
    c->loaded = 1;
    pthread_cond_broadcast(&c->cond);
    while (!rc && !c->quit) {
        if (c->job != JOB_PENDING) {
            pthread_cond_wait(&c->cond, &c->lock);
            continue;
        }
        const float *chw = c->job_chw;
        float *probs = c->job_probs, *each = c->job_each;
        int nviews = c->job_nviews;
        pthread_mutex_unlock(&c->lock);
        basira_error_clear(&err);
        basira_code jrc;
        if (c->job_kind == JOB_CALIBRATE) {
            jrc = BASIRA_OK;
            for (int m = 0; !jrc && m < c->members; m++)
                jrc = basira_net_calibrate(c->nets[m], chw, 1, &err);
        } else if (c->job_kind == JOB_INT8) {
            jrc = BASIRA_OK;
            for (int m = 0; !jrc && m < c->members; m++)
                jrc = basira_net_set_inference_precision(c->nets[m], BASIRA_PRECISION_INT8, &err);
            c->precision = basira_net_inference_precision(c->nets[0]);
            for (int m = 1; m < c->members; m++)
                if (basira_net_inference_precision(c->nets[m]) == BASIRA_PRECISION_FP32)
                    c->precision = BASIRA_PRECISION_FP32;
        } else {
            jrc = run_views(c, chw, probs, nviews, each, &err);
        }
        pthread_mutex_lock(&c->lock);
        c->job_rc = jrc;
        c->job_err = err;
        c->job = JOB_DONE;
        pthread_cond_broadcast(&c->cond);
    }
    pthread_mutex_unlock(&c->lock);
    /* The net's primitives are released on the thread that made them. */
    basira_net_free_ensemble(c->nets, BASIRA_NET_MAX_MEMBERS);
    free(c->views_buf);
    free(c->logits);
    free(c->probs);
    c->views_buf = c->logits = c->probs = NULL;
    return NULL;
}

static void destroy(basira_classifier *c)
{
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->submit);
    free(c);
}

static basira_code load(const char *path, basira_precision precision, int model_default,
                        basira_classifier **out, basira_error *err);

basira_code basira_classifier_load(const char *path, basira_classifier **out, basira_error *err)
{
    return load(path, BASIRA_PRECISION_FP32, 1, out, err);
}

basira_precision basira_classifier_precision(const basira_classifier *c)
{
    return c->precision;
}

basira_code basira_classifier_set_tta(basira_classifier *c, int views, basira_error *err)
{
    if (!c)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    if (views != 1 && views != 2 && views != 4 && views != 8)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("test-time augmentation takes 1, 2, 4 or 8 views"));
    if (views == 8 && c->info.preprocess.input_w != c->info.preprocess.input_h)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("8 views need a square input size"));
    c->views = views;
    c->info.tta = views;
    return BASIRA_OK;
}

basira_code basira_classifier_load_precision(const char *path, basira_precision precision,
                                             basira_classifier **out, basira_error *err)
{
    return load(path, precision, 0, out, err);
}

static basira_code load(const char *path, basira_precision precision, int model_default,
                        basira_classifier **out, basira_error *err)
{
    if (!path || !out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *out = NULL;
    basira_classifier *c = calloc(1, sizeof *c);
    if (!c)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    if (pthread_mutex_init(&c->submit, NULL)) {
        free(c);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    if (pthread_mutex_init(&c->lock, NULL)) {
        pthread_mutex_destroy(&c->submit);
        free(c);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    if (pthread_cond_init(&c->cond, NULL)) {
        pthread_mutex_destroy(&c->lock);
        pthread_mutex_destroy(&c->submit);
        free(c);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    c->path = path;
    c->precision = precision;
    c->model_default = model_default;
    if (pthread_create(&c->thread, NULL, inference_thread, c)) {
        destroy(c);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    pthread_mutex_lock(&c->lock);
    while (!c->loaded)
        pthread_cond_wait(&c->cond, &c->lock);
    basira_code rc = c->load_rc;
    pthread_mutex_unlock(&c->lock);
    c->path = NULL;
    if (rc) {
        if (err)
            *err = c->load_err;
        pthread_join(c->thread, NULL); /* the thread has freed what it made */
        destroy(c);
        return rc;
    }
    *out = c;
    return BASIRA_OK;
}

void basira_classifier_free(basira_classifier *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->quit = 1;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    destroy(c);
}

const basira_model_info *basira_classifier_info(const basira_classifier *c)
{
    return c ? &c->info : NULL;
}

int basira_classifier_members(const basira_classifier *c)
{
    return c ? c->members : 0;
}

const char *basira_classifier_sha256(const basira_classifier *c)
{
    return c ? c->sha256 : "";
}

size_t basira_classifier_memory(const basira_classifier *c)
{
    return c ? c->memory : 0;
}

/* ---- prediction ---------------------------------------------------------------------- */

/*
 * View v of a CHW tensor: the 8 symmetries of the square (identity, horizontal flip,
 * vertical flip, half turn, then for square inputs transpose, quarter turns and
 * anti-transpose). Skin lesions have no preferred orientation, so averaging the
 * predictions over these views removes some variance without any retraining. The
 * order puts the shape-preserving views first so that TTA 2 and 4 work for any input.
 */
static void make_view(const float *src, float *dst, int w, int h, int v)
{
    for (int c = 0; c < 3; c++) {
        const float *s = src + (size_t)c * w * h;
        float *d = dst + (size_t)c * w * h;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int sx = x, sy = y;
                switch (v) {
                case 1:
                    sx = w - 1 - x;
                    break;
                case 2:
                    sy = h - 1 - y;
                    break;
                case 3:
                    sx = w - 1 - x;
                    sy = h - 1 - y;
                    break;
                case 4:
                    sx = y;
                    sy = x;
                    break; /* transpose (square only) */
                case 5:
                    sx = y;
                    sy = h - 1 - x;
                    break; /* quarter turn clockwise */
                case 6:
                    sx = w - 1 - y;
                    sy = x;
                    break; /* quarter turn anticlockwise */
                case 7:
                    sx = w - 1 - y;
                    sy = h - 1 - x;
                    break; /* anti-transpose */
                default:
                    break;
                }
                d[(size_t)y * w + x] = s[(size_t)sy * w + sx];
            }
    }
}

/*
 * The spread samples of an ensemble: each member's probabilities on each of the model's
 * own views, when there are 4 to 8 of them. They cost no forward pass beyond the
 * prediction itself, and the members' disagreement is part of the uncertainty that
 * symmetry views alone miss. An ensemble with too few pairs (3 members at 1 view) runs
 * the next views too, as few as make 4 pairs: 6 forward passes where the 8 symmetry
 * views of the averaged model cost 24. Otherwise (one network, or too many pairs) the
 * spread is over the 8 (or 4) symmetry views of the averaged model: for 4 members at 8
 * views that would be 32 samples, and 32 more forward passes were not worth it.
 */
static int pair_views(const basira_classifier *c)
{
    if (c->members < 2)
        return 0;
    int v = c->views;
    while (c->members * v < 4)
        v++; /* at most 2 views for 2 or 3 members: a non-square input has 4 */
    return c->members * v <= 8 ? v : 0;
}

static int member_samples(const basira_classifier *c)
{
    return pair_views(c) * c->members;
}

/*
 * The forward passes of every view, on the inference thread: probs gets the average
 * of the model's c->views; with each, nviews spread samples are kept too: the
 * (view, member) pairs of member_samples(), else nviews views of the averaged model
 * (in both, the first c->views views make the same average).
 */
static basira_code run_views(basira_classifier *c, const float *chw, float *probs, int nviews,
                             float *each, basira_error *err)
{
    int w = c->info.preprocess.input_w, h = c->info.preprocess.input_h;
    int k = c->info.num_classes;
    double acc[BASIRA_MODEL_MAX_CLASSES] = {0};
    int pairs = each && member_samples(c) == nviews;
    int n = pairs ? pair_views(c) : each && nviews > c->views ? nviews : c->views;
    int ne = each ? (pairs ? nviews : n) : 0; /* spread samples written to each */
    for (int v = 0; v < n; v++) {
        const float *x = chw;
        if (v > 0) {
            make_view(chw, c->views_buf, w, h, v);
            x = c->views_buf;
        }
        /* An ensemble's view is the mean of its members' probabilities of that view. */
        double view[BASIRA_MODEL_MAX_CLASSES] = {0};
        for (int m = 0; m < c->members; m++) {
            basira_code rc = basira_net_forward(c->nets[m], x, 1, 0, c->logits, err);
            if (rc)
                return rc;
            basira_softmax(c->logits, 1, k, (float)c->info.temperature, c->probs);
            for (int j = 0; j < k; j++) {
                view[j] += c->probs[j];
                if (pairs)
                    each[((size_t)v * c->members + m) * k + j] = c->probs[j];
            }
        }
        for (int j = 0; j < k; j++) {
            view[j] /= c->members;
            if (each && !pairs)
                each[(size_t)v * k + j] = (float)view[j];
            if (v < c->views)
                acc[j] += view[j];
        }
    }
    for (int j = 0; j < k; j++)
        probs[j] = (float)(acc[j] / c->views);
    /* The recalibration of P(malignant), on the average (and on each view, for their spread). */
    basira_model_map_malignant(&c->info, probs);
    for (int v = 0; v < ne; v++)
        basira_model_map_malignant(&c->info, each + (size_t)v * k);
    /*
     * Corrupt weights (or a numerical bug) show up as NaN or infinities. A triage
     * decision must never be taken on them, so they are an error, not a result.
     */
    for (int j = 0; j < k * (each ? ne : 1); j++) {
        float q = each ? each[j] : probs[j];
        if (!(isfinite(q) && q >= 0 && q <= 1.0001f) || !isfinite(probs[j % k]))
            return basira_error_set(err, BASIRA_E_MODEL,
                                    _("the model produced invalid probabilities (damaged "
                                      "weights?)"));
    }
    return BASIRA_OK;
}

static basira_code submit_kind(basira_classifier *c, int kind, const float *chw, float *probs,
                               int nviews, float *each, basira_error *err)
{
    pthread_mutex_lock(&c->submit);
    pthread_mutex_lock(&c->lock);
    c->job_kind = kind;
    c->job_chw = chw;
    c->job_probs = probs;
    c->job_nviews = nviews;
    c->job_each = each;
    c->job = JOB_PENDING;
    pthread_cond_broadcast(&c->cond);
    while (c->job != JOB_DONE)
        pthread_cond_wait(&c->cond, &c->lock);
    basira_code rc = c->job_rc;
    if (rc && err)
        *err = c->job_err;
    c->job = JOB_IDLE;
    pthread_mutex_unlock(&c->lock);
    pthread_mutex_unlock(&c->submit);
    return rc;
}

static basira_code submit(basira_classifier *c, const float *chw, float *probs, int nviews,
                          float *each, basira_error *err)
{
    return submit_kind(c, JOB_PREDICT, chw, probs, nviews, each, err);
}

basira_code basira_classifier_calibrate_chw(basira_classifier *c, const float *chw,
                                            basira_error *err)
{
    if (!c || !chw)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    return submit_kind(c, JOB_CALIBRATE, chw, NULL, 0, NULL, err);
}

basira_code basira_classifier_use_int8(basira_classifier *c, basira_error *err)
{
    if (!c)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    return submit_kind(c, JOB_INT8, NULL, NULL, 0, NULL, err);
}

basira_code basira_classifier_predict_chw(basira_classifier *c, const float *chw, float *probs,
                                          basira_error *err)
{
    if (!c || !chw || !probs)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    return submit(c, chw, probs, 0, NULL, err);
}

int basira_classifier_spread_by_member(const basira_classifier *c)
{
    return c && member_samples(c) ? 1 : 0;
}

basira_code basira_classifier_predict_views(basira_classifier *c, const basira_image *img,
                                            float *probs, float *per_view, int *n_views,
                                            basira_error *err)
{
    if (!c || !img || !probs || !per_view || !n_views)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    int n = member_samples(c);
    if (!n)
        n = c->info.preprocess.input_w == c->info.preprocess.input_h ? 8 : 4;
    float *x = malloc(sizeof(float) * c->in_size);
    if (!x)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    basira_code rc = basira_preprocess_image(&c->info.preprocess, img, x, err);
    if (!rc)
        rc = submit(c, x, probs, n, per_view, err);
    free(x);
    if (!rc)
        *n_views = n; /* never fewer than c->views: 8 views need a square input */
    return rc;
}

basira_code basira_classifier_predict(basira_classifier *c, const basira_image *img, float *probs,
                                      basira_error *err)
{
    if (!c || !img || !probs)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    float *x = malloc(sizeof(float) * c->in_size);
    if (!x)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    basira_code rc = basira_preprocess_image(&c->info.preprocess, img, x, err);
    if (!rc)
        rc = basira_classifier_predict_chw(c, x, probs, err);
    free(x);
    return rc;
}
