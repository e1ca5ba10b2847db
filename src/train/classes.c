/*
 * classes.c - the list of classes a model predicts: their order (the order of
 * the network's outputs), their names in the three languages of Basira and
 * whether each counts as malignant or pre-malignant for the risk index.
 */
#include "basira/json.h"
#include "basira/partition.h"
#include "basira/train.h"
#include "core/i18n.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static basira_code copy_str(char *dst, size_t cap, const char *src, int idx, basira_error *err)
{
    size_t n = strlen(src);
    if (n >= cap)
        return basira_error_set(err, BASIRA_E_FORMAT,
                                _("class %d: a code or name is longer than %zu bytes"), idx + 1,
                                cap - 1);
    memcpy(dst, src, n + 1);
    return BASIRA_OK;
}

basira_code basira_classes_from_json(const json_t *j, basira_classes *out, basira_error *err)
{
    if (!out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    memset(out, 0, sizeof *out);
    if (!json_is_array(j) || json_array_size(j) == 0)
        return basira_error_set(err, BASIRA_E_FORMAT,
                                _("the classes must be a non-empty JSON array of objects "
                                  "{\"code\", \"names\", \"malignant\"}"));
    if (json_array_size(j) > BASIRA_MAX_CLASSES)
        return basira_error_set(err, BASIRA_E_LIMIT,
                                _("at most %d classes are supported (got %zu)"), BASIRA_MAX_CLASSES,
                                json_array_size(j));
    size_t i;
    json_t *c;
    json_array_foreach(j, i, c)
    {
        int idx = (int)i;
        basira_class_info *ci = &out->c[i];
        const json_t *code = json_object_get(c, "code");
        if (!json_is_object(c) || !json_is_string(code) || !json_string_length(code))
            return basira_error_set(err, BASIRA_E_FORMAT, _("class %d has no \"code\" string"),
                                    idx + 1);
        basira_code rc = copy_str(ci->code, sizeof ci->code, json_string_value(code), idx, err);
        if (rc)
            return rc;
        for (int k = 0; k < idx; k++)
            if (!strcmp(out->c[k].code, ci->code))
                return basira_error_set(err, BASIRA_E_FORMAT, _("class code '%s' appears twice"),
                                        ci->code);
        const json_t *names = json_object_get(c, "names");
        if (names && !json_is_object(names))
            return basira_error_set(err, BASIRA_E_FORMAT,
                                    _("class '%s': \"names\" must be an object"), ci->code);
        static const char *const langs[3] = {"en", "fr", "ar"};
        char *dst[3] = {ci->name_en, ci->name_fr, ci->name_ar};
        size_t cap[3] = {sizeof ci->name_en, sizeof ci->name_fr, sizeof ci->name_ar};
        for (int l = 0; l < 3; l++) {
            const json_t *nm = json_object_get(names, langs[l]);
            if (nm && !json_is_string(nm))
                return basira_error_set(err, BASIRA_E_FORMAT,
                                        _("class '%s': name \"%s\" must be a string"), ci->code,
                                        langs[l]);
            rc = copy_str(dst[l], cap[l], nm ? json_string_value(nm) : ci->code, idx, err);
            if (rc)
                return rc;
        }
        const json_t *mal = json_object_get(c, "malignant");
        if (mal && !json_is_boolean(mal))
            return basira_error_set(err, BASIRA_E_FORMAT,
                                    _("class '%s': \"malignant\" must be true or false"), ci->code);
        ci->malignant = json_is_true(mal);
        ci->partition =
            basira_partition_of(json_object_get(c, "partition"), ci->code, ci->malignant);
        if (ci->partition < 0)
            return basira_error_set(err, BASIRA_E_FORMAT,
                                    _("class '%s': \"partition\" must be \"malignant\" (exactly "
                                      "when malignant), \"benign\" or \"non-neoplastic\""),
                                    ci->code);
    }
    out->n = (int)json_array_size(j);
    return BASIRA_OK;
}

basira_code basira_classes_load(const char *path, basira_classes *out, basira_error *err)
{
    if (!path || !out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    json_error_t je;
    json_t *j = NULL;
    basira_error rerr;
    if (basira_json_read_file(path, (size_t)16 << 20, &j, &je, &rerr))
        return basira_error_set(err, BASIRA_E_FORMAT,
                                _("cannot read the classes file %s: %s (line %d)"), path,
                                je.text[0] ? je.text : rerr.message, je.line);
    basira_code rc = basira_classes_from_json(j, out, err);
    json_decref(j);
    if (rc && err) {
        char msg[BASIRA_ERROR_MESSAGE_MAX];
        snprintf(msg, sizeof msg, "%s", err->message);
        basira_error_set(err, rc, "%s: %s", path, msg);
    }
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

basira_code basira_classes_from_labels(const char *const *labels, size_t n, basira_classes *out,
                                       basira_error *err)
{
    if (!out || (n && !labels))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    memset(out, 0, sizeof *out);
    if (n == 0)
        return basira_error_set(err, BASIRA_E_FORMAT, _("no labelled rows to take classes from"));
    const char **s = malloc(n * sizeof *s);
    if (!s)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    memcpy(s, labels, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_str);
    basira_code rc = BASIRA_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        if (i && !strcmp(s[i], s[i - 1]))
            continue;
        if (!*s[i]) {
            rc = basira_error_set(err, BASIRA_E_FORMAT, _("a row has an empty label"));
            break;
        }
        if (out->n == BASIRA_MAX_CLASSES) {
            rc = basira_error_set(err, BASIRA_E_LIMIT,
                                  _("more than %d distinct labels; at most %d classes are "
                                    "supported"),
                                  BASIRA_MAX_CLASSES, BASIRA_MAX_CLASSES);
            break;
        }
        basira_class_info *ci = &out->c[out->n];
        rc = copy_str(ci->code, sizeof ci->code, s[i], out->n, err);
        if (!rc) {
            /* code is shorter than every name field: the copies always fit. */
            memcpy(ci->name_en, ci->code, sizeof ci->code);
            memcpy(ci->name_fr, ci->code, sizeof ci->code);
            memcpy(ci->name_ar, ci->code, sizeof ci->code);
            ci->partition = basira_partition_of(NULL, ci->code, 0);
            out->n++;
        }
    }
    free(s);
    return rc;
}

int basira_classes_find(const basira_classes *cl, const char *code)
{
    if (!cl || !code)
        return -1;
    for (int i = 0; i < cl->n; i++)
        if (!strcmp(cl->c[i].code, code))
            return i;
    return -1;
}

json_t *basira_classes_to_json(const basira_classes *cl)
{
    json_t *a = json_array();
    if (!a || !cl)
        return a;
    for (int i = 0; i < cl->n; i++) {
        const basira_class_info *c = &cl->c[i];
        json_t *o = json_pack("{s:s, s:{s:s, s:s, s:s}, s:b, s:s}", "code", c->code, "names", "en",
                              c->name_en, "fr", c->name_fr, "ar", c->name_ar, "malignant",
                              c->malignant, "partition", basira_partition_code(c->partition));
        if (!o || json_array_append_new(a, o)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

void basira_class_weights(basira_class_weighting how, const size_t *counts, int k, float *weights)
{
    size_t total = 0;
    int present = 0;
    for (int i = 0; i < k; i++) {
        total += counts[i];
        present += counts[i] > 0;
    }
    for (int i = 0; i < k; i++) {
        if (how == BASIRA_WEIGHTS_NONE) {
            weights[i] = 1.0f;
        } else if (!counts[i]) {
            weights[i] = 0.0f; /* never a label: the weight is never used */
        } else {
            double w = (double)total / ((double)present * (double)counts[i]);
            weights[i] = (float)(how == BASIRA_WEIGHTS_SQRT ? sqrt(w) : w);
        }
    }
}
