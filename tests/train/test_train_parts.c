/* Tests of the class list, class weights, validation metrics and the progress line. */
#include "basira/partition.h"
#include "basira/train.h"
#include "test.h"
#include "train/metrics.h"
#include "train/progress.h"

#include <unistd.h>

static void test_classes_json(void)
{
    basira_error err;
    basira_classes cl;
    json_t *j = json_loads("[{\"code\":\"nv\",\"names\":{\"en\":\"Naevus\",\"fr\":\"Nævus\","
                           "\"ar\":\"وحمة\"},\"malignant\":false},"
                           "{\"code\":\"mel\",\"malignant\":true},"
                           "{\"code\":\"acne\",\"partition\":\"non-neoplastic\"}]",
                           0, NULL);
    CHECK_EQ_INT(basira_classes_from_json(j, &cl, &err), BASIRA_OK);
    CHECK_EQ_INT(cl.n, 3);
    CHECK_STR(cl.c[0].name_fr, "Nævus");
    CHECK_STR(cl.c[1].name_en, "mel"); /* default name = code */
    CHECK_EQ_INT(cl.c[1].malignant, 1);
    CHECK_EQ_INT(cl.c[0].partition, BASIRA_PARTITION_BENIGN);    /* from the malignant flag */
    CHECK_EQ_INT(cl.c[1].partition, BASIRA_PARTITION_MALIGNANT); /* idem */
    CHECK_EQ_INT(cl.c[2].partition, BASIRA_PARTITION_NON_NEOPLASTIC);
    CHECK_EQ_INT(basira_classes_find(&cl, "mel"), 1);
    CHECK_EQ_INT(basira_classes_find(&cl, "bcc"), -1);
    /* Round trip. */
    json_t *back = basira_classes_to_json(&cl);
    basira_classes cl2;
    CHECK_EQ_INT(basira_classes_from_json(back, &cl2, &err), BASIRA_OK);
    CHECK(!memcmp(&cl, &cl2, sizeof cl));
    json_decref(back);
    json_decref(j);

    const char *bad[] = {
        "{}",
        "[]",
        "[{\"names\":{}}]",
        "[{\"code\":\"a\"},{\"code\":\"a\"}]",
        "[{\"code\":\"a\",\"malignant\":1}]",
        "[{\"code\":\"a\",\"names\":{\"fr\":3}}]",
        "[1]",
        "[{\"code\":\"0123456789012345678901234567890123456789012345678901234567890123456789\"}]",
        /* a partition that is not one of the three, or disagrees with "malignant" */
        "[{\"code\":\"a\",\"partition\":\"tumour\"}]",
        "[{\"code\":\"a\",\"partition\":3}]",
        "[{\"code\":\"a\",\"malignant\":true,\"partition\":\"benign\"}]",
        "[{\"code\":\"a\",\"malignant\":false,\"partition\":\"malignant\"}]",
    };
    /* One class more than BASIRA_MAX_CLASSES is refused; exactly that many is accepted. */
    for (int extra = 0; extra <= 1; extra++) {
        json_t *many = json_array();
        for (int i = 0; i < BASIRA_MAX_CLASSES + extra; i++) {
            char code[16];
            snprintf(code, sizeof code, "c%02d", i);
            json_array_append_new(many, json_pack("{s:s, s:b}", "code", code, "malignant", i == 0));
        }
        CHECK_EQ_INT(basira_classes_from_json(many, &cl, &err), extra ? BASIRA_E_LIMIT : BASIRA_OK);
        json_decref(many);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = json_loads(bad[i], 0, NULL);
        CHECK(j != NULL);
        basira_code rc = basira_classes_from_json(j, &cl, &err);
        CHECK_MSG(rc == BASIRA_E_FORMAT || rc == BASIRA_E_LIMIT, "%s accepted", bad[i]);
        json_decref(j);
    }

    /* A file that is not JSON names the file and line. */
    char path[] = "/tmp/basira_classes_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, "[{\"code\":", 9) == 9);
    close(fd);
    CHECK_EQ_INT(basira_classes_load(path, &cl, &err), BASIRA_E_FORMAT);
    CHECK(strstr(err.message, path) != NULL);
    unlink(path);
}

