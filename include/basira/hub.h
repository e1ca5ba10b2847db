/*
 * hub.h - the regional hub: where the consented cases of many clinic nodes
 * meet the dermatologists, on PostgreSQL (libpq).
 *
 * Data model (schema in src/hub/schema.c, versioned, `basira hub init`):
 *   hub_nodes     each enrolled clinic node: its Ed25519 public key, the last
 *                 sequence applied, its audit chain head and whether it verifies;
 *   hub_changes   one row per applied (node, sequence): the idempotency key;
 *   hub_cases, hub_images, hub_photos, hub_decisions   what the nodes sent
 *                 (every decision version kept, keyed by the node's sequence);
 *   hub_audit     each node's audit chain, every hash recomputed on arrival;
 *   hub_replies   the dermatologists' answers, pulled by the nodes;
 *   hub_users, hub_sessions   the hub's own accounts.
 *
 * Delivery (src/hub/apply.c): a push carries changes in sequence order; a
 * change at or below the node's last applied sequence is a duplicate and is
 * skipped, one beyond the next is a gap and stops the apply (the node resends
 * from the acknowledged sequence). Each push is one PostgreSQL transaction, so
 * a hub killed mid-push applied all of it or none of it, and the answer the node
 * gets (the acknowledged sequence) is only sent after the commit.
 *
 * Every push and pull is signed by the node's Ed25519 key (libsodium); the
 * signature covers the exact bytes sent. The hub holds only public keys.
 *
 * A basira_hub is safe to use from several threads (a small pool of
 * connections; a connection lost with a PostgreSQL restart is replaced).
 */
#ifndef BASIRA_HUB_H
#define BASIRA_HUB_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "basira/error.h"
#include "basira/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct basira_hub basira_hub;

/* Schema version this program writes. */
int basira_hub_schema_current(void);

/*
 * Create or migrate the schema at conninfo (a libpq connection string).
 * *version (may be NULL) gets the version now in place. A database with a
 * newer schema is refused (BASIRA_E_UNSUPPORTED).
 */
basira_code basira_hub_init(const char *conninfo, int *version, basira_error *err);

/*
 * Connect to a hub database whose schema is current (else BASIRA_E_UNSUPPORTED
 * saying to run `basira hub init`). BASIRA_E_STORE when it cannot be reached.
 * argon2: the cost of the password hashes it makes (MINIMUM for test suites).
 */
basira_code basira_hub_open(const char *conninfo, basira_argon2_cost argon2, basira_hub **out,
                            basira_error *err);
void basira_hub_free(basira_hub *hub);

/* Roles at the hub. */
typedef enum basira_hub_role {
    BASIRA_HUB_DERMATOLOGIST = 0,
    BASIRA_HUB_ADMIN,
    BASIRA_HUB_AUDITOR,
    BASIRA_HUB_DATA_STEWARD, /* approves model releases (change control) */
    BASIRA_HUB_MEDICAL_LEAD, /* approves model releases (change control) */
} basira_hub_role;

basira_code basira_hub_role_parse(const char *name, basira_hub_role *out, basira_error *err);
const char *basira_hub_role_name(basira_hub_role r);

/* Usernames 1..64 of [A-Za-z0-9._-]; passwords at least 8 bytes (Argon2id). BASIRA_E_CONFLICT. */
basira_code basira_hub_user_add(basira_hub *hub, const char *username, basira_hub_role role,
                                const char *password, basira_error *err);

/* BASIRA_E_AUTH for an unknown user or a wrong password (one message). */
basira_code basira_hub_authenticate(basira_hub *hub, const char *username, const char *password,
                                    basira_hub_role *role, basira_error *err);

/*
 * Register (or re-arm) a node NAME and make its one-time enrolment token (64
 * hex characters). Only the token's hash is stored. A node already enrolled
 * gets BASIRA_E_CONFLICT.
 */
basira_code basira_hub_enrol(basira_hub *hub, const char *node_name, char token[65],
                             basira_error *err);

/*
 * What a node calls: the token is spent and its public key (64 hex characters,
 * Ed25519) recorded; node_name gets the node's name. BASIRA_E_AUTH for an
 * unknown or spent token.
 */
basira_code basira_hub_register(basira_hub *hub, const char *token, const char *public_key_hex,
                                char node_name[65], basira_error *err);

