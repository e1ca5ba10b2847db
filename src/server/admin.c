/*
 * admin.c - the auditor's and the administrator's endpoints: the audit trail
 * and its check, the staff accounts.
 */
#include "core/i18n.h"
#include "server_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum MHD_Result h_audit_list(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    long long after = 0, limit = 100;
    const char *v;
    char *end;
    if ((v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after")) && *v) {
        errno = 0;
        after = strtoll(v, &end, 10);
        if (errno || *end || after < 0)
            return fail_with(c, rq, 400, BASIRA_E_INVALID_ARGUMENT,
                             N_("after must be an audit entry id"));
    }
    if ((v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit")) && *v) {
        errno = 0;
        limit = strtoll(v, &end, 10);
        if (errno || *end || limit < 1 || limit > 1000)
            return fail_with(c, rq, 400, BASIRA_E_INVALID_ARGUMENT,
                             N_("limit must be between 1 and 1000"));
    }
    json_t *out = NULL;
    basira_actor a = actor_of(rq);
    if (basira_store_audit_list(s->store, &a, after, (int)limit, &out, &e))
        return fail(c, rq, &e);
    return send_json(c, rq, 200, out, NULL);
}

enum MHD_Result h_audit_verify(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    basira_audit_report rep;
    basira_code rc = basira_store_audit_verify(s->store, &rep, &e);
    if (rc && rc != BASIRA_E_TAMPERED)
        return fail(c, rq, &e);
    return send_json(c, rq, 200,
                     json_pack("{s:b, s:I, s:I, s:s}", "ok", rc == BASIRA_OK, "checked",
                               (json_int_t)rep.checked, "bad_id", (json_int_t)rep.bad_id, "message",
                               rc ? e.message : ""),
                     NULL);
}

enum MHD_Result h_user_list(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    json_t *out = NULL;
    if (basira_store_user_list(s->store, &out, &e))
        return fail(c, rq, &e);
    return send_json(c, rq, 200, json_pack("{s:o}", "items", out), NULL);
}

enum MHD_Result h_user_add(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    json_t *j = json_loadb((const char *)rq->body, rq->len, JSON_REJECT_DUPLICATES, NULL);
    const char *name = json_string_value(json_object_get(j, "username"));
    const char *role = json_string_value(json_object_get(j, "role"));
    const char *pass = json_string_value(json_object_get(j, "password"));
    basira_role r;
    basira_code rc;
    if (!json_is_object(j) || !name || !role || !pass || json_object_size(j) != 3)
        rc = basira_error_setm(&e, BASIRA_E_FORMAT,
                               N_("send {\"username\", \"role\", \"password\"} as JSON"));
    else if (!(rc = basira_role_parse(role, &r, &e))) {
        basira_actor a = actor_of(rq);
        rc = basira_store_user_add(s->store, &a, name, r, pass, &e);
    }
    if (rc) {
        json_decref(j);
        return fail(c, rq, &e);
    }
    json_t *out = json_pack("{s:s, s:s, s:b}", "username", name, "role", role, "disabled", 0);
    json_decref(j);
    return send_json(c, rq, 201, out, NULL);
}

enum MHD_Result h_user_update(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    json_t *j = json_loadb((const char *)rq->body, rq->len, JSON_REJECT_DUPLICATES, NULL);
    json_t *pass = json_object_get(j, "password"), *dis = json_object_get(j, "disabled");
    json_t *lang = json_object_get(j, "lang");
    size_t known = (pass != NULL) + (dis != NULL) + (lang != NULL);
    basira_code rc = BASIRA_OK;
    basira_actor a = actor_of(rq);
    if (!json_is_object(j) || known == 0 || json_object_size(j) != known ||
        (pass && !json_is_string(pass)) || (dis && !json_is_boolean(dis)) ||
        (lang && !json_is_string(lang) && !json_is_null(lang)))
        rc = basira_error_setm(&e, BASIRA_E_FORMAT,
                               N_("send {\"password\": string}, {\"disabled\": bool} and/or "
                                  "{\"lang\": \"fr\", \"ar\", \"en\" or null}"));
    if (!rc && lang)
        rc = basira_store_user_set_lang(s->store, &a, rq->name, json_string_value(lang), &e);
    if (!rc && pass)
        rc = basira_store_user_passwd(s->store, &a, rq->name, json_string_value(pass), &e);
    if (!rc && dis)
        rc = basira_store_user_set_disabled(s->store, &a, rq->name, json_is_true(dis), &e);
    json_decref(j);
    if (rc)
        return fail(c, rq, &e);
    return send_json(c, rq, 200, json_pack("{s:s, s:b}", "username", rq->name, "updated", 1), NULL);
}
