/*
 * msg.c - messages kept as msgid + arguments and translated where they are
 * shown (include/basira/i18n.h), and the choice of a person's language.
 */
#include "basira/i18n.h"
#include "core/catalog.h"
#include "core/i18n.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

struct basira_translator {
    basira_catalog *fr, *ar;
};

/* One printf conversion: where it starts and ends, its length modifier and letter. */
typedef struct conv {
    const char *start, *end; /* [start, end) is the whole "%...c" */
    int pos;                 /* "%2$s": 2; 0 = next in order */
    char len[3];             /* "", "h", "hh", "l", "ll", "z", "j", "t", "L" */
    char letter;
} conv;

/* Parse the conversion at p (p[0] == '%', not "%%"). Returns 0 when malformed. */
static int parse_conv(const char *p, conv *c)
{
    memset(c, 0, sizeof *c);
    c->start = p++;
    const char *q = p;
    while (isdigit((unsigned char)*q))
        q++;
    if (*q == '$' && q > p) {
        c->pos = atoi(p);
        p = q + 1;
    }
    while (*p && strchr("-+ #0'", *p))
        p++;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p))
            p++;
    }
    size_t n = 0;
    while (*p && strchr("hlzjtL", *p) && n < 2)
        c->len[n++] = *p++;
    if (!*p || !strchr("diouxXcsfFeEgGaAp", *p))
        return 0;
    c->letter = *p++;
    c->end = p;
    return 1;
}

/*
 * Format one argument of conversion c (spec without any "N$") into out. The
 * spec is built from a msgid the compiler checked (basira_msg_set and
 * basira_error_setm have the printf format attribute), so -Wformat-nonliteral
 * is off for this function only.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void format_arg(const conv *c, va_list *ap, char *out, size_t outsz)
{
    char spec[32];
    const char *s = c->start + 1;
    if (c->pos) /* not expected in a msgid; drop the "N$" */
        s = strchr(s, '$') + 1;
    size_t n = (size_t)(c->end - s);
    if (n + 2 > sizeof spec) {
        snprintf(out, outsz, "?");
        return;
    }
    spec[0] = '%';
    memcpy(spec + 1, s, n);
    spec[n + 1] = '\0';
    const char *l = c->len;
    switch (c->letter) {
    case 'd':
    case 'i':
        if (!strcmp(l, "l"))
            snprintf(out, outsz, spec, va_arg(*ap, long));
        else if (!strcmp(l, "ll"))
            snprintf(out, outsz, spec, va_arg(*ap, long long));
        else if (!strcmp(l, "z"))
            snprintf(out, outsz, spec, va_arg(*ap, ssize_t));
        else if (!strcmp(l, "j"))
            snprintf(out, outsz, spec, va_arg(*ap, intmax_t));
        else if (!strcmp(l, "t"))
            snprintf(out, outsz, spec, va_arg(*ap, ptrdiff_t));
        else
            snprintf(out, outsz, spec, va_arg(*ap, int));
        break;
    case 'o':
    case 'u':
    case 'x':
    case 'X':
        if (!strcmp(l, "l"))
            snprintf(out, outsz, spec, va_arg(*ap, unsigned long));
        else if (!strcmp(l, "ll"))
            snprintf(out, outsz, spec, va_arg(*ap, unsigned long long));
        else if (!strcmp(l, "z"))
            snprintf(out, outsz, spec, va_arg(*ap, size_t));
        else if (!strcmp(l, "j"))
            snprintf(out, outsz, spec, va_arg(*ap, uintmax_t));
        else if (!strcmp(l, "t"))
            snprintf(out, outsz, spec, va_arg(*ap, ptrdiff_t));
        else
            snprintf(out, outsz, spec, va_arg(*ap, unsigned));
        break;
    case 'c':
        snprintf(out, outsz, spec, va_arg(*ap, int));
        break;
    case 's': {
        const char *v = va_arg(*ap, const char *);
        snprintf(out, outsz, spec, v ? v : "(null)");
        break;
    }
    case 'p':
        snprintf(out, outsz, spec, va_arg(*ap, void *));
        break;
    default: /* floating point */
        if (!strcmp(l, "L"))
            snprintf(out, outsz, spec, va_arg(*ap, long double));
        else
            snprintf(out, outsz, spec, va_arg(*ap, double));
        break;
    }
}
#pragma GCC diagnostic pop

