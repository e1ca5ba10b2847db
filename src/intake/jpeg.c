/*
 * jpeg.c - the common phone JPEG decoded with libjpeg-turbo directly, exactly as
 * libvips 8.14's JPEG loader would decode it.
 *
 * Why: a fresh `basira-triage` process spends about a third of its time loading
 * and starting libvips (its hundred shared libraries are all bound at load time),
 * for a photo that libvips hands to libjpeg anyway (issue 17). The same libjpeg
 * calls with the same settings give the same pixels, so a JPEG whose decoding
 * involves nothing else is decoded here and never needs libvips:
 *
 *   - three components decoded to RGB (YCbCr or RGB; not grey, not CMYK);
 *   - no ICC profile (libvips would convert with lcms2: such photos go to libvips);
 *   - no EXIF block, or one whose orientation libexif reads plainly (libvips reads
 *     it with libexif too; an odd one goes to libvips).
 *
 * What libvips' loader does is reproduced: DCT scaling by 1/shrink
 * (jpeg2vips.c read_jpeg_header), the size rounded down (libjpeg rounds up and
 * fills the last column), only the lines the result needs are read, the end of
 * the data is an error (fail_on=truncated: a half-received photo is refused), a
 * hundred warnings are an error. The caller (load.c) then resizes and undoes the
 * orientation on the small copy, in libvips' order. tests/intake/test_jpeg.c compares the
 * result with libvips byte for byte.
 */
#include "core/i18n.h"
#include "intake_internal.h"

#include <libexif/exif-data.h>
#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include <jerror.h> /* ERREXIT, JERR_INPUT_EOF: after jpeglib.h */

/* libvips' readjpeg_emit_message(): the 100th warning is fatal. */
#define MAX_WARNINGS 100
/* vips_exif_load_data_without_fix(): EXIF blocks outside 4 B .. 1 MB are refused. */
#define EXIF_MAX_BYTES (1 << 20)
/* Check the processing deadline every so many decoded lines. */
#define DEADLINE_LINES 64

typedef struct jpeg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jmp;
} jpeg_err;

static void on_error(j_common_ptr cinfo)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    longjmp(e->jmp, 1);
}

static void on_message(j_common_ptr cinfo, int level)
{
    /* Warnings are counted, never printed (Basira reports problems as errors). */
    if (level < 0 && ++cinfo->err->num_warnings >= MAX_WARNINGS)
        cinfo->err->error_exit(cinfo);
}

/*
 * The whole file is in memory. libjpeg asking for more after its end is a
 * truncated file: an error, as in libvips with fail_on=truncated (jpeg_mem_src()
 * would instead invent an end marker and decode grey).
 */
static void src_init(j_decompress_ptr cinfo)
{
    (void)cinfo;
}

static boolean src_fill(j_decompress_ptr cinfo)
{
    ERREXIT(cinfo, JERR_INPUT_EOF);
    return FALSE;
}

static void src_skip(j_decompress_ptr cinfo, long n)
{
    struct jpeg_source_mgr *s = cinfo->src;
    if (n <= 0)
        return;
    if ((size_t)n > s->bytes_in_buffer)
        ERREXIT(cinfo, JERR_INPUT_EOF);
    s->next_input_byte += n;
    s->bytes_in_buffer -= (size_t)n;
}

static void src_term(j_decompress_ptr cinfo)
{
    (void)cinfo;
}

typedef struct reader {
    struct jpeg_decompress_struct cinfo;
    jpeg_err err;
    struct jpeg_source_mgr src;
} reader;

/* Set up *r to read data; the caller has called setjmp(r->err.jmp). */
static void reader_open(reader *r, const uint8_t *data, size_t len)
{
    r->cinfo.err = jpeg_std_error(&r->err.pub);
    r->err.pub.error_exit = on_error;
    r->err.pub.emit_message = on_message;
    jpeg_create_decompress(&r->cinfo);
    r->src.init_source = src_init;
    r->src.fill_input_buffer = src_fill;
    r->src.skip_input_data = src_skip;
    r->src.resync_to_restart = jpeg_resync_to_restart;
    r->src.term_source = src_term;
    r->src.next_input_byte = data;
    r->src.bytes_in_buffer = len;
    r->cinfo.src = &r->src;
}

