/* util.h - internal helpers shared by the exporters: tolerant access to a case's JSON. */
#ifndef BASIRA_EXPORT_UTIL_H
#define BASIRA_EXPORT_UTIL_H

#include <jansson.h>
#include <stdint.h>

/* The string at key, or NULL when absent or not a string. */
const char *ex_str(const json_t *obj, const char *key);

/* The number at key, or NAN when absent or not a number. */
double ex_num(const json_t *obj, const char *key);

/* The image object shown in documents (latest accepted photo with a result), or NULL. */
const json_t *ex_report_image(const json_t *case_json);

/* The result object of that image (status "ok"), or NULL. */
const json_t *ex_report_result(const json_t *case_json);

/* The final category: the clinician's decision if any, else the AI's; NULL when neither. */
const char *ex_final_category(const json_t *case_json);

/* Format unix seconds as "2026-11-22T10:00:00Z" (buf of at least 21 bytes). */
void ex_iso_time(int64_t t, char *buf, size_t n);

#endif
