/*
 * router.c - the route table of the clinic node's API, in the manner of Redis's
 * command table: one line per endpoint names its method, path, handler, the
 * roles that may call it and the kind of body it reads. Nothing else lists the
 * routes (docs/openapi.json describes them for clients).
 */
#include "server_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const route routes[] = {
    /* method  path (after /api/v1)       handler        roles          body */
    {"GET", "/health", h_health, R_PUBLIC, BODY_NONE},
    {"GET", "/openapi.json", h_openapi, R_PUBLIC, BODY_NONE},
    {"POST", "/session", h_login, R_PUBLIC, BODY_JSON},
    {"GET", "/session", h_whoami, R_ANY, BODY_NONE},
    {"DELETE", "/session", h_logout, R_ANY, BODY_NONE},
    {"PATCH", "/session", h_session_update, R_ANY, BODY_JSON},
    {"POST", "/cases", h_case_create, R_CLINICAL, BODY_JSON},
    {"GET", "/cases", h_case_list, R_CLINICAL, BODY_NONE},
    {"GET", "/cases/{id}", h_case_get, R_CLINICAL, BODY_NONE},
    {"POST", "/cases/{id}/images", h_image_add, R_CLINICAL, BODY_IMAGE},
    {"GET", "/cases/{id}/images/{iid}", h_photo_get, R_CLINICAL, BODY_NONE},
    {"POST", "/cases/{id}/decision", h_decision, R_GP | R_DERM, BODY_JSON},
    {"GET", "/cases/{id}/report.pdf", h_report_pdf, R_CLINICAL, BODY_NONE},
    {"GET", "/cases/{id}/fhir", h_fhir, R_CLINICAL, BODY_NONE},
    {"GET", "/export", h_export, R_CLINICAL, BODY_NONE},
    {"GET", "/audit", h_audit_list, R_AUDITOR, BODY_NONE},
    {"GET", "/audit/verify", h_audit_verify, R_AUDITOR, BODY_NONE},
    {"GET", "/users", h_user_list, R_ADMIN, BODY_NONE},
    {"POST", "/users", h_user_add, R_ADMIN, BODY_JSON},
    {"PATCH", "/users/{name}", h_user_update, R_ADMIN, BODY_JSON},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

static int match(const char *pattern, const char *path, request *rq)
{
    while (*pattern && *path) {
        if (!strncmp(pattern, "{id}", 4) || !strncmp(pattern, "{iid}", 5)) {
            char *end;
            errno = 0;
            if (!(*path >= '1' && *path <= '9'))
                return 0;
            long long v = strtoll(path, &end, 10);
            if (errno || v <= 0)
                return 0;
            int is_iid = pattern[1] == 'i' && pattern[2] == 'i';
            *(is_iid ? &rq->iid : &rq->id) = v;
            path = end;
            pattern += is_iid ? 5 : 4;
        } else if (!strncmp(pattern, "{name}", 6)) {
            size_t n = strcspn(path, "/");
            if (n == 0 || n > BASIRA_USERNAME_MAX)
                return 0;
            memcpy(rq->name, path, n);
            rq->name[n] = '\0';
            path += n;
            pattern += 6;
        } else if (*pattern++ != *path++) {
            return 0;
        }
    }
    return !*pattern && !*path;
}

const route *server_find_route(const char *method, const char *url, request *rq, int *path_known)
{
    *path_known = 0;
    if (strncmp(url, API, strlen(API)))
        return NULL;
    const char *path = url + strlen(API);
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (match(routes[i].pattern, path, rq)) {
            *path_known = 1;
            if (!strcmp(routes[i].method, method))
                return &routes[i];
        }
    }
    return NULL;
}