/*
 * Largest JPEG DCT scaling (1, 2, 4, 8) that keeps the longer side >= 3/4 of the
 * target. Decoding at 1/8 or 1/4 scale is several times cheaper than decoding at
 * 1/2 and resampling, and every later step works far below max_side (the quality
 * gate at 200 px, the model at about 128 px), so a 4000 x 3000 photo decoded
 * straight to 1000 x 750 loses nothing: this keeps `basira triage` of a 12 MP
 * photo well inside its time budget on one core.
 */
int intake_jpeg_shrink(int longest, int target)
{
    int shrink = 1;
    while (shrink < 8 && (long)longest * 4 / (shrink * 2) >= (long)target * 3)
        shrink *= 2;
    return shrink;
}

int intake_jpeg_is_jpeg(const uint8_t *data, size_t len)
{
    /* libvips' vips__isjpeg(): the start-of-image marker and the next marker's 0xFF. */
    return len >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
}

static int has_prefix(const jpeg_saved_marker_ptr m, const char *prefix, unsigned min_len)
{
    size_t n = strlen(prefix);
    return m->data_length > min_len && m->data_length >= n && !memcmp(m->data, prefix, n);
}

/*
 * The orientation libvips would read from this EXIF block (vips__exif_parse():
 * libexif without its specification fix-ups, then exif_data_fix(), then the
 * first value of IFD0's Orientation, 1 outside 1..8), or 0 when the block is one
 * that is safer left to libvips itself.
 */
static int exif_orientation(const uint8_t *data, size_t len)
{
    if (len < 4 || len > EXIF_MAX_BYTES)
        return 0;
    ExifData *ed = exif_data_new();
    if (!ed)
        return 0;
    exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
    exif_data_load_data(ed, data, (unsigned)len);
    exif_data_fix(ed);
    int o = 1;
    ExifEntry *e = ed->ifd[EXIF_IFD_0]
                       ? exif_content_get_entry(ed->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION)
                       : NULL;
    if (e) {
        if (e->format == EXIF_FORMAT_SHORT && e->components >= 1 && e->components < 10 && e->data &&
            e->size >= 2) {
            o = exif_get_short(e->data, exif_data_get_byte_order(ed));
            if (o < 1 || o > 8)
                o = 1;
        } else {
            o = 0; /* stored some other way: libvips' own reading decides */
        }
    }
    exif_data_unref(ed);
    return o;
}

int intake_jpeg_probe(const uint8_t *data, size_t len, intake_jpeg_info *info)
{
    if (!data || !info || !intake_jpeg_is_jpeg(data, len))
        return 0;
    reader *r = calloc(1, sizeof *r);
    if (!r)
        return 0;
    int ok = 0;
    if (setjmp(r->err.jmp))
        goto done; /* a damaged header: libvips says what is wrong */
    reader_open(r, data, len);
    jpeg_save_markers(&r->cinfo, JPEG_APP0 + 1, 0xffff);
    jpeg_save_markers(&r->cinfo, JPEG_APP0 + 2, 0xffff);
    jpeg_read_header(&r->cinfo, TRUE);
    if (r->cinfo.num_components != 3 || r->cinfo.out_color_space != JCS_RGB ||
        r->err.pub.num_warnings > 0)
        goto done;
    int orientation = 1, seen_exif = 0;
    for (jpeg_saved_marker_ptr m = r->cinfo.marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 2 && has_prefix(m, "ICC_PROFILE", 0))
            goto done;
        /* libvips uses the first EXIF block only (attach_blob). */
        if (m->marker == JPEG_APP0 + 1 && !seen_exif && has_prefix(m, "Exif", 4)) {
            seen_exif = 1;
            orientation = exif_orientation(m->data, m->data_length);
            if (!orientation)
                goto done;
        }
    }
    info->width = (int)r->cinfo.image_width;
    info->height = (int)r->cinfo.image_height;
    info->interlaced = jpeg_has_multiple_scans(&r->cinfo) ? 1 : 0;
    info->orientation = orientation;
    ok = info->width > 0 && info->height > 0;
