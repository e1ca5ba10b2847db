/* catalog.c - translations of one language (per document, per request) read from Basira's compiled
 * .mo catalogue. */
#include "basira/fs.h"
#include "basira/json.h"
#include "core/catalog.h"
#include "basira/paths.h"
#include "core/i18n.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Catalogues are a few hundred KiB; anything far larger is not ours. */
#define CATALOG_MAX_BYTES (32u << 20)

struct basira_catalog {
    unsigned char *data;
    size_t len;
    uint32_t n;        /* number of strings */
    uint32_t orig, tr; /* offsets of the original and translation tables */
    int swap;          /* file written with the other byte order */
    /* Strings with system-dependent parts ("no case %<PRId64>"), expanded for this platform. */
    uint32_t nsys;
    char **sys_orig, **sys_tr;
};

static uint32_t rd32(const basira_catalog *c, size_t off)
{
    uint32_t v;
    memcpy(&v, c->data + off, 4);
    if (c->swap)
        v = (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
    return v;
}

/* The NUL-terminated string of table entry i, or NULL if the entry points outside the file. */
static const char *entry(const basira_catalog *c, uint32_t table, uint32_t i)
{
    size_t at = (size_t)table + 8u * (size_t)i;
    uint32_t len = rd32(c, at), off = rd32(c, at + 4);
    if ((size_t)off >= c->len || (size_t)len >= c->len - off || c->data[(size_t)off + len])
        return NULL;
    return (const char *)c->data + off;
}

/* The expansion of a system-dependent segment name on this platform ("PRId64" -> "ld"). */
static const char *sysdep_value(const char *name)
{
#define BASIRA_SYS_(l, n)                                                                          \
    {                                                                                              \
        "PRI" #l #n, PRI##l##n                                                                     \
    }
#define BASIRA_SYS(l)                                                                              \
    BASIRA_SYS_(l, 8), BASIRA_SYS_(l, 16), BASIRA_SYS_(l, 32), BASIRA_SYS_(l, 64),                 \
        BASIRA_SYS_(l, MAX), BASIRA_SYS_(l, PTR), BASIRA_SYS_(l, LEAST8), BASIRA_SYS_(l, LEAST16), \
        BASIRA_SYS_(l, LEAST32), BASIRA_SYS_(l, LEAST64), BASIRA_SYS_(l, FAST8),                   \
        BASIRA_SYS_(l, FAST16), BASIRA_SYS_(l, FAST32), BASIRA_SYS_(l, FAST64)
    static const struct {
        const char *name, *value;
    } table[] = {BASIRA_SYS(d), BASIRA_SYS(i), BASIRA_SYS(o),
                 BASIRA_SYS(u), BASIRA_SYS(x), BASIRA_SYS(X)};
#undef BASIRA_SYS
#undef BASIRA_SYS_
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(name, table[i].name))
            return table[i].value;
    return NULL;
}

/* Segment names are stored with their NUL counted in the length ("PRId64\0", 7). */
static const char *segment_name(const basira_catalog *c, uint32_t table, uint32_t i)
{
    size_t at = (size_t)table + 8u * (size_t)i;
    uint32_t len = rd32(c, at), off = rd32(c, at + 4);
    if (len == 0 || (size_t)off >= c->len || (size_t)len > c->len - off ||
        c->data[(size_t)off + len - 1])
        return NULL;
    return (const char *)c->data + off;
}

/*
 * Expand the system-dependent string described at off (GNU .mo revision 1: the
 * offset of its static text, then (length, segment) pairs ending with segment
 * 0xffffffff). NULL when malformed or too long.
 */
static char *sysdep_string(const basira_catalog *c, uint32_t off, uint32_t nseg, uint32_t segtab)
{
    if ((size_t)off + 4 > c->len)
        return NULL;
    size_t text = rd32(c, off), pos = (size_t)off + 4, n = 0;
    char buf[2048];
    for (int k = 0; k < 64; k++, pos += 8) {
        if (pos + 8 > c->len)
            return NULL;
        uint32_t segsize = rd32(c, pos), ref = rd32(c, pos + 4);
        if (text > c->len || segsize > c->len - text || n + segsize >= sizeof buf)
            return NULL;
        memcpy(buf + n, c->data + text, segsize);
        n += segsize;
        text += segsize;
        if (ref == 0xffffffffu) {
            buf[n] = '\0';
            return strdup(buf);
        }
        const char *name = ref < nseg ? segment_name(c, segtab, ref) : NULL;
        const char *value = name ? sysdep_value(name) : NULL;
        if (!value || n + strlen(value) >= sizeof buf)
            return NULL;
        memcpy(buf + n, value, strlen(value));
        n += strlen(value);
    }
    return NULL;
}

