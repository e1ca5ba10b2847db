/* util.c - tolerant access to a case's JSON (see util.h). */
#include "export/util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *ex_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

double ex_num(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

const json_t *ex_report_image(const json_t *case_json)
{
    const json_t *best = NULL;
    size_t i;
    json_t *img;
    json_array_foreach(json_object_get(case_json, "images"), i, img)
    {
        const char *kind = ex_str(img, "kind");
        const char *status = ex_str(json_object_get(img, "result"), "status");
        /* Images are listed oldest first: the last accepted one wins. */
        if (json_is_integer(json_object_get(img, "id")) && kind && !strcmp(kind, "photo") &&
            status && !strcmp(status, "ok"))
            best = img;
    }
    return best;
}

const json_t *ex_report_result(const json_t *case_json)
{
    const json_t *img = ex_report_image(case_json);
    return img ? json_object_get(img, "result") : NULL;
}

const char *ex_final_category(const json_t *case_json)
{
    static const char *const cats[] = {"low", "medium", "high"};
    const char *c = ex_str(json_object_get(case_json, "decision"), "category");
    if (!c)
        c = ex_str(case_json, "risk");
    if (!c)
        c = ex_str(json_object_get(ex_report_result(case_json), "risk"), "category");
    /* Only the three known codes leave this function: the value drives priorities. */
    for (size_t i = 0; c && i < 3; i++)
        if (!strcmp(c, cats[i]))
            return cats[i];
    return NULL;
}

void ex_iso_time(int64_t t, char *buf, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, n, "1970-01-01T00:00:00Z");
}
