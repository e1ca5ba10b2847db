/*
 * store_sync.h - what the clinic node's store keeps for the regional hub
 * (src/sync): the outbox, the sync state, and the replies that came back.
 *
 * The outbox is filled by SQLite triggers inside the transaction of the change
 * it records (schema step 2, src/store/outbox.c), so a change is either stored
 * and queued, or neither; no code path can forget to queue one:
 *   "case"     a case created with consent.remote_review = true;
 *   "image"    an analysed photo or a quality event of such a case;
 *   "decision" each clinician decision (every version: the payload is the
 *              decision as it was recorded, not the case's current one);
 *   "erase"    such a case was deleted (retention or erasure): the hub erases it;
 *   "photo_erase" a photo of such a case was deleted (retention): the hub drops it.
 * A case without consent for remote review never enters the outbox.
 *
 * The sequence number of an outbox entry is the node's side of the (node,
 * sequence) key that makes the hub's apply idempotent.
 */
#ifndef BASIRA_STORE_SYNC_H
#define BASIRA_STORE_SYNC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "basira/error.h"
#include "basira/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One change waiting for the hub. */
typedef struct basira_outbox_item {
    int64_t seq;
    char kind[16]; /* "case" | "image" | "decision" | "erase" | "photo_erase" */
    int64_t case_id;
    int64_t image_id; /* kind "image" */
    /*
     * case: the case record (as basira_store_case_get, without images and
     * replies); image: {"kind","created_at","created_by","result"}; decision:
     * the decision document. NULL for "erase", or when the case or image was
     * deleted since (the entry then travels as a tombstone).
     */
    json_t *record;
    unsigned char *photo; /* kind "image": the stored (cleaned) photo, NULL if none */
    size_t photo_len;
    char mime[32];
} basira_outbox_item;

void basira_outbox_item_clear(basira_outbox_item *it);

/*
 * Up to max entries with seq > after, oldest first, into items[] (*n set; each
 * item must be cleared). Not audited per read: the sync round audits what it
 * sent (basira_store_audit_append "sync_push").
 */
basira_code basira_store_outbox_read(basira_store *st, int64_t after, size_t max,
                                     basira_outbox_item *items, size_t *n, basira_error *err);

/* How many entries have seq > after, and the last seq (0 when empty). */
basira_code basira_store_outbox_pending(basira_store *st, int64_t after, int64_t *count,
                                        int64_t *last_seq, basira_error *err);

/*
 * The raw audit entries with id > after (at most limit), as the hub needs them
 * to recompute each hash: [{"id","ts","actor","action","case_id","ip",
 * "outcome","detail","prev_hash","hash"}] (new reference). *head_id gets the
 * id of the last entry of the trail (0 when empty).
 */
basira_code basira_store_audit_raw(basira_store *st, int64_t after, int limit, json_t **out,
                                   int64_t *head_id, basira_error *err);

/* Sync settings (node name, hub, signing key, cursors). BASIRA_E_NOT_FOUND when unset. */
basira_code basira_store_sync_get(basira_store *st, const char *key, char *out, size_t outsz,
                                  basira_error *err);
basira_code basira_store_sync_set(basira_store *st, const char *key, const char *value,
                                  basira_error *err);

/* A dermatologist's reply from the hub. */
typedef struct basira_hub_reply {
    int64_t hub_id;  /* the hub's id of the reply: applying it twice does nothing */
    int64_t case_id; /* the node's case id */
    const char *diagnosis;
    const char *plan; /* "urgent_visit" | "biopsy" | "follow_up" | "reassure" */
    const char *message;
    const char *author;
    int64_t replied_at; /* unix seconds, the hub's clock */
} basira_hub_reply;

/*
 * Record a reply (with its audit entry, in one transaction). *applied = 1 when
 * new, 0 when already there or when the case no longer exists here (erased):
 * both are acknowledged to the hub.
 */
basira_code basira_store_reply_apply(basira_store *st, const basira_hub_reply *r, int *applied,
                                     basira_error *err);

/* ---- stored originals (src/store/originals.c) ---- */

/*
 * A dermatologist asked for the original of image_id (a down item): recorded
 * with its audit entry. *known = 0 when this node has no such photo (erased).
 */
basira_code basira_store_original_request(basira_store *st, int64_t case_id, int64_t image_id,
                                          const char *by, int64_t down_id, int *known,
                                          basira_error *err);

typedef struct basira_original {
    int64_t image_id, case_id;
    unsigned char *photo; /* the stored photo, malloc'd */
    size_t photo_len;
    char mime[32];
} basira_original;

void basira_original_clear(basira_original *o);

/*
 * The next original (image id > after_image) due at the hub: its budgeted copy
 * acknowledged (outbox seq <= acked_seq), not sent yet, and requested (or any
 * when all). *found = 0 when none.
 */
basira_code basira_store_original_next(basira_store *st, int all, int64_t acked_seq,
                                       int64_t after_image, basira_original *out, int *found,
                                       basira_error *err);

/* The hub has the original of image_id. */
basira_code basira_store_original_sent(basira_store *st, int64_t image_id, basira_error *err);

#ifdef __cplusplus
}
#endif
#endif
