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

#ifdef __cplusplus
}
#endif
#endif
