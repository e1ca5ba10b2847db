/*
 * site.h - the site configuration of a clinic node: DIR/config.json in the
 * data folder, read ONCE by the command that runs (serve, purge, letter, ...)
 * and handed, as typed values, to whoever needs a part of it (`serve --hub`
 * reads it again when the hub sends a new one, docs/hub.md):
 *   "thresholds"      -> the triage pipeline (basira_pipeline_new)
 *   "retention_days"  -> the store's purge (basira_store_purge)
 *   "clinic"          -> the referral letters (the case service)
 *
 *   {"clinic": {"name": "...", "address": "...", "contact": "..."},
 *    "thresholds": {"high": 0.4, "medium": 0.08},
 *    "retention_days": {"cases": 3650, "photos": 1825, "quality_events": 365, "audit": 7300}}
 *
 * Every key is optional (defaults: the generic letter heading, the model's
 * thresholds, the retention defaults). A malformed file or value stops the
 * command with a message naming the key, rather than running a clinic for
 * months on settings nobody chose.
 */
#ifndef BASIRA_SITE_H
#define BASIRA_SITE_H

#include <jansson.h>

#include "basira/error.h"
#include "basira/export.h"
#include "basira/store.h"
#include "basira/triage.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct basira_site_config {
    basira_triage_config triage; /* thresholds (< 0: the model's) */
    basira_retention retention;  /* retention periods */
    basira_report_info clinic;   /* clinic_name NULL: the generic heading */
    json_t *doc_;                /* private: keeps the clinic strings alive */
} basira_site_config;

/* Defaults: no file. */
void basira_site_config_default(basira_site_config *site);

/*
 * Read dir/config.json into *site (defaults when the file is absent).
 * BASIRA_E_FORMAT for malformed JSON or values, BASIRA_E_IO / BASIRA_E_LIMIT
 * when it cannot be read. Free with basira_site_config_free, also on error.
 */
basira_code basira_site_config_load(const char *dir, basira_site_config *site, basira_error *err);

/* The same from a JSON document (copied; path names it in messages): the hub checks what it sends.
 */
basira_code basira_site_config_from_json(const json_t *doc, const char *path,
                                         basira_site_config *site, basira_error *err);

void basira_site_config_free(basira_site_config *site);

#ifdef __cplusplus
}
#endif
#endif