/* Read the system-dependent strings of a revision-1 catalogue (none in revision 0). */
static int load_sysdep(basira_catalog *c)
{
    if (c->len < 48 || (rd32(c, 4) & 0xffffu) < 1)
        return 0;
    uint32_t nseg = rd32(c, 28), segtab = rd32(c, 32), nsys = rd32(c, 36);
    uint32_t otab = rd32(c, 40), ttab = rd32(c, 44);
    if (nsys == 0)
        return 0;
    if (nsys > 65536 || (uint64_t)otab + 4ull * nsys > c->len ||
        (uint64_t)ttab + 4ull * nsys > c->len || (uint64_t)segtab + 8ull * nseg > c->len)
        return -1;
    c->sys_orig = calloc(nsys, sizeof *c->sys_orig);
    c->sys_tr = calloc(nsys, sizeof *c->sys_tr);
    if (!c->sys_orig || !c->sys_tr)
        return -1;
    c->nsys = nsys;
    for (uint32_t i = 0; i < nsys; i++) {
        c->sys_orig[i] = sysdep_string(c, rd32(c, otab + 4u * i), nseg, segtab);
        c->sys_tr[i] = sysdep_string(c, rd32(c, ttab + 4u * i), nseg, segtab);
    }
    return 0;
}

basira_code basira_catalog_parse(const unsigned char *mo, size_t len, basira_catalog **out,
                                 basira_error *err)
{
    *out = NULL;
    if (!mo || len < 28)
        return basira_error_set(err, BASIRA_E_CORRUPT, _("the translation catalogue is damaged"));
    basira_catalog *c = calloc(1, sizeof *c);
    if (!c || !(c->data = malloc(len))) {
        free(c);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    memcpy(c->data, mo, len);
    c->len = len;
    uint32_t magic;
    memcpy(&magic, mo, 4);
    if (magic == 0x950412deu)
        c->swap = 0;
    else if (magic == 0xde120495u)
        c->swap = 1;
    else
        goto bad;
    c->n = rd32(c, 8);
    c->orig = rd32(c, 12);
    c->tr = rd32(c, 16);
    /* Both tables must lie inside the file; every entry is checked again on use. */
    if ((uint64_t)c->orig + 8ull * c->n > len || (uint64_t)c->tr + 8ull * c->n > len)
        goto bad;
    if (load_sysdep(c))
        goto bad;
    *out = c;
    return BASIRA_OK;
bad:
    basira_catalog_free(c);
    return basira_error_set(err, BASIRA_E_CORRUPT, _("the translation catalogue is damaged"));
}

basira_code basira_catalog_open(const char *lang, basira_catalog **out, basira_error *err)
{
    *out = NULL;
    if (!lang || !strcmp(lang, "en"))
        return BASIRA_OK;
    if (strcmp(lang, "fr") && strcmp(lang, "ar"))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("unknown language '%s': use fr, ar or en"), lang);
    char dir[4096], path[4200];
    basira_error ignored;
    if (basira_locale_dir(dir, sizeof dir, &ignored))
        return BASIRA_OK; /* no catalogues installed: English text */
    snprintf(path, sizeof path, "%s/%s/LC_MESSAGES/basira.mo", dir, lang);
    unsigned char *buf = NULL;
    size_t len = 0;
    basira_error rerr;
    basira_code rc = basira_fs_read(path, CATALOG_MAX_BYTES, &buf, &len, &rerr);
    if (rc == BASIRA_E_NOT_FOUND)
        return BASIRA_OK;
    if (rc == BASIRA_E_LIMIT)
        rc = basira_error_set(err, BASIRA_E_CORRUPT, _("the translation catalogue %s is too large"),
                              path);
    else if (rc && err)
        *err = rerr;
    if (!rc)
        rc = basira_catalog_parse(buf, len, out, err);
    free(buf);
    return rc;
}

const char *basira_catalog_tr(const basira_catalog *c, const char *msgid)
{
    if (!c || !msgid)
        return msgid;
    /* msgfmt writes the originals sorted by strcmp: binary search. */
    uint32_t lo = 0, hi = c->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const char *o = entry(c, c->orig, mid);
        if (!o)
            return msgid;
        int cmp = strcmp(msgid, o);
        if (cmp == 0) {
            const char *t = entry(c, c->tr, mid);
            return t && *t ? t : msgid;
        }
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    for (uint32_t i = 0; i < c->nsys; i++)
        if (c->sys_orig[i] && !strcmp(msgid, c->sys_orig[i]))
            return c->sys_tr[i] && *c->sys_tr[i] ? c->sys_tr[i] : msgid;
    return msgid;
}

void basira_catalog_free(basira_catalog *c)
{
    if (!c)
        return;
    for (uint32_t i = 0; i < c->nsys; i++) {
        free(c->sys_orig[i]);
        free(c->sys_tr[i]);
    }
    free(c->sys_orig);
    free(c->sys_tr);
    free(c->data);
    free(c);
}
