/*
 * hygiene.c - the files around the database: who may read the key file, where it
 * lives, whether it holds a real secret, and the data folder's permissions.
 *
 * A key file readable by other accounts, or kept inside the data folder (so that
 * any copy or backup of the folder carries its own key), or made of 32 identical
 * bytes, protects nothing: such a key is refused with what to do instead.
 */
#include "core/i18n.h"
#include "store_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

double store_entropy_bits(const unsigned char *buf, size_t n)
{
    if (n == 0)
        return 0;
    size_t counts[256] = {0};
    for (size_t i = 0; i < n; i++)
        counts[buf[i]]++;
    /* Empirical (plug-in) entropy per byte times the length: an underestimate for short
     * random files (32 random bytes give about 150 bits), far above any pattern. */
    double h = 0;
    for (int v = 0; v < 256; v++)
        if (counts[v]) {
            double p = (double)counts[v] / (double)n;
            h -= p * log2(p);
        }
    return h * (double)n;
}

/* 1 when path is dir or inside it (both resolved). */
static int inside(const char *path, const char *dir)
{
    char rp[PATH_MAX], rd[PATH_MAX];
    if (!realpath(path, rp) || !realpath(dir, rd))
        return 0;
    size_t n = strlen(rd);
    if (n == 1) /* the data folder is "/": everything is inside */
        return 1;
    return !strncmp(rp, rd, n) && (rp[n] == '/' || rp[n] == '\0');
}

basira_code store_check_key_file(const char *path, const char *dir, const unsigned char *buf,
                                 size_t n, basira_error *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return basira_error_setm(err, BASIRA_E_IO, N_("cannot read %s: %s"), path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT, N_("%s is not a regular file"),
                                 path);
    if (sb.st_mode & 077)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("the key file %s can be read or changed by other accounts "
                                    "(mode %03o); allow its owner only: chmod 600 %s"),
                                 path, (unsigned)(sb.st_mode & 0777), path);
    if (dir && inside(path, dir))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("the key file %s is inside the data folder %s: every copy of "
                                    "the folder would carry its key; keep it elsewhere"),
                                 path, dir);
    if (store_entropy_bits(buf, n) < BASIRA_KEY_MIN_ENTROPY_BITS)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("the key file %s does not look random (a repeated or "
                                    "patterned content); make one with: head -c 32 /dev/urandom "
                                    "> FILE"),
                                 path);
    return BASIRA_OK;
}

basira_code store_fix_folder(const char *dir, basira_error *err)
{
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return basira_error_setm(err, BASIRA_E_IO, N_("cannot open the data folder %s: %s"), dir,
                                 strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return basira_error_setm(err, BASIRA_E_IO, N_("the data folder %s is not a folder"), dir);
    /* Owner only: the database, its WAL and the site settings are nobody else's business. */
    if ((sb.st_mode & 077) && chmod(dir, sb.st_mode & 0700) != 0)
        return basira_error_setm(err, BASIRA_E_IO,
                                 N_("the data folder %s is open to other accounts (mode %03o) "
                                    "and cannot be restricted: %s"),
                                 dir, (unsigned)(sb.st_mode & 0777), strerror(errno));
    return BASIRA_OK;
}
