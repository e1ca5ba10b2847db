/* oversight_internal.h - what monitor.c and releases.c share. Not a public API. */
#ifndef BASIRA_HUB_OVERSIGHT_INTERNAL_H
#define BASIRA_HUB_OVERSIGHT_INTERNAL_H

#include "basira/hub_oversight.h"
#include "hub_internal.h"

/* One row of the hub's oversight audit trail, on c (inside the caller's transaction). */
basira_code hub_oversight_audit(PGconn *c, const char *actor, const char *action,
                                const char *clinic, const json_t *detail, basira_error *err);

#endif
