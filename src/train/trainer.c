/*
 * trainer.c - the training loop of `basira train`.
 *
 * Reproducibility is designed in rather than hoped for: every random choice
 * (the split, the order of each epoch, each image's augmentation) is drawn from
 * a seed mixed with what it is about (epoch, position), never from a generator
 * shared over time. So a batch is the same whichever thread prepares it and
 * whenever, and a run resumed from the checkpoint of epoch e draws exactly what
 * an uninterrupted run draws from epoch e + 1 on.
 *
 * Two things run at once: the engine computes step s while a worker thread
 * augments and preprocesses the images of step s + 1 into the other of two
 * batch buffers.
 *
 * Files in the output folder (all written to a temporary name then renamed, so
 * an interrupted run never leaves half a file):
 *   best.safetensors        the model of the best validation epoch (EMA weights if --ema)
 *   checkpoint.safetensors  net + optimiser + training state after the last epoch
 *   train.csv val.csv test.csv   the original CSV rows of each part
 *   history.jsonl           one JSON object per epoch
 *   summary.json            best epoch, validation and test figures, throughput
 */
#include "basira/fs.h"
#include "basira/json.h"
#include "basira/model.h"
#include "basira/nn.h"
#include "basira/paths.h"
#include "basira/train.h"
#include "core/i18n.h"
#include "train/trainer_internal.h"
#include "train/dataset.h"
#include "train/profile.h"
#include "train/metrics.h"
#include "train/contrastive.h"
#include "train/mixup.h"
#include "train/progress.h"
#include "train/rng.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- files ---------------------------------------------------------------------- */

/* Write text to dir/name through a temporary file renamed into place. */
static basira_code write_file_atomic(const char *dir, const char *name, const char *text,
                                     basira_error *err)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("path too long: %s"), dir);
    return basira_fs_write_atomic(path, text, strlen(text), 0644, err);
}

static void trainer_free(trainer *t)
{
    basira_optim_free(t->opt);
    basira_freeze_free(t->frozen);
    basira_net_free(t->net);
    for (int s = 0; s < 2; s++) {
        free(t->x[s]);
        free(t->y[s]);
        free(t->rgb[s]);
    }
    free(t->logits);
    free(t->dlogits);
    free(t->mix_x);
    free(t->mix_dlogits);
    free(t->mix_perm);
    free(t->mix_labels);
    free(t->ntx_work);
    free(t->probs);
    free(t->labels_all);
    free(t->order);
    free(t->cum);
    json_decref(t->history);
    json_decref(t->config);
    train_dataset_free(&t->ds);
}

/* ---- batches ----------------------------------------------------------------------- */

/* Sample order of an epoch: a seeded permutation, or class-balanced draws with replacement. */
static void epoch_order(trainer *t, int epoch)
{
    const train_dataset *ds = &t->ds;
    size_t n = ds->count[BASIRA_PART_TRAIN];
    const size_t *idx = ds->index[BASIRA_PART_TRAIN];
    uint64_t rs = basira_seed_mix(t->o->seed, 0x45504f4348ULL, (uint64_t)epoch);
    if (!t->o->balanced_sampler) {
        for (size_t i = 0; i < n; i++)
            t->order[i] = idx[i];
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = (size_t)basira_rng_below(&rs, i + 1);
            size_t tmp = t->order[i];
            t->order[i] = t->order[j];
            t->order[j] = tmp;
        }
        return;
    }
    /* Each class is drawn equally often on average: weight 1 / (its count) per image. */
    size_t counts[BASIRA_MAX_CLASSES] = {0};
    for (size_t i = 0; i < n; i++)
        counts[ds->label[idx[i]]]++;
    double acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc += 1.0 / (double)counts[ds->label[idx[i]]];
        t->cum[i] = acc;
    }
    for (size_t i = 0; i < n; i++) {
        double u = basira_rng_uniform(&rs) * acc;
        size_t lo = 0, hi = n - 1;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (t->cum[mid] > u)
                hi = mid;
            else
                lo = mid + 1;
        }
        t->order[i] = idx[lo];
    }
}

typedef struct batch_job {
    trainer *t;
    int slot, epoch;
    long step;
    basira_code rc;
    basira_error err;
    double seconds; /* augmentation and preprocessing */
} batch_job;

