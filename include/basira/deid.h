/*
 * deid.h - de-identification of images leaving a hospital or clinic for the national
 * archive (src/deid).
 *
 *  - DICOM: the PS3.15 Annex E Basic Application Level Confidentiality Profile, with the
 *    attribute table generated from the standard's Table E.1-1 (see src/deid/gen_profile.py),
 *    and the options Retain Longitudinal Temporal Information with Modified Dates, Retain
 *    Patient Characteristics, Clean Descriptors and Retain Safe Private. DICOM is read and
 *    written by DCMTK; pixel data is never decoded nor changed.
 *  - Pseudonyms: HMAC-SHA-256 (libsodium) of the patient identifier under the national
 *    secret held by the data steward: the same patient gets the same pseudonym in every
 *    hospital and every year; UIDs are remapped the same way (2.25.<128-bit integer>).
 *  - Photos: decoded, re-encoded as PNG from the pixels alone (no EXIF, XMP, IPTC, ICC or
 *    comments can survive), named after the pseudonym.
 * A file is either fully de-identified or not written at all.
 */
#ifndef BASIRA_DEID_H
#define BASIRA_DEID_H

#include <stddef.h>
#include <stdint.h>

#include "basira/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BASIRA_DEID_SECRET_MIN 16                /* bytes: a shorter national secret is refused */
#define BASIRA_DEID_SECRET_MAX 512               /* bytes read from the secret file */
#define BASIRA_PSEUDONYM_MAX 32                  /* "BSR" + 20 base32 digits + NUL fits */
#define BASIRA_UID_MAX 65                        /* a DICOM UID (64 characters) + NUL */
#define BASIRA_DEID_MAX_FILE ((uint64_t)1 << 30) /* largest DICOM file read (1 GiB) */

/* The national secret (key material for HMAC-SHA-256), wiped on free. */
typedef struct basira_deid_key basira_deid_key;

/* Read the secret from a file (its bytes, a final newline ignored); refuses a file that is
 * shorter than BASIRA_DEID_SECRET_MIN bytes, readable by others than its owner, or empty. */
basira_code basira_deid_key_load(const char *path, basira_deid_key **out, basira_error *err);
basira_code basira_deid_key_new(const void *secret, size_t len, basira_deid_key **out,
                                basira_error *err);
void basira_deid_key_free(basira_deid_key *k);

/* "BSR" + 20 base32 digits of HMAC-SHA-256(secret, "basira/patient/v1" 0 id), id trimmed of
 * spaces and upper-cased, so that "ab123 " and "AB123" are one patient. */
basira_code basira_pseudonym(const basira_deid_key *k, const char *patient_id,
                             char out[BASIRA_PSEUDONYM_MAX], basira_error *err);
/* "2.25." + the first 128 bits of HMAC-SHA-256(secret, "basira/uid/v1" 0 uid), in decimal. */
basira_code basira_deid_uid(const basira_deid_key *k, const char *uid, char out[BASIRA_UID_MAX],
                            basira_error *err);
/* Days (1..3652) by which the dates of a patient move back under Retain Modified Dates. */
int basira_deid_date_shift(const basira_deid_key *k, const char *patient_id);

typedef struct basira_deid_options {
    int retain_modified_dates; /* shift dates by a keyed per-patient offset instead of removing */
    int retain_patient_chars;  /* keep sex, age, size, weight, ethnic group, ... */
    int clean_descriptors;     /* keep descriptions, with the patient's identifiers scrubbed */
    /* Retain Safe Private: private attributes to keep, one "GGGG,CREATOR,EE" per line
     * (odd group in hex, private creator, element within the block in hex); NULL = none. */
    const char *safe_private_list;
    int allow_burned_in; /* 1 = the data steward confirmed no burned-in text (e.g. after
                            checking the device); otherwise such files are refused */
    /* Clean Pixel Data: MANUFACTURER|MODEL|ROWSxCOLS|x,y,w,h[;...] per line: images of a listed
     * device and size that may carry burned-in text get those rectangles blanked (uncompressed
     * pixel data only) instead of being refused; NULL = none. */
    const char *pixel_rules;
} basira_deid_options;

void basira_deid_options_default(basira_deid_options *o);

/* What one file became: for the caller's report and the re-identification table. */
typedef struct basira_deid_result {
    char pseudonym[BASIRA_PSEUDONYM_MAX];
    char patient_id[128];   /* original (only for the encrypted re-identification table) */
    char patient_name[256]; /* original */
    char study_uid[BASIRA_UID_MAX], new_study_uid[BASIRA_UID_MAX];
    char sop_uid[BASIRA_UID_MAX], new_sop_uid[BASIRA_UID_MAX];
    int removed, emptied, replaced, uids, shifted, cleaned, private_removed; /* counts */
} basira_deid_result;

/*
 * De-identify the DICOM file in and write it to out (through out + ".partial", renamed only
 * when complete and read back by DCMTK). Errors: BASIRA_E_FORMAT (not DICOM, malformed,
 * truncated), BASIRA_E_FORBIDDEN (may carry burned-in text: Burned In Annotation YES, or
 * absent on ultrasound / secondary capture), BASIRA_E_CONFLICT (out exists), BASIRA_E_IO.
 * On any error nothing is left at out.
 */
basira_code basira_deid_dicom_file(const char *in, const char *out, const basira_deid_key *k,
                                   const basira_deid_options *o, basira_deid_result *res,
                                   basira_error *err);
/* The same on a file held in memory, without writing (the fuzz target). */
basira_code basira_deid_dicom_buffer(const void *data, size_t len, const basira_deid_key *k,
                                     const basira_deid_options *o, basira_deid_result *res,
                                     basira_error *err);

/*
 * De-identify a photo for research: decode it (src/intake: orientation, limits), write the
 * pixels alone as out_dir/<pseudonym>-<12 hex digits>.png (the digits keyed on the original
 * file name, so the same photo gets the same name), with nothing else in the file.
 * out_path receives the file written.
 */
basira_code basira_deid_photo(const char *in, const char *out_dir, const char *patient_id,
                              const basira_deid_key *k, char *out_path, size_t out_size,
                              basira_error *err);

/*
 * Re-identification table: pairs (pseudonym, original identifiers), encrypted with
 * XChaCha20-Poly1305 under a key derived from the secret, appended to the file at path
 * (rewritten atomically). It must not sit inside the output folder: the caller checks
 * with basira_path_inside(). basira_reid_table_dump() writes the decrypted lines to f.
 */
basira_code basira_reid_table_add(const char *path, const basira_deid_key *k,
                                  const basira_deid_result *res, size_t n, basira_error *err);
basira_code basira_reid_table_dump(const char *path, const basira_deid_key *k, void *file,
                                   basira_error *err);
/*
 * Is the DICOM file at path one that basira_deid_dicom_file() wrote? Patient Identity
 * Removed YES, a Basira pseudonym as Patient ID, (0012,0064) holding 113100, and no private
 * attribute. pseudonym (may be NULL) receives the Patient ID. BASIRA_E_FORBIDDEN if not.
 */
basira_code basira_deid_check_file(const char *path, char pseudonym[BASIRA_PSEUDONYM_MAX],
                                   basira_error *err);

/* 1 when path (existing or not) lies inside the folder dir (both resolved), else 0. */
int basira_path_inside(const char *path, const char *dir);

#ifdef __cplusplus
}
#endif
#endif
