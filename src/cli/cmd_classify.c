/*
 * cmd_classify.c - `basira classify --model FILE [--json] IMAGE...`: the calibrated class
 * probabilities of each image under a classifier model (e.g. the chest X-ray model
 * models/basira-cxr-pneumonia.safetensors), and the class predicted at the model's
 * shipped threshold.
 *
 * The prediction is the model's "malignant" (positive) class when its probability reaches
 * the model's high threshold (fitted by `basira calibrate` on validation images and stored
 * in the model), otherwise the most probable of the other classes. It is decision
 * support: probabilities that staff confirm.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "basira/i18n.h"
#include "basira/image.h"
#include "basira/json.h"
#include "basira/model.h"
#include "cli.h"
#include "core/i18n.h"

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira classify --model FILE [--json] IMAGE...\n"
                 "Calibrated class probabilities of each image, and the class predicted at the "
                 "model's\n"
                 "shipped threshold (decision support: staff confirm).\n\n"
                 "Options:\n"
                 "  --model FILE   the model (.safetensors), e.g. "
                 "models/basira-cxr-pneumonia.safetensors\n"
                 "  --json         one JSON object per image (JSON Lines): file, probabilities, "
                 "prediction, model\n"
                 "  -h, --help     show this help\n\n"
                 "Exit status: 0 every image was classified, 1 some image could not be read, 2 "
                 "usage error.\n"));
}

/* Index of the predicted class: the positive class at the threshold, else the best other. */
static int predict(const basira_model_info *info, const float *p)
{
    double pos = 0;
    for (int c = 0; c < info->num_classes; c++)
        if (info->classes[c].malignant)
            pos += p[c];
    int best = -1;
    for (int c = 0; c < info->num_classes; c++) {
        int want =
            pos >= info->threshold_high ? info->classes[c].malignant : !info->classes[c].malignant;
        if (want && (best < 0 || p[c] > p[best]))
            best = c;
    }
    return best < 0 ? 0 : best;
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model = NULL;
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            model = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            usage(stdout);
            return BASIRA_EXIT_OK;
        default:
            return basira_cli_bad_option("classify", c, argv, usage);
        }
    }
    if (!model || optind >= argc) {
        fprintf(stderr, _("basira classify: --model and at least one image are required\n"));
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }
    basira_error err;
    basira_classifier *clf = NULL;
    if (basira_classifier_load(model, &clf, &err)) {
        basira_cli_report("classify", &err);
        return BASIRA_EXIT_FAILED;
    }
    const basira_model_info *info = basira_classifier_info(clf);
    char model_id[160];
    snprintf(model_id, sizeof model_id, "%s %s sha256:%.16s", info->name, info->version,
             basira_classifier_sha256(clf));
    /* Radiology images are often small (28x28 for PneumoniaMNIST): the model's own input
     * size is the floor, not the photo gate's 64 pixels. */
    basira_intake_options io;
    basira_intake_options_default(&io);
    io.min_side = 8;
    int status = BASIRA_EXIT_OK;
    for (int i = optind; i < argc; i++) {
        basira_image *img = NULL;
        float p[BASIRA_MODEL_MAX_CLASSES];
        basira_error_clear(&err);
        basira_code rc = basira_image_load_file(argv[i], &io, &img, &err);
        if (!rc)
            rc = basira_classifier_predict(clf, img, p, &err);
        basira_image_free(img);
        if (rc) {
            status = BASIRA_EXIT_FAILED;
            if (json) {
                json_t *o = json_pack("{s:s, s:o, s:s}", "file", argv[i], "error",
                                      basira_json_error(&err), "model", model_id);
                basira_json_print_line(stdout, o);
                json_decref(o);
            }
            fprintf(stderr, _("basira classify: %s: %s\n"), argv[i],
                    err.message[0] ? err.message : basira_strerror(err.code));
            continue;
        }
        int k = predict(info, p);
        if (json) {
            json_t *probs = json_object();
            for (int cl = 0; cl < info->num_classes; cl++)
                json_object_set_new(probs, info->classes[cl].code, json_real(p[cl]));
            json_t *o = json_pack("{s:s, s:o, s:s, s:f, s:s}", "file", argv[i], "probabilities",
                                  probs, "prediction", info->classes[k].code, "threshold",
                                  info->threshold_high, "model", model_id);
            basira_json_print_line(stdout, o);
            json_decref(o);
        } else {
            printf(_("%s: %s (probability %.3f)\n"), argv[i],
                   basira_model_class_name(&info->classes[k], basira_language()), p[k]);
        }
        fflush(stdout);
    }
    basira_classifier_free(clf);
    return status;
}

const basira_command basira_cmd_classify = {
    "classify",
    N_("classify images with a model (e.g. chest X-ray: normal or pneumonia)"),
    run,
    usage,
};