/* Augment and preprocess the images of one step into buffer slot. --contrastive: rows j
 * and j + batch/2 are two views of one photo (two augmentations of the same position). */
static basira_code prepare_batch(trainer *t, int slot, int epoch, long step, basira_error *err)
{
    const train_dataset *ds = &t->ds;
    int half = t->photos;
    for (int j = 0; j < t->batch; j++) {
        size_t pos = (size_t)step * (size_t)half + (size_t)(j % half);
        /* a supervised run's draws are those of its position, as before views existed */
        size_t draw = half == t->batch ? pos : 2 * pos + (size_t)(j / half);
        size_t item = t->order[pos];
        basira_code rc =
            train_view(t, item, basira_seed_mix(t->o->seed, (uint64_t)epoch + 1, draw),
                       basira_seed_mix(t->o->seed ^ TRAIN_SHIFT_SALT, (uint64_t)epoch + 1, draw),
                       t->rgb[slot], t->x[slot] + (size_t)j * t->in_floats, err);
        if (rc)
            return rc;
        t->y[slot][j] = ds->label[item];
    }
    return BASIRA_OK;
}

static void *batch_worker(void *arg)
{
    batch_job *job = arg;
    double t0 = train_now_seconds();
    job->rc = prepare_batch(job->t, job->slot, job->epoch, job->step, &job->err);
    job->seconds = train_now_seconds() - t0;
    return NULL;
}

/* ---- evaluation ---------------------------------------------------------------------- */

/* Figures of net on one part (validation or test), preprocessed exactly as in inference. */
static basira_code evaluate(trainer *t, basira_net *net, int part, train_metrics *m,
                            basira_error *err)
{
    const train_dataset *ds = &t->ds;
    size_t n = ds->count[part];
    if (n == 0 || t->o->contrastive > 0) {
        /* --contrastive: no class figures, the loss alone */
        double loss = NAN;
        basira_code rc = n ? train_contrastive_loss(t, net, part, &loss, err) : BASIRA_OK;
        train_metrics_compute(NULL, NULL, 0, t->k, NULL, loss, m);
        m->n = n;
        return rc;
    }
    float *probs = malloc(n * (size_t)t->k * sizeof *probs);
    if (!probs)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    double loss_sum = 0;
    for (size_t start = 0; start < n; start += (size_t)t->batch) {
        int nb = (int)(n - start < (size_t)t->batch ? n - start : (size_t)t->batch);
        for (int j = 0; j < nb; j++) {
            size_t item = ds->index[part][start + (size_t)j];
            basira_preprocess_rgb(&t->pp, ds->pixels[item], t->x[0] + (size_t)j * t->in_floats);
            t->labels_all[start + (size_t)j] = ds->label[item];
        }
        basira_code rc = basira_net_forward(net, t->x[0], nb, 0, t->logits, err);
        if (rc) {
            free(probs);
            return rc;
        }
        loss_sum += (double)basira_softmax_xent(t->logits, t->labels_all + start, nb, t->k, NULL,
                                                0.0f, NULL, probs + start * (size_t)t->k) *
                    nb;
    }
    train_metrics_compute(probs, t->labels_all, n, t->k, t->malignant, loss_sum / (double)n, m);
    free(probs);
    return BASIRA_OK;
}

/* The figure that picks the best epoch; higher is better, NAN counts as worst. */
static double select_value(const basira_train_options *o, const train_metrics *m, double train_loss,
                           size_t n_val)
{
    const char *s = o->select_metric ? o->select_metric : "balanced_accuracy";
    if (n_val == 0)
        return -train_loss; /* no validation part: the lowest training loss */
    if (o->contrastive > 0)
        return -m->loss;
    if (!strcmp(s, "accuracy"))
        return m->accuracy;
    if (!strcmp(s, "auc"))
        return m->auc;
    if (!strcmp(s, "loss"))
        return -m->loss;
    return m->balanced_accuracy;
}

/* ---- set-up ---------------------------------------------------------------------------- */

