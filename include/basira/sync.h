/*
 * sync.h - the clinic node's side of the regional hub: enrolment, one sync
 * round (push the outbox and the audit chain, pull the replies), and the
 * background worker of `basira serve --hub URL`.
 *
 * A round, over HTTP(S) with libcurl:
 *   1. push: batches of outbox entries (store_sync.h) after the sequence the
 *      hub acknowledged, each with the audit entries the hub lacks; photos as
 *      a size-budgeted copy (long side photo_max_side, JPEG) so a 12 MP photo
 *      costs about 150 kB on the link, not 4 MB; the body deflate-compressed and
 *      signed with the node's Ed25519 key (made at enrolment, kept in the
 *      encrypted store). The hub answers with what it has applied; the node
 *      adopts that answer as its cursor, so a lost answer, a killed hub or a
 *      duplicated delivery only makes the next batch resend what the hub then
 *      skips. A dropped link loses at most the batch in flight (batch_bytes).
 *   2. pull: replies after the last one applied; applying is idempotent (the
 *      hub's reply id is the key), and the next pull's cursor acknowledges them.
 *   3. push again the audit entries the round itself wrote.
 * Nothing depends on the node's clock: order is the outbox sequence, and the
 * hub stamps arrival times itself.
 */
#ifndef BASIRA_SYNC_H
#define BASIRA_SYNC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "basira/error.h"
#include "basira/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct basira_sync_options {
    const char *hub_url;    /* "http://host:port" or "https://..." (required) */
    long max_kbps;          /* link cap in kilobits per second each way; 0 = none */
    int photo_max_side;     /* long side of the photo copy sent first (default 1024) */
    int photo_quality;      /* its JPEG quality (default 80) */
    size_t batch_bytes;     /* target size of one batch before compression (default 256 KiB) */
    long request_timeout_s; /* give up one request after this long (default 120) */
    const char *ca_file;    /* HTTPS: trust this CA bundle (NULL: the system's) */
    int retry_transport;    /* retry a request on a cut link (default 1) */
    size_t chunk_bytes;     /* photos travel in chunks of this size (default 64 KiB) */
    const char *data_dir;   /* the node's data folder (site configuration from the hub) */
    /*
     * The stored originals: NEVER, ALWAYS (each after its budgeted copy) or
     * AUTO (default): those a dermatologist requested, and all of them when
     * the link measured this round (or last measured) reaches good_link_kbps.
     */
    enum { BASIRA_ORIGINALS_AUTO = 0, BASIRA_ORIGINALS_NEVER, BASIRA_ORIGINALS_ALWAYS } originals;
    long good_link_kbps; /* default 2000 */
    /*
     * Called from the sync's thread once a site configuration from the hub is
     * written to data_dir/config.json, so that a running `basira serve` applies
     * it at once rather than at its next start (NULL: nobody to tell). Its
     * outcome is audited ("site_config_live"); a failure leaves the file
     * written, for the next start.
     */
    basira_code (*site_config_changed)(void *ctx, basira_error *err);
    void *site_config_ctx;
} basira_sync_options;

void basira_sync_options_init(basira_sync_options *o);

typedef struct basira_sync_report {
    int64_t pushed;               /* changes the hub applied this round */
    int64_t duplicates;           /* changes it already had */
    int64_t audit_sent;           /* audit entries it took */
    int64_t replies;              /* new replies applied here */
    int64_t pending;              /* outbox entries still unacknowledged at the end */
    int64_t bytes_up, bytes_down; /* on the link, headers included */
    int64_t photos, photo_bytes_original, photo_bytes_sent;
    int requests;
    int audit_ok;      /* the hub verifies this node's chain */
    int64_t chunks;    /* photo chunks the hub took */
    int64_t originals; /* stored originals sent */
    int64_t down;      /* down items applied (site configuration, requests) */
    long link_kbps;    /* upload speed measured on chunks (0: none this round) */
} basira_sync_report;

/*
 * Enrol this node with the hub using a one-time token from `basira hub enrol`:
 * a new Ed25519 key pair is made, the public key sent, the secret key, node
 * name and hub URL kept in the store. BASIRA_E_CONFLICT when already enrolled.
 */
basira_code basira_sync_enrol(basira_store *st, const basira_sync_options *o, const char *token,
                              char node_name[65], basira_error *err);

/*
 * One round (push, pull, push). BASIRA_OK only when every outbox entry present
 * at the start and every audit entry up to the end of the pull was
 * acknowledged and every reply offered was applied. rep may be NULL.
 */
basira_code basira_sync_round(basira_store *st, const basira_sync_options *o,
                              basira_sync_report *rep, basira_error *err);

/*
 * The model release step (basira/release.h): the node tells the hub which
 * release it runs (a signed POST /sync/v1/release); when the hub has staged
 * another one for it, the node verifies it against the hub's release public key
 * (release_pk_hex) and installs it under models_dir, or refuses it and keeps
 * the model it runs. Either way it reports the outcome to the hub and writes it
 * to its audit trail (release_install / release_refused).
 * BASIRA_OK when nothing was offered or the offer was installed; a refusal is
 * the verification's error (BASIRA_E_AUTH for a bad signature...).
 */
typedef struct basira_sync_release_report {
    int offered, installed, refused;
    char release_id[65];
    char sha256[65]; /* what runs now ("" when nothing is installed) */
} basira_sync_release_report;

basira_code basira_sync_release(basira_store *st, const basira_sync_options *o,
                                const char *models_dir, const char *release_pk_hex,
                                basira_sync_release_report *rep, basira_error *err);

/* The background sync of `basira serve --hub`. */
typedef struct basira_sync_worker basira_sync_worker;

/*
 * Start a thread that runs a round whenever the outbox has something new
 * (checked every poll_ms) and at least every idle_s seconds (to pull
 * replies). o and its strings must outlive the worker. Failures are reported
 * as JSON lines on log (may be NULL) and retried with backoff.
 */
basira_code basira_sync_worker_start(basira_store *st, const basira_sync_options *o, int poll_ms,
                                     int idle_s, FILE *log, basira_sync_worker **out,
                                     basira_error *err);
void basira_sync_worker_stop(basira_sync_worker *w);

#ifdef __cplusplus
}
#endif
#endif
