/*
 * phash.c - near-duplicate photos, grouped before a split.
 *
 * Atlas data sets hold the same photo several times (re-cropped, re-compressed,
 * resized: about a fifth of Fitzpatrick17k, CleanPatrick 2025). Split by image, a copy
 * in the test part of a photo the model trained on inflates every figure. The
 * difference hash (dHash, Krawetz 2013) is robust to exactly those edits: the photo is
 * reduced to 9x8 grey levels and each bit says whether a pixel is brighter than its
 * right neighbour. Photos whose hashes differ in at most max_distance of the 64 bits
 * are linked, and the connected components (union-find) are the groups.
 */
#include <stdlib.h>

#include "basira/image.h"
#include "basira/train.h"

basira_code basira_image_dhash(const basira_image *img, uint64_t *hash, basira_error *err)
{
    basira_image *small = NULL;
    basira_code rc = basira_image_resize(img, 9, 8, &small, err);
    if (rc)
        return rc;
    const uint8_t *p = basira_image_pixels(small);
    double g[8][9];
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 9; x++) {
            const uint8_t *q = p + 3 * (y * 9 + x);
            g[y][x] = 0.299 * q[0] + 0.587 * q[1] + 0.114 * q[2];
        }
    basira_image_free(small);
    uint64_t h = 0;
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++)
            h = (h << 1) | (g[y][x] > g[y][x + 1]);
    *hash = h;
    return BASIRA_OK;
}

static size_t find(size_t *parent, size_t i)
{
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

basira_code basira_group_near_duplicates(const uint64_t *hash, size_t n, int max_distance,
                                         int *group, size_t *n_groups, basira_error *err)
{
    size_t *parent = malloc(sizeof(size_t) * (n ? n : 1));
    if (!parent)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    for (size_t i = 0; i < n; i++)
        parent[i] = i;
    /* All pairs: 50 M popcounts for 10,000 photos, well under a second. */
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (__builtin_popcountll(hash[i] ^ hash[j]) <= max_distance) {
                size_t a = find(parent, i), b = find(parent, j);
                if (a != b)
                    parent[a > b ? a : b] = a < b ? a : b;
            }
    /* Groups numbered in order of their first photo. */
    size_t ng = 0;
    for (size_t i = 0; i < n; i++) {
        size_t r = find(parent, i);
        if (r == i)
            group[i] = (int)ng++;
        else
            group[i] = group[r]; /* r < i: numbered already */
    }
    free(parent);
    *n_groups = ng;
    return BASIRA_OK;
}
