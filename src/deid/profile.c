/* profile.c - looking up the generated Table E.1-1 (profile_table.c). */
#include "deid/profile.h"

const deid_rule *deid_profile_find(uint16_t group, uint16_t element)
{
    /* Exact tags: binary search (the table is sorted by tag). */
    size_t lo = 0, hi = deid_profile_num_rules;
    uint32_t key = (uint32_t)group << 16 | element;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const deid_rule *r = &deid_profile_rules[mid];
        uint32_t t = (uint32_t)r->group << 16 | r->element;
        if (t < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < deid_profile_num_rules; i++) {
        const deid_rule *r = &deid_profile_rules[i];
        if (r->group != group || r->element != element)
            break;
        if (r->group_mask == 0xFFFF && r->element_mask == 0xFFFF)
            return r;
    }
    /* Repeating groups (curves 50xx, overlays 60xx): a short linear scan. */
    for (size_t i = 0; i < deid_profile_num_rules; i++) {
        const deid_rule *r = &deid_profile_rules[i];
        if ((r->group_mask != 0xFFFF || r->element_mask != 0xFFFF) &&
            (group & r->group_mask) == r->group && (element & r->element_mask) == r->element)
            return r;
    }
    return NULL;
}

int deid_is_private(uint16_t group)
{
    return (group & 1) && group != 0x0001 && group != 0x0003 && group != 0x0005 &&
           group != 0x0007 && group != 0xFFFF;
}
