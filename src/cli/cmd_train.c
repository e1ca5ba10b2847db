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
#include "train_opts.h"

static void usage(FILE *f)
{
    fprintf(f,
            _("Usage: basira train --images DIR --csv FILE --out DIR [options]\n"
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
              "  --input-size N|WxH    input side in pixels, or width x height (160x120 keeps "
              "4:3) (128)\n"
              "  --dropout P           dropout before the classifier (0.2)\n"
              "  --colour-constancy M  shades_of_gray or none (shades_of_gray)\n"
              "  --init-from MODEL     start from this model's network and weights (an "
              "ensemble's first network; a new head when the classes differ; give its input "
              "size and colour constancy)\n"
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
              "  --augment A           dermoscopy, modality, shift (other cameras), light or "
              "none (dermoscopy)\n"
              "  --select-metric M     balanced_accuracy, accuracy, auc or loss "
              "(balanced_accuracy)\n"
              "  --seed N (1)  --threads N (2)\n"
              "  --split-seed N        draw the split from N instead of --seed (ensemble members\n"
              "                        on the same validation groups)\n"
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
    fprintf(f, _("\nA split fixed by the data (a data steward's, or another run's):\n"
                 "  --split-col NAME      take each row's part from this column (train, val or\n"
                 "                        test; empty: the row is left out) instead of drawing\n"
                 "                        the split; a group in two parts is refused\n"));
    fprintf(f, _("\nMixup (a regulariser for small training sets):\n"
                 "  --mixup ALPHA         train on pairs of images blended with a weight drawn\n"
                 "                        from Beta(ALPHA, ALPHA), their losses blended alike;\n"
                 "                        0.2 to 0.4 is usual (0 = off, the default)\n"));
    fprintf(f,
            _("\nSelf-supervised pretraining (labels unused: one value for every photo will do;\n"
              "then train --init-from the model it writes):\n"
              "  --contrastive TAU     SimCLR: each step shows two augmented views of each of\n"
              "                        batch/2 photos and learns to tell which views belong\n"
              "                        together (NT-Xent loss at temperature TAU, 0.1 to 0.5\n"
              "                        is usual); the best epoch has the lowest validation\n"
              "                        loss, and the model is not for triage\n"
              "  --proj-dim N          outputs of its head (64)\n"));
}

static int run(int argc, char **argv)
{
    basira_train_options o;
    basira_train_options_default(&o);
    struct option opts[128];
    size_t nopt = basira_cli_train_opts_count();
    memcpy(opts, basira_cli_train_opts, (nopt + 1) * sizeof *opts);
    opts[nopt] = (struct option){"help", no_argument, NULL, 'h'};
    opts[nopt + 1] = (struct option){NULL, 0, NULL, 0};
    basira_error err;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        int used = basira_cli_train_option(c, optarg, &o);
        if (used < 0)
            return BASIRA_EXIT_USAGE;
        if (used)
            continue;
        switch (c) {
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
    const char *metric = o.contrastive > 0 ? "contrastive_loss"
                         : o.select_metric ? o.select_metric
                                           : "balanced_accuracy";
    /* A loss is selected as its negative (higher is better); show it as a loss again. */
    double best = !strcmp(metric, "loss") || o.contrastive > 0 ? -res.best_metric : res.best_metric;
    printf(_("Trained %d epochs on %zu images (validation %zu, test %zu); best epoch %d "
             "(%s %.4f); %.1f images/s.\n"
             "Model: %s/best.safetensors; details in %s/summary.json\n"),
           res.epochs_run, res.n_train, res.n_val, res.n_test, res.best_epoch, metric, best,
           res.images_per_second, o.out_dir, o.out_dir);
    return BASIRA_EXIT_OK;
}

const basira_command basira_cmd_train = {"train", N_("train a classifier from images and a CSV"),
                                         run, usage};
