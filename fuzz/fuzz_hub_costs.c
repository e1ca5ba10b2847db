/*
 * fuzz_hub_costs.c - the indicators' text inputs: cost parameters (JSON from a
 * file or the hub's settings, basira_hub_costs_parse) and a group name (the
 * dashboard's ?by=, basira_hub_group_by_parse). The input is NUL-terminated.
 */
#include "basira/hub_indicators.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    basira_error err;
    basira_hub_costs c;
    if (basira_hub_costs_parse(text, &c, &err) == BASIRA_OK &&
        (!(c.per_case >= 0) || !isfinite(c.per_review) || c.currency[sizeof c.currency - 1]))
        abort(); /* accepted costs are finite, non-negative, and the currency terminated */
    basira_hub_group_by by;
    basira_hub_group_by_parse(text, &by, &err);
    free(text);
    return 0;
}
