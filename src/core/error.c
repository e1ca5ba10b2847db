/* error.c - error codes, their stable names and localised messages. */
#include "basira/error.h"
#include "basira/i18n.h"
#include "core/i18n.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Indexed by basira_code. Names are a public contract: never rename one. */
static const struct {
    const char *name;
    const char *message; /* marked for translation, looked up at use */
} codes[BASIRA_E_COUNT_] = {
    [BASIRA_OK] = {"ok", N_("no error")},
    [BASIRA_E_NOMEM] = {"out_of_memory", N_("not enough memory")},
    [BASIRA_E_INVALID_ARGUMENT] = {"invalid_argument", N_("invalid argument")},
    [BASIRA_E_IO] = {"io_error", N_("a file could not be read or written")},
    [BASIRA_E_NOT_FOUND] = {"not_found", N_("not found")},
    [BASIRA_E_EMPTY_FILE] = {"empty_file", N_("the file is empty")},
    [BASIRA_E_NOT_AN_IMAGE] = {"not_an_image", N_("the file is not a supported image")},
    [BASIRA_E_CORRUPT] = {"corrupt_file", N_("the file is damaged or incomplete")},
    [BASIRA_E_IMAGE_TOO_SMALL] = {"image_too_small", N_("the image is too small to analyse")},
    [BASIRA_E_IMAGE_TOO_LARGE] = {"image_too_large", N_("the image is too large")},
    [BASIRA_E_MULTIPAGE] = {"multipage_image",
                            N_("the file holds several images; send a single photo")},
    [BASIRA_E_MODEL] = {"model_invalid", N_("the model file is invalid")},
    [BASIRA_E_UNSUPPORTED] = {"unsupported", N_("not supported")},
    [BASIRA_E_FORMAT] = {"format_error", N_("malformed input")},
    [BASIRA_E_STORE] = {"store_error", N_("the case store failed")},
    [BASIRA_E_WRONG_KEY] = {"wrong_key", N_("the database key is wrong")},
    [BASIRA_E_AUTH] = {"unauthenticated", N_("please sign in")},
    [BASIRA_E_FORBIDDEN] = {"forbidden", N_("your role does not allow this")},
    [BASIRA_E_CONFLICT] = {"conflict", N_("conflicting change")},
    [BASIRA_E_CONSENT] = {"consent_required", N_("consent for care is required")},
    [BASIRA_E_TAMPERED] = {"audit_tampered", N_("the audit trail has been altered")},
    [BASIRA_E_LIMIT] = {"limit_exceeded", N_("a size or time limit was exceeded")},
    [BASIRA_E_INTERNAL] = {"internal_error", N_("internal error")},
};

const char *basira_code_name(basira_code code)
{
    if ((int)code < 0 || code >= BASIRA_E_COUNT_ || !codes[code].name)
        return "unknown_error";
    return codes[code].name;
}

const char *basira_strerror(basira_code code)
{
    if ((int)code < 0 || code >= BASIRA_E_COUNT_ || !codes[code].message)
        return _("unknown error");
    return _(codes[code].message);
}

basira_code basira_error_set(basira_error *err, basira_code code, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    err->msg.id = NULL;
    err->msg.nargs = 0;
    if (!fmt) {
        snprintf(err->message, sizeof err->message, "%s", basira_strerror(code));
        /* The generic message is a msgid too: the edge can translate it. */
        if ((int)code >= 0 && code < BASIRA_E_COUNT_)
            err->msg.id = codes[code].message;
        return code;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

basira_code basira_error_setm(basira_error *err, basira_code code, const char *msgid, ...)
{
    if (!err)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, msgid);
    basira_msg_vset(&err->msg, msgid, ap);
    va_end(ap);
    basira_msg_text(&err->msg, NULL, NULL, err->message, sizeof err->message);
    return code;
}

void basira_error_clear(basira_error *err)
{
    if (!err)
        return;
    err->code = BASIRA_OK;
    err->message[0] = '\0';
    err->msg.id = NULL;
    err->msg.nargs = 0;
}
