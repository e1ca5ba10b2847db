/*
 * reid.c - the re-identification table: which pseudonym stands for which patient.
 *
 * Only the data steward may read it, so it is encrypted (XChaCha20-Poly1305 secretstream,
 * libsodium) under a key derived from the national secret with its own label, and it must
 * never lie in the folder that is sent out (checked by the command). The file is
 * "BSRREID1" + header + one encrypted record per JSON line; adding records rewrites the
 * file through a temporary copy, so a crash leaves the old table intact.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "basira/deid.h"
#include "core/i18n.h"

#define MAGIC "BSRREID1"
#define MAX_RECORD 4096

/* The table key: HMAC-SHA-256(secret, "basira/reid/v1" 0) through the pseudonym machinery
 * would mix uses; a keyed BLAKE2b over the label keeps it independent. */
basira_code deid_reid_key(const basira_deid_key *k, unsigned char out[32]);

static basira_code table_key(const basira_deid_key *k, unsigned char key[32], basira_error *err)
{
    if (deid_reid_key(k, key))
        return basira_error_set(err, BASIRA_E_INTERNAL, NULL);
    return BASIRA_OK;
}

/* Decrypt every record of f, calling fn(line) for each; f positioned after the magic. */
static basira_code read_records(FILE *f, const char *path, const unsigned char key[32],
                                int (*fn)(void *, const char *), void *arg, basira_error *err)
{
    unsigned char header[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
    if (fread(header, 1, sizeof header, f) != sizeof header)
        return basira_error_set(err, BASIRA_E_CORRUPT, _("%s: damaged re-identification table"),
                                path);
    crypto_secretstream_xchacha20poly1305_state st;
    if (crypto_secretstream_xchacha20poly1305_init_pull(&st, header, key))
        return basira_error_set(err, BASIRA_E_CORRUPT, _("%s: damaged re-identification table"),
                                path);
    unsigned char c[MAX_RECORD + crypto_secretstream_xchacha20poly1305_ABYTES];
    char m[MAX_RECORD + 1];
    for (;;) {
        unsigned char lenb[2];
        size_t got = fread(lenb, 1, 2, f);
        if (got == 0)
            break;
        size_t len = (size_t)lenb[0] << 8 | lenb[1];
        unsigned long long mlen;
        unsigned char tag;
        if (got != 2 || len > sizeof c || fread(c, 1, len, f) != len ||
            crypto_secretstream_xchacha20poly1305_pull(&st, (unsigned char *)m, &mlen, &tag, c, len,
                                                       NULL, 0))
            return basira_error_set(err, BASIRA_E_WRONG_KEY,
                                    _("%s: the re-identification table cannot be decrypted with "
                                      "this secret, or it was altered"),
                                    path);
        m[mlen] = 0;
        if (fn && fn(arg, m))
            return basira_error_set(err, BASIRA_E_IO, NULL);
    }
    sodium_memzero(m, sizeof m);
    return BASIRA_OK;
}

typedef struct writer {
    FILE *f;
    crypto_secretstream_xchacha20poly1305_state st;
} writer;

static int write_record(void *arg, const char *line)
{
    writer *w = arg;
    size_t len = strlen(line);
    unsigned char c[MAX_RECORD + crypto_secretstream_xchacha20poly1305_ABYTES];
    unsigned long long clen;
    if (len > MAX_RECORD)
        return -1;
    crypto_secretstream_xchacha20poly1305_push(&w->st, c, &clen, (const unsigned char *)line, len,
                                               NULL, 0, 0);
    unsigned char lenb[2] = {(unsigned char)(clen >> 8), (unsigned char)clen};
    return fwrite(lenb, 1, 2, w->f) == 2 && fwrite(c, 1, clen, w->f) == clen ? 0 : -1;
}

static FILE *open_table(const char *path, const unsigned char key[32], basira_error *err,
                        basira_code *rc)
{
    *rc = BASIRA_OK;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno != ENOENT)
            *rc =
                basira_error_set(err, BASIRA_E_IO, _("cannot read %s: %s"), path, strerror(errno));
        return NULL;
    }
    char magic[8];
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, MAGIC, 8)) {
        fclose(f);
        *rc = basira_error_set(err, BASIRA_E_FORMAT,
                               _("%s is not a Basira re-identification table"), path);
        return NULL;
    }
    (void)key;
    return f;
}

basira_code basira_reid_table_add(const char *path, const basira_deid_key *k,
                                  const basira_deid_result *res, size_t n, basira_error *err)
{
    unsigned char key[32];
    basira_code rc = table_key(k, key, err);
    if (rc)
        return rc;
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("path too long: %s"), path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *out = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!out) {
        if (fd >= 0)
            close(fd);
        sodium_memzero(key, sizeof key);
        return basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), tmp, strerror(errno));
    }
    writer w = {.f = out};
    unsigned char header[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
    crypto_secretstream_xchacha20poly1305_init_push(&w.st, header, key);
    if (fwrite(MAGIC, 1, 8, out) != 8 || fwrite(header, 1, sizeof header, out) != sizeof header)
        rc = basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), tmp, strerror(errno));
    /* The old records first (re-encrypted in the new stream), then the new ones. */
    FILE *old = rc ? NULL : open_table(path, key, err, &rc);
    if (old) {
        rc = read_records(old, path, key, write_record, &w, err);
        fclose(old);
    }
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "pseudonym", res[i].pseudonym,
                              "patient_id", res[i].patient_id, "patient_name", res[i].patient_name,
                              "study_uid", res[i].study_uid, "new_study_uid", res[i].new_study_uid,
                              "sop_uid", res[i].sop_uid, "new_sop_uid", res[i].new_sop_uid);
        char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (!line || write_record(&w, line))
            rc = basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), tmp,
                                  strerror(errno ? errno : EIO));
        free(line);
        json_decref(o);
    }
    if (fflush(out) || fsync(fileno(out)))
        rc =
            rc ? rc
               : basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), tmp, strerror(errno));
    fclose(out);
    if (!rc && rename(tmp, path))
        rc = basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), path, strerror(errno));
    if (rc)
        unlink(tmp);
    sodium_memzero(key, sizeof key);
    return rc;
}

static int print_line(void *arg, const char *line)
{
    return fprintf(arg, "%s\n", line) < 0 ? -1 : 0;
}

basira_code basira_reid_table_dump(const char *path, const basira_deid_key *k, void *file,
                                   basira_error *err)
{
    unsigned char key[32];
    basira_code rc = table_key(k, key, err);
    if (rc)
        return rc;
    FILE *f = open_table(path, key, err, &rc);
    if (!f && !rc)
        rc = basira_error_set(err, BASIRA_E_NOT_FOUND, _("%s: no such file"), path);
    if (f) {
        rc = read_records(f, path, key, print_line, file, err);
        fclose(f);
    }
    sodium_memzero(key, sizeof key);
    return rc;
}

int basira_path_inside(const char *path, const char *dir)
{
    char rd[PATH_MAX], rp[PATH_MAX], parent[PATH_MAX];
    if (!realpath(dir, rd))
        return 0;
    /* path may not exist yet: resolve its folder. */
    snprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    if (slash)
        *slash = 0;
    else
        strcpy(parent, ".");
    if (!realpath(slash && !parent[0] ? "/" : parent, rp))
        return 0;
    size_t n = strlen(rd);
    return !strncmp(rp, rd, n) && (rp[n] == 0 || rp[n] == '/' || !strcmp(rd, "/"));
}
