/*
 * sync.c - enrolment and one sync round (see sync.h): batches from the
 * outbox, the audit chain, photos budgeted to photo_max_side, replies.
 */
#include "basira/image.h"
#include "basira/store_sync.h"
#include "core/i18n.h"
#include "sync_internal.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_ITEMS 64
#define AUDIT_PER_BATCH 500

void basira_sync_options_init(basira_sync_options *o)
{
    memset(o, 0, sizeof *o);
    o->photo_max_side = 1024;
    o->photo_quality = 80;
    o->batch_bytes = (size_t)256 * 1024;
    o->request_timeout_s = 120;
    o->retry_transport = 1;
    o->chunk_bytes = (size_t)64 * 1024;
    o->good_link_kbps = 2000;
}

basira_code sync_load_identity(basira_store *st, char node[65],
                               unsigned char sk[crypto_sign_SECRETKEYBYTES], basira_error *err)
{
    char hex[2 * crypto_sign_SECRETKEYBYTES + 8];
    size_t n = 0;
    basira_code rc = basira_store_sync_get(st, "node", node, 65, err);
    if (rc == BASIRA_E_NOT_FOUND)
        return basira_error_set(err, BASIRA_E_NOT_FOUND,
                                _("this node is not enrolled with a hub yet: basira sync --enrol "
                                  "TOKEN (the token comes from `basira hub enrol`)"));
    if (rc || (rc = basira_store_sync_get(st, "signing_key", hex, sizeof hex, err)))
        return rc;
    int bad = sodium_hex2bin(sk, crypto_sign_SECRETKEYBYTES, hex, strlen(hex), NULL, &n, NULL) ||
              n != crypto_sign_SECRETKEYBYTES;
    sodium_memzero(hex, sizeof hex);
    return bad ? basira_error_set(err, BASIRA_E_FORMAT, _("the node's signing key is damaged"))
               : BASIRA_OK;
}

basira_code basira_sync_enrol(basira_store *st, const basira_sync_options *o, const char *token,
                              char node_name[65], basira_error *err)
{
    char existing[65];
    if (basira_store_sync_get(st, "node", existing, sizeof existing, NULL) == BASIRA_OK)
        return basira_error_set(err, BASIRA_E_CONFLICT, _("this node is already enrolled as %s"),
                                existing);
    if (sodium_init() < 0)
        return basira_error_set(err, BASIRA_E_INTERNAL, _("libsodium failed to start"));
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    char pk_hex[2 * sizeof pk + 1], sk_hex[2 * sizeof sk + 1];
    crypto_sign_keypair(pk, sk);
    sodium_bin2hex(pk_hex, sizeof pk_hex, pk, sizeof pk);
    sodium_bin2hex(sk_hex, sizeof sk_hex, sk, sizeof sk);
    sodium_memzero(sk, sizeof sk);
    json_t *req = json_pack("{s:s, s:s}", "token", token ? token : "", "public_key", pk_hex);
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    json_t *ans = NULL;
    basira_code rc = text ? sync_post(o, "/sync/v1/enrol", NULL, NULL, text, &ans, NULL, err)
                          : basira_error_set(err, BASIRA_E_NOMEM, NULL);
    free(text);
    const char *name = json_string_value(json_object_get(ans, "node"));
    const char *hub_key = json_string_value(json_object_get(ans, "hub_key"));
    if (!rc && (!name || !hub_key || strlen(hub_key) != 64))
        rc = basira_error_set(err, BASIRA_E_FORMAT, _("the hub's answer is not valid JSON"));
    /* The secret key first: a node name without its key would be a node that cannot sign. */
    if (!rc && !(rc = basira_store_sync_set(st, "signing_key", sk_hex, err)) &&
        !(rc = basira_store_sync_set(st, "hub_url", o->hub_url, err)) &&
        !(rc = basira_store_sync_set(st, "hub_key", hub_key, err)) &&
        !(rc = basira_store_sync_set(st, "node", name, err))) {
        snprintf(node_name, 65, "%s", name);
        basira_actor a = {"sync", "local"};
        rc = basira_store_audit_append(st, &a, "sync_enrol", 0, "ok", name, err);
    }
    sodium_memzero(sk_hex, sizeof sk_hex);
    json_decref(ans);
    return rc;
}

/*
 * A node enrolled before the hub signed what it sends down learnt no hub key,
 * and refuses every down item (site configuration, requests for originals).
 * It asks once, in a request signed with its own key, so that the hub answers
 * only an enrolled node, over the hub URL and link its enrolment used: the key
 * is trusted as far as the enrolment answer was, and is audited with its
 * fingerprint so an operator can compare it with the hub's (docs/hub.md). A
 * key once held is never replaced this way: a hub with a new key means
 * enrolling again. A hub too old to know the request changes nothing.
 */
