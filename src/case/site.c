/* site.c - DIR/config.json, read once (include/basira/site.h). */
#include "basira/site.h"
#include "basira/json.h"
#include "core/i18n.h"

#define SITE_CONFIG_MAX_BYTES ((size_t)1 << 20)

#include <stdio.h>
#include <string.h>

void basira_site_config_default(basira_site_config *site)
{
    memset(site, 0, sizeof *site);
    basira_triage_config_default(&site->triage);
    basira_retention_default(&site->retention);
}

void basira_site_config_free(basira_site_config *site)
{
    if (!site)
        return;
    json_decref(site->doc_);
    basira_site_config_default(site);
}

/* "clinic": {"name": text, "address": text, "contact": text}, name required. */
static basira_code clinic_from_json(const json_t *c, const char *path, basira_report_info *out,
                                    basira_error *err)
{
    static const char *const keys[] = {"name", "address", "contact", "referral_to"};
    const char *vals[4] = {NULL, NULL, NULL, NULL};
    int ok = json_is_object(c);
    for (int i = 0; ok && i < 4; i++) {
        const json_t *v = json_object_get(c, keys[i]);
        if (v && (!json_is_string(v) || json_string_length(v) > 200))
            ok = 0;
        else
            vals[i] = v ? json_string_value(v) : NULL;
    }
    if (!ok || !vals[0])
        return basira_error_setm(err, BASIRA_E_FORMAT,
                                 N_("%s: \"clinic\" must be {\"name\": text, \"address\": text, "
                                    "\"contact\": text, \"referral_to\": text} (each at most 200 "
                                    "characters)"),
                                 path);
    out->clinic_name = vals[0];
    out->clinic_address = vals[1];
    out->clinic_contact = vals[2];
    out->addressee = vals[3];
    return BASIRA_OK;
}

basira_code basira_site_config_load(const char *dir, basira_site_config *site, basira_error *err)
{
    basira_site_config_default(site);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *j = NULL;
    basira_code rc = basira_json_read_file(path, SITE_CONFIG_MAX_BYTES, &j, NULL, err);
    if (rc == BASIRA_E_NOT_FOUND)
        return BASIRA_OK;
    if (rc)
        return rc;
    rc = basira_site_config_from_json(j, path, site, err);
    json_decref(j);
    return rc;
}

basira_code basira_site_config_from_json(const json_t *doc, const char *path,
                                         basira_site_config *site, basira_error *err)
{
    basira_site_config_default(site);
    if (!json_is_object(doc))
        return basira_error_setm(err, BASIRA_E_FORMAT, N_("%s: not a JSON object (line %d: %s)"),
                                 path, 1, "");
    json_t *j = json_deep_copy(doc);
    if (!j)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    site->doc_ = j;
    basira_code rc = basira_retention_from_json(j, path, &site->retention, err);
    const json_t *c = json_object_get(j, "clinic");
    if (!rc && c)
        rc = clinic_from_json(c, path, &site->clinic, err);
    if (!rc && (rc = basira_triage_config_from_json(j, &site->triage, err))) {
        char msg[BASIRA_ERROR_MESSAGE_MAX];
        snprintf(msg, sizeof msg, "%s", err ? err->message : "");
        basira_error_set(err, rc, "%s: %s", path, msg);
    }
    return rc;
}
