/*
 * fuzz_model_meta.c - the "basira" metadata parser of model files (model.h).
 *
 * A model file may come from anywhere (USB stick, download), so its metadata is
 * hostile input. Every byte string must give BASIRA_OK or an error with a message,
 * never a crash, a leak or a read past the buffer; and what parses must survive a
 * round trip through basira_model_info_to_json unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "basira/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    basira_model_info info, again;
    basira_error err;
    basira_error_clear(&err);
    basira_code rc = basira_model_info_parse((const char *)data, size, &info, &err);
    if (rc) {
        if (!err.message[0])
            abort(); /* every refusal must say why */
        return 0;
    }
    json_t *j = basira_model_info_to_json(&info);
    if (!j)
        abort();
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text)
        abort();
    rc = basira_model_info_parse(text, strlen(text), &again, &err);
    free(text);
    if (rc || again.num_classes != info.num_classes || again.tta != info.tta ||
        strcmp(again.name, info.name) || strcmp(again.classes[0].code, info.classes[0].code))
        abort();
    return 0;
}
