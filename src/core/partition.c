/*
 * partition.c - the three-partition view of a class (include/basira/partition.h).
 */
#include "basira/partition.h"

#include <string.h>

static const char *const partition_codes[3] = {"benign", "malignant", "non-neoplastic"};

const char *basira_partition_code(int partition)
{
    return partition >= 0 && partition < 3 ? partition_codes[partition] : "benign";
}

int basira_partition_of(const json_t *partition, const char *code, int malignant)
{
    if (!partition) {
        if (malignant)
            return BASIRA_PARTITION_MALIGNANT;
        return code && !strcmp(code, "non-neoplastic") ? BASIRA_PARTITION_NON_NEOPLASTIC
                                                       : BASIRA_PARTITION_BENIGN;
    }
    for (int p = 0; json_is_string(partition) && p < 3; p++)
        if (!strcmp(json_string_value(partition), partition_codes[p]))
            return (p == BASIRA_PARTITION_MALIGNANT) == (malignant != 0) ? p : -1;
    return -1;
}
