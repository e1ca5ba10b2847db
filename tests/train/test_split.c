/* Tests of the group split: groups never cross parts, strata are shared out, seeds are honoured. */
#include "basira/train.h"
#include "test.h"

/* A data set shaped like HAM10000: groups of 1-4 items, 3 labels with 70/20/10 % of groups. */
#define N_GROUPS 900
static size_t make_data(int *label, int *group, size_t cap)
{
    size_t n = 0;
    unsigned s = 7;
    for (int g = 0; g < N_GROUPS; g++) {
        s = s * 1103515245u + 12345u;
        int size = 1 + (int)((s >> 16) % 4);
        int lab = g % 10 < 7 ? 0 : g % 10 < 9 ? 1 : 2;
        for (int k = 0; k < size && n < cap; k++) {
            label[n] = lab;
            group[n] = g;
            n++;
        }
    }
    return n;
}

static void test_groups_and_strata(void)
{
    static int label[4 * N_GROUPS], group[4 * N_GROUPS], part[4 * N_GROUPS], part2[4 * N_GROUPS];
    size_t n = make_data(label, group, 4 * N_GROUPS);
    const double fr[3] = {0.70, 0.15, 0.15};
    basira_error err;
    CHECK_EQ_INT(basira_split_groups(n, label, 3, group, N_GROUPS, fr, 1, part, &err), BASIRA_OK);

    /* No group in two parts. */
    int gpart[N_GROUPS];
    for (int g = 0; g < N_GROUPS; g++)
        gpart[g] = -1;
    int crossed = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK(part[i] >= 0 && part[i] <= 2);
        if (gpart[group[i]] >= 0 && gpart[group[i]] != part[i])
            crossed++;
        gpart[group[i]] = part[i];
    }
    CHECK_EQ_INT(crossed, 0);

    /* Each label is shared out close to 70/15/15 (of its items). */
    for (int lab = 0; lab < 3; lab++) {
        size_t tot = 0, in[3] = {0, 0, 0};
        for (size_t i = 0; i < n; i++)
            if (label[i] == lab) {
                tot++;
                in[part[i]]++;
            }
        for (int p = 0; p < 3; p++)
            CHECK_MSG(fabs((double)in[p] / (double)tot - fr[p]) < 0.03,
                      "label %d part %d: %zu of %zu", lab, p, in[p], tot);
    }

    /* Same seed, same split; another seed, another split. */
    CHECK_EQ_INT(basira_split_groups(n, label, 3, group, N_GROUPS, fr, 1, part2, &err), BASIRA_OK);
    CHECK(!memcmp(part, part2, n * sizeof *part));
    CHECK_EQ_INT(basira_split_groups(n, label, 3, group, N_GROUPS, fr, 2, part2, &err), BASIRA_OK);
    size_t diff = 0;
    for (size_t i = 0; i < n; i++)
        diff += part[i] != part2[i];
    CHECK(diff > n / 10);
}

static void test_no_groups_and_edge_cases(void)
{
    int label[10] = {0, 0, 0, 0, 0, 0, 0, 1, 1, 1}, part[10];
    basira_error err;
    const double fr[3] = {0.6, 0.2, 0.2};
    /* Without groups every item is its own group: 7 zeros -> about 4/1.5/1.5. */
    CHECK_EQ_INT(basira_split_groups(10, label, 2, NULL, 0, fr, 3, part, &err), BASIRA_OK);
    int count[2][3] = {{0}};
    for (int i = 0; i < 10; i++)
        count[label[i]][part[i]]++;
    CHECK(count[0][0] >= 4 && count[0][0] <= 5);
    CHECK(count[0][1] >= 1 && count[0][2] >= 1);
    CHECK(count[1][0] >= 1 && count[1][0] <= 2);

    /* A group with mixed labels stays whole. */
    int g2[10] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK_EQ_INT(basira_split_groups(10, label, 2, g2, 1, fr, 3, part, &err), BASIRA_OK);
    for (int i = 1; i < 10; i++)
        CHECK_EQ_INT(part[i], part[0]);
    CHECK_EQ_INT(part[0], BASIRA_PART_TRAIN);

    /* A part with fraction 0 gets nothing. */
    const double no_test[3] = {0.8, 0.2, 0.0};
    CHECK_EQ_INT(basira_split_groups(10, label, 2, NULL, 0, no_test, 5, part, &err), BASIRA_OK);
    for (int i = 0; i < 10; i++)
        CHECK(part[i] != BASIRA_PART_TEST);

    /* Bad input. */
    int bad_label[2] = {0, 5}, bad_group[2] = {0, 9};
    CHECK_EQ_INT(basira_split_groups(2, bad_label, 2, NULL, 0, fr, 1, part, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_split_groups(2, label, 2, bad_group, 2, fr, 1, part, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    const double bad_fr[3] = {0.5, 0.2, 0.2};
    CHECK_EQ_INT(basira_split_groups(2, label, 2, NULL, 0, bad_fr, 1, part, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "sum") != NULL);
}

static void test_parse(void)
{
    double f[3];
    basira_error err;
    CHECK_EQ_INT(basira_split_parse("0.70,0.15,0.15", f, &err), BASIRA_OK);
    CHECK_NEAR(f[0], 0.70, 1e-12);
    CHECK_NEAR(f[2], 0.15, 1e-12);
    CHECK_EQ_INT(basira_split_parse("1,0,0", f, &err), BASIRA_OK);
    const char *bad[] = {"0.7,0.15",  "0.7,0.15,0.15,0", "0.7,0.2,0.2",    "a,b,c",
                         "0,0.5,0.5", "-0.1,0.6,0.5",    "0.7,0.15,0.15x", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(basira_split_parse(bad[i], f, &err) == BASIRA_E_INVALID_ARGUMENT, "'%s'", bad[i]);
}

static void test_seed_mix(void)
{
    CHECK(basira_seed_mix(1, 2, 3) == basira_seed_mix(1, 2, 3));
    CHECK(basira_seed_mix(1, 2, 3) != basira_seed_mix(1, 3, 2));
    CHECK(basira_seed_mix(1, 2, 3) != basira_seed_mix(2, 2, 3));
    CHECK(basira_seed_mix(0, 0, 0) != 0);
}

int main(void)
{
    RUN(test_groups_and_strata);
    RUN(test_no_groups_and_edge_cases);
    RUN(test_parse);
    RUN(test_seed_mix);
    return test_summary();
}
