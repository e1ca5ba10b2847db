/*
 * hub_oversight.h - oversight at the hub: the drift monitor over the synced
 * cases, and the registry of model releases under the change-control plan
 * (docs/change-control.md): created from a certified candidate, approved by a
 * data steward and a medical lead (two people), signed with the hub's release
 * key, staged per clinic, rolled back per clinic, and offered to the nodes by
 * a signed sync message (POST /sync/v1/release).
 *
 * Every alert and every release step is written to hub_oversight_audit in the
 * same transaction as the change it records; a failed audit write fails it.
 */
#ifndef BASIRA_HUB_OVERSIGHT_H
#define BASIRA_HUB_OVERSIGHT_H

#include <jansson.h>

#include "basira/drift.h"
#include "basira/hub.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The analysed photos synced to the hub, as drift cases (malloc'd array): the
 * clinic is the node's name, ts the photo's time at the node, the outcome the
 * latest dermatologist reply's diagnosis read against ref's classes.
 */
basira_code basira_hub_drift_cases(basira_hub *hub, const json_t *ref, basira_drift_case **out,
                                   size_t *n, basira_error *err);

/*
 * basira_drift_monitor over the hub's cases; each clinic at watch or alert is
 * written to the oversight audit trail (action drift_watch / drift_alert).
 */
basira_code basira_hub_monitor(basira_hub *hub, const json_t *ref, json_t **out, basira_error *err);

typedef struct basira_hub_release_new {
    const char *id;         /* [A-Za-z0-9._-]{1,64} */
    const char *model_name; /* from the model's metadata */
    const char *model_version;
    const unsigned char *model; /* the model file */
    size_t model_len;
    const char *certify_sha256; /* SHA-256 of the `basira certify` report of the candidate */
    const char *by;             /* hub user who proposes it */
} basira_hub_release_new;

/* A candidate release (not yet approved). BASIRA_E_CONFLICT for an existing id. */
basira_code basira_hub_release_create(basira_hub *hub, const basira_hub_release_new *r,
                                      basira_error *err);

/*
 * Approval by a hub user (authenticated with password) whose role is
 * data_steward or medical_lead; the two approvals must come from two people
 * (BASIRA_E_FORBIDDEN), each role once (BASIRA_E_CONFLICT).
 */
basira_code basira_hub_release_approve(basira_hub *hub, const char *id, const char *username,
                                       const char *password, basira_error *err);

/* Sign an approved release with the release key (128 hex digits). BASIRA_E_PRECONDITION. */
basira_code basira_hub_release_sign(basira_hub *hub, const char *id, const char *sk_hex,
                                    const char *by, basira_error *err);

/* Stage a signed release for one clinic (node name). */
basira_code basira_hub_release_stage(basira_hub *hub, const char *id, const char *clinic,
                                     const char *by, basira_error *err);

/* Stage again, for clinic, the release staged before its current one. BASIRA_E_NOT_FOUND. */
basira_code basira_hub_release_rollback(basira_hub *hub, const char *clinic, const char *by,
                                        basira_error *err);

/*
 * The registry (new reference): {"releases": [{id, model, sha256, approvals,
 * signed_at, stages: [{clinic, action, at, by}]}], "ran": [{clinic, sha256,
 * model, first, last, results}] (from the model hash of every synced result),
 * "reports": [{clinic, release_id, outcome, detail, at}]}.
 */
basira_code basira_hub_releases(basira_hub *hub, json_t **out, basira_error *err);

/*
 * The signed sync message of a node: {"node", "installed": SHA or null,
 * "report": {release_id, sha256, outcome, detail} (optional)}. The answer is
 * {"release": null} or {"release": {"id", "manifest", "signature", "model"
 * (base64)}} when the release staged for the node is not the installed one.
 */
basira_code basira_hub_release_offer(basira_hub *hub, const char *node, const void *signed_bytes,
                                     size_t signed_len, const char *sig_hex, const json_t *body,
                                     json_t **answer, basira_error *err);

/*
 * Write clinic's adjudicated photos (those whose case's latest reply has a
 * diagnosis among codes) into dir as SHA.jpg, and csv_path as image_id,dx.
 * *n gets how many. For `basira recalibrate`.
 */
basira_code basira_hub_export_adjudicated(basira_hub *hub, const char *clinic,
                                          const char *const *codes, int n_codes, const char *dir,
                                          const char *csv_path, size_t *n, basira_error *err);

#ifdef __cplusplus
}
#endif
#endif
