/*
 * A tiny real training: 64 synthetic photos of dark versus light discs on a
 * noisy skin-coloured background, a small network, 2 epochs. The classes are
 * separable, so a working pipeline (decoding, split, augmentation, batches,
 * engine, validation, saving) must learn them; a broken one cannot.
 * Then: the output files, the saved model, and --resume continuing identically.
 */
#include "basira/image.h"
#include "basira/model.h"
#include "basira/nn.h"
#include "basira/train.h"
#include "test.h"
#include "train/dataset.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#define N_IMAGES 64
#define SIDE 48

static char root[64];

static void write_images(const char *dir, const char *csv_path)
{
    FILE *csv = fopen(csv_path, "w");
    CHECK(csv != NULL);
    fprintf(csv, "image_id,dx,lesion_id\n");
    static uint8_t rgb[3 * SIDE * SIDE];
    unsigned s = 99;
    for (int i = 0; i < N_IMAGES; i++) {
        int dark = i % 2;
        double cx = SIDE / 2 + (i % 5) - 2, cy = SIDE / 2 + (i % 7) - 3, r = 10 + i % 6;
        for (int y = 0; y < SIDE; y++)
            for (int x = 0; x < SIDE; x++) {
                s = s * 1103515245u + 12345u;
                int noise = (int)((s >> 16) % 21) - 10;
                int inside = (x - cx) * (x - cx) + (y - cy) * (y - cy) < r * r;
                int base[3] = {200, 160, 140};
                for (int c = 0; c < 3; c++) {
                    int v = inside ? (dark ? base[c] / 4 : 250) : base[c];
                    v += noise;
                    rgb[3 * (y * SIDE + x) + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
            }
        basira_image *img = NULL;
        basira_error err;
        CHECK_EQ_INT(basira_image_from_rgb(rgb, SIDE, SIDE, &img, &err), BASIRA_OK);
        uint8_t *jpg = NULL;
        size_t len = 0;
        CHECK_EQ_INT(basira_image_encode_jpeg(img, 95, &jpg, &len, &err), BASIRA_OK);
        basira_image_free(img);
        char path[256];
        snprintf(path, sizeof path, "%s/img%02d.jpg", dir, i);
        FILE *f = fopen(path, "wb");
        CHECK(f && fwrite(jpg, 1, len, f) == len);
        if (f)
            fclose(f);
        free(jpg);
        /* Pairs of images share a lesion; names without extension are found with .jpg. */
        fprintf(csv, "img%02d,%s,L%02d\n", i, dark ? "dark" : "light", i / 4 * 2 + dark);
    }
    fclose(csv);
}

static void base_options(basira_train_options *o, const char *out)
{
    static char images[128], csv[128], classes[128];
    snprintf(images, sizeof images, "%s/images", root);
    snprintf(csv, sizeof csv, "%s/data.csv", root);
    snprintf(classes, sizeof classes, "%s/classes.json", root);
    basira_train_options_default(o);
    o->images_dir = images;
    o->csv_path = csv;
    o->classes_path = classes;
    o->image_col = "image_id";
    o->label_col = "dx";
    o->group_col = "lesion_id";
    o->out_dir = out;
    o->arch = "resnet";
    o->width = 8;
    o->depth = 1;
    o->input_size = 32;
    o->dropout = 0;
    o->epochs = 2;
    o->batch = 8;
    o->lr = 0.01;
    o->weight_decay = 0.0;
    o->warmup_epochs = 0.2;
    o->label_smoothing = 0.0;
    o->augment = BASIRA_AUGMENT_LIGHT;
    o->split[0] = 0.5;
    o->split[1] = 0.5;
    o->split[2] = 0.0;
    o->threads = 1; /* 2 OpenMP threads crawl on a loaded 2-core CI machine */
    o->progress = 0;
}

static json_t *read_history(const char *out, int epoch)
{
    char path[256], line[8192];
    snprintf(path, sizeof path, "%s/history.jsonl", out);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    json_t *found = NULL;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        if (j && json_integer_value(json_object_get(j, "epoch")) == epoch) {
            found = j;
            break;
        }
        json_decref(j);
    }
    fclose(f);
    return found;
}

static double hnum(const json_t *h, const char *a, const char *b)
{
    const json_t *v = json_object_get(h, a);
    if (b)
        v = json_object_get(v, b);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static int file_exists(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

/* Logits of a checkpoint's network on a fixed input, for comparing two runs. */
static int logits_of(const char *path, float *logits)
{
    basira_net *net = NULL;
    basira_error err;
    if (basira_checkpoint_load(path, &net, NULL, NULL, &err)) {
        fprintf(stderr, "%s: %s\n", path, err.message);
        return -1;
    }
    static float x[4 * 3 * 32 * 32];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    int rc = basira_net_forward(net, x, 4, 0, logits, &err);
    basira_net_free(net);
    return rc;
}

static void test_train_and_resume(void)
{
    char out_a[128], out_b[128];
    snprintf(out_a, sizeof out_a, "%s/run-a", root);
    snprintf(out_b, sizeof out_b, "%s/run-b", root);
    basira_train_options o;
    basira_train_result res;
    basira_error err;

    base_options(&o, out_a);
    basira_code rc = basira_train_run(&o, &res, &err);
    CHECK_MSG(rc == BASIRA_OK, "%s", err.message);
    if (rc)
        return;
    CHECK_EQ_INT(res.epochs_run, 2);
    CHECK_EQ_INT(res.n_train + res.n_val + res.n_test, N_IMAGES);
    CHECK(res.n_train >= 28 && res.n_train <= 36);
    const char *files[] = {"best.safetensors", "checkpoint.safetensors", "train.csv",
                           "val.csv",          "history.jsonl",          "summary.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        CHECK_MSG(file_exists(out_a, files[i]), "%s missing", files[i]);

    /* It learned: the loss falls and the validation accuracy is high. */
    json_t *h1 = read_history(out_a, 1), *h2 = read_history(out_a, 2);
    CHECK(h1 && h2);
    double l1 = hnum(h1, "train_loss", NULL), l2 = hnum(h2, "train_loss", NULL);
    double acc = hnum(h2, "validation", "accuracy");
    fprintf(stderr, "train loss %.4f -> %.4f, validation accuracy %.3f, %.1f img/s\n", l1, l2, acc,
            res.images_per_second);
    CHECK_MSG(l2 < l1, "loss %g -> %g", l1, l2);
    CHECK_MSG(res.final_val_accuracy > 0.9, "accuracy %g", res.final_val_accuracy);
    CHECK_NEAR(hnum(h2, "validation", "auc_malignant"), 1.0, 0.1);

    /* The best model loads as a Basira classifier with our metadata. */
    char best[256];
    snprintf(best, sizeof best, "%s/best.safetensors", out_a);
    basira_classifier *cl = NULL;
    rc = basira_classifier_load(best, &cl, &err);
    CHECK_MSG(rc == BASIRA_OK, "%s", err.message);
    if (!rc) {
        const basira_model_info *mi = basira_classifier_info(cl);
        CHECK_EQ_INT(mi->num_classes, 2);
        CHECK_STR(mi->classes[0].code, "dark");
        CHECK_EQ_INT(mi->classes[0].malignant, 1);
        CHECK_EQ_INT(mi->preprocess.input_w, 32);
        CHECK_NEAR(mi->temperature, 1.0, 1e-9);
        basira_classifier_free(cl);
    }

    /* Same options, stopped after epoch 1 and resumed: the same numbers. */
    base_options(&o, out_b);
    o.stop_after = 1;
    rc = basira_train_run(&o, &res, &err);
    CHECK_MSG(rc == BASIRA_OK, "%s", err.message);
    CHECK_EQ_INT(res.epochs_run, 1);
    CHECK(read_history(out_b, 2) == NULL);
    char ckpt[256];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", out_b);
    base_options(&o, out_b);
    o.resume_path = ckpt;
    rc = basira_train_run(&o, &res, &err);
    CHECK_MSG(rc == BASIRA_OK, "%s", err.message);
    CHECK_EQ_INT(res.epochs_run, 1);
    json_t *b2 = read_history(out_b, 2);
    CHECK(b2 != NULL);
    /*
     * Bitwise identical: the trainer restores everything it owns (sample order,
     * augmentation draws, schedule position) and the engine's checkpoint the rest.
     * Any state a checkpoint misses, or a gradient that depends on history (e.g.
     * batch-norm running statistics), shows here as a difference.
     */
    double rb = hnum(b2, "train_loss", NULL);
    CHECK_MSG(rb == l2, "resumed loss %.9g vs %.9g", rb, l2);
    CHECK(hnum(b2, "validation", "loss") == hnum(h2, "validation", "loss"));
    float la[8], lb[8];
    char ca[256];
    snprintf(ca, sizeof ca, "%s/checkpoint.safetensors", out_a);
    CHECK(logits_of(ca, la) == 0 && logits_of(ckpt, lb) == 0);
    CHECK_MSG(!memcmp(la, lb, sizeof la), "logits differ: %g vs %g", la[0], lb[0]);

    /* Resuming with other options is refused, naming the option. */
    base_options(&o, out_b);
    o.resume_path = ckpt;
    o.lr = 0.02;
    rc = basira_train_run(&o, &res, &err);
    CHECK_EQ_INT(rc, BASIRA_E_CONFLICT);
    CHECK(strstr(err.message, "lr") != NULL);
    json_decref(h1);
    json_decref(h2);
    json_decref(b2);
}

/* Validation images reach the network exactly as a photo does in use (basira_preprocess_image). */
static void check_validation_matches_inference(int w, int h)
{
    basira_train_options o;
    base_options(&o, "/nonexistent");
    o.input_size = w;
    o.input_height = h == w ? 0 : h;
    train_dataset ds;
    basira_error err;
    basira_code rc = train_dataset_load(&o, &ds, NULL, &err);
    CHECK_MSG(rc == BASIRA_OK, "%s", err.message);
    if (rc)
        return;
    CHECK(ds.count[BASIRA_PART_VAL] > 0);
    CHECK_EQ_INT(ds.input_w, w);
    CHECK_EQ_INT(ds.input_h, h);
    CHECK_EQ_INT(ds.work_w, (w * 5 + 3) / 4); /* 1.25 x the input, room for crops */
    CHECK_EQ_INT(ds.work_h, (h * 5 + 3) / 4);
    basira_preprocess pp;
    basira_preprocess_default(&pp);
    pp.input_w = w;
    pp.input_h = h;
    size_t nf = 3 * (size_t)w * (size_t)h;
    float *a = malloc(nf * sizeof *a), *b = malloc(nf * sizeof *b);
    int same = 1;
    for (size_t k = 0; k < ds.count[BASIRA_PART_VAL]; k++) {
        size_t item = ds.index[BASIRA_PART_VAL][k];
        char path[256];
        snprintf(path, sizeof path, "%s/images/%s.jpg", root,
                 basira_csv_field(ds.csv, ds.row[item], 0));
        basira_image *img = NULL;
        basira_intake_options io;
        basira_intake_options_default(&io);
        io.min_side = 8; /* the synthetic photos are smaller than a clinical photo may be */
        CHECK_EQ_INT(basira_image_load_file(path, &io, &img, &err), BASIRA_OK);
        CHECK_EQ_INT(basira_preprocess_image(&pp, img, a, &err), BASIRA_OK);
        basira_image_free(img);
        basira_preprocess_rgb(&pp, ds.pixels[item], b);
        same &= !memcmp(a, b, nf * sizeof *a);
    }
    CHECK(same);
    /* Every part's items are labelled and decoded; groups never straddle parts. */
    for (int p = 0; p < 3; p++)
        for (size_t k = 0; k < ds.count[p]; k++)
            CHECK(ds.pixels[ds.index[p][k]] != NULL && ds.part[ds.index[p][k]] == p);
    free(a);
    free(b);
    train_dataset_free(&ds);
}

static void test_validation_matches_inference(void)
{
    check_validation_matches_inference(32, 32);
    check_validation_matches_inference(40, 30); /* a 4:3 input: --input-size 40x30 */
}

/* A 4:3 network trains end to end (dermoscopy augmentation: its quarter turns become half
 * turns), learns, and writes a model whose preprocessing and network take 40 x 30. */
static void test_non_square(void)
{
    char out[128];
    snprintf(out, sizeof out, "%s/run-43", root);
    basira_train_options o;
    basira_train_result res;
    basira_error err;
    base_options(&o, out);
    o.input_size = 40;
    o.input_height = 30;
    o.augment = BASIRA_AUGMENT_DERMOSCOPY;
    o.epochs = 3;
    basira_code rc = basira_train_run(&o, &res, &err);
    CHECK_MSG(rc == BASIRA_OK, "%s", err.message);
    if (rc)
        return;
    CHECK_MSG(res.final_val_accuracy > 0.85, "accuracy %g", res.final_val_accuracy);
    char best[256];
    snprintf(best, sizeof best, "%s/best.safetensors", out);
    basira_classifier *cl = NULL;
    rc = basira_classifier_load(best, &cl, &err);
    CHECK_MSG(rc == BASIRA_OK, "%s", err.message);
    if (rc)
        return;
    const basira_model_info *mi = basira_classifier_info(cl);
    CHECK_EQ_INT(mi->preprocess.input_w, 40);
    CHECK_EQ_INT(mi->preprocess.input_h, 30);
    /* A photo of another shape is squashed to 40 x 30, as in training, and classified. */
    basira_image *img = NULL;
    basira_intake_options io;
    basira_intake_options_default(&io);
    io.min_side = 8;
    char path[256];
    snprintf(path, sizeof path, "%s/images/img00.jpg", root);
    CHECK_EQ_INT(basira_image_load_file(path, &io, &img, &err), BASIRA_OK);
    float probs[2] = {0};
    if (img)
        CHECK_EQ_INT(basira_classifier_predict(cl, img, probs, &err), BASIRA_OK);
    CHECK_NEAR(probs[0] + probs[1], 1.0, 1e-4);
    basira_image_free(img);
    basira_classifier_free(cl);
    /* Continuing the run with a square input is refused: the recipe differs. */
    char ck[256];
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", out);
    o.resume_path = ck;
    o.epochs = 4;
    o.input_height = 0;
    CHECK(basira_train_run(&o, &res, &err) != BASIRA_OK);
}

static void test_bad_input(void)
{
    char out[128];
    snprintf(out, sizeof out, "%s/run-bad", root);
    basira_train_options o;
    basira_error err;
    basira_train_result res;

    base_options(&o, out);
    o.label_col = "diagnosis";
    CHECK_EQ_INT(basira_train_run(&o, &res, &err), BASIRA_E_FORMAT);
    CHECK(strstr(err.message, "diagnosis") && strstr(err.message, "image_id"));

    /* A label outside the class list names the line. */
    char classes[160];
    snprintf(classes, sizeof classes, "%s/one-class.json", root);
    FILE *f = fopen(classes, "w");
    fputs("[{\"code\":\"dark\",\"malignant\":true},{\"code\":\"other\"}]", f);
    fclose(f);
    base_options(&o, out);
    o.classes_path = classes;
    CHECK_EQ_INT(basira_train_run(&o, &res, &err), BASIRA_E_FORMAT);
    CHECK(strstr(err.message, "light") && strstr(err.message, "line"));

    /* A missing image stops the run, naming it; --skip-bad goes on without it. */
    char csv[160];
    snprintf(csv, sizeof csv, "%s/missing.csv", root);
    f = fopen(csv, "w");
    fputs("image_id,dx,lesion_id\n", f);
    for (int i = 0; i < 16; i++)
        fprintf(f, "img%02d,%s,L%d\n", i, i % 2 ? "dark" : "light", i);
    fputs("nosuchfile,dark,L99\n", f);
    fclose(f);
    base_options(&o, out);
    o.csv_path = csv;
    o.epochs = 1;
    CHECK_EQ_INT(basira_train_run(&o, &res, &err), BASIRA_E_NOT_FOUND);
    CHECK(strstr(err.message, "nosuchfile") && strstr(err.message, "line 18"));
    o.skip_bad = 1;
    basira_code rc = basira_train_run(&o, &res, &err);
    CHECK_MSG(rc == BASIRA_OK, "%s", err.message);
    CHECK_EQ_INT(res.n_train + res.n_val + res.n_test, 16);

    /* Bad options. */
    base_options(&o, out);
    o.select_metric = "f1";
    CHECK_EQ_INT(basira_train_run(&o, &res, &err), BASIRA_E_INVALID_ARGUMENT);
    base_options(&o, out);
    o.resume_path = csv; /* not a checkpoint */
    CHECK(basira_train_run(&o, &res, &err) != BASIRA_OK);
}

/*
 * --mixup: a run trains on blended pairs and still learns; the same seed gives the same
 * network, another alpha (or none) another one; a checkpoint of a mixup run continues only
 * with the same alpha, stopped and resumed bitwise as any run; alpha out of range is refused.
 */
static void test_mixup(void)
{
    char out[128], out2[128], out3[128];
    snprintf(out, sizeof out, "%s/run-mix", root);
    snprintf(out2, sizeof out2, "%s/run-mix2", root);
    snprintf(out3, sizeof out3, "%s/run-mix3", root);
    basira_train_options o;
    basira_train_result res;
    basira_error err;
    base_options(&o, out);
    o.mixup = 0.4;
    o.epochs = 3;
    basira_code rc = basira_train_run(&o, &res, &err);
    CHECK_MSG(rc == BASIRA_OK, "%s", err.message);
    if (rc)
        return;
    CHECK_MSG(res.final_val_accuracy > 0.85, "accuracy %g", res.final_val_accuracy);
    /* Stopped after epoch 2 and resumed: the same loss and network. */
    base_options(&o, out2);
    o.mixup = 0.4;
    o.epochs = 3;
    o.stop_after = 2;
    rc = basira_train_run(&o, &res, &err);
    CHECK_MSG(rc == BASIRA_OK, "%s", err.message);
    char ck[256], ck2[256], ck3[256];
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", out);
    snprintf(ck2, sizeof ck2, "%s/checkpoint.safetensors", out2);
    snprintf(ck3, sizeof ck3, "%s/checkpoint.safetensors", out3);
    /* ... not with another alpha, nor without mixup: the recipe differs */
    o.stop_after = 0;
    o.resume_path = ck2;
    o.mixup = 0.2;
    CHECK(basira_train_run(&o, &res, &err) != BASIRA_OK);
    o.mixup = 0;
    CHECK_EQ_INT(basira_train_run(&o, &res, &err), BASIRA_E_CONFLICT);
    CHECK_MSG(strstr(err.message, "'mixup'") != NULL, "%s", err.message);
    o.mixup = 0.4;
    rc = basira_train_run(&o, &res, &err);
    CHECK_MSG(rc == BASIRA_OK, "%s", err.message);
    json_t *a = read_history(out, 3), *b = read_history(out2, 3);
    CHECK(a && b);
    CHECK_MSG(hnum(a, "train_loss", NULL) == hnum(b, "train_loss", NULL), "loss %.9g vs %.9g",
              hnum(a, "train_loss", NULL), hnum(b, "train_loss", NULL));
    json_decref(a);
    json_decref(b);
    float la[8], lb[8], lc[8];
    CHECK(logits_of(ck, la) == 0 && logits_of(ck2, lb) == 0);
    CHECK_MSG(!memcmp(la, lb, sizeof la), "logits differ: %g vs %g", la[0], lb[0]);
    /* Without mixup the same seed trains another network. */
    base_options(&o, out3);
    o.epochs = 3;
    rc = basira_train_run(&o, &res, &err);
    CHECK_MSG(rc == BASIRA_OK, "%s", err.message);
    CHECK(logits_of(ck3, lc) == 0 && memcmp(la, lc, sizeof la) != 0);
    /* Out of range. */
    const double bad[] = {-0.1, 10.5, NAN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        base_options(&o, out3);
        o.mixup = bad[i];
        CHECK_EQ_INT(basira_train_run(&o, &res, &err), BASIRA_E_INVALID_ARGUMENT);
        CHECK(strstr(err.message, "--mixup") != NULL);
    }
}

/*
 * --contrastive: a self-supervised run learns to tell its photos apart (its training loss
 * falls below chance, log(batch - 1)), the same seed gives the same network, its model is
 * refused for triage (the head is a projection, not the classes), a supervised run starts
 * from it and learns, a checkpoint continues only as a contrastive run, and bad settings
 * are refused.
 */
static void test_contrastive(void)
{
    char out[128], out2[128], out3[128], best[256], ck[256], ck2[256];
    snprintf(out, sizeof out, "%s/run-ssl", root);
    snprintf(out2, sizeof out2, "%s/run-ssl2", root);
    snprintf(out3, sizeof out3, "%s/run-ssl-ft", root);
    snprintf(best, sizeof best, "%s/best.safetensors", out);
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", out);
    snprintf(ck2, sizeof ck2, "%s/checkpoint.safetensors", out2);
    basira_train_options o;
    basira_train_result res;
    basira_error err;
    base_options(&o, out);
    o.contrastive = 0.2;
    o.proj_dim = 8;
    o.batch = 16;
    o.epochs = 4;
    o.lr = 0.004;
    basira_code rc = basira_train_run(&o, &res, &err);
    CHECK_MSG(rc == BASIRA_OK, "%s", err.message);
    if (rc)
        return;
    json_t *h = read_history(out, 4);
    double tl = hnum(h, "train_loss", NULL), vl = hnum(h, "validation", "loss");
    json_decref(h);
    CHECK_MSG(tl < log(15.0) - 0.2 && isfinite(vl), "train loss %g, validation %g", tl, vl);
    /* Stopped after epoch 2 and resumed: the same network. */
    base_options(&o, out2);
    o.contrastive = 0.2;
    o.proj_dim = 8;
    o.batch = 16;
    o.epochs = 4;
    o.lr = 0.004;
    o.stop_after = 2;
    CHECK_EQ_INT(basira_train_run(&o, &res, &err), BASIRA_OK);
    o.stop_after = 0;
    o.resume_path = ck2;
    o.contrastive = 0;
    CHECK_EQ_INT(basira_train_run(&o, &res, &err), BASIRA_E_CONFLICT);
    CHECK_MSG(strstr(err.message, "'contrastive'") != NULL, "%s", err.message);
    o.contrastive = 0.2;
    rc = basira_train_run(&o, &res, &err);
    CHECK_MSG(rc == BASIRA_OK, "%s", err.message);
    float la[4 * 8], lb[4 * 8];
    CHECK(logits_of(ck, la) == 0 && logits_of(ck2, lb) == 0);
    CHECK_MSG(!memcmp(la, lb, sizeof la), "embeddings differ: %g vs %g", la[0], lb[0]);
    /* ... and the same validation loss: its views are fixed and read only the photo. */
    h = read_history(out2, 4);
    CHECK_MSG(hnum(h, "validation", "loss") == vl, "validation loss %.9g vs %.9g",
              hnum(h, "validation", "loss"), vl);
    json_decref(h);
    /* Not a model for triage. */
    basira_classifier *c = NULL;
    CHECK_EQ_INT(basira_classifier_load(best, &c, &err), BASIRA_E_MODEL);
    CHECK_MSG(strstr(err.message, "8 outputs") != NULL, "%s", err.message);
    basira_classifier_free(c);
    /* The starting point of a supervised run, which learns the classes. */
    base_options(&o, out3);
    o.init_from = best;
    o.epochs = 3;
    rc = basira_train_run(&o, &res, &err);
    CHECK_MSG(rc == BASIRA_OK, "%s", err.message);
    CHECK_MSG(res.final_val_accuracy > 0.85, "accuracy %g", res.final_val_accuracy);
    /* Unlabelled photos (one value in the label column): a contrastive run takes them, a
     * supervised one refuses them. */
    char one[128];
    snprintf(one, sizeof one, "%s/one.csv", root);
    FILE *f = fopen(one, "w");
    CHECK(f != NULL);
    if (f) {
        fprintf(f, "image_id,dx,lesion_id\n");
        for (int i = 0; i < N_IMAGES; i++)
            fprintf(f, "img%02d,photo,L%02d\n", i, i / 4);
        fclose(f);
    }
    base_options(&o, out3);
    o.csv_path = one;
    o.classes_path = NULL;
    o.contrastive = 0.2;
    o.proj_dim = 8;
    o.batch = 16;
    o.epochs = 1;
    rc = basira_train_run(&o, &res, &err);
    CHECK_MSG(rc == BASIRA_OK, "%s", err.message);
    o.contrastive = 0;
    CHECK_EQ_INT(basira_train_run(&o, &res, &err), BASIRA_E_FORMAT);
    CHECK_MSG(strstr(err.message, "at least 2 classes") != NULL, "%s", err.message);
    /* Refused: an odd batch, one under 4, mixup with it, a tiny head, a bad temperature. */
    for (int i = 0; i < 5; i++) {
        base_options(&o, out3);
        o.contrastive = i == 4 ? 11 : 0.2;
        o.batch = i == 0 ? 15 : i == 1 ? 2 : 16;
        o.mixup = i == 2 ? 0.2 : 0;
        o.proj_dim = i == 3 ? 4 : 8;
        CHECK_EQ_INT(basira_train_run(&o, &res, &err), BASIRA_E_INVALID_ARGUMENT);
        CHECK_MSG(strstr(err.message, "--contrastive") != NULL || strstr(err.message, "--batch"),
                  "%s", err.message);
    }
}

/*
 * --stratify-col: the split keeps each value of that column (here a phototype) in the
 * share of the fractions, whatever the labels; a missing column is refused by name.
 * Tone "a" is the first 8 images (4 whole lesions); split 50/50 by tone, the validation
 * part gets 2 of those lesions.
 */
static void test_stratify_col(void)
{
    char csv[160], out[128];
    snprintf(csv, sizeof csv, "%s/tone.csv", root);
    snprintf(out, sizeof out, "%s/run-tone", root);
    FILE *f = fopen(csv, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs("image_id,dx,lesion_id,tone\n", f);
    for (int i = 0; i < 32; i++)
        fprintf(f, "img%02d,%s,L%02d,%s\n", i, i % 2 ? "dark" : "light", i / 4 * 2 + i % 2,
                i < 8 ? "a" : "b");
    fclose(f);
    basira_train_options o;
    basira_error err;
    basira_train_result res;
    base_options(&o, out);
    o.csv_path = csv;
    o.stratify_col = "phototype";
    CHECK_EQ_INT(basira_train_run(&o, &res, &err), BASIRA_E_FORMAT);
    CHECK(strstr(err.message, "phototype") != NULL);
    o.stratify_col = "tone";
    o.epochs = 1;
    basira_code rc = basira_train_run(&o, &res, &err);
    CHECK_MSG(rc == BASIRA_OK, "%s", err.message);
    char path[192], line[256];
    snprintf(path, sizeof path, "%s/val.csv", out);
    f = fopen(path, "r");
    CHECK(f != NULL);
    int tone_a = 0, rows = 0;
    while (f && fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        rows++;
        tone_a += n > 2 && !strcmp(line + n - 2, ",a");
    }
    if (f)
        fclose(f);
    CHECK_MSG(tone_a == 4, "validation holds %d tone-a images of 8 (%d rows)", tone_a, rows);

    /* --init-from: the parent's input size or a clear refusal, never a crash. */
    char parent[192], out2[160];
    snprintf(parent, sizeof parent, "%s/best.safetensors", out);
    snprintf(out2, sizeof out2, "%s/run-child", root);
    base_options(&o, out2);
    o.epochs = 1;
    o.init_from = parent;
    o.input_size = 48;
    CHECK_EQ_INT(basira_train_run(&o, &res, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_MSG(strstr(err.message, "--input-size 32") != NULL, "%s", err.message);
    o.input_size = 32;
    rc = basira_train_run(&o, &res, &err);
    CHECK_MSG(rc == BASIRA_OK, "%s", err.message);
}

/* --precision auto and --profile: bf16 where the processor has it, it learns, a stopped
 * and resumed bf16 run is bit for bit the uninterrupted one, and the profile is printed. */
static void test_precision_profile(void)
{
    char out_a[128], out_b[128], path[256];
    snprintf(out_a, sizeof out_a, "%s/bf16-a", root);
    snprintf(out_b, sizeof out_b, "%s/bf16-b", root);
    basira_train_options o;
    basira_train_result res;
    basira_error err;
    base_options(&o, out_a);
    o.precision = BASIRA_PRECISION_AUTO;
    o.profile = 1;
    FILE *log = tmpfile();
    o.progress_stream = log;
    basira_code rc = basira_train_run(&o, &res, &err);
    CHECK_MSG(rc == BASIRA_OK, "%s", rc ? err.message : "");
    if (rc || !log)
        return;
    CHECK_MSG(res.final_val_accuracy > 0.9, "accuracy %g", res.final_val_accuracy);
    char text[32768] = {0};
    rewind(log);
    size_t got = fread(text, 1, sizeof text - 1, log);
    fclose(log);
    CHECK(got > 0 && strstr(text, "profile of") && strstr(text, "all layers") &&
          strstr(text, "waiting for data"));
    const char *want = basira_nn_bf16_supported() ? "bf16" : "fp32";
    snprintf(path, sizeof path, "%s/summary.json", out_a);
    json_t *sum = json_load_file(path, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(sum, "precision")), want);
    json_decref(sum);
    /* Stopped after epoch 1 and resumed in bf16: the same weights. */
    base_options(&o, out_b);
    o.precision = BASIRA_PRECISION_AUTO;
    o.stop_after = 1;
    CHECK(!basira_train_run(&o, &res, &err));
    char ckpt[256];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", out_b);
    base_options(&o, out_b);
    o.precision = BASIRA_PRECISION_AUTO;
    o.resume_path = ckpt;
    CHECK(!basira_train_run(&o, &res, &err));
    float la[8], lb[8];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", out_a);
    CHECK(logits_of(path, la) == 0 && logits_of(ckpt, lb) == 0);
    CHECK_MSG(!memcmp(la, lb, sizeof la), "%s resume: logits differ: %g vs %g", want, la[0], lb[0]);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/basira_train_XXXXXX");
    if (!mkdtemp(root))
        return 1;
    char images[128], csv[128], classes[128];
    snprintf(images, sizeof images, "%s/images", root);
    snprintf(csv, sizeof csv, "%s/data.csv", root);
    snprintf(classes, sizeof classes, "%s/classes.json", root);
    mkdir(images, 0777);
    write_images(images, csv);
    FILE *f = fopen(classes, "w");
    fputs("[{\"code\":\"dark\",\"names\":{\"en\":\"Dark\",\"fr\":\"Sombre\",\"ar\":\"داكن\"},"
          "\"malignant\":true},"
          "{\"code\":\"light\",\"names\":{\"en\":\"Light\",\"fr\":\"Clair\",\"ar\":\"فاتح\"},"
          "\"malignant\":false}]",
          f);
    fclose(f);
    RUN(test_train_and_resume);
    RUN(test_validation_matches_inference);
    RUN(test_non_square);
    RUN(test_bad_input);
    RUN(test_stratify_col);
    RUN(test_mixup);
    RUN(test_contrastive);
    RUN(test_precision_profile);
    int rc = test_summary();
    if (!rc) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", root);
    }
    return rc;
}
