/* json.h - small helpers over jansson shared by the commands and the server. */
#ifndef BASIRA_JSON_H
#define BASIRA_JSON_H

#include <jansson.h>
#include <stdio.h>

#include "basira/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* {"code": <stable name>, "message": <localised>} for an error. New reference. */
json_t *basira_json_error(const basira_error *err);

/* Print one compact JSON object followed by a newline (JSON Lines). Returns 0 on success. */
int basira_json_print_line(FILE *f, const json_t *obj);

/*
 * Read a JSON file of at most max_bytes (basira_fs_read) and parse it
 * (duplicate keys refused). Errors: those of basira_fs_read (BASIRA_E_NOT_FOUND,
 * BASIRA_E_IO, BASIRA_E_LIMIT), or BASIRA_E_FORMAT "PATH: invalid JSON at line
 * L: why" (je, may be NULL, gets jansson's details). *out is a new reference.
 */
basira_code basira_json_read_file(const char *path, size_t max_bytes, json_t **out,
                                  json_error_t *je, basira_error *err);

#ifdef __cplusplus
}
#endif
#endif
