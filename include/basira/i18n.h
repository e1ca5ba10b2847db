/*
 * i18n.h - language of user-facing text: French, Arabic (right to left), English.
 *
 * The language comes from the environment the way gettext reads it
 * (LC_ALL, LC_MESSAGES, LANG; LANG=fr_FR.UTF-8 -> French, ar_MA.UTF-8 -> Arabic,
 * anything else -> English). It works even when the system has not generated the
 * fr/ar locales: Basira then runs in C.UTF-8 and tells gettext the language itself.
 */
#ifndef BASIRA_I18N_H
#define BASIRA_I18N_H

#include <stdarg.h>
#include <stddef.h>

#include "basira/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Set the process locale and bind Basira's message catalogue. Call once from main(). */
basira_code basira_i18n_init(basira_error *err);

/* "fr", "ar" or "en": the language selected by the environment. */
const char *basira_language(void);

/* 1 for right-to-left languages ("ar"). */
int basira_language_is_rtl(const char *lang);

/* Translate a msgid of Basira's catalogue in the current language. */
const char *basira_tr(const char *msgid);

/* ---- messages translated at the edge, per request --------------------------------
 *
 * The process's language (above) is right for the CLI. The clinic node answers
 * many people at once, each in their own language, so a message that reaches a
 * person is kept as a code and arguments - a basira_msg: its msgid (the English
 * printf format, marked N_() where it is written, so the catalogues list it)
 * and its arguments already turned into text - and translated where it is
 * presented, in the language of whoever asked:
 *
 *   where the message is made (any module):
 *       basira_msg m;
 *       basira_msg_set(&m, N_("hold the phone %d cm from the skin"), 10);
 *       // errors: basira_error_setm(err, code, N_("no case %" PRId64), id);
 *
 *   at the edge (the HTTP server: the language of the request; the CLI: NULL):
 *       char text[512];
 *       basira_msg_text(&m, srv_translator, "ar", text, sizeof text);
 *
 * In the server, request.lang is the user's language (their account's
 * preference, else the best of Accept-Language, else the node's) and
 * respond.c translates every error it sends; a handler translating a message
 * of its own calls server_text(rq, &m, buf, n) (src/server/server_internal.h).
 *
 * Conversions: %s %c %d %i %u %x %X %ld %lu %lld %llu %zu %zd %f %g %e with
 * flags, width and precision (not '*'), the <inttypes.h> macros, "%%", and
 * positional "%1$s" in translations. At most BASIRA_MSG_MAX_ARGS arguments,
 * each cut to BASIRA_MSG_ARG_MAX - 1 bytes. An argument that is itself a
 * translatable message is translated when the outer one is made (in the
 * process's language): keep such texts as separate messages instead.
 */

/* Record msgid and its arguments (formatted as the conversions of msgid say). */
void basira_msg_set(basira_msg *m, const char *msgid, ...) __attribute__((format(printf, 2, 3)));
void basira_msg_vset(basira_msg *m, const char *msgid, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* The translations of French and Arabic, loaded once; immutable, shared by all threads. */
typedef struct basira_translator basira_translator;

/* Load the installed catalogues (missing ones leave that language in English). */
basira_code basira_translator_new(basira_translator **out, basira_error *err);
void basira_translator_free(basira_translator *t);

/*
 * msgid in lang ("fr", "ar"; "en" and unknown languages give msgid). With t
 * NULL and lang NULL: the process's language (gettext), as _() does.
 */
const char *basira_translate(const basira_translator *t, const char *lang, const char *msgid)
    __attribute__((format_arg(3)));

/*
 * The message in lang, into out (always terminated; "" when m has no id).
 * A translation whose conversions do not match the msgid's falls back to
 * English. Returns out.
 */
const char *basira_msg_text(const basira_msg *m, const basira_translator *t, const char *lang,
                            char *out, size_t outsz);

/*
 * The language to answer a person in: their stored preference when it is "fr",
 * "ar" or "en"; else the first of those in an HTTP Accept-Language header by
 * q-value ("ar-MA,fr;q=0.8,en;q=0.5" -> "ar"); else fallback. Never NULL
 * (fallback NULL counts as "en"). Returns a static string.
 */
const char *basira_language_negotiate(const char *preference, const char *accept_language,
                                      const char *fallback);

#ifdef __cplusplus
}
#endif
#endif
