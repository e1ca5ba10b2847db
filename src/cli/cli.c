/* cli.c - helpers shared by subcommands. */
#include "cli.h"
#include "core/i18n.h"

#include <errno.h>
#include <stdlib.h>

void basira_cli_report(const char *context, const basira_error *err)
{
    const char *msg = err->message[0] ? err->message : basira_strerror(err->code);
    if (context)
        fprintf(stderr, "basira: %s: %s [%s]\n", context, msg, basira_code_name(err->code));
    else
        fprintf(stderr, "basira: %s [%s]\n", msg, basira_code_name(err->code));
}

int basira_cli_parse_long(const char *opt, const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, _("basira: invalid value for %s: '%s' (expected %ld to %ld)\n"), opt, s,
                min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int basira_cli_parse_double(const char *opt, const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min && v <= max)) {
        fprintf(stderr, _("basira: invalid value for %s: '%s' (expected %g to %g)\n"), opt, s, min,
                max);
        return -1;
    }
    *out = v;
    return 0;
}
