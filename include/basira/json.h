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

#ifdef __cplusplus
}
#endif
#endif
