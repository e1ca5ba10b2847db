/*
 * catalog.h - internal: the translations of one language, chosen per document
 * or per request (see basira_translator in include/basira/i18n.h).
 *
 * The rest of Basira translates with gettext, whose language is a property of
 * the whole process (LANGUAGE, LC_MESSAGES). A clinic node serves French,
 * Arabic and English letters and answers at the same time from several threads,
 * and changing the environment per request would race. So Basira reads
 * the same compiled catalogue gettext uses (<localedir>/<lang>/LC_MESSAGES/
 * basira.mo, built from the po/ fragments) into a per-call object and looks strings up
 * there. Strings are still marked N_() in the source, so the completeness test
 * checks them like any other.
 */
#ifndef BASIRA_CORE_CATALOG_H
#define BASIRA_CORE_CATALOG_H

#include "basira/error.h"
#include <stddef.h>

typedef struct basira_catalog basira_catalog;

/*
 * Load the catalogue of lang ("fr", "ar"; "en" and NULL give an empty
 * catalogue, English being the msgid language). A missing catalogue file is
 * not an error (the text stays English); a malformed one is BASIRA_E_CORRUPT.
 */
basira_code basira_catalog_open(const char *lang, basira_catalog **out, basira_error *err);

/* Parse a .mo image held in memory (the buffer is copied). For tests and the fuzzer. */
basira_code basira_catalog_parse(const unsigned char *mo, size_t len, basira_catalog **out,
                                 basira_error *err);

/* The translation of msgid, or msgid itself when there is none. cat may be NULL. */
const char *basira_catalog_tr(const basira_catalog *cat, const char *msgid)
    __attribute__((format_arg(2)));

void basira_catalog_free(basira_catalog *cat);

#endif