static basira_code alloc_buffers(trainer *t, basira_error *err)
{
    size_t npix = (size_t)t->ds.input_w * (size_t)t->ds.input_h;
    size_t n_train = t->ds.count[BASIRA_PART_TRAIN];
    size_t n_max = t->ds.count[1] > t->ds.count[2] ? t->ds.count[1] : t->ds.count[2];
    t->in_floats = 3 * npix;
    for (int s = 0; s < 2; s++) {
        t->x[s] = malloc((size_t)t->batch * t->in_floats * sizeof(float));
        t->y[s] = malloc((size_t)t->batch * sizeof(int));
        t->rgb[s] = malloc(3 * npix);
        if (!t->x[s] || !t->y[s] || !t->rgb[s])
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    t->logits = malloc((size_t)t->batch * (size_t)t->out * sizeof(float));
    t->dlogits = malloc((size_t)t->batch * (size_t)t->out * sizeof(float));
    t->labels_all = malloc((n_max ? n_max : 1) * sizeof(int));
    t->order = malloc(n_train * sizeof(size_t));
    t->cum = malloc(n_train * sizeof(double));
    if (!t->logits || !t->dlogits || !t->labels_all || !t->order || !t->cum)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    if (t->o->mixup > 0) {
        t->mix_x = malloc((size_t)t->batch * t->in_floats * sizeof(float));
        t->mix_dlogits = malloc((size_t)t->batch * (size_t)t->k * sizeof(float));
        t->mix_perm = malloc((size_t)t->batch * sizeof(int));
        t->mix_labels = malloc((size_t)t->batch * sizeof(int));
        if (!t->mix_x || !t->mix_dlogits || !t->mix_perm || !t->mix_labels)
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    if (t->o->contrastive > 0 &&
        !(t->ntx_work = malloc(basira_ntxent_work_floats(t->batch, t->out) * sizeof(float))))
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    return BASIRA_OK;
}

static basira_code new_model(trainer *t, basira_error *err)
{
    const basira_train_options *o = t->o;
    basira_arch_params ap = {.family = o->arch,
                             .input_size = o->input_size,
                             .input_height = o->input_height,
                             .num_classes = t->out,
                             .width = o->width,
                             .depth = o->depth,
                             .dropout = o->dropout};
    size_t copied, fresh;
    char *arch = o->init_from ? NULL : basira_arch_build(&ap, err);
    if (!arch && !o->init_from)
        return err ? err->code : BASIRA_E_INVALID_ARGUMENT;
    /* --input-size with --init-from: fine-tune at that size (a larger one uses more of the
     * photo); without it, the parent's size, which must be the data set's (checked below). */
    int iw = o->input_size_given ? t->ds.input_w : 0, ih = o->input_size_given ? t->ds.input_h : 0;
    basira_code rc = o->init_from ? basira_train_net_from_parent(o->init_from, t->out, o->seed, iw,
                                                                 ih, &t->net, &copied, &fresh, err)
                                  : basira_net_new(arch, o->seed, &t->net, err);
    free(arch);
    if (rc)
        return rc;
    int c, h, w;
    basira_net_input_shape(t->net, &c, &h, &w);
    if (h != t->ds.input_h || w != t->ds.input_w)
        return basira_error_set(
            err, BASIRA_E_INVALID_ARGUMENT,
            _("--init-from: the model takes %dx%d images; give --input-size %dx%d"), w, h, w, h);
    basira_optim_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.kind = (basira_optim_kind)o->optimizer;
    cfg.momentum = o->momentum;
    cfg.nesterov = o->optimizer == BASIRA_OPTIM_SGD;
    cfg.weight_decay = o->weight_decay;
    cfg.ema_decay = o->ema;
    return basira_optim_new(t->net, &cfg, &t->opt, err);
}

/* The first option whose value differs between this run's configuration and a checkpoint's,
 * either way round: a key only some runs record (input_height, split_seed, mixup) that only
 * one of the two has counts as a difference. NULL when they are the same recipe. */
static const char *config_difference(const json_t *run, const json_t *ckpt)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)run, key, v)
    {
        if (!json_equal(v, json_object_get(ckpt, key)))
            return key;
    }
    json_object_foreach((json_t *)ckpt, key, v)
    {
        if (!json_object_get(run, key))
            return key;
    }
    return NULL;
}

