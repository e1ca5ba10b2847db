/*
 * options.c - the options of `basira train`: their defaults, their checks, and the
 * part of them a checkpoint must share to be continued (--resume).
 */
#include "core/i18n.h"
#include "train/trainer_internal.h"

#include <string.h>

void basira_train_options_default(basira_train_options *o)
{
    memset(o, 0, sizeof *o);
    o->image_col = "image";
    o->label_col = "label";
    o->arch = "mobilenetv2";
    o->width = 32;
    o->depth = 10;
    o->input_size = 128;
    o->dropout = 0.2;
    o->epochs = 30;
    o->batch = 64;
    o->lr = 0.002;
    o->optimizer = BASIRA_OPTIM_ADAMW;
    o->momentum = 0.9;
    o->weight_decay = 0.05;
    o->schedule = BASIRA_SCHED_ONECYCLE;
    o->warmup_epochs = 1;
    o->label_smoothing = 0.1;
    o->class_weights = BASIRA_WEIGHTS_BALANCED;
    o->augment = BASIRA_AUGMENT_DERMOSCOPY;
    o->colour_constancy = BASIRA_CC_SHADES_OF_GRAY;
    o->split[0] = 0.70;
    o->split[1] = 0.15;
    o->split[2] = 0.15;
    o->seed = 1;
    o->threads = 2;
    o->select_metric = "balanced_accuracy";
    o->progress = 1;
}

basira_code train_check_options(const basira_train_options *o, basira_error *err)
{
    if (!o->images_dir || !o->csv_path || !o->out_dir)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("--images, --csv and --out are required"));
    if (!o->image_col || !o->label_col)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("--image-col and --label-col are required"));
    if (o->input_size < 16 || o->input_size > 1024 ||
        (o->input_height && (o->input_height < 16 || o->input_height > 1024)))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("--input-size must be from 16 to 1024"));
    if (o->epochs < 1 || o->batch < 2 || !(o->lr > 0) || o->threads < 1)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("--epochs must be at least 1, --batch at least 2, --lr "
                                  "positive and --threads at least 1"));
    if (!(o->label_smoothing >= 0 && o->label_smoothing < 1) || !(o->ema >= 0 && o->ema < 1) ||
        !(o->weight_decay >= 0) || !(o->warmup_epochs >= 0) || !(o->clip_grad >= 0) ||
        !(o->dropout >= 0 && o->dropout < 1))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("--label-smoothing, --ema and --dropout must be in [0, 1); "
                                  "--weight-decay, --warmup-epochs and --clip-grad not negative"));
    if (!(o->mixup >= 0 && o->mixup <= 10))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("--mixup must be from 0 (off) to 10"));
    if (!(o->contrastive >= 0 && o->contrastive <= 10) || o->proj_dim < 0 || o->proj_dim > 1024)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("--contrastive must be from 0 (off) to 10 and --proj-dim from "
                                  "8 to 1024"));
    if (o->contrastive > 0 &&
        (o->mixup > 0 || o->batch < 4 || (o->batch & 1) || (o->proj_dim && o->proj_dim < 8)))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("--contrastive needs an even --batch of at least 4, a "
                                  "--proj-dim of at least 8, and no --mixup"));
    const char *m = o->select_metric ? o->select_metric : "balanced_accuracy";
    if (strcmp(m, "balanced_accuracy") && strcmp(m, "accuracy") && strcmp(m, "auc") &&
        strcmp(m, "loss"))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("unknown --select-metric '%s' (expected balanced_accuracy, "
                                  "accuracy, auc or loss)"),
                                m);
    if ((o->name && strlen(o->name) >= 64) || (o->version && strlen(o->version) >= 32))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("--name must be under 64 bytes and --model-version under 32"));
    return BASIRA_OK;
}

/* The options that must be the same to continue a run exactly. */
json_t *train_config_json(const trainer *t)
{
    const basira_train_options *o = t->o;
    json_t *codes = json_array();
    for (int i = 0; i < t->ds.classes.n; i++)
        json_array_append_new(codes, json_string(t->ds.classes.c[i].code));
    json_t *c = json_pack(
        "{s:s, s:i, s:i, s:i, s:f, s:o, s:i, s:i, s:f, s:i, s:f, s:f, s:f, s:i, s:f, s:f, s:f, "
        "s:i, s:i, s:i, s:i, s:[f,f,f], s:I, s:I, s:s}",
        "arch", o->arch, "width", o->width, "depth", o->depth, "input_size", o->input_size,
        "dropout", o->dropout, "classes", codes, "epochs", o->epochs, "batch", o->batch, "lr",
        o->lr, "optimizer", o->optimizer, "momentum", o->momentum, "weight_decay", o->weight_decay,
        "ema", o->ema, "schedule", o->schedule, "warmup_epochs", o->warmup_epochs,
        "label_smoothing", o->label_smoothing, "clip_grad", o->clip_grad, "class_weights",
        (int)o->class_weights, "sampler", o->balanced_sampler, "augment", (int)o->augment,
        "colour_constancy", o->colour_constancy, "split", o->split[0], o->split[1], o->split[2],
        "seed", (json_int_t)o->seed, "limit", (json_int_t)o->limit, "select_metric",
        o->select_metric ? o->select_metric : "balanced_accuracy");
    /* Only a non-square run records its height, so square runs resume from older checkpoints. */
    if (c && o->input_height && o->input_height != o->input_size &&
        json_object_set_new(c, "input_height", json_integer(o->input_height))) {
        json_decref(c);
        c = NULL;
    }
    /* Likewise only a run whose split seed differs from its seed records it. */
    if (c && o->split_seed && o->split_seed != o->seed &&
        json_object_set_new(c, "split_seed", json_integer((json_int_t)o->split_seed))) {
        json_decref(c);
        c = NULL;
    }
    /* And only a mixup run records its alpha, a contrastive one its temperature and head. */
    if (c && o->mixup > 0 && json_object_set_new(c, "mixup", json_real(o->mixup))) {
        json_decref(c);
        c = NULL;
    }
    if (c && o->contrastive > 0 &&
        (json_object_set_new(c, "contrastive", json_real(o->contrastive)) ||
         json_object_set_new(c, "proj_dim", json_integer(t->out)))) {
        json_decref(c);
        c = NULL;
    }
    return c;
}