static basira_code learn_hub_key(basira_store *st, const basira_sync_options *o, const char *node,
                                 const unsigned char *sk, basira_sync_report *rep,
                                 basira_error *err)
{
    char have[80];
    if (basira_store_sync_get(st, "hub_key", have, sizeof have, NULL) == BASIRA_OK &&
        strlen(have) == 64)
        return BASIRA_OK;
    json_t *req = json_pack("{s:s}", "node", node);
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!text)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    json_t *ans = NULL;
    basira_error perr;
    basira_code rc = sync_post(o, "/sync/v1/hub-key", node, sk, text, &ans, rep, &perr);
    free(text);
    if (rc == BASIRA_E_UNSUPPORTED)
        return BASIRA_OK; /* an older hub: it sends nothing down either */
    if (rc)
        return basira_error_set(err, perr.code, "%s", perr.message);
    const char *key = json_string_value(json_object_get(ans, "hub_key"));
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    size_t n = 0;
    if (!key || strlen(key) != 64 || sodium_hex2bin(pk, sizeof pk, key, 64, NULL, &n, NULL) != 0 ||
        n != sizeof pk)
        rc = basira_error_set(err, BASIRA_E_FORMAT, _("the hub's answer is not valid JSON"));
    char detail[160];
    if (!rc) {
        snprintf(detail, sizeof detail, "hub_key=%s (signed request, enrolled before it)", key);
        rc = basira_store_sync_set(st, "hub_key", key, err);
    }
    json_decref(ans);
    basira_actor a = {"sync", "local"};
    return rc ? rc : basira_store_audit_append(st, &a, "sync_hub_key", 0, "ok", detail, err);
}

static int64_t cursor(basira_store *st, const char *key)
{
    char v[32];
    return basira_store_sync_get(st, key, v, sizeof v, NULL) ? 0 : strtoll(v, NULL, 10);
}

static basira_code set_cursor(basira_store *st, const char *key, int64_t v, basira_error *err)
{
    char s[32];
    snprintf(s, sizeof s, "%" PRId64, v);
    return basira_store_sync_set(st, key, s, err);
}

/*
 * The photo as it travels: re-encoded with its long side at most max_side, or
 * the stored copy when that is already smaller. *out malloc'd.
 */
static basira_code budget_photo(const basira_sync_options *o, const basira_outbox_item *it,
                                unsigned char **out, size_t *len, basira_error *err)
{
    basira_intake_options io;
    basira_intake_options_default(&io);
    io.max_side = o->photo_max_side;
    io.min_side = 1;
    basira_image *img = NULL;
    uint8_t *jpg = NULL;
    size_t n = 0;
    basira_code rc = basira_image_load_buffer(it->photo, it->photo_len, &io, &img, err);
    if (!rc)
        rc = basira_image_encode_jpeg(img, o->photo_quality, &jpg, &n, err);
    basira_image_free(img);
    if (rc)
        return rc;
    if (n >= it->photo_len) {
        /* Re-encoding a photo that is already small would only make it bigger. */
        free(jpg);
        if (!(jpg = malloc(it->photo_len)))
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        memcpy(jpg, it->photo, it->photo_len);
        n = it->photo_len;
    }
    *out = jpg;
    *len = n;
    return BASIRA_OK;
}

static basira_code change_json(basira_store *st, const basira_sync_options *o, const char *node,
                               const unsigned char *sk, const basira_outbox_item *it, json_t **out,
                               size_t *cost, basira_sync_report *rep, basira_error *err)
{
    json_t *ch = json_pack("{s:I, s:s, s:I}", "seq", (json_int_t)it->seq, "kind", it->kind,
                           "case_id", (json_int_t)it->case_id);
    if (!ch)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    if (it->image_id)
        json_object_set_new(ch, "image_id", json_integer(it->image_id));
    if (it->record)
        json_object_set(ch, "record", it->record);
    *cost = 512;
    if (it->photo) {
        unsigned char *p = NULL;
        size_t n = 0;
        basira_code rc = budget_photo(o, it, &p, &n, err);
        if (rc) {
            json_decref(ch);
            return rc;
        }
        /* The photo goes first, in chunks; the change names it by its hash. */
        char sha[65];
        rc = sync_upload(st, o, node, sk, p, n, "image/jpeg", sha, rep, err);
        free(p);
        if (rc) {
            json_decref(ch);
            return rc;
        }
        json_object_set_new(ch, "photo",
                            json_pack("{s:s, s:s, s:I, s:I}", "mime", "image/jpeg", "sha256", sha,
                                      "bytes", (json_int_t)n, "original_bytes",
                                      (json_int_t)it->photo_len));
        *cost += n;
        if (rep) {
            rep->photos++;
            rep->photo_bytes_original += (int64_t)it->photo_len;
            rep->photo_bytes_sent += (int64_t)n;
        }
    }
    *out = ch;
    return BASIRA_OK;
}

