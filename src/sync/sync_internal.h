/* sync_internal.h - what the files of src/sync share. Not a public API. */
#ifndef BASIRA_SYNC_INTERNAL_H
#define BASIRA_SYNC_INTERNAL_H

#include <jansson.h>

#include "basira/sync.h"

/*
 * POST json to o->hub_url + path; signed with sk (NULL: unsigned, enrolment)
 * as node; deflate-compressed when worth it. *answer: the hub's JSON object on
 * 200; otherwise an error with the hub's message (BASIRA_E_AUTH for 401,
 * BASIRA_E_CONFLICT for 409, BASIRA_E_IO for the rest and for a cut link).
 */
basira_code sync_post(const basira_sync_options *o, const char *path, const char *node,
                      const unsigned char *sk, const char *json, json_t **answer,
                      basira_sync_report *rep, basira_error *err);

/* The node's name and Ed25519 secret key (64 bytes) from the store. */
basira_code sync_load_identity(basira_store *st, char node[65], unsigned char sk[64],
                               basira_error *err);

#endif
