/* fs.c - capped reads, safe joins, atomic and durable writes (include/basira/fs.h). */
#include "basira/fs.h"
#include "core/i18n.h"
#include "core/memory.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

basira_code basira_fs_read(const char *path, size_t max, unsigned char **data, size_t *len,
                           basira_error *err)
{
    if (!path || !data)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *data = NULL;
    if (len)
        *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return basira_error_set(err, errno == ENOENT ? BASIRA_E_NOT_FOUND : BASIRA_E_IO,
                                _("cannot read %s: %s"), path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || S_ISDIR(st.st_mode)) {
        close(fd);
        return basira_error_setm(err, BASIRA_E_IO, N_("cannot read %s: not a regular file"), path);
    }
    int regular = S_ISREG(st.st_mode);
    if (regular && (unsigned long long)st.st_size > max) {
        close(fd);
        return basira_error_setm(err, BASIRA_E_LIMIT,
                                 N_("%s is too large (%lld bytes; at most %zu)"), path,
                                 (long long)st.st_size, max);
    }
    /*
     * A pipe or a device (/dev/stdin, /dev/null) is read to its end, never past
     * the cap: the cap, not the size, bounds the work. Opened non-blocking so a
     * FIFO without a writer cannot hang the open; reads then block normally.
     */
    if (!regular)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    /* The size can change while reading: read up to the cap + 1 to notice growth. */
    size_t cap = regular ? (size_t)st.st_size + 1 : (max < 65536 ? max + 1 : 65536), n = 0;
    unsigned char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    basira_prefault(buf, cap);
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                free(buf);
                close(fd);
                return basira_error_setm(err, BASIRA_E_LIMIT,
                                         N_("%s is too large (at most %zu bytes)"), path, max);
            }
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            unsigned char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                close(fd);
                return basira_error_set(err, BASIRA_E_NOMEM, NULL);
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return basira_error_setm(err, BASIRA_E_IO, N_("cannot read %s: %s"), path, strerror(e));
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (n > max) {
        free(buf);
        return basira_error_setm(err, BASIRA_E_LIMIT, N_("%s is too large (at most %zu bytes)"),
                                 path, max);
    }
    buf[n] = '\0';
    *data = buf;
    if (len)
        *len = n;
    return BASIRA_OK;
}

/* 1 when rel is a relative path whose components never climb out of its folder. */
static int rel_ok(const char *rel)
{
    if (!rel[0] || rel[0] == '/')
        return 0;
    for (const char *p = rel; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')
            return 0;
    for (const char *c = rel; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return 0;
        c += n;
        if (*c == '/')
            c++;
    }
    return 1;
}

basira_code basira_fs_join(const char *dir, const char *rel, char *out, size_t outsz,
                           basira_error *err)
{
    if (!dir || !rel || !out || !outsz)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    if (!rel_ok(rel))
        return basira_error_setm(err, BASIRA_E_FORMAT,
                                 N_("'%s' must be a relative path inside %s (no '..', no absolute "
                                    "path)"),
                                 rel, dir);
    int n = snprintf(out, outsz, "%s/%s", dir, rel);
    if (n < 0 || (size_t)n >= outsz)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT, N_("path too long: %s"), rel);
    return BASIRA_OK;
}

basira_code basira_fs_find_image(const char *dir, const char *name, char *out, size_t outsz,
                                 basira_error *err)
{
    if (name && !*name)
        return basira_error_setm(err, BASIRA_E_FORMAT, N_("the image name is empty"));
    static const char *const ext[] = {"", ".jpg", ".png", ".jpeg"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        char rel[1024];
        if (snprintf(rel, sizeof rel, "%s%s", name ? name : "", ext[i]) >= (int)sizeof rel)
            return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT, N_("path too long: %s"), name);
        basira_code rc = basira_fs_join(dir, rel, out, outsz, err);
        if (rc)
            return rc;
        struct stat st;
        if (stat(out, &st) == 0 && S_ISREG(st.st_mode))
            return BASIRA_OK;
    }
    return basira_error_setm(err, BASIRA_E_NOT_FOUND,
                             N_("image '%s' not found in %s (also tried .jpg, .png, .jpeg)"), name,
                             dir);
}

basira_code basira_fs_atomic_open(const char *path, int mode, basira_fs_atomic *a,
                                  basira_error *err)
{
    memset(a, 0, sizeof *a);
    if (!path || snprintf(a->path, sizeof a->path, "%s", path) >= (int)sizeof a->path)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT, N_("path too long: %s"),
                                 path ? path : "");
    snprintf(a->tmp, sizeof a->tmp, "%s.XXXXXX", path);
    /* A fresh, unpredictable name in the same folder (so the rename cannot cross file systems). */
    int fd = mkostemp(a->tmp, O_CLOEXEC);
    if (fd < 0) {
        a->tmp[0] = '\0';
        return basira_error_setm(err, BASIRA_E_IO, N_("cannot write %s: %s"), path,
                                 strerror(errno));
    }
    if (fchmod(fd, (mode_t)mode) || !(a->f = fdopen(fd, "wb"))) {
        int e = errno;
        close(fd);
        unlink(a->tmp);
        a->tmp[0] = '\0';
        return basira_error_setm(err, BASIRA_E_IO, N_("cannot write %s: %s"), path, strerror(e));
    }
    return BASIRA_OK;
}

void basira_fs_atomic_abort(basira_fs_atomic *a)
{
    if (a->f)
        fclose(a->f);
    a->f = NULL;
    if (a->tmp[0])
        unlink(a->tmp);
    a->tmp[0] = '\0';
}

basira_code basira_fs_atomic_commit(basira_fs_atomic *a, basira_error *err)
{
    if (!a->f)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    int bad = fflush(a->f) != 0 || ferror(a->f) || fsync(fileno(a->f)) != 0;
    int e = errno;
    if (fclose(a->f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    a->f = NULL;
    if (!bad && rename(a->tmp, a->path) != 0) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        basira_fs_atomic_abort(a);
        return basira_error_setm(err, BASIRA_E_IO, N_("cannot write %s: %s"), a->path, strerror(e));
    }
    a->tmp[0] = '\0';
    /* Make the rename itself durable: fsync the folder that holds the file. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", a->path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        e = errno;
        if (dfd >= 0)
            close(dfd);
        return basira_error_setm(err, BASIRA_E_IO, N_("cannot write %s: %s"), a->path, strerror(e));
    }
    close(dfd);
    return BASIRA_OK;
}

basira_code basira_fs_write_atomic(const char *path, const void *data, size_t len, int mode,
                                   basira_error *err)
{
    basira_fs_atomic a;
    basira_code rc = basira_fs_atomic_open(path, mode, &a, err);
    if (rc)
        return rc;
    if (len && fwrite(data, 1, len, a.f) != len) {
        int e = errno;
        basira_fs_atomic_abort(&a);
        return basira_error_setm(err, BASIRA_E_IO, N_("cannot write %s: %s"), path, strerror(e));
    }
    return basira_fs_atomic_commit(&a, err);
}

basira_code basira_fs_mkdirs(const char *path, int mode, basira_error *err)
{
    char buf[4096];
    if (!path || !*path || snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT, N_("path too long: %s"),
                                 path ? path : "");
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
                return basira_error_setm(err, BASIRA_E_IO, N_("cannot create the folder %s: %s"),
                                         buf, strerror(errno));
            *p = c;
            if (!c)
                break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return basira_error_setm(err, BASIRA_E_IO, N_("%s is not a folder"), path);
    return BASIRA_OK;
}
