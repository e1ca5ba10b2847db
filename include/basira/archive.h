/*
 * archive.h - the national image archive: Orthanc, spoken to through its REST API with
 * libcurl (src/archive).
 *
 *  - push: send de-identified DICOM instances (files that `basira anonymize` wrote: Patient
 *    Identity Removed YES and a Basira pseudonym, checked before anything is sent), then
 *    read back what Orthanc stored and compare it byte for byte (SHA-256) with what was sent;
 *  - pull: build a training set from a query: the matching instances rendered as PNG, and a
 *    labels CSV (file, label from a DICOM attribute, patient pseudonym as the group column
 *    of `basira train`).
 */
#ifndef BASIRA_ARCHIVE_H
#define BASIRA_ARCHIVE_H

#include <stddef.h>

#include "basira/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BASIRA_ARCHIVE_MAX_RESPONSE ((size_t)256 << 20) /* largest answer accepted (bytes) */

typedef struct basira_archive basira_archive;

/* url: e.g. "http://127.0.0.1:8042"; user/password may be NULL (no authentication). */
basira_code basira_archive_open(const char *url, const char *user, const char *password,
                                basira_archive **out, basira_error *err);
void basira_archive_close(basira_archive *a);

typedef struct basira_archive_pushed {
    char instance[64]; /* Orthanc's identifier of the instance */
    char status[32];   /* "Success" or "AlreadyStored" */
    int verified;      /* 1: the stored file is byte-identical to the one sent */
} basira_archive_pushed;

/* Refuses (BASIRA_E_FORBIDDEN) a file that is not de-identified, before sending it. */
basira_code basira_archive_push(basira_archive *a, const char *path, basira_archive_pushed *out,
                                basira_error *err);

typedef struct basira_archive_query {
    const char *level;       /* "Instance" (default) */
    const char *const *keys; /* DICOM keywords, e.g. "Modality" */
    const char *const *values;
    int n;
    const char *label_tag; /* keyword whose value is the label, e.g. "StudyDescription" */
    size_t limit;          /* 0 = all */
} basira_archive_query;

/* Write out_dir/images/<instance>.png and out_dir/labels.csv (file,label,patient);
 * *n_out receives the number of images written. */
basira_code basira_archive_pull(basira_archive *a, const basira_archive_query *q,
                                const char *out_dir, size_t *n_out, basira_error *err);

#ifdef __cplusplus
}
#endif
#endif