static void test_classes_from_labels(void)
{
    const char *labels[] = {"nv", "mel", "nv", "bcc", "mel"};
    basira_classes cl;
    basira_error err;
    CHECK_EQ_INT(basira_classes_from_labels(labels, 5, &cl, &err), BASIRA_OK);
    CHECK_EQ_INT(cl.n, 3);
    CHECK_STR(cl.c[0].code, "bcc");
    CHECK_STR(cl.c[2].code, "nv");
    const char *with_empty[] = {"a", ""};
    CHECK_EQ_INT(basira_classes_from_labels(with_empty, 2, &cl, &err), BASIRA_E_FORMAT);
    /* A label "non-neoplastic" is of that partition; any other, without a class file, benign. */
    const char *three[] = {"malignant", "benign", "non-neoplastic"};
    CHECK_EQ_INT(basira_classes_from_labels(three, 3, &cl, &err), BASIRA_OK);
    CHECK_EQ_INT(cl.c[basira_classes_find(&cl, "non-neoplastic")].partition,
                 BASIRA_PARTITION_NON_NEOPLASTIC);
    CHECK_EQ_INT(cl.c[basira_classes_find(&cl, "malignant")].partition, BASIRA_PARTITION_BENIGN);
    char names[BASIRA_MAX_CLASSES + 1][4];
    const char *many[BASIRA_MAX_CLASSES + 1];
    for (int i = 0; i <= BASIRA_MAX_CLASSES; i++) {
        snprintf(names[i], sizeof names[i], "c%02d", i);
        many[i] = names[i];
    }
    CHECK_EQ_INT(basira_classes_from_labels(many, BASIRA_MAX_CLASSES + 1, &cl, &err),
                 BASIRA_E_LIMIT);
}

static void test_weights(void)
{
    size_t counts[4] = {80, 15, 5, 0};
    float w[4];
    basira_class_weights(BASIRA_WEIGHTS_BALANCED, counts, 4, w);
    /* n / (K * n_c) with K = 3 classes present. */
    CHECK_NEAR(w[0], 100.0 / (3 * 80), 1e-6);
    CHECK_NEAR(w[1], 100.0 / (3 * 15), 1e-6);
    CHECK_NEAR(w[2], 100.0 / (3 * 5), 1e-6);
    CHECK_NEAR(w[3], 0, 0);
    /* Balanced weights make every class weigh the same in total. */
    CHECK_NEAR(w[0] * 80, w[2] * 5, 1e-4);
    float s[4];
    basira_class_weights(BASIRA_WEIGHTS_SQRT, counts, 4, s);
    CHECK_NEAR(s[1], sqrt(w[1]), 1e-6);
    basira_class_weights(BASIRA_WEIGHTS_NONE, counts, 4, s);
    CHECK(s[0] == 1.0f && s[3] == 1.0f);
}

