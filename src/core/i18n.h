/* i18n.h - internal: translation macros. Every user-facing string goes through _(). */
#ifndef BASIRA_CORE_I18N_H
#define BASIRA_CORE_I18N_H

#include <libintl.h>

#define BASIRA_TEXTDOMAIN "basira"
/* dgettext, not gettext: the library must work whatever textdomain the host program uses. */
#define _(s) dgettext(BASIRA_TEXTDOMAIN, s)
/* Mark a string for extraction where it is stored; translate it with _() where it is used. */
#define N_(s) (s)

#endif
