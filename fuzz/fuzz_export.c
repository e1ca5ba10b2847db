/*
 * fuzz_export.c - case JSON (as a hostile or damaged store could return it)
 * through the FHIR bundle and the CSV/JSON export, and raw bytes through the
 * translation-catalogue parser. Nothing may crash, leak or read out of bounds.
 */
#include "basira/export.h"
#include "core/catalog.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    basira_catalog *cat = NULL;
    if (!basira_catalog_parse(data, size, &cat, NULL)) {
        (void)basira_catalog_tr(cat, "Patient");
        (void)basira_catalog_tr(cat, "zzz");
        basira_catalog_free(cat);
    }
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if (!j)
        return 0;
    json_t *b = NULL;
    if (!basira_fhir_bundle(j, data, size > 64 ? 64 : size, "image/jpeg", &b, NULL))
        json_decref(b);
    int64_t id;
    (void)basira_case_report_image(j, &id, NULL);
    json_t *arr = json_is_array(j) ? json_incref(j) : json_pack("[O]", j);
    const char *formats[] = {"csv", "json"};
    for (int i = 0; i < 2; i++) {
        char *out = NULL;
        size_t len;
        if (!basira_export_cases(arr, formats[i], &out, &len, NULL))
            free(out);
    }
    json_decref(arr);
    json_decref(j);
    return 0;
}
