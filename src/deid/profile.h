/*
 * profile.h - the attribute table of the PS3.15 Annex E Basic Application Level
 * Confidentiality Profile and its options (Table E.1-1), as generated into
 * profile_table.c by gen_profile.py from the standard's own table.
 */
#ifndef BASIRA_DEID_PROFILE_H
#define BASIRA_DEID_PROFILE_H

#include <stddef.h>
#include <stdint.h>

/* Action codes of the Basic Profile column (PS3.15 E.3.1). */
typedef enum deid_action {
    DEID_X,   /* remove */
    DEID_Z,   /* zero length (or a dummy) */
    DEID_D,   /* a non-zero length dummy */
    DEID_U,   /* a UID, replaced consistently */
    DEID_XZ,  /* X unless Z is needed for conformance */
    DEID_XD,  /* X unless D is needed */
    DEID_ZD,  /* Z unless D is needed */
    DEID_XZD, /* X unless Z or D is needed */
    DEID_XZU, /* X unless Z or replacement of the UIDs inside is needed (sequences) */
} deid_action;

/* Option columns: no entry, K keep, C clean. */
typedef enum deid_opt { DEID_OPT_NONE = 0, DEID_OPT_K, DEID_OPT_C } deid_opt;

typedef struct deid_rule {
    uint16_t group, element;           /* with the masks: "50XX" is 0x5000 / 0xFF00 */
    uint16_t group_mask, element_mask; /* 0xFFFF for an exact tag */
    deid_action basic;
    const char *name;
    deid_opt safe_private, uids, device, institution, patient_chars, full_dates, modified_dates,
        descriptors, structured, graphics;
} deid_rule;

extern const deid_rule deid_profile_rules[]; /* sorted by (group, element) */
extern const size_t deid_profile_num_rules;
extern const char deid_profile_edition[];

/* The rule of a tag, or NULL when Table E.1-1 does not list it. */
const deid_rule *deid_profile_find(uint16_t group, uint16_t element);

/* Private attributes: odd groups other than 0001, 0003, 0005, 0007 and FFFF (PS3.5 7.8.1). */
int deid_is_private(uint16_t group);

#endif
