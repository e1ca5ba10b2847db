/*
 * fuzz_intake.c - libFuzzer target: arbitrary bytes as an uploaded photo.
 *
 * basira_image_load_buffer() must return an error code or an image for any
 * input, never crash, hang or leak. Small limits keep each run fast and let the
 * fuzzer reach the size checks; a decoded image also goes through the quality
 * gate and the skin tone, which must accept any pixels.
 *
 * HEIF inputs are refused here ("unsupported": no decoding program): on a node
 * they are decoded by basira-decode, a separate memory-limited process, because
 * their codecs allocate by the bitstream's size, not the header's (a 5 KB file
 * made libFuzzer report a 2 GB malloc). That path has its own bounded tests
 * (tests/intake/test_decode_helper.c).
 */
#include <stddef.h>
#include <stdint.h>

#include "basira/image.h"
#include "basira/quality.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    basira_intake_options opts;
    basira_intake_options_default(&opts);
    opts.max_pixels = 4000000; /* 4 MP: a hostile header cannot make a run slow */
    opts.max_side = 256;
    opts.min_side = 8;
    opts.decode_helper = ""; /* none: HEIF is refused, never decoded in this process */
    basira_image *img = NULL;
    basira_error err;
    if (basira_image_load_buffer(data, size, &opts, &img, &err) == BASIRA_OK) {
        basira_quality_report rep;
        basira_skin_tone tone;
        /* The combined call (what triage uses) and the two separate ones. */
        (void)basira_photo_assess(img, &rep, &tone, &err);
        (void)basira_quality_assess(img, &rep, &err);
        (void)basira_skin_tone_estimate(img, &tone, &err);
        basira_image_free(img);
    }
    return 0;
}
