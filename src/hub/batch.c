/*
 * batch.c - what a node's push must look like before anything touches the
 * database, and the inflation of a compressed body under a cap. Both read
 * untrusted bytes from the network (fuzz/fuzz_hub_batch.c).
 */
#include "core/i18n.h"
#include "hub_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define MAX_CHANGES 10000
#define MAX_AUDIT 10000

basira_code basira_hub_inflate(const void *in, size_t len, size_t cap, unsigned char **out,
                               size_t *out_len, basira_error *err)
{
    *out = NULL;
    *out_len = 0;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    size_t size = len * 4 + 4096 < cap ? len * 4 + 4096 : cap, n = 0;
    unsigned char *buf = malloc(size + 1);
    int zr = buf ? Z_OK : Z_MEM_ERROR;
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)len;
    while (zr == Z_OK) {
        if (n == size) {
            /* Grow by doubling up to the cap: a zip bomb stops at the cap, not at the memory. */
            size_t bigger = size * 2 < cap ? size * 2 : cap;
            unsigned char *nb = bigger > size ? realloc(buf, bigger + 1) : NULL;
            if (!nb) {
                free(buf);
                inflateEnd(&z);
                return basira_error_setm(err, BASIRA_E_LIMIT, N_("the batch is too large"));
            }
            buf = nb;
            size = bigger;
        }
        z.next_out = buf + n;
        z.avail_out = (uInt)(size - n);
        zr = inflate(&z, Z_NO_FLUSH);
        n = size - z.avail_out;
        if (zr == Z_BUF_ERROR && z.avail_in > 0 && n == size)
            zr = Z_OK; /* only the output was full: grow and go on */
    }
    inflateEnd(&z);
    if (zr != Z_STREAM_END) {
        free(buf);
        return zr == Z_MEM_ERROR
                   ? basira_error_set(err, BASIRA_E_NOMEM, NULL)
                   : basira_error_setm(err, BASIRA_E_FORMAT, N_("the compressed batch is damaged"));
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return BASIRA_OK;
}

static int opt_string(const json_t *o, const char *k, size_t max)
{
    const json_t *v = json_object_get(o, k);
    return !v || json_is_null(v) || (json_is_string(v) && json_string_length(v) <= max);
}

static int int_at_least(const json_t *o, const char *k, json_int_t min, int required)
{
    const json_t *v = json_object_get(o, k);
    if (!v)
        return !required;
    return json_is_integer(v) && json_integer_value(v) >= min;
}

int hub_hex64(const json_t *v)
{
    const char *s = json_string_value(v);
    if (!s || strlen(s) != 64)
        return 0;
    for (; *s; s++)
        if (!strchr("0123456789abcdef", *s))
            return 0;
    return 1;
}

static int change_ok(const json_t *ch)
{
    static const char *const kinds[] = {"case", "image", "decision", "erase", "photo_erase"};
    const char *kind = json_string_value(json_object_get(ch, "kind"));
    int known = 0;
    for (size_t i = 0; kind && i < sizeof kinds / sizeof kinds[0]; i++)
        known |= !strcmp(kind, kinds[i]);
    const json_t *rec = json_object_get(ch, "record"), *photo = json_object_get(ch, "photo");
    if (!json_is_object(ch) || !known || !int_at_least(ch, "seq", 1, 1) ||
        !int_at_least(ch, "case_id", 1, 1) || !int_at_least(ch, "image_id", 0, 0) ||
        (rec && !json_is_object(rec) && !json_is_null(rec)))
        return 0;
    if (!photo)
        return 1;
    return json_is_object(photo) && opt_string(photo, "mime", 64) &&
           (!json_object_get(photo, "data") || json_is_string(json_object_get(photo, "data"))) &&
           hub_hex64(json_object_get(photo, "sha256")) &&
           int_at_least(photo, "original_bytes", 0, 0);
}