static basira_code resume(trainer *t, basira_error *err)
{
    json_t *state = NULL;
    basira_code rc = basira_checkpoint_load(t->o->resume_path, &t->net, &t->opt, &state, err);
    if (rc)
        return rc;
    if (!t->opt) {
        json_decref(state);
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("--resume: %s holds no optimiser state (a model, not a "
                                  "checkpoint?)"),
                                t->o->resume_path);
    }
    /* The name lives in state (or in t->config): the message is made before state is freed. */
    const char *key = config_difference(t->config, json_object_get(state, "config"));
    if (key) {
        rc = basira_error_set(err, BASIRA_E_CONFLICT,
                              _("--resume: the checkpoint was made with another value of "
                                "'%s'; give the same options to continue the run"),
                              key);
        json_decref(state);
        return rc;
    }
    json_t *split = train_split_json(t);
    int same_split = json_equal(split, json_object_get(state, "split"));
    json_decref(split);
    json_t *hist = json_object_get(state, "history");
    json_t *ep = json_object_get(state, "epoch");
    json_t *step = json_object_get(state, "global_step");
    json_t *best = json_object_get(state, "best_epoch");
    if (!same_split || !json_is_array(hist) || !json_is_integer(ep) || !json_is_integer(step) ||
        !json_is_integer(best)) {
        json_decref(state);
        return basira_error_set(err, BASIRA_E_CONFLICT,
                                _("--resume: the data split differs from the checkpoint's (did "
                                  "the CSV or the images change?)"));
    }
    t->start_epoch = (int)json_integer_value(ep);
    t->global_step = (long)json_integer_value(step);
    t->best_epoch = (int)json_integer_value(best);
    const json_t *bv = json_object_get(state, "best");
    t->best = json_is_number(bv) ? json_number_value(bv) : -INFINITY;
    json_decref(t->history);
    t->history = json_deep_copy(hist);
    const char *date = json_string_value(json_object_get(state, "date"));
    if (date)
        snprintf(t->date, sizeof t->date, "%s", date);
    json_decref(state);
    if (!t->history)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    if (basira_net_num_classes(t->net) != t->out)
        return basira_error_set(err, BASIRA_E_CONFLICT,
                                _("--resume: the checkpoint's network has another number of "
                                  "classes"));
    return BASIRA_OK;
}

/* ---- epoch bookkeeping --------------------------------------------------------------- */

static basira_code write_history(trainer *t, basira_error *err)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    size_t i;
    json_t *e;
    json_array_foreach(t->history, i, e)
    {
        basira_json_print_line(f, e);
    }
    fclose(f);
    basira_code rc = write_file_atomic(t->o->out_dir, "history.jsonl", text ? text : "", err);
    free(text);
    return rc;
}

static basira_code save_checkpoint(trainer *t, int epochs_done, basira_error *err)
{
    json_t *state = json_pack("{s:i, s:I, s:i, s:o, s:O, s:O, s:o, s:s}", "epoch", epochs_done,
                              "global_step", (json_int_t)t->global_step, "best_epoch",
                              t->best_epoch, "best", jnum(t->best), "history", t->history, "config",
                              t->config, "split", train_split_json(t), "date", t->date);
    if (!state)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    char path[4096];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", t->o->out_dir);
    basira_code rc = basira_checkpoint_save(t->net, t->opt, state, path, err);
    json_decref(state);
    return rc;
}

static void print_epoch_report(trainer *t, int epoch, double train_loss, const train_metrics *m,
                               double seconds, double ips, int improved)
{
    FILE *f = t->log;
    if (!f)
        return;
    train_progress_break(&t->prog);
    if (t->o->contrastive > 0) {
        fprintf(f,
                _("epoch %d/%d: contrastive loss: train %.4f, validation %.4f | %.1f s, %.1f "
                  "img/s"),
                epoch + 1, t->o->epochs, train_loss, m->loss, seconds, ips);
        fprintf(f, "%s%s\n", improved ? " " : "", improved ? _("(best so far)") : "");
        fflush(f);
        return;
    }
    fprintf(f,
            _("epoch %d/%d: train loss %.4f | validation loss %.4f, accuracy %.3f, balanced "
              "accuracy %.3f, malignant AUC %.3f | %.1f s, %.1f img/s"),
            epoch + 1, t->o->epochs, train_loss, m->loss, m->accuracy, m->balanced_accuracy, m->auc,
            seconds, ips);
    if (improved)
        fprintf(f, " %s", _("(best so far)"));
    fputc('\n', f);
    fprintf(f, "  %s", _("recall:"));
    for (int c = 0; c < t->k; c++)
        fprintf(f, " %s %.2f", t->ds.classes.c[c].code, m->recall[c]);
    fputc('\n', f);
    fflush(f);
}

