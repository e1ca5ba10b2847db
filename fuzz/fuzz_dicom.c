/*
 * fuzz_dicom.c - libFuzzer target: arbitrary bytes as a DICOM file to de-identify.
 *
 * basira_deid_dicom_buffer() reads the bytes with DCMTK (through src/deid/dcm.cc) and
 * applies the whole profile, with every option on, in memory. For any input it must
 * return an error or a result, never crash, hang or leak; a result must carry a
 * pseudonym (a de-identified file always has one).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "basira/deid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char secret[] = "fuzzing-secret-of-32-bytes-or-so";
    basira_deid_key *key = NULL;
    basira_error err;
    if (basira_deid_key_new(secret, sizeof secret - 1, &key, &err))
        abort();
    for (int opts = 0; opts < 2; opts++) {
        basira_deid_options o;
        basira_deid_options_default(&o);
        o.retain_modified_dates = o.retain_patient_chars = o.clean_descriptors = opts;
        o.allow_burned_in = opts;
        basira_deid_result res;
        if (basira_deid_dicom_buffer(data, size, key, &o, &res, &err) == BASIRA_OK &&
            res.pseudonym[0] != 'B')
            abort();
    }
    basira_deid_key_free(key);
    return 0;
}
