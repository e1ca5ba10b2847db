/*
 * cmd_train.c - `basira train`: train an image classifier from a folder of images
 * and a CSV file. The work is done by basira_train_run() (src/train); this file
 * only turns the command line into basira_train_options.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basira/model.h"
#include "basira/nn.h"
#include "basira/train.h"
#include "cli.h"
#include "core/i18n.h"

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira train --images DIR --csv FILE --out DIR [options]\n"
                 "Train an image classifier (e.g. dermoscopy diagnoses) on the CPU.\n\n"
                 "Data:\n"
                 "  --images DIR          folder of the images\n"
                 "  --csv FILE            one row per image (UTF-8 CSV with a header)\n"
                 "  --image-col NAME      column of image file names, with or without "
                 "extension (image)\n"
                 "  --label-col NAME      column of class labels (label)\n"
                 "  --group-col NAME      column grouping images of one lesion or patient: the "
                 "split keeps groups whole\n"
                 "  --classes FILE        JSON class list: order, names, malignant flag "
                 "(default: the sorted labels)\n"
                 "  --split T,V,S         train, validation, test fractions (0.70,0.15,0.15)\n"
                 "  --stratify-col NAME   column the split is stratified by, e.g. phototype and "
                 "label joined (the label column)\n"
                 "  --limit N             use a random subset of N rows (smoke tests)\n"
                 "  --skip-bad            skip missing or unreadable images instead of stopping\n"
                 "Network:\n"
                 "  --arch NAME           mobilenetv2 or resnet (mobilenetv2)\n"
                 "  --width N             channels of the first layer (32)\n"
                 "  --depth N             depth (resnet: blocks per stage; mobilenetv2: "
                 "multiplier in tenths) (10)\n"
                 "  --input-size N        input side in pixels (128)\n"
                 "  --dropout P           dropout before the classifier (0.2)\n"
                 "  --colour-constancy M  shades_of_gray or none (shades_of_gray)\n"
                 "  --init-from MODEL     start from this model's network and weights (a new head "
                 "when the classes differ; give its input size and colour constancy)\n"
                 "Training:\n"
                 "  --epochs N (30)  --batch N (64)  --lr X (0.002)\n"
                 "  --optimizer NAME      adamw or sgd (adamw); --momentum X (0.9)\n"
                 "  --weight-decay X      (0.05)\n"
                 "  --schedule NAME       onecycle, cosine or constant (onecycle)\n"
                 "  --warmup-epochs X     (1)\n"
                 "  --label-smoothing X   (0.1)\n"
                 "  --clip-grad X         clip the gradient norm, 0 = off (0)\n"
                 "  --class-weights W     balanced, sqrt or none (balanced)\n"
                 "  --sampler S           uniform or balanced (uniform)\n"
                 "  --ema X               keep an exponential moving average of the weights, "
                 "0 = off (0)\n"
                 "  --augment A           dermoscopy, modality, light or none (dermoscopy)\n"
                 "  --select-metric M     balanced_accuracy, accuracy, auc or loss "
                 "(balanced_accuracy)\n"
                 "  --seed N (1)  --threads N (2)\n"
                 "  --precision P         fp32, bf16 (mixed precision, AVX-512 BF16 or AMX) or "
                 "auto (bf16 where the processor has it) (fp32)\n"
                 "  --profile             after the first epoch, print where its time went "
                 "(phases, layers against the processor's peak)\n"
                 "Output:\n"
                 "  --out DIR             best.safetensors, checkpoint.safetensors, "
                 "train/val/test.csv, history.jsonl, summary.json\n"
                 "  --resume FILE         continue from a checkpoint (same options)\n"
                 "  --stop-after N        stop after N epochs; --resume continues the run\n"
                 "  --name NAME           model name (basira-derm); --model-version V (0.1.0)\n"
                 "  --quiet               no progress line\n"
                 "  -h, --help            show this help\n\n"
                 "The same seed and threads give the same numbers. Exit status: 0 trained, "
                 "1 failed, 2 usage error.\n"));
}

enum {
    OPT_IMAGES = 256,
    OPT_CSV,
    OPT_IMAGE_COL,
    OPT_LABEL_COL,
    OPT_GROUP_COL,
    OPT_STRATIFY_COL,
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
    OPT_CLIP,
    OPT_CLASS_WEIGHTS,
    OPT_SAMPLER,
    OPT_EMA,
    OPT_AUGMENT,
    OPT_SELECT,
    OPT_SEED,
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

static const struct option long_opts[] = {
    {"images", required_argument, NULL, OPT_IMAGES},
    {"csv", required_argument, NULL, OPT_CSV},
    {"image-col", required_argument, NULL, OPT_IMAGE_COL},
    {"label-col", required_argument, NULL, OPT_LABEL_COL},
    {"group-col", required_argument, NULL, OPT_GROUP_COL},
    {"stratify-col", required_argument, NULL, OPT_STRATIFY_COL},
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
    {"clip-grad", required_argument, NULL, OPT_CLIP},
    {"class-weights", required_argument, NULL, OPT_CLASS_WEIGHTS},
    {"sampler", required_argument, NULL, OPT_SAMPLER},
    {"ema", required_argument, NULL, OPT_EMA},
    {"augment", required_argument, NULL, OPT_AUGMENT},
    {"select-metric", required_argument, NULL, OPT_SELECT},
    {"seed", required_argument, NULL, OPT_SEED},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"out", required_argument, NULL, OPT_OUT},
    {"resume", required_argument, NULL, OPT_RESUME},
    {"name", required_argument, NULL, OPT_NAME},
    {"model-version", required_argument, NULL, OPT_VERSION},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"stop-after", required_argument, NULL, OPT_STOP_AFTER},
    {"precision", required_argument, NULL, OPT_PRECISION},
    {"profile", no_argument, NULL, OPT_PROFILE},
    {"help", no_argument, NULL, 'h'},
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

static int run(int argc, char **argv)
{
    basira_train_options o;
    basira_train_options_default(&o);
    static const char *const arches[] = {"mobilenetv2", "resnet", NULL};
    static const char *const ccs[] = {"none", "shades_of_gray", NULL};
    static const char *const optims[] = {"sgd", "adamw", NULL};
    static const char *const scheds[] = {"constant", "cosine", "onecycle", NULL};
    static const char *const weights[] = {"none", "balanced", "sqrt", NULL};
    static const char *const samplers[] = {"uniform", "balanced", NULL};
    static const char *const precisions[] = {"fp32", "bf16", "auto", NULL};
    basira_error err;
    long l;
    int c, k;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_IMAGES:
            o.images_dir = optarg;
            break;
        case OPT_CSV:
            o.csv_path = optarg;
            break;
        case OPT_IMAGE_COL:
            o.image_col = optarg;
            break;
        case OPT_LABEL_COL:
            o.label_col = optarg;
            break;
        case OPT_GROUP_COL:
            o.group_col = optarg;
            break;
        case OPT_STRATIFY_COL:
            o.stratify_col = optarg;
            break;
        case OPT_CLASSES:
            o.classes_path = optarg;
            break;
        case OPT_SPLIT:
            if (basira_split_parse(optarg, o.split, &err)) {
                fprintf(stderr, "basira: %s\n", err.message);
                return BASIRA_EXIT_USAGE;
            }
            break;
        case OPT_LIMIT:
            if (basira_cli_parse_long("--limit", optarg, 0, 100000000, &l))
                return BASIRA_EXIT_USAGE;
            o.limit = l;
            break;
        case OPT_SKIP_BAD:
            o.skip_bad = 1;
            break;
        case OPT_ARCH:
            if ((k = choice("--arch", optarg, arches)) < 0)
                return BASIRA_EXIT_USAGE;
            o.arch = arches[k];
            break;
        case OPT_WIDTH:
            if (basira_cli_parse_long("--width", optarg, 4, 512, &l))
                return BASIRA_EXIT_USAGE;
            o.width = (int)l;
            break;
        case OPT_DEPTH:
            if (basira_cli_parse_long("--depth", optarg, 1, 100, &l))
                return BASIRA_EXIT_USAGE;
            o.depth = (int)l;
            break;
        case OPT_INPUT_SIZE:
            if (basira_cli_parse_long("--input-size", optarg, 16, 1024, &l))
                return BASIRA_EXIT_USAGE;
            o.input_size = (int)l;
            break;
        case OPT_DROPOUT:
            if (basira_cli_parse_double("--dropout", optarg, 0, 0.95, &o.dropout))
                return BASIRA_EXIT_USAGE;
            break;
        case OPT_CC:
            if ((k = choice("--colour-constancy", optarg, ccs)) < 0)
                return BASIRA_EXIT_USAGE;
            o.colour_constancy = k == 1 ? BASIRA_CC_SHADES_OF_GRAY : BASIRA_CC_NONE;
            break;
        case OPT_INIT_FROM:
            o.init_from = optarg;
            break;
        case OPT_EPOCHS:
            if (basira_cli_parse_long("--epochs", optarg, 1, 100000, &l))
                return BASIRA_EXIT_USAGE;
            o.epochs = (int)l;
            break;
        case OPT_BATCH:
            if (basira_cli_parse_long("--batch", optarg, 2, 4096, &l))
                return BASIRA_EXIT_USAGE;
            o.batch = (int)l;
            break;
        case OPT_LR:
            if (basira_cli_parse_double("--lr", optarg, 1e-9, 10, &o.lr))
                return BASIRA_EXIT_USAGE;
            break;
        case OPT_OPTIMIZER:
            if ((k = choice("--optimizer", optarg, optims)) < 0)
                return BASIRA_EXIT_USAGE;
            o.optimizer = k == 0 ? BASIRA_OPTIM_SGD : BASIRA_OPTIM_ADAMW;
            break;
        case OPT_MOMENTUM:
            if (basira_cli_parse_double("--momentum", optarg, 0, 0.999, &o.momentum))
                return BASIRA_EXIT_USAGE;
            break;
        case OPT_WD:
            if (basira_cli_parse_double("--weight-decay", optarg, 0, 10, &o.weight_decay))
                return BASIRA_EXIT_USAGE;
            break;
        case OPT_SCHEDULE:
            if ((k = choice("--schedule", optarg, scheds)) < 0)
                return BASIRA_EXIT_USAGE;
            o.schedule = k == 0   ? BASIRA_SCHED_CONSTANT
                         : k == 1 ? BASIRA_SCHED_COSINE
                                  : BASIRA_SCHED_ONECYCLE;
            break;
        case OPT_WARMUP:
            if (basira_cli_parse_double("--warmup-epochs", optarg, 0, 1000, &o.warmup_epochs))
                return BASIRA_EXIT_USAGE;
            break;
        case OPT_SMOOTHING:
            if (basira_cli_parse_double("--label-smoothing", optarg, 0, 0.5, &o.label_smoothing))
                return BASIRA_EXIT_USAGE;
            break;
        case OPT_CLIP:
            if (basira_cli_parse_double("--clip-grad", optarg, 0, 1e6, &o.clip_grad))
                return BASIRA_EXIT_USAGE;
            break;
        case OPT_CLASS_WEIGHTS:
            if ((k = choice("--class-weights", optarg, weights)) < 0)
                return BASIRA_EXIT_USAGE;
            o.class_weights = k == 0   ? BASIRA_WEIGHTS_NONE
                              : k == 1 ? BASIRA_WEIGHTS_BALANCED
                                       : BASIRA_WEIGHTS_SQRT;
            break;
        case OPT_SAMPLER:
            if ((k = choice("--sampler", optarg, samplers)) < 0)
                return BASIRA_EXIT_USAGE;
            o.balanced_sampler = k == 1;
            break;
        case OPT_EMA:
            if (basira_cli_parse_double("--ema", optarg, 0, 0.99999, &o.ema))
                return BASIRA_EXIT_USAGE;
            break;
        case OPT_AUGMENT:
            if (basira_augment_parse(optarg, &o.augment, &err)) {
                fprintf(stderr, "basira: %s\n", err.message);
                return BASIRA_EXIT_USAGE;
            }
            break;
        case OPT_SELECT:
            o.select_metric = optarg;
            break;
        case OPT_SEED:
            if (basira_cli_parse_long("--seed", optarg, 0, 2147483647L, &l))
                return BASIRA_EXIT_USAGE;
            o.seed = (uint64_t)l;
            break;
        case OPT_THREADS:
            if (basira_cli_parse_long("--threads", optarg, 1, 256, &l))
                return BASIRA_EXIT_USAGE;
            o.threads = (int)l;
            break;
        case OPT_OUT:
            o.out_dir = optarg;
            break;
        case OPT_RESUME:
            o.resume_path = optarg;
            break;
        case OPT_NAME:
            o.name = optarg;
            break;
        case OPT_VERSION:
            o.version = optarg;
            break;
        case OPT_STOP_AFTER:
            if (basira_cli_parse_long("--stop-after", optarg, 0, 100000, &l))
                return BASIRA_EXIT_USAGE;
            o.stop_after = (int)l;
            break;
        case OPT_QUIET:
            o.progress = 0;
            break;
        case OPT_PRECISION:
            if ((k = choice("--precision", optarg, precisions)) < 0)
                return BASIRA_EXIT_USAGE;
            o.precision = k; /* the order of basira_precision */
            break;
        case OPT_PROFILE:
            o.profile = 1;
            break;
        case 'h':
            usage(stdout);
            return BASIRA_EXIT_OK;
        default:
            return basira_cli_bad_option("train", c, argv, usage);
        }
    }
    if (basira_cli_no_operands("train", argc, argv))
        return BASIRA_EXIT_USAGE;
    if (!o.images_dir || !o.csv_path || !o.out_dir) {
        fprintf(stderr, _("basira: train needs --images, --csv and --out\n"));
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }
    char *cmdline = basira_cli_join_args(argc, argv);
    o.command_line = cmdline;
    basira_train_result res;
    basira_code rc = basira_train_run(&o, &res, &err);
    free(cmdline);
    if (rc) {
        basira_cli_report(_("training failed"), &err);
        return rc == BASIRA_E_INVALID_ARGUMENT ? BASIRA_EXIT_USAGE : BASIRA_EXIT_FAILED;
    }
    const char *metric = o.select_metric ? o.select_metric : "balanced_accuracy";
    /* The loss is selected as its negative (higher is better); show it as a loss again. */
    double best = !strcmp(metric, "loss") ? -res.best_metric : res.best_metric;
    printf(_("Trained %d epochs on %zu images (validation %zu, test %zu); best epoch %d "
             "(%s %.4f); %.1f images/s.\n"
             "Model: %s/best.safetensors; details in %s/summary.json\n"),
           res.epochs_run, res.n_train, res.n_val, res.n_test, res.best_epoch, metric, best,
           res.images_per_second, o.out_dir, o.out_dir);
    return BASIRA_EXIT_OK;
}

const basira_command basira_cmd_train = {"train", N_("train a classifier from images and a CSV"),
                                         run, usage};
