/*
 * rgb.c - exact pixel moves on packed RGB: mirror images and the quarter turn. Core, not
 * training, because the model's preprocessing turns portrait photos with the same
 * function the training augmentation and the shift check use (basira_preprocess_fit).
 */
#include "basira/rgb.h"

#include <string.h>

void basira_rgb_flip_h(const uint8_t *src, int w, int h, uint8_t *dst)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            memcpy(dst + 3 * ((size_t)y * w + x), src + 3 * ((size_t)y * w + (w - 1 - x)), 3);
}

void basira_rgb_flip_v(const uint8_t *src, int w, int h, uint8_t *dst)
{
    for (int y = 0; y < h; y++)
        memcpy(dst + 3 * (size_t)y * w, src + 3 * (size_t)(h - 1 - y) * w, 3 * (size_t)w);
}

void basira_rgb_rot90(const uint8_t *src, int w, int h, uint8_t *dst)
{
    /* Clockwise: the output is h wide and w high; out(x, y) = in(y, h - 1 - x). */
    for (int y = 0; y < w; y++)
        for (int x = 0; x < h; x++)
            memcpy(dst + 3 * ((size_t)y * h + x), src + 3 * ((size_t)(h - 1 - x) * w + y), 3);
}
