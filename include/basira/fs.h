/*
 * fs.h - the file-system mechanics every module shares, with one set of rules:
 *
 *   basira_fs_read          a whole file, with an explicit size cap (no module
 *                           reads an untrusted file without one)
 *   basira_fs_join          dir + a relative name from untrusted input (a CSV
 *                           cell, a URL) that must stay inside dir
 *   basira_fs_find_image    the same, trying the usual image extensions
 *   basira_fs_write_atomic  replace a file so that a crash leaves either the
 *                           old or the new contents, never a mix: a temporary
 *                           file in the same folder, written, fsync'd, renamed
 *                           over the target, then the folder fsync'd so the
 *                           rename itself survives a power cut
 *   basira_fs_atomic_*      the same for a writer that streams to a FILE
 */
#ifndef BASIRA_FS_H
#define BASIRA_FS_H

#include <stddef.h>
#include <stdio.h>

#include "basira/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Read path into a malloc'd buffer (free() it) holding *len bytes plus a NUL
 * that is not counted. Files over max bytes are BASIRA_E_LIMIT (nothing read
 * past the cap), a missing file BASIRA_E_NOT_FOUND, other failures BASIRA_E_IO.
 * Only regular files are read (a FIFO or a device would block or never end).
 */
basira_code basira_fs_read(const char *path, size_t max, unsigned char **data, size_t *len,
                           basira_error *err);

/*
 * out = dir "/" rel, when rel is a relative path that stays inside dir: not
 * empty, not absolute, no ".." component, no backslash or control character.
 * "a/b.jpg" and "x..y.jpg" are fine; "../x", "a/../../x", "/etc/passwd" are
 * BASIRA_E_FORMAT. A result longer than outsz is BASIRA_E_INVALID_ARGUMENT.
 */
basira_code basira_fs_join(const char *dir, const char *rel, char *out, size_t outsz,
                           basira_error *err);

/*
 * The image file named by name inside dir (basira_fs_join's rules), trying
 * name as given, then with .jpg, .png and .jpeg. BASIRA_E_NOT_FOUND when none
 * is a regular file.
 */
basira_code basira_fs_find_image(const char *dir, const char *name, char *out, size_t outsz,
                                 basira_error *err);

/* Create path and its missing parents (each with mode, less the umask); an existing folder is fine.
 */
basira_code basira_fs_mkdirs(const char *path, int mode, basira_error *err);

/* Replace path with len bytes of data, atomically and durably; the file gets mode (e.g. 0600). */
basira_code basira_fs_write_atomic(const char *path, const void *data, size_t len, int mode,
                                   basira_error *err);

/* A file being written atomically: write to f, then commit (or abort). */
typedef struct basira_fs_atomic {
    FILE *f;
    char path[4096];
    char tmp[4112];
} basira_fs_atomic;

basira_code basira_fs_atomic_open(const char *path, int mode, basira_fs_atomic *a,
                                  basira_error *err);
/* Flush, fsync, close, rename over the target, fsync the folder. Aborts on failure. */
basira_code basira_fs_atomic_commit(basira_fs_atomic *a, basira_error *err);
/* Close and remove the temporary file; the target is untouched. Safe after commit. */
void basira_fs_atomic_abort(basira_fs_atomic *a);

#ifdef __cplusplus
}
#endif
#endif
