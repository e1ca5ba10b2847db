/*
 * hub_indicators.c - the indicator subcommands of `basira hub`:
 *   basira hub indicators --db CONNINFO [--json] [--by G] [--from D] [--to D] [--clinic C]
 *                         [--sex S] [--phototype P] [--age-band A] [--costs F] [--as-of D]
 *   basira hub outcome --db CONNINFO --node N --case ID --histology malignant|benign --by USER
 *   basira hub costs --db CONNINFO [--set F]
 */
#include "hub_cli.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basira/fs.h"
#include "basira/json.h"
#include "basira/hub_indicators.h"
#include "cli.h"
#include "core/i18n.h"

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira hub indicators --db CONNINFO [--json] [--by GROUP] [--from DATE] "
                 "[--to DATE]\n"
                 "         [--clinic NODE] [--sex SEX] [--phototype P] [--age-band A] "
                 "[--costs FILE] [--as-of DATE]\n"
                 "       basira hub outcome --db CONNINFO --node NODE --case ID --histology "
                 "malignant|benign --by USER\n"
                 "       basira hub costs --db CONNINFO [--set FILE]\n"
                 "The programme's indicators (docs/indicators.md), per group:\n"
                 "  --by GROUP      none, clinic, week, month, phototype, sex or age_band\n"
                 "  --from, --to    first visits from / up to these dates (YYYY-MM-DD)\n"
                 "  --costs FILE    cost parameters (JSON), else those stored with `hub costs "
                 "--set`\n"
                 "  --as-of DATE    judge follow-ups at this date (default: now)\n"));
}

typedef struct ind_args {
    const char *db, *by, *from, *to, *clinic, *sex, *phototype, *age_band, *costs, *as_of;
    const char *node, *histology, *set;
    long case_id;
    int json;
} ind_args;

static int parse(int argc, char **argv, ind_args *a)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"by", required_argument, NULL, 'b'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"clinic", required_argument, NULL, 'c'},
        {"sex", required_argument, NULL, 's'},
        {"phototype", required_argument, NULL, 'p'},
        {"age-band", required_argument, NULL, 'a'},
        {"costs", required_argument, NULL, 'C'},
        {"as-of", required_argument, NULL, 'A'},
        {"node", required_argument, NULL, 'n'},
        {"case", required_argument, NULL, 'i'},
        {"histology", required_argument, NULL, 'H'},
        {"set", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    const char **dst[128] = {0};
    dst['d'] = &a->db, dst['b'] = &a->by, dst['f'] = &a->from, dst['t'] = &a->to;
    dst['c'] = &a->clinic, dst['s'] = &a->sex, dst['p'] = &a->phototype, dst['a'] = &a->age_band;
    dst['C'] = &a->costs, dst['A'] = &a->as_of, dst['n'] = &a->node, dst['H'] = &a->histology;
    dst['S'] = &a->set;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (o > 0 && o < 128 && dst[o]) {
            *dst[o] = optarg;
        } else if (o == 'j') {
            a->json = 1;
        } else if (o == 'i') {
            if (basira_cli_parse_long("--case", optarg, 1, 1L << 40, &a->case_id))
                return BASIRA_EXIT_USAGE;
        } else if (o == 'h') {
            usage(stdout);
            return -1;
        } else {
            return basira_cli_bad_option("hub", o, argv, usage);
        }
    }
    if (!a->db) {
        fprintf(stderr, _("basira hub: --db CONNINFO is required\n"));
        return BASIRA_EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, _("basira hub: unexpected argument %s\n"), argv[optind]);
        return BASIRA_EXIT_USAGE;
    }
    return 0;
}

static basira_code read_costs(const char *file, basira_hub_costs *c, basira_error *e)
{
    unsigned char *buf = NULL;
    size_t n = 0;
    basira_code rc = basira_fs_read(file, 65536, &buf, &n, e);
    if (!rc)
        rc = basira_hub_costs_parse((const char *)buf, c, e);
    free(buf);
    return rc;
}

static const char *translate(const char *msgid, void *ctx)
{
    (void)ctx;
    return _(msgid);
}

static json_t *costs_json(const basira_hub_costs *c)
{
    return json_pack("{s:s, s:f, s:f, s:f, s:f}", "currency", c->currency, "per_case", c->per_case,
                     "per_review", c->per_review, "per_biopsy", c->per_biopsy, "per_urgent_visit",
                     c->per_urgent_visit);
}