void basira_msg_vset(basira_msg *m, const char *msgid, va_list ap)
{
    m->id = msgid;
    m->nargs = 0;
    va_list aq;
    va_copy(aq, ap);
    for (const char *p = msgid; p && *p; p++) {
        if (*p != '%')
            continue;
        if (p[1] == '%') {
            p++;
            continue;
        }
        conv c;
        if (!parse_conv(p, &c) || m->nargs >= BASIRA_MSG_MAX_ARGS)
            break;
        format_arg(&c, &aq, m->args[m->nargs], sizeof m->args[0]);
        m->nargs++;
        p = c.end - 1;
    }
    va_end(aq);
}

void basira_msg_set(basira_msg *m, const char *msgid, ...)
{
    va_list ap;
    va_start(ap, msgid);
    basira_msg_vset(m, msgid, ap);
    va_end(ap);
}

/* Number of conversions of fmt, or -1 when one is malformed. */
static int count_convs(const char *fmt)
{
    int n = 0;
    for (const char *p = fmt; *p; p++) {
        if (*p != '%')
            continue;
        if (p[1] == '%') {
            p++;
            continue;
        }
        conv c;
        if (!parse_conv(p, &c))
            return -1;
        n++;
        p = c.end - 1;
    }
    return n;
}

const char *basira_msg_text(const basira_msg *m, const basira_translator *t, const char *lang,
                            char *out, size_t outsz)
{
    if (!out || !outsz)
        return out;
    out[0] = '\0';
    if (!m || !m->id)
        return out;
    const char *fmt = basira_translate(t, lang, m->id);
    if (fmt != m->id && count_convs(fmt) != m->nargs)
        fmt = m->id; /* a translation that does not fit its msgid: show the English */
    size_t o = 0;
    int next = 0;
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (o + 1 < outsz)                                                                         \
            out[o++] = (ch);                                                                       \
    } while (0)
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            PUT(*p);
            continue;
        }
        if (p[1] == '%') {
            PUT('%');
            p++;
            continue;
        }
        conv c;
        if (!parse_conv(p, &c))
            break;
        int i = c.pos ? c.pos - 1 : next++;
        for (const char *a = i >= 0 && i < m->nargs ? m->args[i] : ""; *a; a++)
            PUT(*a);
        p = c.end - 1;
    }
#undef PUT
    out[o] = '\0';
    return out;
}

basira_code basira_translator_new(basira_translator **out, basira_error *err)
{
    *out = NULL;
    basira_translator *t = calloc(1, sizeof *t);
    if (!t)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    basira_code rc = basira_catalog_open("fr", &t->fr, err);
    if (!rc)
        rc = basira_catalog_open("ar", &t->ar, err);
    if (rc) {
        basira_translator_free(t);
        return rc;
    }
    *out = t;
    return BASIRA_OK;
}

void basira_translator_free(basira_translator *t)
{
    if (!t)
        return;
    basira_catalog_free(t->fr);
    basira_catalog_free(t->ar);
    free(t);
}

const char *basira_translate(const basira_translator *t, const char *lang, const char *msgid)
{
    if (!msgid)
        return "";
    if (!lang)
        return t ? msgid : dgettext(BASIRA_TEXTDOMAIN, msgid);
    if (t && !strcmp(lang, "fr"))
        return basira_catalog_tr(t->fr, msgid);
    if (t && !strcmp(lang, "ar"))
        return basira_catalog_tr(t->ar, msgid);
    return msgid;
}

/* "fr", "ar", "en" for a language tag ("fr-FR", "AR", "en_GB"), else NULL. */
static const char *known(const char *tag, size_t n)
{
    static const char *const langs[] = {"fr", "ar", "en"};
    if (n < 2 || (n > 2 && tag[2] != '-' && tag[2] != '_'))
        return NULL;
    for (size_t i = 0; i < 3; i++)
        if (tolower((unsigned char)tag[0]) == langs[i][0] &&
            tolower((unsigned char)tag[1]) == langs[i][1])
            return langs[i];
    return NULL;
}

const char *basira_language_negotiate(const char *preference, const char *accept_language,
                                      const char *fallback)
{
    const char *p = preference ? known(preference, strlen(preference)) : NULL;
    if (p)
        return p;
    const char *best = NULL;
    double best_q = 0;
    for (const char *s = accept_language; s && *s;) {
        s += strspn(s, " \t,");
        size_t n = strcspn(s, ",");
        size_t tag = strcspn(s, ";, \t");
        if (tag > n)
            tag = n;
        double q = 1.0;
        const char *semi = memchr(s, ';', n);
        if (semi) {
            const char *qs = strstr(semi, "q=");
            if (qs && qs < s + n)
                q = strtod(qs + 2, NULL);
        }
        const char *l = known(s, tag);
        if (l && q > best_q) {
            best = l;
            best_q = q;
        }
        s += n;
    }
    if (best)
        return best;
    p = fallback ? known(fallback, strlen(fallback)) : NULL;
    return p ? p : "en";
}
