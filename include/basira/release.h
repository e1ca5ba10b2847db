/*
 * release.h - signed model releases: what the hub signs and what a node checks
 * before it runs a new model.
 *
 * A release is a manifest (JSON, the exact bytes are signed) plus the model
 * file. The manifest names the model by its SHA-256 and lists the approvals of
 * the change-control plan (docs/change-control.md): a data steward and a medical
 * lead, two different people. The hub's release key (Ed25519, libsodium) signs
 * the manifest bytes; nodes hold only its public key.
 *
 * A node keeps its models in a folder (MODELS):
 *   MODELS/releases/SHA.safetensors   each installed model, by content
 *   MODELS/releases/SHA.manifest.json, SHA.sig   what was verified
 *   MODELS/current.json              {"history": [{release_id, sha256, installed_at}...]}:
 *                                    the last entry runs; rollback drops it.
 * Installing verifies everything first and changes current.json last (atomic
 * rename), so a release that does not verify, or a crash half-way, leaves the
 * node running the model it ran before.
 */
#ifndef BASIRA_RELEASE_H
#define BASIRA_RELEASE_H

#include <jansson.h>
#include <stddef.h>

#include "basira/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BASIRA_RELEASE_SIG_HEX 129 /* 128 hex digits + NUL */
/*
 * The largest model file a release carries. Models and runtime are budgeted at 50 MB, and a
 * node receives the model base64 in one answer of the hub, which it holds in memory: up to
 * BASIRA_RELEASE_MAX_OFFER_BYTES (src/sync/release_sync.c).
 */
#define BASIRA_RELEASE_MAX_MODEL_BYTES ((size_t)64 << 20)
#define BASIRA_RELEASE_MAX_OFFER_BYTES (BASIRA_RELEASE_MAX_MODEL_BYTES / 3 * 4 + ((size_t)1 << 20))

typedef struct basira_release_info {
    char release_id[65];
    char model_name[64];
    char model_version[32];
    char sha256[65];
    char data_steward[65];
    char medical_lead[65];
} basira_release_info;

/* A new release key pair: pk_hex 64 hex digits, sk_hex 128. */
basira_code basira_release_keygen(char pk_hex[65], char sk_hex[129], basira_error *err);

/*
 * The manifest of a release (new reference): format, release_id, model {name,
 * version, sha256, bytes}, approvals [{role, by}], and clinics (borrowed, may
 * be NULL: the clinics it is staged to; absent means every clinic).
 */
json_t *basira_release_manifest(const basira_release_info *info, size_t model_bytes,
                                const json_t *clinics);

/* Sign bytes with the release secret key (128 hex digits) into sig_hex. */
basira_code basira_release_sign(const void *bytes, size_t len, const char *sk_hex,
                                char sig_hex[BASIRA_RELEASE_SIG_HEX], basira_error *err);

/*
 * Everything a node checks, in this order: the signature of the manifest bytes
 * by pk_hex (BASIRA_E_AUTH: "the release signature does not verify"), the
 * manifest's shape (BASIRA_E_FORMAT), both approvals by different people
 * (BASIRA_E_FORBIDDEN), the model's SHA-256 and size (BASIRA_E_TAMPERED) and,
 * when clinic is given and the release names its clinics, that this clinic is
 * one of them (BASIRA_E_FORBIDDEN). info (may be NULL) gets the manifest.
 */
basira_code basira_release_verify(const void *manifest, size_t manifest_len, const char *sig_hex,
                                  const void *model, size_t model_len, const char *pk_hex,
                                  const char *clinic, basira_release_info *info, basira_error *err);

/* Verify, then install under models_dir and make it current (see above). */
basira_code basira_release_install(const char *models_dir, const void *manifest,
                                   size_t manifest_len, const char *sig_hex, const void *model,
                                   size_t model_len, const char *pk_hex, const char *clinic,
                                   basira_release_info *info, basira_error *err);

/* Go back to the release before the current one (BASIRA_E_NOT_FOUND when there is none). */
basira_code basira_release_rollback(const char *models_dir, basira_error *err);

/*
 * The model file that runs (path) and its SHA-256, after checking that the file
 * still has the hash that was verified (BASIRA_E_TAMPERED otherwise).
 * BASIRA_E_NOT_FOUND when nothing was installed.
 */
basira_code basira_release_current(const char *models_dir, char *path, size_t pathsz,
                                   char sha256[65], basira_error *err);

/*
 * The fingerprint of a release offer as sent to a node: hex SHA-256 of the manifest's
 * bytes followed by the signature's text (NULL counts as ""). A node reports the one it
 * refused; the hub does not send that offer again (src/hub/releases.c).
 */
void basira_release_offer_fingerprint(const char *manifest, const char *sig_hex, char out[65]);

/* current.json's history (new reference), or BASIRA_E_NOT_FOUND. */
basira_code basira_release_history(const char *models_dir, json_t **out, basira_error *err);

#ifdef __cplusplus
}
#endif
#endif
