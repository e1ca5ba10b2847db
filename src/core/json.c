/* json.c - JSON helpers. */
#include "basira/json.h"
#include "basira/fs.h"
#include "core/i18n.h"

#include <stdlib.h>
#include <string.h>

json_t *basira_json_error(const basira_error *err)
{
    return json_pack("{s:s, s:s}", "code", basira_code_name(err->code), "message",
                     err->message[0] ? err->message : basira_strerror(err->code));
}

int basira_json_print_line(FILE *f, const json_t *obj)
{
    if (json_dumpf(obj, f, JSON_COMPACT | JSON_REAL_PRECISION(6)) != 0)
        return -1;
    return fputc('\n', f) == EOF ? -1 : 0;
}

basira_code basira_json_read_file(const char *path, size_t max_bytes, json_t **out,
                                  json_error_t *je, basira_error *err)
{
    json_error_t local;
    if (!je)
        je = &local;
    memset(je, 0, sizeof *je);
    *out = NULL;
    unsigned char *data = NULL;
    size_t len = 0;
    basira_code rc = basira_fs_read(path, max_bytes, &data, &len, err);
    if (rc)
        return rc;
    *out = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, je);
    free(data);
    if (!*out)
        return basira_error_setm(err, BASIRA_E_FORMAT, N_("%s: invalid JSON at line %d: %s"), path,
                                 je->line, je->text);
    return BASIRA_OK;
}