/* One epoch of training steps; returns the mean training loss in *loss. */
static basira_code train_epoch(trainer *t, int epoch, double *loss, basira_error *err)
{
    const basira_train_options *o = t->o;
    epoch_order(t, epoch);
    t->data_wait = 0;
    t->cpu0 = train_cpu_seconds();
    basira_code rc = prepare_batch(t, 0, epoch, 0, err);
    if (rc)
        return rc;
    double t0 = train_now_seconds(), loss_sum = 0;
    for (long s = 0; s < t->steps; s++) {
        int slot = (int)(s & 1);
        batch_job job = {.t = t, .slot = slot ^ 1, .epoch = epoch, .step = s + 1};
        pthread_t th;
        int threaded = 0;
        if (s + 1 < t->steps)
            threaded = pthread_create(&th, NULL, batch_worker, &job) == 0;

        double lr = basira_lr_at((basira_schedule)o->schedule, o->lr, t->global_step,
                                 t->total_steps, t->warmup_steps);
        /* --profile: the first step (plans built, kernels compiled) is not measured */
        int prof = o->profile && epoch == t->start_epoch && s > 0;
        if (o->profile && epoch == t->start_epoch && s <= 1)
            basira_net_profile_enable(t->net, s == 1, NULL);
        double p0 = train_now_seconds();
        /* --mixup: this step's images blended in pairs, one weight and pairing per step */
        double lambda = 1.0;
        const float *x = t->x[slot];
        if (o->mixup > 0) {
            uint64_t rs =
                basira_seed_mix(o->seed ^ 0x4D49585550ULL, (uint64_t)epoch + 1, (uint64_t)s);
            lambda = basira_mixup_lambda(o->mixup, &rs);
            basira_mixup_perm(t->batch, &rs, t->mix_perm);
            basira_mixup_inputs(x, t->batch, t->in_floats, t->mix_perm, lambda, t->mix_x);
            x = t->mix_x;
        }
        rc = basira_net_forward(t->net, x, t->batch, 1, t->logits, err);
        double p1 = train_now_seconds();
        float l = 0;
        const float *w = t->use_weights ? t->weights : NULL;
        if (!rc) {
            l = o->contrastive > 0 ? basira_ntxent(t->logits, t->batch, t->out,
                                                   (float)o->contrastive, t->dlogits, t->ntx_work)
                : o->mixup > 0     ? basira_mixup_xent(t->logits, t->y[slot], t->mix_perm, lambda,
                                                       t->batch, t->k, w, (float)o->label_smoothing,
                                                       t->dlogits, t->mix_dlogits, t->mix_labels)
                                   : basira_softmax_xent(t->logits, t->y[slot], t->batch, t->k, w,
                                                         (float)o->label_smoothing, t->dlogits, NULL);
            if (!isfinite(l))
                rc = basira_error_set(err, BASIRA_E_INTERNAL,
                                      _("training diverged (loss is not finite) at epoch %d step "
                                        "%ld: try a lower --lr or --clip-grad 1"),
                                      epoch + 1, s + 1);
        }
        double p2 = train_now_seconds();
        if (!rc)
            rc = basira_net_backward(t->net, t->dlogits, err);
        double p3 = train_now_seconds();
        if (!rc && o->clip_grad > 0)
            basira_net_clip_grad(t->net, o->clip_grad);
        if (!rc)
            rc = basira_optim_step(t->opt, lr, err);
        if (!rc)
            basira_freeze_restore(t->frozen, t->net);
        double w0 = train_now_seconds();
        if (threaded)
            pthread_join(th, NULL);
        else if (s + 1 < t->steps && !rc)
            batch_worker(&job);
        if (!rc && s + 1 < t->steps && job.rc) {
            rc = job.rc;
            if (err)
                *err = job.err;
        }
        t->data_wait += train_now_seconds() - w0;
        if (prof)
            train_phases_add(&t->ph, p1 - p0, p2 - p1, p3 - p2, w0 - p3, job.seconds,
                             train_now_seconds() - w0, t->batch);
        if (rc)
            return rc;
        t->global_step++;
        loss_sum += l;
        double el = train_now_seconds() - t0;
        double per_step = el / (double)(s + 1);
        double remaining =
            (double)(t->steps - s - 1) + (double)(o->epochs - epoch - 1) * (double)t->steps;
        if (o->progress)
            train_progress_step(&t->prog, train_now_seconds(), epoch + 1, o->epochs, s + 1,
                                t->steps, loss_sum / (double)(s + 1),
                                (double)(s + 1) * t->batch / (el > 0 ? el : 1e-9),
                                per_step * remaining);
    }
    t->train_seconds += train_now_seconds() - t0;
    t->train_cpu = train_cpu_seconds() - t->cpu0;
    t->train_images += t->steps * t->batch;
    *loss = loss_sum / (double)t->steps;
    return BASIRA_OK;
}

