/* http_indicators.h - the dashboard's API (http_indicators.c), called from http.c. */
#ifndef BASIRA_HUB_HTTP_INDICATORS_H
#define BASIRA_HUB_HTTP_INDICATORS_H

#include <microhttpd.h>
#include <stddef.h>

#include "basira/hub.h"
#include "basira/i18n.h"

/*
 * GET /api/v1/indicators[.csv|.pdf]?by=&from=&to=&clinic=&sex=&phototype=&age_band=
 * &as_of= (dates YYYY-MM-DD); suffix: what follows "indicators" in the path
 * ("", ".csv", ".pdf"; anything else: BASIRA_E_NOT_FOUND). *body (malloc'd) is
 * the JSON document, the CSV or the PDF, *type its media type, the names in the asker's language
 * (Accept-Language, or ?lang= for a download link). Costs: those stored at the hub.
 */
basira_code hub_http_indicators(basira_hub *hub, struct MHD_Connection *c, const char *suffix,
                                const basira_translator *tr, char **body, size_t *len,
                                const char **type, basira_error *err);

#endif
