/*
 * down.h - what travels down from the regional hub to a clinic node: typed
 * "down items", each signed by the hub's Ed25519 key (libsodium).
 *
 * A down item is {"id", "kind", "payload", "sig"}: id is the hub's sequence
 * for that node (the node's cursor acknowledges it), kind names what it is,
 * payload is a JSON text whose shape the kind defines, sig is the hub's
 * detached signature (hex) over basira_down_text(node, id, kind, payload) --
 * the node's own name is signed, so an item for one node cannot be replayed
 * to another. The node learns the hub's public key at enrolment.
 *
 * Kinds today: "site_config" (the clinic's thresholds and settings, merged
 * over DIR/config.json), "original_request" (a dermatologist asks for the
 * stored original of one photo). A new kind is a row in the hub's
 * basira_hub_down_add callers and one entry in the node's table (src/sync/down.c).
 */
#ifndef BASIRA_DOWN_H
#define BASIRA_DOWN_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASIRA_DOWN_KIND_MAX 32
#define BASIRA_DOWN_PAYLOAD_MAX ((size_t)1 << 20)

/* The exact bytes a down item's signature covers (malloc'd, NUL-terminated; NULL: no memory). */
static inline char *basira_down_text(const char *node, int64_t id, const char *kind,
                                     const char *payload, size_t *len)
{
    size_t n = strlen(node) + strlen(kind) + strlen(payload) + 64;
    char *t = malloc(n);
    if (!t)
        return NULL;
    int k = snprintf(t, n, "basira-down-v1\n%s\n%" PRId64 "\n%s\n%s", node, id, kind, payload);
    *len = k > 0 ? (size_t)k : 0;
    return t;
}

#endif
