/*
 * train_opts.c - the options of `basira train`, shared with `basira cv` (which trains
 * every fold with the same recipe): one table, one parser, so the two cannot drift.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basira/model.h"
#include "basira/nn.h"
#include "basira/train.h"
#include "cli.h"
#include "core/i18n.h"
#include "train_opts.h"

enum {
    OPT_IMAGES = 256,
    OPT_CSV,
    OPT_IMAGE_COL,
    OPT_LABEL_COL,
    OPT_GROUP_COL,
    OPT_STRATIFY_COL,
    OPT_SPLIT_COL,
    OPT_CLASSES,
    OPT_SPLIT,
    OPT_LIMIT,
    OPT_SKIP_BAD,
    OPT_ARCH,
    OPT_WIDTH,
    OPT_DEPTH,
    OPT_INPUT_SIZE,
    OPT_DROPOUT,
    OPT_CC,
    OPT_INIT_FROM,
    OPT_EPOCHS,
    OPT_BATCH,
    OPT_LR,
    OPT_OPTIMIZER,
    OPT_MOMENTUM,
    OPT_WD,
    OPT_SCHEDULE,
    OPT_WARMUP,
    OPT_SMOOTHING,
    OPT_MIXUP,
    OPT_CONTRASTIVE,
    OPT_PROJ_DIM,
    OPT_CLIP,
    OPT_CLASS_WEIGHTS,
    OPT_SAMPLER,
    OPT_EMA,
    OPT_AUGMENT,
    OPT_SELECT,
    OPT_SEED,
    OPT_SPLIT_SEED,
    OPT_THREADS,
    OPT_OUT,
    OPT_RESUME,
    OPT_NAME,
    OPT_VERSION,
    OPT_QUIET,
    OPT_STOP_AFTER,
    OPT_PRECISION,
    OPT_PROFILE,
};

const struct option basira_cli_train_opts[] = {
    {"images", required_argument, NULL, OPT_IMAGES},
    {"csv", required_argument, NULL, OPT_CSV},
    {"image-col", required_argument, NULL, OPT_IMAGE_COL},
    {"label-col", required_argument, NULL, OPT_LABEL_COL},
    {"group-col", required_argument, NULL, OPT_GROUP_COL},
    {"stratify-col", required_argument, NULL, OPT_STRATIFY_COL},
    {"split-col", required_argument, NULL, OPT_SPLIT_COL},
    {"classes", required_argument, NULL, OPT_CLASSES},
    {"split", required_argument, NULL, OPT_SPLIT},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"skip-bad", no_argument, NULL, OPT_SKIP_BAD},
    {"arch", required_argument, NULL, OPT_ARCH},
    {"width", required_argument, NULL, OPT_WIDTH},
    {"depth", required_argument, NULL, OPT_DEPTH},
    {"input-size", required_argument, NULL, OPT_INPUT_SIZE},
    {"dropout", required_argument, NULL, OPT_DROPOUT},
    {"colour-constancy", required_argument, NULL, OPT_CC},
    {"color-constancy", required_argument, NULL, OPT_CC},
    {"init-from", required_argument, NULL, OPT_INIT_FROM},
    {"epochs", required_argument, NULL, OPT_EPOCHS},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"lr", required_argument, NULL, OPT_LR},
    {"optimizer", required_argument, NULL, OPT_OPTIMIZER},
    {"momentum", required_argument, NULL, OPT_MOMENTUM},
    {"weight-decay", required_argument, NULL, OPT_WD},
    {"schedule", required_argument, NULL, OPT_SCHEDULE},
    {"warmup-epochs", required_argument, NULL, OPT_WARMUP},
    {"label-smoothing", required_argument, NULL, OPT_SMOOTHING},
    {"mixup", required_argument, NULL, OPT_MIXUP},
    {"contrastive", required_argument, NULL, OPT_CONTRASTIVE},
    {"proj-dim", required_argument, NULL, OPT_PROJ_DIM},
    {"clip-grad", required_argument, NULL, OPT_CLIP},
    {"class-weights", required_argument, NULL, OPT_CLASS_WEIGHTS},
    {"sampler", required_argument, NULL, OPT_SAMPLER},
    {"ema", required_argument, NULL, OPT_EMA},
    {"augment", required_argument, NULL, OPT_AUGMENT},
    {"select-metric", required_argument, NULL, OPT_SELECT},
    {"seed", required_argument, NULL, OPT_SEED},
    {"split-seed", required_argument, NULL, OPT_SPLIT_SEED},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"out", required_argument, NULL, OPT_OUT},
    {"resume", required_argument, NULL, OPT_RESUME},
    {"name", required_argument, NULL, OPT_NAME},
    {"model-version", required_argument, NULL, OPT_VERSION},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"stop-after", required_argument, NULL, OPT_STOP_AFTER},
    {"precision", required_argument, NULL, OPT_PRECISION},
    {"profile", no_argument, NULL, OPT_PROFILE},
    {NULL, 0, NULL, 0},
};

/* Index of s in a NULL-terminated list of choices, or -1 with a usage message. */
static int choice(const char *opt, const char *s, const char *const *choices)
{
    for (int i = 0; choices[i]; i++)
        if (!strcmp(s, choices[i]))
            return i;
    fprintf(stderr, _("basira: invalid value for %s: '%s'\n"), opt, s);
    return -1;
}