done:
    jpeg_destroy_decompress(&r->cinfo);
    free(r);
    return ok;
}

static basira_code corrupt(basira_error *err)
{
    return basira_error_setm(err, BASIRA_E_CORRUPT,
                             N_("the photo is damaged or incomplete (perhaps the transfer was "
                                "interrupted); send it again"));
}

basira_code intake_jpeg_decode(const uint8_t *data, size_t len, int shrink,
                               const struct timespec *deadline, uint8_t **rgb, int *width,
                               int *height, basira_error *err)
{
    *rgb = NULL;
    if (shrink != 1 && shrink != 2 && shrink != 4 && shrink != 8)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    /* Volatile: they change between setjmp() and a longjmp() back to it. */
    reader *volatile r = calloc(1, sizeof *r);
    uint8_t *volatile px = NULL;
    uint8_t *volatile line = NULL;
    volatile basira_code rc = BASIRA_OK;
    if (!r)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    if (setjmp(r->err.jmp)) {
        if (rc == BASIRA_OK)
            rc = corrupt(err);
        goto done;
    }
    reader_open(r, data, len);
    jpeg_read_header(&r->cinfo, TRUE);
    r->cinfo.scale_num = 1;
    r->cinfo.scale_denom = (unsigned)shrink;
    jpeg_calc_output_dimensions(&r->cinfo);
    /* libvips rounds the scaled size down; libjpeg's is rounded up. */
    const int w = (int)(r->cinfo.image_width / (unsigned)shrink),
              h = (int)(r->cinfo.image_height / (unsigned)shrink);
    const int ow = (int)r->cinfo.output_width, oh = (int)r->cinfo.output_height;
    if (w <= 0 || h <= 0 || r->cinfo.output_components != 3 || ow < w || oh < h) {
        rc = corrupt(err);
        goto done;
    }
    px = malloc((size_t)w * (size_t)h * 3);
    line = malloc((size_t)ow * 3);
    if (!px || !line) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto done;
    }
    jpeg_start_decompress(&r->cinfo);
    /* libvips reads in strips of 8 lines, as far as the last strip the result
     * touches: the same lines are read (so a file cut short in the last few
     * lines fails, or not, the same way). */
    int need = (h + 7) / 8 * 8;
    if (need > oh)
        need = oh;
    for (int y = 0; y < need; y++) {
        /* Straight into the result when the line is kept whole; else through line
         * (a line past the result, or libjpeg's rounded-up width cut to w). */
        const int direct = y < h && ow == w;
        JSAMPROW row = direct ? (JSAMPROW)(px + (size_t)y * w * 3) : (JSAMPROW)line;
        if (jpeg_read_scanlines(&r->cinfo, &row, 1) != 1) {
            rc = corrupt(err);
            goto done;
        }
        if (y < h && !direct)
            memcpy(px + (size_t)y * w * 3, line, (size_t)w * 3);
        if (deadline && y % DEADLINE_LINES == DEADLINE_LINES - 1 && intake_past(deadline)) {
            rc = basira_error_setm(err, BASIRA_E_LIMIT,
                                   N_("the photo took too long to decode and was refused; send it "
                                      "as the camera took it"));
            goto done;
        }
    }
    *width = w;
    *height = h;
    *rgb = px;
    px = NULL;
done:
    jpeg_destroy_decompress(&r->cinfo);
    free(r);
    free(px);
    free(line);
    return rc;
}
