/* paths.c - locate data files in the build tree or an installation. */
#include "basira/paths.h"
#include "core/i18n.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *basira_version(void)
{
    return BASIRA_VERSION;
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Folder of the running executable, without trailing slash. */
static int exe_dir(char *out, size_t outsz)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    if ((size_t)snprintf(out, outsz, "%s", buf) >= outsz)
        return -1;
    return 0;
}

static int in_build_tree(void)
{
    char dir[PATH_MAX];
    if (exe_dir(dir, sizeof dir))
        return 0;
    size_t n = strlen(BASIRA_BUILD_DIR);
    return !strncmp(dir, BASIRA_BUILD_DIR, n) && (dir[n] == '/' || dir[n] == '\0');
}

static basira_code pick(char *out, size_t outsz, const char *const *cands, size_t n,
                        const char *what, basira_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (cands[i] && exists(cands[i])) {
            if ((size_t)snprintf(out, outsz, "%s", cands[i]) >= outsz)
                return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("path too long"));
            return BASIRA_OK;
        }
    }
    return basira_error_set(err, BASIRA_E_NOT_FOUND, _("cannot find %s"), what);
}

basira_code basira_data_file(const char *relpath, char *out, size_t outsz, basira_error *err)
{
    char c[4][PATH_MAX + 64];
    const char *cands[4] = {NULL, NULL, NULL, NULL};
    const char *env = getenv("BASIRA_DATADIR");
    char dir[PATH_MAX];
    if (env && *env) {
        snprintf(c[0], sizeof c[0], "%s/%s", env, relpath);
        cands[0] = c[0];
    }
    if (in_build_tree()) {
        snprintf(c[1], sizeof c[1], "%s/%s", BASIRA_SOURCE_DIR, relpath);
        cands[1] = c[1];
    }
    if (!exe_dir(dir, sizeof dir)) {
        snprintf(c[2], sizeof c[2], "%s/../share/basira/%s", dir, relpath);
        cands[2] = c[2];
    }
    snprintf(c[3], sizeof c[3], "%s/%s", BASIRA_INSTALL_DATADIR, relpath);
    cands[3] = c[3];
    return pick(out, outsz, cands, 4, relpath, err);
}

basira_code basira_locale_dir(char *out, size_t outsz, basira_error *err)
{
    char c[4][PATH_MAX + 64];
    const char *cands[4] = {NULL, NULL, NULL, NULL};
    const char *env = getenv("BASIRA_LOCALEDIR");
    char dir[PATH_MAX];
    if (env && *env) {
        snprintf(c[0], sizeof c[0], "%s", env);
        cands[0] = c[0];
    }
    if (in_build_tree()) {
        snprintf(c[1], sizeof c[1], "%s/locale", BASIRA_BUILD_DIR);
        cands[1] = c[1];
    }
    if (!exe_dir(dir, sizeof dir)) {
        snprintf(c[2], sizeof c[2], "%s/../share/locale", dir);
        cands[2] = c[2];
    }
    snprintf(c[3], sizeof c[3], "%s", BASIRA_INSTALL_LOCALEDIR);
    cands[3] = c[3];
    /* A missing catalogue is not fatal: messages fall back to English. */
    if (pick(out, outsz, cands, 4, "locale", NULL) != BASIRA_OK)
        snprintf(out, outsz, "%s", BASIRA_INSTALL_LOCALEDIR);
    (void)err;
    return BASIRA_OK;
}
