/* i18n.c - locale set-up and language selection. */
#include "basira/i18n.h"
#include "basira/paths.h"
#include "core/i18n.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

/* First non-empty of the variables gettext consults for messages. */
static const char *messages_locale_env(void)
{
    static const char *const vars[] = {"LC_ALL", "LC_MESSAGES", "LANG"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return v;
    }
    return "";
}

const char *basira_language(void)
{
    const char *l = messages_locale_env();
    if (!strncmp(l, "fr", 2))
        return "fr";
    if (!strncmp(l, "ar", 2))
        return "ar";
    return "en";
}

int basira_language_is_rtl(const char *lang)
{
    return lang && !strncmp(lang, "ar", 2);
}

const char *basira_tr(const char *msgid)
{
    return _(msgid);
}

basira_code basira_i18n_init(basira_error *err)
{
    const char *lang = basira_language();
    if (!setlocale(LC_ALL, "")) {
        /*
         * The requested locale is not generated on this machine (common on a
         * fresh Debian). Run in C.UTF-8, which glibc always has, and name the
         * language through LANGUAGE, which gettext honours outside the "C" locale.
         */
        setlocale(LC_ALL, "C.UTF-8");
        setenv("LANGUAGE", lang, 1);
    } else if (!getenv("LANGUAGE") || !*getenv("LANGUAGE")) {
        setenv("LANGUAGE", lang, 1);
    }
    /* Numbers in JSON, CSV and logs always use '.' whatever the language. */
    setlocale(LC_NUMERIC, "C");

    char dir[4096];
    basira_code rc = basira_locale_dir(dir, sizeof dir, err);
    if (rc)
        return rc;
    if (!bindtextdomain(BASIRA_TEXTDOMAIN, dir) ||
        !bind_textdomain_codeset(BASIRA_TEXTDOMAIN, "UTF-8"))
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    return BASIRA_OK;
}
