/* layout.c - one run of text on a PDF page (see layout.h). */
#include "export/layout.h"

PangoLayout *basira_pdf_layout(cairo_t *cr, int rtl, double size, int bold)
{
    PangoLayout *l = pango_cairo_create_layout(cr);
    if (!l)
        return NULL;
    PangoContext *ctx = pango_layout_get_context(l);
    pango_context_set_base_dir(ctx, rtl ? PANGO_DIRECTION_RTL : PANGO_DIRECTION_LTR);
    pango_layout_context_changed(l);
    pango_layout_set_auto_dir(l, FALSE);
    PangoFontDescription *fd =
        pango_font_description_from_string(rtl ? BASIRA_PDF_FONTS_ARABIC : BASIRA_PDF_FONTS_LATIN);
    pango_font_description_set_size(fd, (gint)(size * PANGO_SCALE));
    if (bold)
        pango_font_description_set_weight(fd, PANGO_WEIGHT_BOLD);
    pango_layout_set_font_description(l, fd);
    pango_font_description_free(fd);
    return l;
}
