/*
 * pixels.c - Clean Pixel Data (PS3.15 E.3.1) by device rules.
 *
 * Ultrasound and secondary-capture devices burn the patient's name, ID and dates into the
 * image at places that depend on the device and the image size. The data steward, after
 * looking at a device's images, writes where: for a matching image (same manufacturer,
 * model and size) those rectangles are set to zero in every frame, the image is then
 * declared Burned In Annotation NO and the Clean Pixel Data code (113101) is recorded.
 * Compressed pixel data is not decoded here, so it cannot be cleaned: such a file stays
 * refused. An image no rule matches stays refused too.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/i18n.h"
#include "deid/pixels.h"

static basira_code bad_line(const char *path, int line, basira_error *err)
{
    return basira_error_set(err, BASIRA_E_FORMAT,
                            _("%s:%d: expected MANUFACTURER|MODEL|ROWSxCOLS|x,y,w,h[;x,y,w,h...]"),
                            path, line);
}

static int parse_rects(char *s, deid_pixel_rule *r)
{
    for (char *save = NULL, *t = strtok_r(s, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
        long v[4];
        int used = 0;
        if (r->n_rects == DEID_MAX_RECTS ||
            sscanf(t, "%ld,%ld,%ld,%ld%n", &v[0], &v[1], &v[2], &v[3], &used) != 4 || t[used] ||
            v[0] < 0 || v[1] < 0 || v[2] <= 0 || v[3] <= 0)
            return -1;
        memcpy(r->rect[r->n_rects++], v, sizeof v);
    }
    return r->n_rects ? 0 : -1;
}

basira_code deid_pixel_rules_load(const char *path, deid_pixel_rules *out, basira_error *err)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f)
        return basira_error_set(err, BASIRA_E_IO, _("cannot read %s: %s"), path, strerror(errno));
    char line[1024];
    int lineno = 0;
    basira_code rc = BASIRA_OK;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        char *field[4], *save = NULL;
        int n = 0;
        for (char *p = line; n < 4; p = NULL) {
            char *t = strtok_r(p, "|", &save);
            if (!t)
                break;
            field[n++] = t;
        }
        deid_pixel_rule *r = out->n < DEID_MAX_PIXEL_RULES ? &out->r[out->n] : NULL;
        if (!r) {
            rc = basira_error_set(err, BASIRA_E_LIMIT, _("%s: more than %d pixel rules"), path,
                                  DEID_MAX_PIXEL_RULES);
            break;
        }
        memset(r, 0, sizeof *r);
        int used = 0;
        if (n != 4 || strtok_r(NULL, "|", &save) || strlen(field[0]) > 64 ||
            strlen(field[1]) > 64 || sscanf(field[2], "%dx%d%n", &r->rows, &r->cols, &used) != 2 ||
            field[2][used] || r->rows <= 0 || r->cols <= 0 || parse_rects(field[3], r)) {
            rc = bad_line(path, lineno, err);
            break;
        }
        strcpy(r->manufacturer, field[0]);
        strcpy(r->model, field[1]);
        out->n++;
    }
    fclose(f);
    return rc;
}

static char *get(deid_node *n, uint16_t g, uint16_t e)
{
    char *v = NULL;
    return deid_node_get_tag(n, g, e, &v, NULL) ? NULL : v;
}

const deid_pixel_rule *deid_pixel_rules_match(const deid_pixel_rules *rules, deid_node *ds)
{
    char *man = get(ds, 0x0008, 0x0070), *model = get(ds, 0x0008, 0x1090);
    char *rows = get(ds, 0x0028, 0x0010), *cols = get(ds, 0x0028, 0x0011);
    const deid_pixel_rule *found = NULL;
    for (int i = 0; man && model && rows && cols && !found && i < rules->n; i++) {
        const deid_pixel_rule *r = &rules->r[i];
        if (!strcmp(r->manufacturer, man) && !strcmp(r->model, model) && atoi(rows) == r->rows &&
            atoi(cols) == r->cols)
            found = r;
    }
    free(man);
    free(model);
    free(rows);
    free(cols);
    return found;
}

basira_code deid_pixel_rule_apply(const deid_pixel_rule *r, deid_dcm *d, basira_error *err)
{
    for (int i = 0; i < r->n_rects; i++) {
        basira_error e;
        basira_code rc =
            deid_dcm_blank_rect(d, r->rect[i][0], r->rect[i][1], r->rect[i][2], r->rect[i][3], &e);
        if (rc)
            return basira_error_set(err, rc,
                                    _("the pixel rule for %s %s cannot clean this image (%s): "
                                      "refused"),
                                    r->manufacturer, r->model, e.message);
    }
    return BASIRA_OK;
}
