/*
 * upload.c - photos in chunks (the hub's side: src/hub/upload.c) and the
 * stored originals that follow the budgeted copies.
 *
 * A photo is sent in chunks of o->chunk_bytes: first an empty chunk asks the
 * hub how much it holds (0, some chunks from a round cut short, or all of it),
 * then each chunk goes from there and the hub's "have" says where the next
 * one starts. A chunk cut by the link is retried (sync_post_raw) or, in the
 * next round, resumed from what the hub acknowledged: a cut costs at most the
 * chunk in flight.
 */
#include "basira/store_sync.h"
#include "core/i18n.h"
#include "sync_internal.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static basira_code chunk(const basira_sync_options *o, const char *node, const unsigned char *sk,
                         const char *sha, const char *mime, const unsigned char *data, size_t total,
                         size_t off, size_t n, int64_t *have, int *complete,
                         basira_sync_report *rep, basira_error *err)
{
    json_t *h = json_pack("{s:s, s:s, s:I, s:I, s:s}", "node", node, "sha256", sha, "total",
                          (json_int_t)total, "offset", (json_int_t)off, "mime", mime);
    char *head = h ? json_dumps(h, JSON_COMPACT) : NULL;
    json_decref(h);
    size_t hl = head ? strlen(head) : 0;
    unsigned char *body = head ? malloc(hl + 1 + n) : NULL;
    if (!body) {
        free(head);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    memcpy(body, head, hl);
    body[hl] = '\n';
    if (n)
        memcpy(body + hl + 1, data + off, n);
    free(head);
    json_t *ans = NULL;
    basira_code rc = sync_post_raw(o, "/sync/v1/chunk", node, sk, body, hl + 1 + n, &ans, rep, err);
    free(body);
    if (rc)
        return rc;
    const json_t *hv = json_object_get(ans, "have");
    int well_formed = json_is_integer(hv);
    *have = json_integer_value(hv);
    *complete = json_is_true(json_object_get(ans, "complete"));
    json_decref(ans);
    if (!well_formed || *have < 0 || (size_t)*have > total)
        return basira_error_set(err, BASIRA_E_FORMAT, _("the hub's answer is not valid JSON"));
    return BASIRA_OK;
}

basira_code sync_upload(basira_store *st, const basira_sync_options *o, const char *node,
                        const unsigned char *sk, const unsigned char *data, size_t len,
                        const char *mime, char sha_hex[65], basira_sync_report *rep,
                        basira_error *err)
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, data, len);
    sodium_bin2hex(sha_hex, 65, h, sizeof h);
    size_t step = o->chunk_bytes ? o->chunk_bytes : (size_t)64 * 1024;
    int64_t have = 0;
    int complete = 0;
    /*
     * The photo being uploaded is noted in the sync state: only a photo whose
     * upload was cut (this round or an earlier one) starts with the question
     * where to resume; a new one starts with its first chunk (one round trip
     * less per photo on a high-latency link).
     */
    char was[80];
    int resume = basira_store_sync_get(st, "upload_sha", was, sizeof was, NULL) == BASIRA_OK &&
                 !strcmp(was, sha_hex);
    basira_code rc = resume ? BASIRA_OK : basira_store_sync_set(st, "upload_sha", sha_hex, err);
    if (!rc)
        rc = chunk(o, node, sk, sha_hex, mime, data, len, 0, resume ? 0 : (len < step ? len : step),
                   &have, &complete, rep, err);
    if (!rc && !resume && rep && have > 0)
        rep->chunks++;
    /* Bounded: each answer moves "have" forward or the hub dropped a damaged photo (once). */
    for (int guard = 0; !rc && !complete && guard < (int)(2 * (len / step + 2)); guard++) {
        size_t off = (size_t)have, n = len - off < step ? len - off : step;
        int64_t before = have;
        rc = chunk(o, node, sk, sha_hex, mime, data, len, off, n, &have, &complete, rep, err);
        if (!rc && rep && have > before)
            rep->chunks++;
    }
    if (!rc && !complete)
        rc = basira_error_set(err, BASIRA_E_IO,
                              _("the hub does not take this photo (%zu bytes); try again later"),
                              len);
    return rc;
}

static basira_code send_original(basira_store *st, const basira_sync_options *o, const char *node,
                                 const unsigned char *sk, const basira_original *g,
                                 basira_sync_report *rep, basira_error *err)
{
    char sha[65];
    basira_code rc = sync_upload(st, o, node, sk, g->photo, g->photo_len,
                                 *g->mime ? g->mime : "image/jpeg", sha, rep, err);
    if (rc)
        return rc;
    json_t *req = json_pack("{s:s, s:I, s:s}", "node", node, "image_id", (json_int_t)g->image_id,
                            "sha256", sha);
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!text)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    json_t *ans = NULL;
    rc = sync_post(o, "/sync/v1/original", node, sk, text, &ans, rep, err);
    free(text);
    json_decref(ans);
    if (!rc && rep)
        rep->originals++;
    return rc;
}

basira_code sync_originals(basira_store *st, const basira_sync_options *o, const char *node,
                           const unsigned char *sk, basira_sync_report *rep, basira_error *err)
{
    if (o->originals == BASIRA_ORIGINALS_NEVER)
        return BASIRA_OK;
    char v[32];
    long kbps = rep->link_kbps;
    if (kbps > 0) {
        snprintf(v, sizeof v, "%ld", kbps);
        basira_code rc = basira_store_sync_set(st, "link_kbps", v, err);
        if (rc)
            return rc;
    } else if (basira_store_sync_get(st, "link_kbps", v, sizeof v, NULL) == BASIRA_OK) {
        kbps = strtol(v, NULL, 10); /* nothing measured this round: the last measure */
    }
    long good = o->good_link_kbps > 0 ? o->good_link_kbps : 2000;
    int all = o->originals == BASIRA_ORIGINALS_ALWAYS ||
              ((o->max_kbps == 0 || o->max_kbps >= good) && kbps >= good);
    if (basira_store_sync_get(st, "acked_seq", v, sizeof v, err))
        return BASIRA_OK; /* nothing acknowledged yet: no original can follow its copy */
    int64_t acked = strtoll(v, NULL, 10), after = 0;
    for (;;) {
        basira_original g;
        int found = 0;
        basira_code rc = basira_store_original_next(st, all, acked, after, &g, &found, err);
        if (rc || !found)
            return rc;
        after = g.image_id;
        rc = send_original(st, o, node, sk, &g, rep, err);
        basira_original_clear(&g);
        if (!rc)
            rc = basira_store_original_sent(st, after, err);
        if (rc)
            return rc;
    }
}
