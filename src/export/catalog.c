/* catalog.c - per-document translations read from Basira's compiled .mo catalogue. */
#include "basira/fs.h"
#include "basira/json.h"
#include "export/catalog.h"
#include "basira/paths.h"
#include "core/i18n.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Catalogues are a few hundred KiB; anything far larger is not ours. */
#define CATALOG_MAX_BYTES (32u << 20)

struct export_catalog {
    unsigned char *data;
    size_t len;
    uint32_t n;        /* number of strings */
    uint32_t orig, tr; /* offsets of the original and translation tables */
    int swap;          /* file written with the other byte order */
};

static uint32_t rd32(const export_catalog *c, size_t off)
{
    uint32_t v;
    memcpy(&v, c->data + off, 4);
    if (c->swap)
        v = (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
    return v;
}

/* The NUL-terminated string of table entry i, or NULL if the entry points outside the file. */
static const char *entry(const export_catalog *c, uint32_t table, uint32_t i)
{
    size_t at = (size_t)table + 8u * (size_t)i;
    uint32_t len = rd32(c, at), off = rd32(c, at + 4);
    if ((size_t)off >= c->len || (size_t)len >= c->len - off || c->data[(size_t)off + len])
        return NULL;
    return (const char *)c->data + off;
}

basira_code export_catalog_parse(const unsigned char *mo, size_t len, export_catalog **out,
                                 basira_error *err)
{
    *out = NULL;
    if (!mo || len < 28)
        return basira_error_set(err, BASIRA_E_CORRUPT, _("the translation catalogue is damaged"));
    export_catalog *c = calloc(1, sizeof *c);
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
    *out = c;
    return BASIRA_OK;
bad:
    export_catalog_free(c);
    return basira_error_set(err, BASIRA_E_CORRUPT, _("the translation catalogue is damaged"));
}

basira_code export_catalog_open(const char *lang, export_catalog **out, basira_error *err)
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
        rc = export_catalog_parse(buf, len, out, err);
    free(buf);
    return rc;
}

const char *export_tr(const export_catalog *c, const char *msgid)
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
    return msgid;
}

void export_catalog_free(export_catalog *c)
{
    if (!c)
        return;
    free(c->data);
    free(c);
}
