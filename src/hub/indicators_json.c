/*
 * indicators_json.c - the indicators as JSON (CLI, HTTP API) and CSV (the
 * dashboard's export): every figure with its definition's id and name, and its
 * interval and method where it has one.
 */
#include "basira/csv.h"
#include "basira/hub_indicators.h"
#include "core/i18n.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *value_json(const basira_hub_indicator_def *d, const basira_hub_indicator_value *v,
                          const char *name)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:o}", "id", d->code, "name", name, "unit", d->unit,
                          "n", (json_int_t)v->n, "value", num(v->value));
    if (!o)
        return NULL;
    if (d->kind == BASIRA_IND_PROPORTION)
        json_object_set_new(o, "k", json_integer(v->k));
    if (d->kind == BASIRA_IND_QUANTILES) {
        json_object_set_new(o, "statistic", json_string("median"));
        json_object_set_new(o, "p90", num(v->p90));
    }
    if (d->kind == BASIRA_IND_RATE)
        json_object_set_new(o, "numerator", num(v->numerator));
    if (d->interval)
        json_object_set_new(o, "interval",
                            json_pack("{s:o, s:o, s:f, s:s}", "lo", num(v->lo), "hi", num(v->hi),
                                      "level", 0.95, "method", d->interval));
    return o;
}

json_t *basira_hub_indicators_json(const basira_hub_indicators *ind,
                                   const char *(*name)(const char *msgid, void *ctx), void *ctx)
{
    const basira_hub_indicator_def *defs = basira_hub_indicator_defs();
    json_t *groups = json_array();
    for (size_t g = 0; groups && g < ind->n_groups; g++) {
        const basira_hub_indicator_group *gr = &ind->groups[g];
        json_t *list = json_array();
        for (int i = 0; list && i < BASIRA_IND_COUNT; i++) {
            json_t *v =
                value_json(&defs[i], &gr->v[i], name ? name(defs[i].name, ctx) : defs[i].name);
            if (!v || json_array_append_new(list, v)) {
                json_decref(list);
                list = NULL;
            }
        }
        json_t *o = list ? json_pack("{s:s, s:I, s:o}", "key", gr->key, "cases",
                                     (json_int_t)gr->cases, "indicators", list)
                         : NULL;
        if (!o || json_array_append_new(groups, o)) {
            json_decref(groups);
            groups = NULL;
        }
    }
    return groups;
}

static void fnum(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.6g", v);
}

basira_code basira_hub_indicators_csv(const basira_hub_indicators *ind,
                                      const char *(*name)(const char *msgid, void *ctx), void *ctx,
                                      char **out, size_t *len, basira_error *err)
{
    *out = NULL;
    *len = 0;
    FILE *f = open_memstream(out, len);
    if (!f)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    const basira_hub_indicator_def *defs = basira_hub_indicator_defs();
    fputs("group,id,name,unit,n,k,value,lo,hi,method,p90\r\n", f);
    for (size_t g = 0; g < ind->n_groups; g++)
        for (int i = 0; i < BASIRA_IND_COUNT; i++) {
            const basira_hub_indicator_value *v = &ind->groups[g].v[i];
            basira_csv_put_cell(f, ind->groups[g].key);
            fprintf(f, ",%s,", defs[i].code);
            basira_csv_put_cell(f, name ? name(defs[i].name, ctx) : defs[i].name);
            fprintf(f, ",%s,%ld,", defs[i].unit, v->n);
            if (defs[i].kind == BASIRA_IND_PROPORTION)
                fprintf(f, "%ld", v->k);
            fputc(',', f);
            fnum(f, v->value);
            fputc(',', f);
            fnum(f, v->lo);
            fputc(',', f);
            fnum(f, v->hi);
            fprintf(f, ",%s,", defs[i].interval ? defs[i].interval : "");
            fnum(f, v->p90);
            fputs("\r\n", f);
        }
    int bad = ferror(f);
    if (fclose(f) || bad) {
        free(*out);
        *out = NULL;
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    return BASIRA_OK;
}
