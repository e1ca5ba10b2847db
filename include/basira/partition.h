/*
 * partition.h - the three-partition view of a model's classes (issue 11): malignant,
 * benign or non-neoplastic (inflammatory, infectious). A triage reports the probability
 * of each partition as the sum over its classes, so a model of 21 conditions and a model
 * of the 3 partitions give the same view.
 */
#ifndef BASIRA_PARTITION_H
#define BASIRA_PARTITION_H

#include <jansson.h>

typedef enum basira_partition {
    BASIRA_PARTITION_BENIGN = 0,
    BASIRA_PARTITION_MALIGNANT = 1,
    BASIRA_PARTITION_NON_NEOPLASTIC = 2,
} basira_partition;

/*
 * The partition of a class from its optional "partition" value (NULL: absent): "malignant",
 * "benign" or "non-neoplastic". Absent: a malignant class is malignant, a class coded
 * "non-neoplastic" non-neoplastic, any other benign. -1 when the value is not one of the
 * three, or disagrees with the malignant flag (a malignant partition exactly when malignant).
 */
int basira_partition_of(const json_t *partition, const char *code, int malignant);
/* "malignant", "benign" or "non-neoplastic" ("benign" for anything else). */
const char *basira_partition_code(int partition);

#endif
