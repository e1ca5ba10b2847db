/* json.c - JSON helpers. */
#include "basira/json.h"

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
