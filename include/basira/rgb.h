/* rgb.h - exact pixel moves on packed RGB (3 bytes a pixel, rows top to bottom). */
#ifndef BASIRA_RGB_H
#define BASIRA_RGB_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Mirror images and the clockwise quarter turn of a w x h image; rot90 writes an h x w
 * image. dst != src. */
void basira_rgb_flip_h(const uint8_t *src, int w, int h, uint8_t *dst);
void basira_rgb_flip_v(const uint8_t *src, int w, int h, uint8_t *dst);
void basira_rgb_rot90(const uint8_t *src, int w, int h, uint8_t *dst);

#ifdef __cplusplus
}
#endif

#endif
