/*
 * test_eval_cli.c - `basira evaluate` and `basira calibrate` end to end, on a tiny
 * random model (tests/model/tiny_model.h) and synthetic photos, so it needs no data
 * set. The model's predictions mean nothing; what is checked is that the commands
 * compute on what the model really predicts (recomputed here independently with
 * the classifier API), that calibration meets its own contract on the validation
 * set, and that bad input gives the documented exit status and a clear message.
 */
#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../model/tiny_model.h"
#include "basira/eval.h"
#include "basira/image.h"
#include "basira/model.h"
#include "test.h"

#define N_IMG 24

static char dir[256];
static const char *cli;

static const char *const dx_cycle[] = {"nv", "mel", "bkl", "bcc", "nv", "akiec", "df", "vasc"};

/* Run a shell command; returns the exit status and fills out with stdout+stderr. */
static int sh(char *out, size_t outsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sh(char *out, size_t outsz, const char *fmt, ...)
{
    char cmd[8192], log[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(log, sizeof log, "%s/out.txt", dir);
    char full[9000];
    /*
     * One OpenMP thread: the tiny model gains nothing from parallel layers, and on a
     * loaded CI machine oneDNN's OpenMP barriers waiting for descheduled threads made
     * one 24-image evaluation take 54 s instead of 6 s (measured at load average 20).
     */
    snprintf(full, sizeof full, "OMP_NUM_THREADS=1 %s > %s 2>&1", cmd, log);
    int st = system(full);
    FILE *f = fopen(log, "r");
    size_t got = f ? fread(out, 1, outsz - 1, f) : 0;
    out[got] = '\0';
    if (f)
        fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* Synthetic photos: a dark blob of varying colour and size on skin-coloured background. */
static int make_images(void)
{
    enum { W = 96, H = 80 };
    static uint8_t rgb[W * H * 3];
    for (int i = 0; i < N_IMG; i++) {
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                uint8_t *p = rgb + 3 * (y * W + x);
                int dx = x - W / 2, dy = y - H / 2, r = 10 + (i * 7) % 25;
                int in = dx * dx + dy * dy < r * r;
                p[0] = (uint8_t)(in ? 60 + (i * 37) % 120 : 200 - (i * 11) % 80);
                p[1] = (uint8_t)(in ? 30 + (i * 53) % 90 : 150 - (i * 13) % 70);
                p[2] = (uint8_t)(in ? 20 + (i * 29) % 80 : 130 - (i * 5) % 60);
            }
        basira_image *img;
        uint8_t *jpg;
        size_t len;
        if (basira_image_from_rgb(rgb, W, H, &img, NULL))
            return -1;
        basira_code rc = basira_image_encode_jpeg(img, 90, &jpg, &len, NULL);
        basira_image_free(img);
        if (rc)
            return -1;
        char path[512];
        snprintf(path, sizeof path, "%s/img/IMG_%03d.jpg", dir, i);
        FILE *f = fopen(path, "wb");
        int bad = !f || fwrite(jpg, 1, len, f) != len;
        if (f)
            bad |= fclose(f) != 0;
        free(jpg);
        if (bad)
            return -1;
    }
    /* labels.csv: two images per lesion, sex and age known for most. */
    char path[512];
    snprintf(path, sizeof path, "%s/labels.csv", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "lesion_id,image_id,dx,age,sex\n");
    for (int i = 0; i < N_IMG; i++)
        fprintf(f, "L%02d,IMG_%03d,%s,%s,%s\n", i / 2, i, dx_cycle[(i / 2) % 8],
                i % 5 == 0 ? ""
                           : (i % 3 == 0   ? "25"
                              : i % 3 == 1 ? "55.0"
                                           : "80"),
                i % 4 == 0 ? "female" : "male");
    return fclose(f);
}

static double jnum(const json_t *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = json_object_get(cur, tok);
    return json_is_number(cur) ? json_number_value(cur) : NAN;
}

/* Predictions of the model file, recomputed here with the classifier API. */
static int predict_all(const char *model, float probs[N_IMG][BASIRA_MODEL_MAX_CLASSES],
                       basira_model_info *info)
{
    basira_classifier *c;
    if (basira_classifier_load(model, &c, NULL))
        return -1;
    *info = *basira_classifier_info(c);
    for (int i = 0; i < N_IMG; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/img/IMG_%03d.jpg", dir, i);
        basira_image *img;
        if (basira_image_load_file(path, NULL, &img, NULL) ||
            basira_classifier_predict(c, img, probs[i], NULL)) {
            basira_classifier_free(c);
            return -1;
        }
        basira_image_free(img);
    }
    basira_classifier_free(c);
    return 0;
}

static int class_of(const basira_model_info *info, const char *code)
{
    for (int c = 0; c < info->num_classes; c++)
        if (!strcmp(info->classes[c].code, code))
            return c;
    return -1;
}

static void test_evaluate(void)
{
    static char out[65536];
    int rc = sh(out, sizeof out,
                "%s evaluate --model %s/m.safetensors --images %s/img --csv %s/labels.csv "
                "--by sex,age,skin_tone --group-col lesion_id --json %s/e.json --report %s/e.md "
                "--reliability %s/r.svg --bootstrap 200 --threads 2 --quiet",
                cli, dir, dir, dir, dir, dir, dir);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    CHECK(strstr(out, "Image level") && strstr(out, "Lesion level"));
    char path[512];
    snprintf(path, sizeof path, "%s/e.json", dir);
    json_t *j = json_load_file(path, 0, NULL);
    CHECK(j != NULL);
    if (!j)
        return;
    CHECK_EQ_INT(jnum(j, "data.evaluated"), N_IMG);
    CHECK_EQ_INT(jnum(j, "data.failed"), 0);
    CHECK_EQ_INT(jnum(j, "image_level.n"), N_IMG);
    CHECK_EQ_INT(jnum(j, "lesion_level.n"), N_IMG / 2);

    /* Recompute accuracy, malignant count and the triage table from the model itself. */
    static float probs[N_IMG][BASIRA_MODEL_MAX_CLASSES];
    basira_model_info info;
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    CHECK_EQ_INT(predict_all(path, probs, &info), 0);
    long correct = 0, nmal = 0, high_mal = 0;
    for (int i = 0; i < N_IMG; i++) {
        int label = class_of(&info, dx_cycle[(i / 2) % 8]), best = 0;
        double pm = 0;
        for (int c = 0; c < info.num_classes; c++) {
            if (probs[i][c] > probs[i][best])
                best = c;
            if (info.classes[c].malignant)
                pm += probs[i][c];
        }
        correct += best == label;
        nmal += info.classes[label].malignant;
        high_mal += info.classes[label].malignant && pm >= info.threshold_high;
    }
    CHECK_EQ_INT(jnum(j, "image_level.accuracy.k"), correct);
    CHECK_EQ_INT(jnum(j, "image_level.n_malignant"), nmal);
    CHECK_EQ_INT(jnum(j, "image_level.triage.table.high.malignant"), high_mal);
    CHECK_NEAR(jnum(j, "image_level.triage.thresholds.high"), info.threshold_high, 1e-9);
    /* Breakdowns: age in bands (a row without age is "unknown"), skin tone measured. */
    const json_t *age =
        json_object_get(json_object_get(json_object_get(j, "image_level"), "breakdowns"), "age");
    CHECK(json_array_size(age) >= 3);
    long total = 0;
    size_t i;
    const json_t *g;
    json_array_foreach(age, i, g)
    {
        const char *v = json_string_value(json_object_get(g, "value"));
        CHECK(v && (!strcmp(v, "<30") || !strcmp(v, "50-69") || !strcmp(v, ">=70") ||
                    !strcmp(v, "unknown")));
        total += (long)jnum(g, "n");
        CHECK(json_is_true(json_object_get(g, "small"))); /* 24 images: every group is small */
    }
    CHECK_EQ_INT(total, N_IMG);
    CHECK(json_object_get(json_object_get(json_object_get(j, "image_level"), "breakdowns"),
                          "skin_tone") != NULL);
    json_decref(j);
    /* The Markdown report and both diagrams exist. */
    struct stat st;
    snprintf(path, sizeof path, "%s/e.md", dir);
    CHECK(stat(path, &st) == 0 && st.st_size > 500);
    snprintf(path, sizeof path, "%s/r.svg", dir);
    CHECK(stat(path, &st) == 0 && st.st_size > 500);
    snprintf(path, sizeof path, "%s/r-malignant.svg", dir);
    CHECK(stat(path, &st) == 0 && st.st_size > 500);
}

static void test_evaluate_errors(void)
{
    static char out[65536];
    char path[512];
    /* A label the model does not know: exit 1 naming it, before predicting. */
    snprintf(path, sizeof path, "%s/bad_label.csv", dir);
    write_file(path, "image_id,dx\nIMG_000,nv\nIMG_001,psoriasis\n");
    int rc = sh(out, sizeof out, "%s evaluate --model %s/m.safetensors --images %s/img --csv %s",
                cli, dir, dir, path);
    CHECK_EQ_INT(rc, 1);
    CHECK_MSG(strstr(out, "psoriasis") && strstr(out, "row 3"), "%s", out);
    /* A missing column: exit 1 naming it and what the file has. */
    rc = sh(out, sizeof out,
            "%s evaluate --model %s/m.safetensors --images %s/img --csv %s --label-col diagnosis",
            cli, dir, dir, path);
    CHECK_EQ_INT(rc, 1);
    CHECK_MSG(strstr(out, "diagnosis") && strstr(out, "image_id, dx"), "%s", out);
    /* A missing image: reported, left out, exit 1, JSON still written with failed = 1. */
    snprintf(path, sizeof path, "%s/missing.csv", dir);
    write_file(path, "image_id,dx\nIMG_000,nv\nIMG_001,mel\nNOPE,bkl\n../etc/passwd,nv\n");
    rc = sh(out, sizeof out,
            "%s evaluate --model %s/m.safetensors --images %s/img --csv %s --json %s/m.json "
            "--bootstrap 0 --quiet",
            cli, dir, dir, path, dir);
    CHECK_EQ_INT(rc, 1);
    CHECK_MSG(strstr(out, "NOPE") && strstr(out, "not_found"), "%s", out);
    CHECK_MSG(strstr(out, "../etc/passwd"), "%s", out);
    snprintf(path, sizeof path, "%s/m.json", dir);
    json_t *j = json_load_file(path, 0, NULL);
    CHECK(j != NULL);
    CHECK_EQ_INT(jnum(j, "data.failed"), 2);
    CHECK_EQ_INT(jnum(j, "data.evaluated"), 2);
    json_decref(j);
    /* A corrupt CSV and a corrupt model: exit 1 with the reason. */
    snprintf(path, sizeof path, "%s/corrupt.csv", dir);
    write_file(path, "image_id,dx\n\"IMG_000,nv\n");
    rc = sh(out, sizeof out, "%s evaluate --model %s/m.safetensors --images %s/img --csv %s", cli,
            dir, dir, path);
    CHECK_EQ_INT(rc, 1);
    CHECK_MSG(strstr(out, "format_error"), "%s", out);
    snprintf(path, sizeof path, "%s/junk.safetensors", dir);
    write_file(path, "this is not a model");
    rc = sh(out, sizeof out, "%s evaluate --model %s --images %s/img --csv %s/labels.csv", cli,
            path, dir, dir);
    CHECK_EQ_INT(rc, 1);
    /* Usage errors: exit 2. */
    CHECK_EQ_INT(sh(out, sizeof out, "%s evaluate --images %s/img", cli, dir), 2);
    CHECK_EQ_INT(sh(out, sizeof out, "%s evaluate --bogus", cli), 2);
    CHECK_EQ_INT(sh(out, sizeof out, "%s evaluate --model a --images b --csv c --threads 0", cli),
                 2);
    CHECK_EQ_INT(sh(out, sizeof out, "%s help evaluate", cli), 0);
    CHECK(strstr(out, "--reliability") != NULL && strstr(out, "--tta") != NULL);
    /* --tta: 1, 2, 4 or 8 only; the JSON records the views used, not the model's. */
    CHECK_EQ_INT(sh(out, sizeof out, "%s evaluate --model a --images b --csv c --tta 3", cli), 2);
    CHECK(strstr(out, "--tta") != NULL);
    CHECK_EQ_INT(sh(out, sizeof out, "%s evaluate --model a --images b --csv c --tta x", cli), 2);
    rc = sh(out, sizeof out,
            "%s evaluate --model %s/m.safetensors --images %s/img --csv %s/labels.csv "
            "--json %s/t4.json --bootstrap 0 --quiet --tta 4",
            cli, dir, dir, dir, dir);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/t4.json", dir);
    j = json_load_file(path, 0, NULL);
    CHECK(j && jnum(j, "model.tta") == 4);
    json_decref(j);
    /* The report speaks the user's language (catalogues po/eval.*.po). */
    snprintf(path, sizeof path, "%s/two.csv", dir);
    write_file(path, "image_id,dx\nIMG_000,nv\nIMG_002,mel\n");
    rc = sh(out, sizeof out,
            "LANG=fr_FR.UTF-8 LC_ALL= %s evaluate --model %s/m.safetensors --images %s/img "
            "--csv %s --bootstrap 0 --quiet",
            cli, dir, dir, path);
    CHECK_EQ_INT(rc, 0);
    CHECK_MSG(strstr(out, "Par classe (intervalles de confiance à 95 %)") != NULL, "%s", out);
    rc = sh(out, sizeof out,
            "LANG=ar_MA.UTF-8 LC_ALL= %s evaluate --model %s/m.safetensors --images %s/img "
            "--csv %s --bootstrap 0 --quiet",
            cli, dir, dir, path);
    CHECK_EQ_INT(rc, 0);
    CHECK_MSG(strstr(out, "مصفوفة الالتباس") != NULL, "%s", out);
}

/* `basira calibrate --classes` with the class list text, writing DIR/name.safetensors. */
static int calibrate_classes(char *out, size_t cap, const char *classes, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/classes-%s.json", dir, name);
    write_file(path, classes);
    return sh(out, cap,
              "%s calibrate --model %s/m.safetensors --images %s/img --csv %s/labels.csv "
              "--classes %s --out %s/%s.safetensors --quiet",
              cli, dir, dir, dir, path, dir, name);
}

static void test_calibrate(void)
{
    static char out[65536];
    int rc = sh(out, sizeof out,
                "%s calibrate --model %s/m.safetensors --images %s/img --csv %s/labels.csv "
                "--out %s/cal.safetensors --json %s/cal.json --quiet --threads 2",
                cli, dir, dir, dir, dir, dir);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    char path[512];
    snprintf(path, sizeof path, "%s/cal.safetensors", dir);
    static float probs[N_IMG][BASIRA_MODEL_MAX_CLASSES];
    basira_model_info info;
    CHECK_EQ_INT(predict_all(path, probs, &info), 0);
    /* The contract on the validation set: >= 95% of malignant lesions at medium or high. */
    long nmal = 0, caught = 0, nben = 0, high_ben = 0;
    for (int i = 0; i < N_IMG; i++) {
        int label = class_of(&info, dx_cycle[(i / 2) % 8]);
        double pm = 0;
        for (int c = 0; c < info.num_classes; c++)
            if (info.classes[c].malignant)
                pm += probs[i][c];
        if (info.classes[label].malignant) {
            nmal++;
            caught += pm >= info.threshold_medium;
        } else {
            nben++;
            high_ben += pm >= info.threshold_high;
        }
    }
    CHECK(nmal > 0 && (double)caught / nmal >= 0.95);
    CHECK((double)high_ben / nben <= 0.10 + 1e-12);
    /* The calibration record is in the model and in --json, NLL not worse. */
    basira_net *net;
    CHECK_EQ_INT(basira_net_load(path, &net, NULL), BASIRA_OK);
    json_t *meta =
        json_loads(json_string_value(json_object_get(basira_net_metadata(net), "basira")), 0, NULL);
    CHECK(meta != NULL);
    const json_t *rec = json_object_get(meta, "calibration");
    CHECK(json_is_object(rec));
    CHECK_NEAR(jnum(rec, "temperature"), info.temperature, 1e-9);
    CHECK(jnum(rec, "nll_after") <= jnum(rec, "nll_before") + 1e-6);
    CHECK(isfinite(jnum(rec, "ece_before")) && isfinite(jnum(rec, "ece_after")));
    CHECK_NEAR(jnum(rec, "operating_point.medium"), info.threshold_medium, 1e-9);
    CHECK_EQ_INT(jnum(rec, "operating_point.sensitivity.k"), caught);
    json_decref(meta);
    basira_net_free(net);
    snprintf(path, sizeof path, "%s/cal.json", dir);
    json_t *j = json_load_file(path, 0, NULL);
    CHECK(j && isfinite(jnum(j, "temperature")));
    json_decref(j);
    snprintf(path, sizeof path, "%s/cal.safetensors.partial", dir);
    CHECK(access(path, F_OK) != 0); /* no scratch file left */

    /* The primary-care rule's threshold: absent unless stated, then stored as given. */
    CHECK(info.threshold_non_neoplastic == 0);
    rc = sh(out, sizeof out,
            "%s calibrate --model %s/m.safetensors --images %s/img --csv %s/labels.csv "
            "--non-neoplastic 0.95 --out %s/nn.safetensors --quiet",
            cli, dir, dir, dir, dir);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/nn.safetensors", dir);
    basira_model_info info_nn;
    CHECK_EQ_INT(predict_all(path, probs, &info_nn), 0);
    CHECK_NEAR(info_nn.threshold_non_neoplastic, 0.95, 1e-9);
    CHECK_NEAR(info_nn.threshold_medium, info.threshold_medium, 1e-9);
    CHECK_EQ_INT(sh(out, sizeof out,
                    "%s calibrate --model a --images b --csv c --out d --non-neoplastic 0", cli),
                 2);

    /* No malignant lesion in the validation set: thresholds cannot be chosen. */
    snprintf(path, sizeof path, "%s/benign.csv", dir);
    write_file(path, "image_id,dx\nIMG_000,nv\nIMG_001,bkl\nIMG_002,nv\n");
    rc = sh(out, sizeof out,
            "%s calibrate --model %s/m.safetensors --images %s/img --csv %s --out %s/x.safetensors "
            "--quiet",
            cli, dir, dir, path, dir);
    CHECK_EQ_INT(rc, 1);
    CHECK_MSG(strstr(out, "malignant"), "%s", out);
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    CHECK(access(path, F_OK) != 0); /* nothing written on failure */
    /* --classes: names and partitions replaced; other codes or malignant flags refused. */
    static const char *const codes[7] = {"akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"};
    char good[2048] = "[", bad[2048] = "[";
    for (int c = 0; c < 7; c++) {
        int mal = c < 2 || c == 4;
        snprintf(good + strlen(good), sizeof good - strlen(good),
                 "%s{\"code\":\"%s\",\"malignant\":%s,\"partition\":\"%s\","
                 "\"names\":{\"en\":\"E%d\",\"fr\":\"F%d\",\"ar\":\"A%d\"}}",
                 c ? "," : "", codes[c], mal ? "true" : "false",
                 mal      ? "malignant"
                 : c == 6 ? "non-neoplastic"
                          : "benign",
                 c, c, c);
        snprintf(bad + strlen(bad), sizeof bad - strlen(bad),
                 "%s{\"code\":\"%s\",\"malignant\":%s}", c ? "," : "", codes[c],
                 c == 5 ? "true"
                 : mal  ? "true"
                        : "false");
    }
    strcat(good, "]");
    strcat(bad, "]");
    rc = calibrate_classes(out, sizeof out, good, "named");
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/named.safetensors", dir);
    CHECK_EQ_INT(predict_all(path, probs, &info), 0);
    CHECK_STR(info.classes[6].name_fr, "F6");
    CHECK_EQ_INT(info.classes[6].partition, BASIRA_PARTITION_NON_NEOPLASTIC);
    CHECK_EQ_INT(info.classes[5].partition, BASIRA_PARTITION_BENIGN);
    rc = calibrate_classes(out, sizeof out, bad, "bad");
    CHECK_MSG(rc == 1 && strstr(out, "class 6"), "exit %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    CHECK(access(path, F_OK) != 0);
    CHECK_EQ_INT(sh(out, sizeof out, "%s calibrate --model a --images b --csv c", cli), 2);
    CHECK_EQ_INT(sh(out, sizeof out,
                    "%s calibrate --model a --images b --csv c --out d --target-sensitivity 2",
                    cli),
                 2);
}

/* Real HAM10000 photos and metadata (first 60 rows), when ../shared/data is there. */
/* `basira quantize`: the measurement is the rule's input, the mark follows the rule, and
 * `basira evaluate` without --precision then scores what triage would run. */
static void test_quantize(void)
{
    static char out[65536];
    char path[512];
    CHECK_EQ_INT(sh(out, sizeof out, "%s quantize --model %s/m.safetensors", cli, dir), 2);
    CHECK(strstr(out, "--calibrate") != NULL);
    CHECK_EQ_INT(sh(out, sizeof out,
                    "%s quantize --model a --images b --calibrate c --csv d --out e "
                    "--max-auc-drop 2",
                    cli),
                 2);
    for (int strict = 0; strict < 2; strict++) {
        int rc = sh(out, sizeof out,
                    "%s quantize --model %s/m.safetensors --images %s/img --calibrate "
                    "%s/labels.csv --csv %s/labels.csv --out %s/q.safetensors --json %s/q.json "
                    "--quiet %s",
                    cli, dir, dir, dir, dir, dir, dir,
                    strict ? "--max-accuracy-drop 0 --max-auc-drop 0" : "");
        CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
        snprintf(path, sizeof path, "%s/q.json", dir);
        json_t *q = json_load_file(path, 0, NULL);
        CHECK(q != NULL);
        if (!q)
            return;
        double a32 = jnum(q, "accuracy_fp32"), a8 = jnum(q, "accuracy_int8");
        double u32 = jnum(q, "auc_malignant_fp32"), u8 = jnum(q, "auc_malignant_int8");
        double tol = strict ? 0.0 : 0.005;
        int want = a8 >= a32 - tol && u8 >= u32 - tol;
        CHECK_EQ_INT(json_is_true(json_object_get(q, "default")), want);
        CHECK_EQ_INT(jnum(q, "evaluated"), N_IMG);
        CHECK_EQ_INT(jnum(q, "calibration_images"), N_IMG);
        CHECK(strstr(out, want ? "is its default" : "stays off") != NULL);
        /* fp32 is what basira evaluate reports for the original model. */
        rc = sh(out, sizeof out,
                "%s evaluate --model %s/m.safetensors --images %s/img --csv %s/labels.csv "
                "--json %s/f.json --bootstrap 0 --quiet",
                cli, dir, dir, dir, dir);
        snprintf(path, sizeof path, "%s/f.json", dir);
        json_t *f = json_load_file(path, 0, NULL);
        CHECK(rc == 0 && f && fabs(jnum(f, "image_level.accuracy.value") - a32) < 1e-9);
        json_decref(f);
        /* The quantized file, without --precision: int8 when marked, else fp32. */
        rc = sh(out, sizeof out,
                "%s evaluate --model %s/q.safetensors --images %s/img --csv %s/labels.csv "
                "--json %s/g.json --bootstrap 0 --quiet",
                cli, dir, dir, dir, dir);
        snprintf(path, sizeof path, "%s/g.json", dir);
        json_t *g = json_load_file(path, 0, NULL);
        CHECK(rc == 0 && g);
        CHECK_NEAR(jnum(g, "image_level.auc_malignant.value"), want ? u8 : u32, 1e-9);
        json_decref(g);
        json_decref(q);
    }
    /* Forcing the mark on, then recalibrating with 2 views and a new version: the new file
     * drops the mark (its int8 was not measured), averages 2 views and says its version. */
    int rc0 = sh(out, sizeof out,
                 "%s quantize --model %s/m.safetensors --images %s/img --calibrate %s/labels.csv "
                 "--csv %s/labels.csv --out %s/q.safetensors --quiet --max-accuracy-drop 1 "
                 "--max-auc-drop 1",
                 cli, dir, dir, dir, dir, dir);
    CHECK_MSG(rc0 == 0 && strstr(out, "is its default"), "exit %d: %s", rc0, out);
    rc0 = sh(out, sizeof out,
             "%s calibrate --model %s/q.safetensors --images %s/img --csv %s/labels.csv "
             "--out %s/qc.safetensors --quiet --tta 2 --model-version 1.2.3-test",
             cli, dir, dir, dir, dir);
    CHECK_MSG(rc0 == 0, "exit %d: %s", rc0, out);
    basira_classifier *qc = NULL;
    basira_error qe;
    snprintf(path, sizeof path, "%s/qc.safetensors", dir);
    CHECK_EQ_INT(basira_classifier_load(path, &qc, &qe), BASIRA_OK);
    if (qc) {
        CHECK_EQ_INT(basira_classifier_info(qc)->tta, 2);
        CHECK_STR(basira_classifier_info(qc)->version, "1.2.3-test");
        CHECK_EQ_INT(basira_classifier_info(qc)->int8_default, 0);
        CHECK_EQ_INT(basira_classifier_precision(qc), BASIRA_PRECISION_FP32);
    }
    basira_classifier_free(qc);
    CHECK_EQ_INT(
        sh(out, sizeof out, "%s calibrate --model a --images b --csv c --out d --tta 5", cli), 2);
    /* A calibration image that cannot be read fails the command; nothing is marked. */
    snprintf(path, sizeof path, "%s/cal_missing.csv", dir);
    write_file(path, "image_id,dx\nNOPE,nv\n");
    int rc = sh(out, sizeof out,
                "%s quantize --model %s/m.safetensors --images %s/img --calibrate %s --csv "
                "%s/labels.csv --out %s/q2.safetensors --quiet",
                cli, dir, dir, path, dir, dir);
    CHECK_EQ_INT(rc, 1);
    CHECK_MSG(strstr(out, "NOPE") != NULL, "%s", out);
    snprintf(path, sizeof path, "%s/q2.safetensors", dir);
    CHECK(access(path, F_OK) != 0);
}

static void test_real_data(void)
{
    const char *data = test_data_dir();
    if (!data) {
        fprintf(stderr, "  (no ../shared/data: real-data check skipped)\n");
        return;
    }
    char path[1024], line[1024];
    snprintf(path, sizeof path, "%s/ham10000/metadata.csv", data);
    FILE *in = fopen(path, "r");
    snprintf(path, sizeof path, "%s/ham.csv", dir);
    FILE *out = fopen(path, "w");
    CHECK(in && out);
    if (!in || !out) {
        if (in)
            fclose(in);
        if (out)
            fclose(out);
        return;
    }
    /* Count distinct lesions of the rows copied. */
    static char ids[64][64];
    long rows = 0, lesions = 0;
    while (rows <= 60 && fgets(line, sizeof line, in)) {
        fputs(line, out);
        if (rows++ == 0)
            continue;
        char *comma = strchr(line, ',');
        if (!comma || (size_t)(comma - line) >= sizeof ids[0])
            continue;
        *comma = '\0';
        long t = 0;
        while (t < lesions && strcmp(ids[t], line))
            t++;
        if (t == lesions)
            memcpy(ids[lesions++], line, (size_t)(comma - line) + 1);
    }
    fclose(in);
    fclose(out);
    static char log[65536];
    int rc = sh(log, sizeof log,
                "%s evaluate --model %s/m.safetensors --images %s/ham10000/images --csv %s "
                "--by sex,age,localization --group-col lesion_id --json %s/ham.json --quiet "
                "--threads 2",
                cli, dir, data, path, dir);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, log);
    snprintf(path, sizeof path, "%s/ham.json", dir);
    json_t *j = json_load_file(path, 0, NULL);
    CHECK(j != NULL);
    if (!j)
        return;
    CHECK_EQ_INT(jnum(j, "data.evaluated"), rows - 1);
    CHECK_EQ_INT(jnum(j, "lesion_level.n"), lesions);
    const json_t *loc = json_object_get(
        json_object_get(json_object_get(j, "image_level"), "breakdowns"), "localization");
    long total = 0;
    size_t i;
    const json_t *g;
    json_array_foreach(loc, i, g) total += (long)jnum(g, "n");
    CHECK_EQ_INT(total, rows - 1);
    json_decref(j);
}

int main(void)
{
    cli = getenv("BASIRA_CLI");
    if (!cli || access(cli, X_OK))
        TEST_SKIP("BASIRA_CLI is not set to the basira program");
    snprintf(dir, sizeof dir, "/tmp/basira_eval_cli_XXXXXX");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "cannot create a temporary folder\n");
        return 1;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/img", dir);
    mkdir(path, 0700);
    tiny_model_opts o;
    tiny_model_opts_default(&o);
    o.input_size = 32;
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    basira_error err;
    basira_error_clear(&err);
    if (tiny_model_save(&o, path, &err) || make_images()) {
        fprintf(stderr, "cannot prepare the test model or images: %s\n", err.message);
        return 1;
    }
    RUN(test_evaluate);
    RUN(test_evaluate_errors);
    RUN(test_calibrate);
    RUN(test_quantize);
    RUN(test_real_data);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}