static void test_metrics(void)
{
    /* AUC: perfect, reversed, all tied, ties counted half. */
    double sc[4] = {0.1, 0.2, 0.8, 0.9};
    int pos[4] = {0, 0, 1, 1}, rev[4] = {1, 1, 0, 0};
    CHECK_NEAR(train_auc(sc, pos, 4), 1.0, 1e-12);
    CHECK_NEAR(train_auc(sc, rev, 4), 0.0, 1e-12);
    double tied[4] = {0.5, 0.5, 0.5, 0.5};
    CHECK_NEAR(train_auc(tied, pos, 4), 0.5, 1e-12);
    double partly[4] = {0.1, 0.8, 0.8, 0.9}; /* pairs: (0.8 vs 0.1)=1,(0.8 vs 0.8)=.5,(0.9..)=1,1 */
    CHECK_NEAR(train_auc(partly, pos, 4), 3.5 / 4.0, 1e-12);
    CHECK(isnan(train_auc(sc, (int[]){0, 0, 0, 0}, 4)));

    /* Three classes, class 2 malignant. */
    const float probs[] = {0.7f, 0.2f, 0.1f,  /* label 0, right */
                           0.6f, 0.3f, 0.1f,  /* label 1, wrong */
                           0.1f, 0.8f, 0.1f,  /* label 1, right */
                           0.1f, 0.1f, 0.8f,  /* label 2, right */
                           0.5f, 0.1f, 0.4f}; /* label 2, wrong */
    int labels[] = {0, 1, 1, 2, 2}, mal[3] = {0, 0, 1};
    train_metrics m;
    train_metrics_compute(probs, labels, 5, 3, mal, 0.5, &m);
    CHECK_NEAR(m.accuracy, 3.0 / 5.0, 1e-12);
    CHECK_NEAR(m.recall[0], 1.0, 1e-12);
    CHECK_NEAR(m.recall[1], 0.5, 1e-12);
    CHECK_NEAR(m.balanced_accuracy, (1.0 + 0.5 + 0.5) / 3.0, 1e-12);
    CHECK_EQ_INT(m.support[2], 2);
    /* Malignant scores 0.8, 0.4 vs 0.1, 0.1, 0.1: every pair ranked right. */
    CHECK_NEAR(m.auc, 1.0, 1e-6);
    train_metrics_compute(probs, labels, 5, 3, NULL, 0.5, &m);
    CHECK(isnan(m.auc));
    /* A class absent from the labels is left out of the balanced accuracy. */
    int only01[] = {0, 1, 1, 1, 0};
    train_metrics_compute(probs, only01, 5, 3, mal, 0.5, &m);
    CHECK(isnan(m.recall[2]));
    CHECK_NEAR(m.balanced_accuracy, (2.0 / 2.0 + 1.0 / 3.0) / 2.0, 1e-12);
}

static void test_progress(void)
{
    char buf[32];
    train_format_duration(12.4, buf, sizeof buf);
    CHECK_STR(buf, "12s");
    train_format_duration(185, buf, sizeof buf);
    CHECK_STR(buf, "3m05s");
    train_format_duration(3720, buf, sizeof buf);
    CHECK_STR(buf, "1h02m");
    train_format_duration(NAN, buf, sizeof buf);
    CHECK_STR(buf, "?");

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    train_progress p;
    train_progress_init(&p, f, 0);
    /* A log gets a line at the first step, none within the interval, one at the last step. */
    CHECK_EQ_INT(train_progress_step(&p, 100.0, 1, 3, 1, 10, 0.9, 50.0, 60), 1);
    CHECK_EQ_INT(train_progress_step(&p, 101.0, 1, 3, 2, 10, 0.8, 50.0, 59), 0);
    CHECK_EQ_INT(train_progress_step(&p, 102.0, 1, 3, 10, 10, 0.5, 50.0, 40), 1);
    train_progress_break(&p);
    fclose(f);
    CHECK(strstr(text, "epoch 1/3 step 1/10 loss 0.9000 50.0 img/s ETA 1m00s\n") != NULL);
    CHECK(strstr(text, "step 10/10 loss 0.5000") != NULL);
    CHECK(strchr(text, '\r') == NULL);
    free(text);

    f = open_memstream(&text, &len);
    train_progress_init(&p, f, 1);
    train_progress_step(&p, 0.0, 2, 3, 5, 10, 0.25, 10.0, 5);
    train_progress_break(&p);
    fclose(f);
    CHECK(text[0] == '\r');
    CHECK(strstr(text, "[##########..........]") != NULL);
    CHECK(text[strlen(text) - 1] == '\n');
    free(text);
}

int main(void)
{
    RUN(test_classes_json);
    RUN(test_classes_from_labels);
    RUN(test_weights);
    RUN(test_metrics);
    RUN(test_progress);
    return test_summary();
}
