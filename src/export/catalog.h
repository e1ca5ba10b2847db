/*
 * catalog.h - internal: the translations of one language, chosen per document.
 *
 * The rest of Basira translates with gettext, whose language is a property of
 * the whole process (LANGUAGE, LC_MESSAGES). A clinic node serves French,
 * Arabic and English letters at the same time from several threads, and
 * changing the environment per request would race. So the export library reads
 * the same compiled catalogue gettext uses (<localedir>/<lang>/LC_MESSAGES/
 * basira.mo, built from the po/ fragments) into a per-call object and looks strings up
 * there. Strings are still marked N_() in the source, so the completeness test
 * checks them like any other.
 */
#ifndef BASIRA_EXPORT_CATALOG_H
#define BASIRA_EXPORT_CATALOG_H

#include "basira/error.h"
#include <stddef.h>

typedef struct export_catalog export_catalog;

/*
 * Load the catalogue of lang ("fr", "ar"; "en" and NULL give an empty
 * catalogue, English being the msgid language). A missing catalogue file is
 * not an error (the text stays English); a malformed one is BASIRA_E_CORRUPT.
 */
basira_code export_catalog_open(const char *lang, export_catalog **out, basira_error *err);

/* Parse a .mo image held in memory (the buffer is copied). For tests and the fuzzer. */
basira_code export_catalog_parse(const unsigned char *mo, size_t len, export_catalog **out,
                                 basira_error *err);

/* The translation of msgid, or msgid itself when there is none. cat may be NULL. */
const char *export_tr(const export_catalog *cat, const char *msgid) __attribute__((format_arg(2)));

void export_catalog_free(export_catalog *cat);

#endif
