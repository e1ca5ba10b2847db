/*
 * test_modality_data.c - the bundled photo-kind detector on photos it never saw
 * (issue 11), and what that means for routing.
 *
 * The held-out part is models/basira-modality/split-test.csv: the test part of the
 * detector's split (by HAM10000 lesion, by Fitzpatrick17k near-duplicate group),
 * never used for training, calibration or model selection. Printed: accuracy per
 * kind with its Wilson 95% interval, and whether it reaches the floor of issue 11
 * (99% on each kind; the committed detector does not yet, see its card). Required, as a
 * regression bound below the card's figures: >= 95% on each kind. Then every 4th held-out
 * dermoscopic photo goes through the whole bundled pipeline: it must reach the dermoscopy model
 * (the dermoscopy figures must not fall because of routing), and no photo of either kind may be
 * refused as showing no skin. Argument: take every Nth row (1 = all; sanitizer builds use more).
 */
#include "basira/csv.h"
#include "basira/eval.h"
#include "basira/fs.h"
#include "basira/image.h"
#include "basira/model.h"
#include "basira/paths.h"
#include "basira/quality.h"
#include "basira/triage.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

/*
 * What a bound is held against: the estimate on the whole split; on a subset
 * (sanitizer builds, every step-th photo) the upper end of the Wilson interval,
 * since there one photo moves the estimate by several points.
 */
static double judged(const basira_proportion *p, int step)
{
    return step == 1 ? p->value : p->hi;
}

int main(int argc, char **argv)
{
    REQUIRE_DATA(data);
    int step = argc > 1 ? atoi(argv[1]) : 1;
    if (step < 1)
        step = 1;
    char model[4096], split[4096];
    basira_error e;
    if (basira_data_file("models/basira-modality.safetensors", model, sizeof model, &e) ||
        basira_data_file("models/basira-modality/split-test.csv", split, sizeof split, &e))
        TEST_SKIP("the bundled photo-kind detector is not installed");
    basira_classifier *det = NULL;
    basira_csv *csv = NULL;
    basira_pipeline *pipe = NULL;
    CHECK_EQ_INT(basira_classifier_load(model, &det, &e), BASIRA_OK);
    CHECK_EQ_INT(basira_csv_read_file(split, &csv, &e), BASIRA_OK);
    CHECK_EQ_INT(basira_pipeline_new(NULL, NULL, &pipe, &e), BASIRA_OK);
    if (!det || !csv || !pipe)
        return test_summary();
    const basira_model_info *info = basira_classifier_info(det);
    int ci = -1;
    for (int i = 0; i < info->num_classes; i++)
        if (!strcmp(info->classes[i].code, "clinical"))
            ci = i;
    CHECK(ci >= 0);
    int ic = basira_csv_column(csv, "image"), kc = basira_csv_column(csv, "kind");
    CHECK(ic >= 0 && kc >= 0);
    long n[2] = {0, 0}, right[2] = {0, 0}, routed = 0, routed_derm = 0, not_skin = 0;
    basira_intake_options o;
    basira_intake_options_default(&o);
    o.min_side = 8;
    for (size_t r = 0; ci >= 0 && ic >= 0 && kc >= 0 && r < basira_csv_rows(csv); r += step) {
        int clinical = !strcmp(basira_csv_field(csv, r, kc), "clinical");
        char path[4096];
        basira_image *img = NULL;
        if (basira_fs_find_image(data, basira_csv_field(csv, r, ic), path, sizeof path, &e) ||
            basira_image_load_file(path, &o, &img, &e)) {
            CHECK_MSG(0, "%s: %s", basira_csv_field(csv, r, ic), e.message);
            continue;
        }
        float probs[BASIRA_MODEL_MAX_CLASSES];
        if (basira_classifier_predict(det, img, probs, &e) == BASIRA_OK) {
            n[clinical]++;
            right[clinical] += (probs[ci] >= info->threshold_high) == clinical;
        }
        basira_scene sc;
        if (!basira_scene_assess(img, &sc, &e) && !sc.shows_skin)
            not_skin++;
        basira_image_free(img);
        if (!clinical && (r / step) % 4 == 0) {
            json_t *res = NULL;
            basira_triage_request req = {.history = NULL, .force = 1};
            if (basira_pipeline_run_file(pipe, path, &req, &res, &e) == BASIRA_OK) {
                routed++;
                const char *name =
                    json_string_value(json_object_get(json_object_get(res, "model"), "name"));
                routed_derm += name && !strcmp(name, "basira-derm");
            }
            json_decref(res);
        }
    }
    const char *names[2] = {"dermoscopic (HAM10000)", "clinical (Fitzpatrick17k)"};
    for (int k = 0; k < 2; k++) {
        basira_proportion p;
        CHECK_EQ_INT(basira_wilson(right[k], n[k], &p, &e), BASIRA_OK);
        printf("  %s: %ld / %ld right = %.4f (Wilson 95%% CI %.4f-%.4f)\n", names[k], right[k],
               n[k], p.value, p.lo, p.hi);
        CHECK(n[k] > 0);
        printf("    issue 11 floor (0.99): %s\n",
               right[k] >= 0.99 * n[k] ? "reached" : "NOT reached");
        /*
         * Regression bounds of the shipped threshold, which favours dermoscopic photos
         * (models/basira-modality.md, 1.3.0: 0.992 / 0.984 held out; 1.2.0 gave 0.995 /
         * 0.914, 1.1.0 0.995 / 0.830).
         */
        double floor_k = k == 0 ? 0.98 : 0.95;
        CHECK_MSG(judged(&p, step) >= floor_k,
                  "%s: accuracy %.4f (CI up to %.4f) below the regression bound %.2f", names[k],
                  p.value, p.hi, floor_k);
    }
    printf("  held-out dermoscopic photos through the bundled pipeline: %ld / %ld scored by "
           "basira-derm\n",
           routed_derm, routed);
    printf("  held-out photos refused as showing no skin: %ld of %ld\n", not_skin, n[0] + n[1]);
    CHECK(routed > 0);
    basira_proportion pr;
    CHECK_EQ_INT(basira_wilson(routed_derm, routed, &pr, &e), BASIRA_OK);
    CHECK_MSG(judged(&pr, step) >= 0.99,
              "%ld / %ld dermoscopic photos reached basira-derm (CI up to %.4f)", routed_derm,
              routed, pr.hi);
    CHECK(not_skin * 500 <= n[0] + n[1]);
    basira_pipeline_free(pipe);
    basira_csv_free(csv);
    basira_classifier_free(det);
    return test_summary();
}