/*
 * Apply a signed push (body: the JSON the node sent, after decompression;
 * signed: the bytes the signature covers; sig_hex: 128 hex characters).
 * *answer (new reference) is {"acked_seq","acked_audit","audit_ok","applied",
 * "duplicates"}. BASIRA_E_AUTH for an unknown node or a bad signature,
 * BASIRA_E_FORMAT for a malformed batch (nothing applied).
 */
basira_code basira_hub_push(basira_hub *hub, const char *node, const void *signed_bytes,
                            size_t signed_len, const char *sig_hex, const json_t *body,
                            json_t **answer, basira_error *err);

/*
 * The shape of a push, checked before anything touches the database: "node"
 * (at most 64 characters), "changes" (at most 10000: seq >= 1, a known kind,
 * case_id >= 1, optional image_id, record and photo {mime, sha256 hex, data
 * base64, original_bytes}) and "audit" (at most 10000: id, ts, hash and
 * prev_hash hex, texts). BASIRA_E_FORMAT naming the first bad item,
 * BASIRA_E_LIMIT when too many.
 */
basira_code basira_hub_batch_check(const json_t *body, basira_error *err);

/*
 * Inflate a deflate (zlib) body into *out (malloc'd, NUL-terminated), at most
 * cap bytes: BASIRA_E_LIMIT beyond (a compression bomb stops there),
 * BASIRA_E_FORMAT for damaged data.
 */
basira_code basira_hub_inflate(const void *in, size_t len, size_t cap, unsigned char **out,
                               size_t *out_len, basira_error *err);

/*
 * A signed pull: {"after": N} acknowledges the node's replies up to N and
 * answers {"replies": [...]} with those after it (at most 100).
 */
basira_code basira_hub_pull(basira_hub *hub, const char *node, const void *signed_bytes,
                            size_t signed_len, const char *sig_hex, const json_t *body,
                            json_t **answer, basira_error *err);

/*
 * A signed {"node"} from an enrolled node -> {"node", "hub_key"}: the public
 * key down items are signed with, for nodes enrolled before the hub signed
 * them (they learnt no key at enrolment and refuse every down item).
 */
basira_code basira_hub_key_refresh(basira_hub *hub, const char *node, const void *signed_bytes,
                                   size_t signed_len, const char *sig_hex, const json_t *body,
                                   json_t **answer, basira_error *err);

/*
 * Every synced case (new reference): [{"node","case_id","patient_ref","age",
 * "sex","body_site","category","ai_category","risk_index","status",
 * "created_at","received_at","waiting_s","photos","decisions","reply"}],
 * ordered as the worklist is: category (high first), risk index, waiting time.
 */
basira_code basira_hub_cases(basira_hub *hub, json_t **out, basira_error *err);

/* One case with its images, decision history and replies. BASIRA_E_NOT_FOUND. */
basira_code basira_hub_case_get(basira_hub *hub, const char *node, int64_t case_id, json_t **out,
                                basira_error *err);

/* A photo by its SHA-256 (hex). *data malloc'd. BASIRA_E_NOT_FOUND. */
basira_code basira_hub_photo(basira_hub *hub, const char *sha256_hex, unsigned char **data,
                             size_t *len, char mime[32], basira_error *err);

/* A dermatologist's reply. */
typedef struct basira_hub_reply_new {
    const char *node;
    int64_t case_id;
    const char *diagnosis; /* up to 200 characters, may be NULL */
    const char *plan;      /* "urgent_visit" | "biopsy" | "follow_up" | "reassure" */
    const char *message;   /* to the GP, up to 2000 characters, may be NULL */
    const char *author;    /* the hub user */
} basira_hub_reply_new;

basira_code basira_hub_reply(basira_hub *hub, const basira_hub_reply_new *r, int64_t *id,
                             basira_error *err);

/*
 * The nodes and their audit chains (new reference): [{"node","enrolled",
 * "last_seq","audit_entries","audit_head","audit_ok","audit_error",
 * "last_seen"}].
 */
basira_code basira_hub_nodes(basira_hub *hub, json_t **out, basira_error *err);

/* ---- chunks, originals and what travels down (upload.c, down.c; basira/down.h) ---- */

/* A chunk's head, checked (basira_hub_chunk_parse; data points into the body). */
typedef struct basira_hub_chunk_head {
    char sha256[65];
    char mime[65];
    int64_t total, offset;
    const unsigned char *data;
    size_t data_len;
} basira_hub_chunk_head;