static basira_code write_summary(trainer *t, basira_train_result *res, basira_error *err)
{
    const train_dataset *ds = &t->ds;
    /* The best model, read back from its file: proves it loads, and gives the test figures. */
    char path[4096];
    snprintf(path, sizeof path, "%s/best.safetensors", t->o->out_dir);
    basira_net *best = NULL;
    basira_code rc = basira_net_load(path, &best, err);
    if (rc)
        return rc;
    train_metrics test;
    rc = evaluate(t, best, BASIRA_PART_TEST, &test, err);
    basira_net_free(best);
    if (rc)
        return rc;
    json_t *per_class = json_object();
    for (int c = 0; c < t->k; c++) {
        size_t n[3] = {0, 0, 0};
        for (int p = 0; p < 3; p++)
            for (size_t i = 0; i < ds->count[p]; i++)
                n[p] += ds->label[ds->index[p][i]] == c;
        json_object_set_new(per_class, ds->classes.c[c].code,
                            json_pack("{s:I, s:I, s:I}", "train", (json_int_t)n[0], "val",
                                      (json_int_t)n[1], "test", (json_int_t)n[2]));
    }
    json_t *best_val = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(t->history, i, e)
    {
        if (json_integer_value(json_object_get(e, "epoch")) == t->best_epoch + 1)
            best_val = json_object_get(e, "validation");
    }
    double ips = t->train_seconds > 0 ? (double)t->train_images / t->train_seconds : NAN;
    json_t *sum =
        json_pack("{s:s, s:i, s:i, s:s, s:o, s:O?, s:o, s:o, s:o, s:f, s:I, s:i, s:s, s:s}",
                  "model", "best.safetensors", "best_epoch", t->best_epoch + 1, "epochs",
                  t->o->epochs, "select_metric",
                  t->o->contrastive > 0 ? "contrastive_loss"
                  : t->o->select_metric ? t->o->select_metric
                                        : "balanced_accuracy",
                  "best_value", jnum(t->best), "validation", best_val, "test",
                  ds->count[BASIRA_PART_TEST] ? train_metrics_json(t, &test) : json_null(), "split",
                  train_split_json(t), "class_counts", per_class, "images_per_second_this_run",
                  isfinite(ips) ? ips : 0.0, "skipped_images", (json_int_t)ds->skipped, "threads",
                  t->o->threads, "date", t->date, "precision",
                  basira_net_precision(t->net) == BASIRA_PRECISION_BF16 ? "bf16" : "fp32");
    char *text = sum ? json_dumps(sum, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(sum);
    if (!text)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    size_t len = strlen(text);
    char *with_nl = realloc(text, len + 2);
    if (!with_nl) {
        free(text);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    with_nl[len] = '\n';
    with_nl[len + 1] = '\0';
    rc = write_file_atomic(t->o->out_dir, "summary.json", with_nl, err);
    free(with_nl);
    if (res) {
        res->best_epoch = t->best_epoch + 1;
        res->best_metric = t->best;
        res->images_per_second = ips;
    }
    return rc;
}

basira_code basira_train_run(const basira_train_options *o, basira_train_result *res,
                             basira_error *err)
{
    if (!o)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    if (res)
        memset(res, 0, sizeof *res);
    basira_code rc = train_check_options(o, err);
    if (rc)
        return rc;
    trainer *t = calloc(1, sizeof *t);
    if (!t)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    t->o = o;
    t->log = o->progress_stream ? o->progress_stream : stderr;
    train_progress_init(&t->prog, t->log, isatty(fileno(t->log)));
    t->best = -INFINITY;
    t->best_epoch = -1;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(t->date, sizeof t->date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    t->history = json_array();
    basira_nn_set_threads(o->threads);

    if ((rc = basira_fs_mkdirs(o->out_dir, 0777, err)))
        goto out;
    if ((rc = train_dataset_load(o, &t->ds, t->log, err)))
        goto out;
    const train_dataset *ds = &t->ds;
    t->k = ds->classes.n;
    t->out = o->contrastive > 0 ? (o->proj_dim ? o->proj_dim : 64) : t->k;
    for (int c = 0; c < t->k; c++)
        t->malignant[c] = ds->classes.c[c].malignant;
    fprintf(t->log,
            _("%zu images decoded in %.1f s; split by %s: train %zu (%zu groups), validation %zu "
              "(%zu), test %zu (%zu); %d classes\n"),
            ds->count[0] + ds->count[1] + ds->count[2], ds->load_seconds,
            o->group_col ? o->group_col : _("image"), ds->count[0], ds->groups[0], ds->count[1],
            ds->groups[1], ds->count[2], ds->groups[2], t->k);
    if ((rc = train_dataset_write_split(ds, o->out_dir, err)))
        goto out;

    /* Preprocessing stored in the model and used here, identically, for every image. */
    basira_preprocess_default(&t->pp);
    t->pp.input_w = ds->input_w;
    t->pp.input_h = ds->input_h;
    t->pp.colour_constancy = (basira_colour_constancy)o->colour_constancy;

    size_t n_train = ds->count[BASIRA_PART_TRAIN];
    /* --contrastive: batch / 2 photos a step, two views of each, and at least two photos */
    int views = o->contrastive > 0 ? 2 : 1;
    if (o->contrastive > 0 && n_train < 2) {
        rc = basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                              _("--contrastive needs at least 2 training photos"));
        goto out;
    }
    t->photos = (size_t)(o->batch / views) <= n_train ? o->batch / views : (int)n_train;
    t->batch = t->photos * views;
    t->steps = (long)(n_train / (size_t)t->photos); /* the last partial batch is dropped */
    t->total_steps = t->steps * o->epochs;
    t->warmup_steps = (long)(o->warmup_epochs * (double)t->steps + 0.5);
    size_t counts[BASIRA_MAX_CLASSES] = {0};
    for (size_t i = 0; i < n_train; i++)
        counts[ds->label[ds->index[BASIRA_PART_TRAIN][i]]]++;
    basira_class_weights(o->class_weights, counts, t->k, t->weights);
    t->use_weights = o->class_weights != BASIRA_WEIGHTS_NONE;
    t->config = train_config_json(t);
    if (!t->config || !t->history) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto out;
    }
    if ((rc = alloc_buffers(t, err)))
        goto out;
    if ((rc = o->resume_path ? resume(t, err) : new_model(t, err)) ||
        (rc = basira_net_set_precision(t->net, (basira_precision)o->precision, err)))
        goto out;
    size_t n_frozen;
    if (o->n_freeze &&
        (rc = basira_freeze_new(t->net, o->freeze, o->n_freeze, &t->frozen, &n_frozen, err)))
        goto out;
    if ((rc = train_set_model_metadata(t, t->start_epoch, NULL, err)))
        goto out;
    if (o->contrastive > 0) {
        fprintf(t->log,
                _("self-supervised pretraining (temperature %g, %d outputs): the model "
                  "is a starting point for --init-from, not for triage\n"),
                o->contrastive, t->out);
    } else {
        /* Check now, not after hours of training, that the model will be usable for triage. */
        json_t *doc = train_model_document(t, 0, NULL);
        basira_model_info *mi = calloc(1, sizeof *mi);
        basira_error e2;
        if (doc && mi && basira_model_info_from_json(doc, mi, &e2))
            fprintf(t->log, _("warning: the model will not be usable for triage: %s\n"),
                    e2.message);
        free(mi);
        json_decref(doc);
    }
    fprintf(t->log,
            _("network: %s, %zu parameters, input %dx%d; %ld steps of %d images per "
              "epoch\n"),
            train_arch_family(t), basira_net_num_params(t->net), ds->input_w, ds->input_h, t->steps,
            t->batch);
    fprintf(t->log, _("training precision: %s\n"),
            basira_net_precision(t->net) == BASIRA_PRECISION_BF16 ? "bf16" : "fp32");
    if (o->resume_path)
        fprintf(t->log, _("resuming after epoch %d\n"), t->start_epoch);
    if ((rc = write_history(t, err)))
        goto out;

    /* --stop-after ends a session early (a time slot on a shared machine); the checkpoint
     * continues it. The schedule still spans all --epochs. */
    int last = o->stop_after > 0 && o->stop_after < o->epochs ? o->stop_after : o->epochs;
    for (int epoch = t->start_epoch; epoch < last; epoch++) {
        double t0 = train_now_seconds(), loss;
        double images0 = (double)t->train_images, secs0 = t->train_seconds;
        if ((rc = train_epoch(t, epoch, &loss, err)))
            goto out;
        double ips = (t->train_images - images0) / (t->train_seconds - secs0 + 1e-12);
        int ema = o->ema > 0;
        if (ema && (rc = basira_optim_swap_ema(t->opt, err)))
            goto out;
        train_metrics m;
        rc = evaluate(t, t->net, BASIRA_PART_VAL, &m, err);
        double v = select_value(o, &m, loss, ds->count[BASIRA_PART_VAL]);
        int improved =
            !rc && (t->best_epoch < 0 || (isfinite(v) && (v > t->best || !isfinite(t->best))));
        if (improved) {
            t->best = v;
            t->best_epoch = epoch;
            char path[4096];
            snprintf(path, sizeof path, "%s/best.safetensors", o->out_dir);
            rc = train_set_model_metadata(t, epoch, &m, err);
            if (!rc)
                rc = basira_net_save(t->net, path, err);
        }
        if (ema) {
            basira_error e2;
            basira_code rc2 = basira_optim_swap_ema(t->opt, &e2);
            if (!rc && rc2) {
                rc = rc2;
                if (err)
                    *err = e2;
            }
        }
        if (rc)
            goto out;
        double lr_end = basira_lr_at((basira_schedule)o->schedule, o->lr, t->global_step - 1,
                                     t->total_steps, t->warmup_steps);
        json_t *h = json_pack("{s:i, s:f, s:f, s:o, s:f, s:f, s:f, s:f, s:b}", "epoch", epoch + 1,
                              "lr", lr_end, "train_loss", loss, "validation",
                              train_metrics_json(t, &m), "seconds", train_now_seconds() - t0,
                              "images_per_second", ips, "train_cpu_seconds", t->train_cpu,
                              "data_wait_seconds", t->data_wait, "best", improved);
        if (!h || json_array_append_new(t->history, h)) {
            rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
            goto out;
        }
        print_epoch_report(t, epoch, loss, &m, train_now_seconds() - t0, ips, improved);
        if (o->profile && epoch == t->start_epoch) {
            basira_net_profile_enable(t->net, 0, NULL);
            train_profile_print(t->log, t->net, &t->ph, o->threads);
        }
        if ((rc = write_history(t, err)) || (rc = save_checkpoint(t, epoch + 1, err)))
            goto out;
        if (res) {
            res->epochs_run++;
            res->final_train_loss = loss;
            res->final_val_loss = m.loss;
            res->final_val_accuracy = m.accuracy;
            res->final_val_balanced_accuracy = m.balanced_accuracy;
        }
    }
    if (t->best_epoch < 0) {
        rc = basira_error_set(err, BASIRA_E_CONFLICT,
                              _("--resume: the checkpoint has no best model recorded"));
        goto out;
    }
    rc = write_summary(t, res, err);
    if (res) {
        res->n_train = ds->count[0];
        res->n_val = ds->count[1];
        res->n_test = ds->count[2];
    }
out:
    trainer_free(t);
    free(t);
    return rc;
}