/*
 * One push: outbox entries after the hub's acknowledged seq (up to the byte
 * budget) and audit entries after its acknowledged id. *progress = 1 when the
 * hub took something; *more = 1 when entries remain.
 */
static basira_code push_once(basira_store *st, const basira_sync_options *o, const char *node,
                             const unsigned char *sk, int with_changes, int *progress, int *more,
                             basira_sync_report *rep, basira_error *err)
{
    int64_t acked = cursor(st, "acked_seq"), acked_audit = cursor(st, "acked_audit");
    basira_outbox_item items[BATCH_ITEMS];
    size_t n = 0;
    basira_code rc = BASIRA_OK;
    if (with_changes && (rc = basira_store_outbox_read(st, acked, BATCH_ITEMS, items, &n, err)))
        return rc;
    json_t *changes = json_array(), *audit = NULL;
    size_t bytes = 0, used = 0;
    for (; !rc && used < n && (used == 0 || bytes < o->batch_bytes); used++) {
        json_t *ch = NULL;
        size_t cost = 0;
        if (!(rc = change_json(st, o, node, sk, &items[used], &ch, &cost, rep, err))) {
            json_array_append_new(changes, ch);
            bytes += cost;
        }
    }
    for (size_t i = 0; i < n; i++)
        basira_outbox_item_clear(&items[i]);
    int64_t head = 0;
    if (!rc)
        rc = basira_store_audit_raw(st, acked_audit, AUDIT_PER_BATCH, &audit, &head, err);
    if (rc) {
        json_decref(changes);
        return rc;
    }
    size_t n_changes = json_array_size(changes), n_audit = json_array_size(audit);
    int64_t first_seq =
        n_changes ? json_integer_value(json_object_get(json_array_get(changes, 0), "seq")) : 0;
    *progress = 0;
    *more = 0;
    if (!n_changes && !n_audit) {
        json_decref(changes);
        json_decref(audit);
        return BASIRA_OK;
    }
    json_t *batch = json_pack("{s:s, s:o, s:o}", "node", node, "changes", changes, "audit", audit);
    char *text = batch ? json_dumps(batch, JSON_COMPACT) : NULL;
    json_decref(batch);
    if (!text)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    json_t *ans = NULL;
    rc = sync_post(o, "/sync/v1/push", node, sk, text, &ans, rep, err);
    free(text);
    if (rc)
        return rc;
    int64_t new_seq = json_integer_value(json_object_get(ans, "acked_seq"));
    int64_t new_audit = json_integer_value(json_object_get(ans, "acked_audit"));
    if (rep) {
        rep->pushed += json_integer_value(json_object_get(ans, "applied"));
        rep->duplicates += json_integer_value(json_object_get(ans, "duplicates"));
        rep->audit_sent += new_audit > acked_audit ? new_audit - acked_audit : 0;
        rep->audit_ok = json_is_true(json_object_get(ans, "audit_ok"));
    }
    json_decref(ans);
    /*
     * The hub's answer is the truth: it may be behind what we thought (its
     * database restored from a backup), then we resend from there.
     */
    if ((rc = set_cursor(st, "acked_seq", new_seq, err)) ||
        (rc = set_cursor(st, "acked_audit", new_audit, err)))
        return rc;
    *progress = new_seq != acked || new_audit != acked_audit;
    if (n_changes && new_seq < first_seq && new_seq == acked)
        *progress = 1; /* the hub was behind our cursor: resend from its answer */
    int64_t pending = 0, last = 0;
    if ((rc = basira_store_outbox_pending(st, new_seq, &pending, &last, err)))
        return rc;
    *more = (with_changes && pending > 0) || new_audit < head;
    return BASIRA_OK;
}