/*
 * The shape of a chunk body before anything touches the database: a JSON line
 * naming node (it must be the signer), a SHA-256, total (1 byte .. 64 MiB), the
 * offset, a MIME type; then at most 1 MiB ending within total.
 * BASIRA_E_FORMAT otherwise. Fuzzed (fuzz/fuzz_hub_batch.c).
 */
basira_code basira_hub_chunk_parse(const void *body, size_t len, const char *node,
                                   basira_hub_chunk_head *out, basira_error *err);

/*
 * One signed chunk of a photo (body: a JSON line {"node","sha256","total",
 * "offset","mime"}, a newline, at most 1 MiB of bytes; signed: the whole
 * body). *answer is {"have": bytes the hub holds, "complete": bool}.
 */
basira_code basira_hub_chunk(basira_hub *hub, const char *node, const void *signed_bytes,
                             size_t signed_len, const char *sig_hex, json_t **answer,
                             basira_error *err);

/* A signed {"node","image_id","sha256"}: that uploaded photo is the image's stored original. */
basira_code basira_hub_original(basira_hub *hub, const char *node, const void *signed_bytes,
                                size_t signed_len, const char *sig_hex, const json_t *body,
                                json_t **answer, basira_error *err);

/* The hub's Ed25519 public key (64 hex characters), made on first use. */
basira_code basira_hub_public_key(basira_hub *hub, char out[65], basira_error *err);

/* Queue a down item of kind with payload (a JSON text) for node, signed by the hub. */
basira_code basira_hub_down_add(basira_hub *hub, const char *node, const char *kind,
                                const char *payload, const char *by, int64_t *id,
                                basira_error *err);

/* The node's site configuration (checked as the node checks DIR/config.json), sent down. */
basira_code basira_hub_site_config(basira_hub *hub, const char *node, const json_t *config,
                                   const char *by, int64_t *id, basira_error *err);

/*
 * A dermatologist asks for the stored original of one photo: recorded on the
 * image, and an "original_request" goes down. BASIRA_E_NOT_FOUND (no such
 * photo), BASIRA_E_CONFLICT (the original is there already).
 */
basira_code basira_hub_original_request(basira_hub *hub, const char *node, int64_t case_id,
                                        int64_t image_id, const char *by, basira_error *err);

/* ---- sign-in sessions of hub users (src/hub/session.c; rules shared with the node) ---- */

/* Session lifetime and idle sign-out (default 8 h, 15 min), lockout (5 per 15 min). */
void basira_hub_set_session_limits(basira_hub *hub, int64_t ttl_s, int64_t idle_s, int max_failures,
                                   int window_s);

/*
 * Sign in: the attempt counts against the account's lockout before the
 * password is checked (BASIRA_E_LIMIT with *retry_s when locked out,
 * BASIRA_E_AUTH for a wrong username or password), then a session is made:
 * token and csrf (64 hex each); only the token's hash is stored.
 */
basira_code basira_hub_sign_in(basira_hub *hub, const char *username, const char *password,
                               char token[BASIRA_TOKEN_LEN + 1], char csrf[BASIRA_TOKEN_LEN + 1],
                               basira_hub_role *role, int *retry_s, basira_error *err);

/*
 * The session of token: its user, role and CSRF token. BASIRA_E_AUTH when
 * unknown, expired or idle too long (then it ends).
 */
basira_code basira_hub_session(basira_hub *hub, const char *token, char user[65],
                               basira_hub_role *role, char csrf[BASIRA_TOKEN_LEN + 1],
                               basira_error *err);

/* Sign out (the session ends). */
basira_code basira_hub_sign_out(basira_hub *hub, const char *token, basira_error *err);

/* ---- the HTTP service (src/hub/http.c) ---- */

typedef struct basira_hub_server basira_hub_server;

/*
 * Listen on addr:port (port 0: ephemeral) with threads workers; HTTPS when
 * tls_cert and tls_key (PEM files) are given, plain HTTP when both are NULL.
 */
basira_code basira_hub_server_start(basira_hub *hub, const char *addr, uint16_t port,
                                    unsigned threads, const char *tls_cert, const char *tls_key,
                                    basira_hub_server **out, basira_error *err);
uint16_t basira_hub_server_port(const basira_hub_server *s);
void basira_hub_server_stop(basira_hub_server *s);

#ifdef __cplusplus
}
#endif
#endif