static int print_indicators(const ind_args *a, const basira_hub_indicator_query *q,
                            const basira_hub_indicators *ind)
{
    json_t *groups = basira_hub_indicators_json(ind, translate, NULL);
    if (!groups) {
        fprintf(stderr, _("basira: out of memory\n"));
        return BASIRA_EXIT_FAILED;
    }
    if (!a->json) {
        size_t g;
        json_t *gr;
        json_array_foreach(groups, g, gr)
        {
            printf("%s (%lld)\n", json_string_value(json_object_get(gr, "key")),
                   (long long)json_integer_value(json_object_get(gr, "cases")));
            size_t i;
            json_t *v;
            json_array_foreach(json_object_get(gr, "indicators"), i, v)
            {
                json_t *iv = json_object_get(v, "interval");
                printf("  %-32s %10.3f", json_string_value(json_object_get(v, "id")),
                       json_is_number(json_object_get(v, "value"))
                           ? json_number_value(json_object_get(v, "value"))
                           : NAN);
                if (json_is_number(json_object_get(iv, "lo")))
                    printf("  [%.3f, %.3f]", json_number_value(json_object_get(iv, "lo")),
                           json_number_value(json_object_get(iv, "hi")));
                printf("  n=%lld\n", (long long)json_integer_value(json_object_get(v, "n")));
            }
        }
        json_decref(groups);
        return BASIRA_EXIT_OK;
    }
    static const char *const by[] = {"none",      "clinic", "week",    "month",
                                     "phototype", "sex",    "age_band"};
    json_t *defs = json_array();
    const basira_hub_indicator_def *d = basira_hub_indicator_defs();
    for (int i = 0; defs && i < BASIRA_IND_COUNT; i++)
        json_array_append_new(defs, json_pack("{s:s, s:s, s:s, s:s?}", "id", d[i].code, "name",
                                              _(d[i].name), "unit", d[i].unit, "interval",
                                              d[i].interval));
    json_t *doc =
        json_pack("{s:s, s:s?, s:s?, s:{s:s?, s:s?, s:s?, s:s?}, s:I, s:o, s:o, s:o}", "by",
                  by[q->by], "from", q->from, "to", q->to, "filters", "clinic", q->clinic, "sex",
                  q->sex, "phototype", q->phototype, "age_band", q->age_band, "as_of",
                  (json_int_t)q->as_of, "costs", q->costs ? costs_json(q->costs) : json_null(),
                  "definitions", defs ? defs : json_null(), "groups", groups);
    int ok = doc && basira_json_print_line(stdout, doc) == 0;
    json_decref(doc);
    return ok ? BASIRA_EXIT_OK : BASIRA_EXIT_FAILED;
}

static int indicators(basira_hub *hub, const ind_args *a)
{
    basira_error e;
    basira_hub_indicator_query q = {0};
    basira_hub_costs costs;
    int have = 0;
    if (basira_hub_group_by_parse(a->by, &q.by, &e))
        return basira_cli_failed("hub", &e);
    if (a->costs ? read_costs(a->costs, &costs, &e) : basira_hub_costs_get(hub, &costs, &have, &e))
        return basira_cli_failed("hub", &e);
    q.costs = a->costs || have ? &costs : NULL;
    q.from = a->from, q.to = a->to, q.clinic = a->clinic, q.sex = a->sex;
    q.phototype = a->phototype, q.age_band = a->age_band;
    q.as_of = (int64_t)time(NULL);
    if (a->as_of) {
        struct tm tm = {0};
        const char *end = strptime(a->as_of, "%Y-%m-%d", &tm);
        if (!end || *end) {
            fprintf(stderr, _("basira hub: --as-of is a date YYYY-MM-DD\n"));
            return BASIRA_EXIT_USAGE;
        }
        q.as_of = (int64_t)timegm(&tm) + 86399;
    }
    basira_hub_indicators ind;
    if (basira_hub_indicators_compute(hub, &q, &ind, &e))
        return basira_cli_failed("hub", &e);
    int status = print_indicators(a, &q, &ind);
    basira_hub_indicators_free(&ind);
    return status;
}

int basira_hub_indicator_command(int argc, char **argv)
{
    const char *sub = argv[0];
    ind_args a;
    int prc = parse(argc, argv, &a);
    if (prc)
        return prc < 0 ? BASIRA_EXIT_OK : prc;
    basira_error e;
    basira_hub *hub = NULL;
    if (basira_hub_open(a.db, basira_cli_argon2_cost(), &hub, &e))
        return basira_cli_failed("hub", &e);
    int status = BASIRA_EXIT_OK;
    if (!strcmp(sub, "indicators")) {
        status = indicators(hub, &a);
    } else if (!strcmp(sub, "outcome")) {
        if (!a.node || !a.case_id) {
            fprintf(stderr, _("basira hub outcome: --node, --case, --histology and --by are "
                              "required\n"));
            status = BASIRA_EXIT_USAGE;
        } else if (basira_hub_outcome(hub, a.node, a.case_id, a.histology, a.by, &e)) {
            status = basira_cli_failed("hub", &e);
        } else {
            printf(_("outcome recorded\n"));
        }
    } else {
        basira_hub_costs c;
        int have = 0;
        if (a.set ? read_costs(a.set, &c, &e) || basira_hub_costs_set(hub, &c, &e)
                  : basira_hub_costs_get(hub, &c, &have, &e))
            status = basira_cli_failed("hub", &e);
        else if (!a.set && !have)
            printf("null\n");
        else {
            json_t *j = costs_json(&c);
            status = j && !basira_json_print_line(stdout, j) ? BASIRA_EXIT_OK : BASIRA_EXIT_FAILED;
            json_decref(j);
        }
    }
    basira_hub_free(hub);
    return status;
}
