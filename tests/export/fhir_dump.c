/*
 * fhir_dump.c - writes the FHIR bundles of a few representative cases to a
 * folder, for the schema validation (validate_fhir.js).
 * Usage: export_fhir_dump OUTDIR
 */
#include "basira/export.h"
#include "fixtures.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    unsigned char *photo = NULL;
    size_t plen = 0;
    if (fixture_photo(&photo, &plen))
        return 1;
    json_t *cases[] = {
        fixture_case(1, "PT-HIGH", "high", 82, "overridden", "requested", "Saigne depuis 2 mois"),
        fixture_case(2, "PT-MEDIUM", "medium", 21, NULL, NULL, NULL),
        fixture_case(3, "PT-LOW", "low", 3, "accepted", "none", NULL),
        fixture_case(4, "PT-NONE", NULL, 0, NULL, NULL, NULL),
    };
    json_object_set_new(json_object_get(cases[1], "consent"), "research", json_false());
    int rc = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *b = NULL;
        basira_error err;
        if (basira_fhir_bundle(cases[i], i == 3 ? NULL : photo, i == 3 ? 0 : plen, "image/jpeg", &b,
                               &err)) {
            fprintf(stderr, "case %zu: %s\n", i, err.message);
            rc = 1;
        } else {
            char path[4096];
            snprintf(path, sizeof path, "%s/bundle-%zu.json", argv[1], i + 1);
            if (json_dump_file(b, path, JSON_INDENT(1))) {
                fprintf(stderr, "cannot write %s\n", path);
                rc = 1;
            }
        }
        json_decref(b);
        json_decref(cases[i]);
    }
    free(photo);
    return rc;
}