size_t basira_cli_train_opts_count(void)
{
    size_t n = 0;
    while (basira_cli_train_opts[n].name)
        n++;
    return n;
}

int basira_cli_train_option(int c, const char *arg, basira_train_options *o)
{
    static const char *const arches[] = {"mobilenetv2", "resnet", NULL};
    static const char *const ccs[] = {"none", "shades_of_gray", NULL};
    static const char *const optims[] = {"sgd", "adamw", NULL};
    static const char *const scheds[] = {"constant", "cosine", "onecycle", NULL};
    static const char *const weights[] = {"none", "balanced", "sqrt", NULL};
    static const char *const samplers[] = {"uniform", "balanced", NULL};
    static const char *const precisions[] = {"fp32", "bf16", "auto", NULL};
    basira_error err;
    long l;
    int k;
    switch (c) {
    case OPT_IMAGES:
        o->images_dir = arg;
        return 1;
    case OPT_CSV:
        o->csv_path = arg;
        return 1;
    case OPT_IMAGE_COL:
        o->image_col = arg;
        return 1;
    case OPT_LABEL_COL:
        o->label_col = arg;
        return 1;
    case OPT_GROUP_COL:
        o->group_col = arg;
        return 1;
    case OPT_SPLIT_COL:
        o->split_col = arg;
        return 1;
    case OPT_STRATIFY_COL:
        o->stratify_col = arg;
        return 1;
    case OPT_CLASSES:
        o->classes_path = arg;
        return 1;
    case OPT_SPLIT:
        if (basira_split_parse(arg, o->split, &err)) {
            fprintf(stderr, "basira: %s\n", err.message);
            return -1;
        }
        return 1;
    case OPT_LIMIT:
        if (basira_cli_parse_long("--limit", arg, 0, 100000000, &l))
            return -1;
        o->limit = l;
        return 1;
    case OPT_SKIP_BAD:
        o->skip_bad = 1;
        return 1;
    case OPT_ARCH:
        if ((k = choice("--arch", arg, arches)) < 0)
            return -1;
        o->arch = arches[k];
        return 1;
    case OPT_WIDTH:
        if (basira_cli_parse_long("--width", arg, 4, 512, &l))
            return -1;
        o->width = (int)l;
        return 1;
    case OPT_DEPTH:
        if (basira_cli_parse_long("--depth", arg, 1, 100, &l))
            return -1;
        o->depth = (int)l;
        return 1;
    case OPT_INPUT_SIZE: {
        /* N (square) or WxH: 160x120 keeps the 4:3 of HAM10000's 200x150 images. */
        const char *x = strchr(arg, 'x');
        long h = 0;
        if (!x) {
            if (basira_cli_parse_long("--input-size", arg, 16, 1024, &l))
                return -1;
        } else {
            char wpart[16];
            size_t wlen = (size_t)(x - arg);
            if (wlen >= sizeof wpart) {
                /* Fails, and names the whole value in its message. */
                (void)basira_cli_parse_long("--input-size", arg, 16, 1024, &l);
                return -1;
            }
            memcpy(wpart, arg, wlen);
            wpart[wlen] = '\0';
            if (basira_cli_parse_long("--input-size", wpart, 16, 1024, &l) ||
                basira_cli_parse_long("--input-size", x + 1, 16, 1024, &h))
                return -1;
        }
        o->input_size = (int)l;
        o->input_height = h == l ? 0 : (int)h;
        o->input_size_given = 1;
        return 1;
    }
    case OPT_DROPOUT:
        if (basira_cli_parse_double("--dropout", arg, 0, 0.95, &o->dropout))
            return -1;
        return 1;
    case OPT_CC:
        if ((k = choice("--colour-constancy", arg, ccs)) < 0)
            return -1;
        o->colour_constancy = k == 1 ? BASIRA_CC_SHADES_OF_GRAY : BASIRA_CC_NONE;
        return 1;
    case OPT_INIT_FROM:
        o->init_from = arg;
        return 1;
    case OPT_EPOCHS:
        if (basira_cli_parse_long("--epochs", arg, 1, 100000, &l))
            return -1;
        o->epochs = (int)l;
        return 1;
    case OPT_BATCH:
        if (basira_cli_parse_long("--batch", arg, 2, 4096, &l))
            return -1;
        o->batch = (int)l;
        return 1;
    case OPT_LR:
        if (basira_cli_parse_double("--lr", arg, 1e-9, 10, &o->lr))
            return -1;
        return 1;
    case OPT_OPTIMIZER:
        if ((k = choice("--optimizer", arg, optims)) < 0)
            return -1;
        o->optimizer = k == 0 ? BASIRA_OPTIM_SGD : BASIRA_OPTIM_ADAMW;
        return 1;
    case OPT_MOMENTUM:
        if (basira_cli_parse_double("--momentum", arg, 0, 0.999, &o->momentum))
            return -1;
        return 1;
    case OPT_WD:
        if (basira_cli_parse_double("--weight-decay", arg, 0, 10, &o->weight_decay))
            return -1;
        return 1;
    case OPT_SCHEDULE:
        if ((k = choice("--schedule", arg, scheds)) < 0)
            return -1;
        o->schedule = k == 0   ? BASIRA_SCHED_CONSTANT
                      : k == 1 ? BASIRA_SCHED_COSINE
                               : BASIRA_SCHED_ONECYCLE;
        return 1;
    case OPT_WARMUP:
        if (basira_cli_parse_double("--warmup-epochs", arg, 0, 1000, &o->warmup_epochs))
            return -1;
        return 1;
    case OPT_SMOOTHING:
        if (basira_cli_parse_double("--label-smoothing", arg, 0, 0.5, &o->label_smoothing))
            return -1;
        return 1;
    case OPT_MIXUP:
        if (basira_cli_parse_double("--mixup", arg, 0, 10, &o->mixup))
            return -1;
        return 1;
    case OPT_CONTRASTIVE:
        if (basira_cli_parse_double("--contrastive", arg, 0.01, 10, &o->contrastive))
            return -1;
        return 1;
    case OPT_PROJ_DIM:
        if (basira_cli_parse_long("--proj-dim", arg, 8, 1024, &l))
            return -1;
        o->proj_dim = (int)l;
        return 1;
    case OPT_CLIP:
        if (basira_cli_parse_double("--clip-grad", arg, 0, 1e6, &o->clip_grad))
            return -1;
        return 1;
    case OPT_CLASS_WEIGHTS:
        if ((k = choice("--class-weights", arg, weights)) < 0)
            return -1;
        o->class_weights = k == 0   ? BASIRA_WEIGHTS_NONE
                           : k == 1 ? BASIRA_WEIGHTS_BALANCED
                                    : BASIRA_WEIGHTS_SQRT;
        return 1;
    case OPT_SAMPLER:
        if ((k = choice("--sampler", arg, samplers)) < 0)
            return -1;
        o->balanced_sampler = k == 1;
        return 1;
    case OPT_EMA:
        if (basira_cli_parse_double("--ema", arg, 0, 0.99999, &o->ema))
            return -1;
        return 1;
    case OPT_AUGMENT:
        if (basira_augment_parse(arg, &o->augment, &err)) {
            fprintf(stderr, "basira: %s\n", err.message);
            return -1;
        }
        return 1;
    case OPT_SELECT:
        o->select_metric = arg;
        return 1;
    case OPT_SEED:
        if (basira_cli_parse_long("--seed", arg, 0, 2147483647L, &l))
            return -1;
        o->seed = (uint64_t)l;
        return 1;
    case OPT_SPLIT_SEED:
        if (basira_cli_parse_long("--split-seed", arg, 1, 2147483647L, &l))
            return -1;
        o->split_seed = (uint64_t)l;
        return 1;
    case OPT_THREADS:
        if (basira_cli_parse_long("--threads", arg, 1, 256, &l))
            return -1;
        o->threads = (int)l;
        return 1;
    case OPT_OUT:
        o->out_dir = arg;
        return 1;
    case OPT_RESUME:
        o->resume_path = arg;
        return 1;
    case OPT_NAME:
        o->name = arg;
        return 1;
    case OPT_VERSION:
        o->version = arg;
        return 1;
    case OPT_STOP_AFTER:
        if (basira_cli_parse_long("--stop-after", arg, 0, 100000, &l))
            return -1;
        o->stop_after = (int)l;
        return 1;
    case OPT_QUIET:
        o->progress = 0;
        return 1;
    case OPT_PRECISION:
        if ((k = choice("--precision", arg, precisions)) < 0)
            return -1;
        o->precision = k; /* the order of basira_precision */
        return 1;
    case OPT_PROFILE:
        o->profile = 1;
        return 1;
    default:
        return 0;
    }
}
