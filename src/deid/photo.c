/*
 * photo.c - a photo leaving a clinic for research: pixels only, under the pseudonym.
 *
 * The photo is decoded by the intake (src/intake: orientation applied, limits, sRGB) into
 * bare pixels, and a new JPEG is encoded from those pixels alone: EXIF (GPS, camera serial,
 * capture time), XMP, IPTC, ICC and comments cannot survive, because nothing of the
 * original file but its pixels is ever read into the output. The file name, which often
 * holds the patient's name or the date, is replaced by the pseudonym and a keyed digest
 * of the original name.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basira/deid.h"
#include "basira/image.h"
#include "core/i18n.h"

basira_code basira_deid_photo(const char *in, const char *out_dir, const char *patient_id,
                              const basira_deid_key *k, char *out_path, size_t out_size,
                              basira_error *err)
{
    char pseudonym[BASIRA_PSEUDONYM_MAX], uid[BASIRA_UID_MAX];
    basira_code rc = basira_pseudonym(k, patient_id, pseudonym, err);
    if (rc)
        return rc;
    /* The digest of the name: the same photo (same patient, same name) keeps its name. */
    const char *base = strrchr(in, '/') ? strrchr(in, '/') + 1 : in;
    char keyed_name[512];
    snprintf(keyed_name, sizeof keyed_name, "%s/%s", pseudonym, base);
    if ((rc = basira_deid_uid(k, keyed_name, uid, err)))
        return rc;
    /* The last 12 digits of the keyed UID number name the file. */
    size_t ul = strlen(uid);
    int n = snprintf(out_path, out_size, "%s/%s-%s.jpg", out_dir, pseudonym, uid + ul - 12);
    if (n < 0 || (size_t)n >= out_size)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("path too long: %s"), out_dir);
    basira_image *img = NULL;
    if ((rc = basira_image_load_file(in, NULL, &img, err)))
        return rc;
    uint8_t *jpeg = NULL;
    size_t len = 0;
    rc = basira_image_encode_jpeg(img, 95, &jpeg, &len, err);
    basira_image_free(img);
    if (rc)
        return rc;
    char partial[4200];
    snprintf(partial, sizeof partial, "%s.partial", out_path);
    int fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        free(jpeg);
        return basira_error_set(err, errno == EEXIST ? BASIRA_E_CONFLICT : BASIRA_E_IO,
                                _("cannot write %s: %s"), partial, strerror(errno));
    }
    ssize_t w = write(fd, jpeg, len);
    int bad = w < 0 || (size_t)w != len || fsync(fd);
    close(fd);
    free(jpeg);
    if (!bad && !access(out_path, F_OK)) {
        unlink(partial);
        return basira_error_set(err, BASIRA_E_CONFLICT,
                                _("%s already exists: it is never overwritten"), out_path);
    }
    if (bad || rename(partial, out_path)) {
        rc = basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), out_path,
                              strerror(errno ? errno : EIO));
        unlink(partial);
    }
    return rc;
}
