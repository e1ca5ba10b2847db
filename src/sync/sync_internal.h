/* sync_internal.h - what the files of src/sync share. Not a public API. */
#ifndef BASIRA_SYNC_INTERNAL_H
#define BASIRA_SYNC_INTERNAL_H

#include <jansson.h>

#include "basira/sync.h"

/*
 * POST json to o->hub_url + path; signed with sk (NULL: unsigned, enrolment)
 * as node; deflate-compressed when worth it. *answer: the hub's JSON object on
 * 200; otherwise an error with the hub's message (BASIRA_E_AUTH for 401,
 * BASIRA_E_CONFLICT for 409, BASIRA_E_IO for the rest and for a cut link,
 * BASIRA_E_LIMIT, not retried, for an answer over SYNC_ANSWER_MAX).
 */
basira_code sync_post(const basira_sync_options *o, const char *path, const char *node,
                      const unsigned char *sk, const char *json, json_t **answer,
                      basira_sync_report *rep, basira_error *err);

/* The most a hub's answer may hold (bytes, after decompression), except a release offer's. */
#define SYNC_ANSWER_MAX ((size_t)8 << 20)

/* sync_post with another cap on the answer (a release offer carries its model). */
basira_code sync_post_capped(const basira_sync_options *o, const char *path, const char *node,
                             const unsigned char *sk, const char *json, size_t answer_max,
                             json_t **answer, basira_sync_report *rep, basira_error *err);

/* The same with a body sent as it is (photo chunks: JPEG does not compress). */
basira_code sync_post_raw(const basira_sync_options *o, const char *path, const char *node,
                          const unsigned char *sk, const void *body, size_t len, json_t **answer,
                          basira_sync_report *rep, basira_error *err);

/*
 * Upload a photo in chunks of o->chunk_bytes (src/sync/upload.c): ask the hub
 * where it stands, then send from there; a cut link costs the chunk in
 * flight. sha_hex gets the photo's SHA-256.
 */
basira_code sync_upload(basira_store *st, const basira_sync_options *o, const char *node,
                        const unsigned char *sk, const unsigned char *data, size_t len,
                        const char *mime, char sha_hex[65], basira_sync_report *rep,
                        basira_error *err);

/* The stored originals due this round (upload.c), after the pull. */
basira_code sync_originals(basira_store *st, const basira_sync_options *o, const char *node,
                           const unsigned char *sk, basira_sync_report *rep, basira_error *err);

/*
 * Verify and apply the down items of a pull answer in order (src/sync/down.c);
 * *last gets the id of the last applied. A bad signature or an unknown kind
 * stops there (audited; BASIRA_E_TAMPERED / BASIRA_E_UNSUPPORTED).
 */
basira_code sync_down_apply(basira_store *st, const basira_sync_options *o, const char *node,
                            const json_t *items, int64_t *last, basira_sync_report *rep,
                            basira_error *err);

/* The node's name and Ed25519 secret key (64 bytes) from the store. */
basira_code sync_load_identity(basira_store *st, char node[65], unsigned char sk[64],
                               basira_error *err);

#endif