static basira_code push_all(basira_store *st, const basira_sync_options *o, const char *node,
                            const unsigned char *sk, int with_changes, basira_sync_report *rep,
                            basira_error *err)
{
    for (int round = 0; round < 100000; round++) {
        int progress = 0, more = 0;
        basira_code rc = push_once(st, o, node, sk, with_changes, &progress, &more, rep, err);
        if (rc)
            return rc;
        if (!more)
            return BASIRA_OK;
        if (!progress)
            return basira_error_set(err, BASIRA_E_CONFLICT,
                                    _("the hub takes no more of this node's changes (its audit "
                                      "chain may be broken); see the hub's node list"));
    }
    return BASIRA_OK;
}

static basira_code pull_all(basira_store *st, const basira_sync_options *o, const char *node,
                            const unsigned char *sk, basira_sync_report *rep, basira_error *err)
{
    for (;;) {
        int64_t after = cursor(st, "reply_cursor"), down_after = cursor(st, "down_cursor");
        json_t *req = json_pack("{s:s, s:I, s:I}", "node", node, "after", (json_int_t)after,
                                "down_after", (json_int_t)down_after);
        char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
        json_decref(req);
        if (!text)
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        json_t *ans = NULL;
        basira_code rc = sync_post(o, "/sync/v1/pull", node, sk, text, &ans, rep, err);
        free(text);
        if (rc)
            return rc;
        json_t *replies = json_object_get(ans, "replies");
        size_t i;
        json_t *r;
        int64_t last = after;
        json_array_foreach(replies, i, r)
        {
            basira_hub_reply hr = {
                json_integer_value(json_object_get(r, "id")),
                json_integer_value(json_object_get(r, "case_id")),
                json_string_value(json_object_get(r, "diagnosis")),
                json_string_value(json_object_get(r, "plan")),
                json_string_value(json_object_get(r, "message")),
                json_string_value(json_object_get(r, "author")),
                json_integer_value(json_object_get(r, "replied_at")),
            };
            int applied = 0;
            if ((rc = basira_store_reply_apply(st, &hr, &applied, err)))
                break;
            if (rep)
                rep->replies += applied;
            if (hr.hub_id > last)
                last = hr.hub_id;
        }
        size_t got = json_array_size(replies);
        const json_t *down = json_object_get(ans, "down");
        got += json_array_size(down);
        int64_t down_last = down_after;
        basira_code drc = rc ? rc : sync_down_apply(st, o, node, down, &down_last, rep, err);
        json_decref(ans);
        if (!rc && last != after)
            rc = set_cursor(st, "reply_cursor", last, err);
        /* What was applied is acknowledged even when a later item was refused. */
        if (!rc && down_last != down_after)
            rc = set_cursor(st, "down_cursor", down_last, err);
        if (!rc)
            rc = drc;
        if (rc)
            return rc;
        if (got == 0)
            return BASIRA_OK; /* this pull's cursor acknowledged everything before it */
    }
}

basira_code basira_sync_round(basira_store *st, const basira_sync_options *o,
                              basira_sync_report *rep, basira_error *err)
{
    basira_sync_report local;
    if (!rep)
        rep = &local;
    memset(rep, 0, sizeof *rep);
    rep->audit_ok = 1;
    if (!o->hub_url || !*o->hub_url)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("no hub URL given (--hub URL)"));
    char node[65];
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
    basira_code rc = sync_load_identity(st, node, sk, err);
    if (rc)
        return rc;
    rc = push_all(st, o, node, sk, 1, rep, err);
    if (!rc)
        rc = learn_hub_key(st, o, node, sk, rep, err);
    if (!rc)
        rc = pull_all(st, o, node, sk, rep, err);
    if (!rc)
        rc = sync_originals(st, o, node, sk, rep, err);
    if (!rc) {
        /* The round's own audit entry travels in the same round. */
        char detail[128];
        snprintf(detail, sizeof detail,
                 "pushed=%" PRId64 " duplicates=%" PRId64 " replies=%" PRId64, rep->pushed,
                 rep->duplicates, rep->replies);
        basira_actor a = {"sync", "local"};
        if (!(rc = basira_store_audit_append(st, &a, "sync_round", 0, "ok", detail, err)))
            rc = push_all(st, o, node, sk, 0, rep, err);
    }
    sodium_memzero(sk, sizeof sk);
    int64_t last = 0;
    basira_error perr;
    if (basira_store_outbox_pending(st, cursor(st, "acked_seq"), &rep->pending, &last, &perr) &&
        !rc)
        return basira_error_set(err, perr.code, "%s", perr.message);
    if (!rc && !rep->audit_ok)
        rc = basira_error_set(err, BASIRA_E_TAMPERED,
                              _("the hub found this node's audit chain broken; run basira audit "
                                "verify"));
    return rc;
}
