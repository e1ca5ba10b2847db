/*
 * static.c - what the node serves as files: the web app (GET / and
 * /app/<file>, from the installed web folder, public so the sign-in page
 * loads) and the OpenAPI description; and the health check.
 */
#include "basira/paths.h"
#include "core/i18n.h"
#include "server_internal.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Content-Type of a web file by extension; NULL: not served. */
static const char *web_type(const char *path)
{
    static const char *const types[][2] = {{".html", "text/html; charset=utf-8"},
                                           {".css", "text/css; charset=utf-8"},
                                           {".js", "text/javascript; charset=utf-8"},
                                           {".json", "application/json; charset=utf-8"},
                                           {".svg", "image/svg+xml"},
                                           {".png", "image/png"},
                                           {".ico", "image/x-icon"},
                                           {".woff2", "font/woff2"},
                                           {".webmanifest", "application/manifest+json"}};
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(dot, types[i][0]))
            return types[i][1];
    return NULL;
}

/*
 * Only plain relative names reach the disk: [A-Za-z0-9._-] segments separated
 * by single '/', no segment starting with '.' (so no "..", no hidden files),
 * no absolute path, at most 128 bytes. MHD has already decoded %xx, so an
 * encoded "%2e%2e" or "%00" is checked here in its decoded form.
 */
static int web_path_ok(const char *rel)
{
    size_t n = strlen(rel);
    if (n == 0 || n > 128 || rel[0] == '/' || rel[n - 1] == '/')
        return 0;
    for (const char *p = rel; *p; p++) {
        if (!isalnum((unsigned char)*p) && !strchr("._-/", *p))
            return 0;
        if ((p == rel || p[-1] == '/') && (*p == '.' || *p == '/'))
            return 0;
    }
    return 1;
}

enum MHD_Result serve_web(struct MHD_Connection *c, request *rq, const char *url,
                          const char *method)
{
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return fail_with(c, rq, 405, BASIRA_E_UNSUPPORTED,
                         N_("this method is not allowed on this endpoint"));
    const char *rel = !strcmp(url, "/") ? "index.html" : url + strlen("/app/");
    const char *type = web_type(rel);
    if (!web_path_ok(rel) || !type)
        return fail_with(c, rq, 404, BASIRA_E_NOT_FOUND, N_("no such file"));
    char index[4096], path[4300];
    basira_error e;
    if (basira_data_file("web/index.html", index, sizeof index, &e))
        return fail_with(c, rq, 404, BASIRA_E_NOT_FOUND,
                         N_("the web app is not installed on this node"));
    char *slash = strrchr(index, '/');
    if (slash)
        *slash = '\0';
    snprintf(path, sizeof path, "%s/%s", index, rel);
    /* O_NOFOLLOW: a symbolic link planted in the web folder is not followed out of it. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > 4 * 1024 * 1024) {
        if (fd >= 0)
            close(fd);
        return fail_with(c, rq, 404, BASIRA_E_NOT_FOUND, N_("no such file"));
    }
    struct MHD_Response *r = MHD_create_response_from_fd((size_t)st.st_size, fd);
    if (!r)
        close(fd);
    /*
     * The page may load only its own files (no CDN, no inline script); photos
     * being taken are previewed from blob: URLs. index.html is always
     * revalidated (it names the current files); the rest cached a short while.
     */
    reply how = {200,
                 type,
                 NULL,
                 !strcmp(rel, "index.html") ? "no-cache" : "public, max-age=300",
                 "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
                 "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
                 NULL};
    return server_queue(c, rq, r, (size_t)st.st_size, &how);
}

enum MHD_Result h_health(basira_server *s, struct MHD_Connection *c, request *rq)
{
    return send_json(c, rq, 200,
                     json_pack("{s:s, s:s, s:b}", "status", "ok", "version", basira_version(),
                               "analysis", basira_case_service_can_analyze(s->cases)),
                     NULL);
}

enum MHD_Result h_openapi(basira_server *s, struct MHD_Connection *c, request *rq)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(s->openapi_len, s->openapi, MHD_RESPMEM_PERSISTENT);
    reply how = {200, "application/json; charset=utf-8", NULL, NULL, NULL, NULL};
    return server_queue(c, rq, r, s->openapi_len, &how);
}