static int audit_ok(const json_t *e)
{
    static const char *const texts[] = {"actor", "action", "ip", "outcome", "detail"};
    if (!json_is_object(e) || !int_at_least(e, "id", 1, 1) || !int_at_least(e, "ts", 0, 1) ||
        !int_at_least(e, "case_id", 0, 0) || !hub_hex64(json_object_get(e, "hash")) ||
        !hub_hex64(json_object_get(e, "prev_hash")))
        return 0;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if (!opt_string(e, texts[i], 4096))
            return 0;
    return 1;
}

basira_code basira_hub_batch_check(const json_t *body, basira_error *err)
{
    const json_t *changes = json_object_get(body, "changes"),
                 *audit = json_object_get(body, "audit");
    if (!json_is_object(body) || !json_is_string(json_object_get(body, "node")) ||
        json_string_length(json_object_get(body, "node")) > 64 || !json_is_array(changes) ||
        !json_is_array(audit))
        return basira_error_setm(err, BASIRA_E_FORMAT,
                                 N_("a push is {\"node\", \"changes\": [...], \"audit\": [...]}"));
    if (json_array_size(changes) > MAX_CHANGES || json_array_size(audit) > MAX_AUDIT)
        return basira_error_setm(err, BASIRA_E_LIMIT, N_("the batch is too large"));
    size_t i;
    const json_t *v;
    json_array_foreach(changes, i, v)
    {
        if (!change_ok(v))
            return basira_error_setm(err, BASIRA_E_FORMAT,
                                     N_("change %zu of the batch is malformed"), i);
    }
    json_array_foreach(audit, i, v)
    {
        if (!audit_ok(v))
            return basira_error_setm(err, BASIRA_E_FORMAT,
                                     N_("audit entry %zu of the batch is malformed"), i);
    }
    return BASIRA_OK;
}

#define CHUNK_MAX ((size_t)1 << 20)
#define PHOTO_MAX ((int64_t)64 << 20)

basira_code basira_hub_chunk_parse(const void *body, size_t len, const char *node,
                                   basira_hub_chunk_head *out, basira_error *err)
{
    memset(out, 0, sizeof *out);
    const unsigned char *b = body;
    const unsigned char *nl = b ? memchr(b, '\n', len < 4096 ? len : 4096) : NULL;
    json_t *head =
        nl ? json_loadb((const char *)b, (size_t)(nl - b), JSON_REJECT_DUPLICATES, NULL) : NULL;
    const json_t *total = json_object_get(head, "total"), *off = json_object_get(head, "offset");
    const char *mime = json_string_value(json_object_get(head, "mime"));
    const char *who = json_string_value(json_object_get(head, "node"));
    size_t data_len = nl ? len - (size_t)(nl + 1 - b) : 0;
    int ok = json_is_object(head) && hub_hex64(json_object_get(head, "sha256")) && mime &&
             strlen(mime) <= 64 && json_is_integer(total) && json_integer_value(total) >= 1 &&
             json_integer_value(total) <= PHOTO_MAX && json_is_integer(off) &&
             json_integer_value(off) >= 0 && json_integer_value(off) <= PHOTO_MAX &&
             data_len <= CHUNK_MAX &&
             json_integer_value(off) + (json_int_t)data_len <= json_integer_value(total) && who &&
             node && !strcmp(who, node);
    if (ok) {
        snprintf(out->sha256, sizeof out->sha256, "%s",
                 json_string_value(json_object_get(head, "sha256")));
        snprintf(out->mime, sizeof out->mime, "%s", mime);
        out->total = json_integer_value(total);
        out->offset = json_integer_value(off);
        out->data = nl + 1;
        out->data_len = data_len;
    }
    json_decref(head);
    return ok ? BASIRA_OK
              : basira_error_setm(err, BASIRA_E_FORMAT,
                                  N_("a chunk is {\"node\",\"sha256\",\"total\",\"offset\","
                                     "\"mime\"}, a newline, then at most 1 MiB of the photo"));
}
