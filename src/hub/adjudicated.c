/*
 * adjudicated.c - a clinic's adjudicated photos at the hub, written out as a
 * folder of images and a CSV (image_id, dx) for recalibration
 * (`basira recalibrate`, which runs `basira calibrate` on them).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basira/fs.h"
#include "core/i18n.h"
#include "oversight_internal.h"

static int is_code(const char *const *codes, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(codes[i], s))
            return 1;
    return 0;
}

basira_code basira_hub_export_adjudicated(basira_hub *hub, const char *clinic,
                                          const char *const *codes, int n_codes, const char *dir,
                                          const char *csv_path, size_t *n, basira_error *err)
{
    *n = 0;
    const char *vals[] = {clinic ? clinic : ""};
    PGresult *r = NULL;
    /* The latest reply's diagnosis of each case; one row per photo with a stored copy. */
    basira_code rc = hub_query(
        hub,
        "SELECT i.photo_sha256, encode(p.data, 'base64'), (SELECT rp.diagnosis FROM hub_replies "
        "rp WHERE rp.node_id = i.node_id AND rp.case_id = i.case_id ORDER BY rp.id DESC LIMIT 1) "
        "FROM hub_images i JOIN hub_nodes n ON n.id = i.node_id JOIN hub_photos p ON p.sha256 = "
        "i.photo_sha256 WHERE n.name = $1 ORDER BY i.case_id, i.image_id",
        1, vals, &r, err);
    if (rc)
        return rc;
    FILE *csv = fopen(csv_path, "w");
    if (!csv) {
        PQclear(r);
        return basira_error_setm(err, BASIRA_E_IO, N_("cannot write %s"), csv_path);
    }
    fprintf(csv, "image_id,dx\n");
    for (int i = 0; !rc && i < PQntuples(r); i++) {
        const char *sha = PQgetvalue(r, i, 0), *dx = PQgetvalue(r, i, 2);
        if (PQgetisnull(r, i, 2) || !is_code(codes, n_codes, dx))
            continue; /* not adjudicated, or a diagnosis outside the model's classes */
        const char *b64 = PQgetvalue(r, i, 1);
        size_t cap = strlen(b64) / 4 * 3 + 3, len = 0;
        unsigned char *img = malloc(cap);
        char name[80], path[4096];
        snprintf(name, sizeof name, "%.64s.jpg", sha);
        if (!img)
            rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        else if (sodium_base642bin(img, cap, b64, strlen(b64), "\r\n", &len, NULL,
                                   sodium_base64_VARIANT_ORIGINAL))
            rc =
                basira_error_setm(err, BASIRA_E_CORRUPT, N_("photo %s at the hub is damaged"), sha);
        else if (!(rc = basira_fs_join(dir, name, path, sizeof path, err)) &&
                 !(rc = basira_fs_write_atomic(path, img, len, 0600, err))) {
            fprintf(csv, "%.64s,%s\n", sha, dx);
            (*n)++;
        }
        free(img);
    }
    PQclear(r);
    if (fclose(csv) && !rc)
        rc = basira_error_setm(err, BASIRA_E_IO, N_("cannot write %s"), csv_path);
    return rc;
}
