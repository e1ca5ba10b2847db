/*
 * layout.h - one run of text on a PDF page, shared by the referral letter
 * (pdf.c) and the certification report (src/certify).
 */
#ifndef BASIRA_EXPORT_LAYOUT_H
#define BASIRA_EXPORT_LAYOUT_H

#include <pango/pangocairo.h>

/* Families named explicitly (Debian fonts-noto-core, fonts-dejavu-core as fallback). */
#define BASIRA_PDF_FONTS_LATIN "Noto Sans, DejaVu Sans"
#define BASIRA_PDF_FONTS_ARABIC "Noto Sans Arabic, Noto Sans, DejaVu Sans"

/*
 * A layout on cr in the page's direction (rtl: right to left) with its fonts at
 * size points (bold or not). auto_dir is off: the page's direction decides, not
 * the first strong letter of each paragraph, so a line starting with a Latin
 * patient reference is still laid out right to left in an Arabic page.
 * Free with g_object_unref(); NULL when out of memory.
 */
PangoLayout *basira_pdf_layout(cairo_t *cr, int rtl, double size, int bold);

#endif
