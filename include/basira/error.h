/*
 * error.h - how every Basira function reports failure.
 *
 * Functions that can fail return a basira_code and, when the caller passes a
 * basira_error, fill it with a message a person can act on (already in the
 * process's language; with basira_error_setm also as a code + arguments that
 * the edge translates per request, see i18n.h). BASIRA_OK is 0, so `if (rc)`
 * means "it failed".
 *
 *     basira_error err;
 *     if (basira_image_load(path, NULL, &img, &err))
 *         fprintf(stderr, "%s: %s\n", basira_code_name(err.code), err.message);
 *
 * The names returned by basira_code_name() are stable: they appear in JSON
 * output and API responses and other systems may rely on them.
 */
#ifndef BASIRA_ERROR_H
#define BASIRA_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum basira_code {
    BASIRA_OK = 0,
    BASIRA_E_NOMEM,            /* "out_of_memory" */
    BASIRA_E_INVALID_ARGUMENT, /* "invalid_argument": caller passed something unusable */
    BASIRA_E_IO,               /* "io_error": a file could not be read or written */
    BASIRA_E_NOT_FOUND,        /* "not_found" */
    BASIRA_E_EMPTY_FILE,       /* "empty_file" */
    BASIRA_E_NOT_AN_IMAGE,     /* "not_an_image": unknown or unsupported format */
    BASIRA_E_CORRUPT,          /* "corrupt_file": truncated or damaged data */
    BASIRA_E_IMAGE_TOO_SMALL,  /* "image_too_small" */
    BASIRA_E_IMAGE_TOO_LARGE,  /* "image_too_large": pixel/byte limits (decompression bombs) */
    BASIRA_E_MULTIPAGE,        /* "multipage_image": animated or multi-page file */
    BASIRA_E_MODEL,            /* "model_invalid": model file malformed or incompatible */
    BASIRA_E_UNSUPPORTED,      /* "unsupported": valid request this build cannot do */
    BASIRA_E_FORMAT,           /* "format_error": malformed text input (CSV, JSON, config) */
    BASIRA_E_STORE,            /* "store_error": database failure */
    BASIRA_E_WRONG_KEY,        /* "wrong_key": database key or passphrase is wrong */
    BASIRA_E_AUTH,             /* "unauthenticated" */
    BASIRA_E_FORBIDDEN,        /* "forbidden": role does not allow this */
    BASIRA_E_CONFLICT,         /* "conflict" */
    BASIRA_E_CONSENT,          /* "consent_required" */
    BASIRA_E_TAMPERED,         /* "audit_tampered" */
    BASIRA_E_LIMIT,            /* "limit_exceeded": size/time/rate limits */
    BASIRA_E_INTERNAL,         /* "internal_error": a bug; please report */
    BASIRA_E_COUNT_            /* number of codes; not a code */
} basira_code;

#define BASIRA_ERROR_MESSAGE_MAX 512
#define BASIRA_MSG_MAX_ARGS 8
#define BASIRA_MSG_ARG_MAX 128

/*
 * A message kept for translation at the edge: its msgid (the English printf
 * format, marked N_() where it is written) and its arguments already turned
 * into text. See include/basira/i18n.h (basira_msg_text) for how the server
 * and the CLI present it in the language of the person who asked.
 */
typedef struct basira_msg {
    const char *id; /* NULL: none */
    int nargs;
    char args[BASIRA_MSG_MAX_ARGS][BASIRA_MSG_ARG_MAX];
} basira_msg;

typedef struct basira_error {
    basira_code code;
    char message[BASIRA_ERROR_MESSAGE_MAX]; /* in the process's language, UTF-8, terminated */
    basira_msg msg; /* the same message as code + arguments, when set with basira_error_setm */
} basira_error;

/* Stable machine name of a code, e.g. "corrupt_file". Never NULL. */
const char *basira_code_name(basira_code code);

/* Localised generic description of a code. Never NULL. */
const char *basira_strerror(basira_code code);

/*
 * Record an error and return its code, so a function can `return
 * basira_error_set(err, BASIRA_E_IO, _("cannot read %s"), path);`.
 * err may be NULL. With fmt NULL the generic message is used.
 */
basira_code basira_error_set(basira_error *err, basira_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Same as basira_error_set, and keep the message as msgid + arguments (err->msg)
 * so the edge can show it in another language than the process's:
 *     return basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no case %" PRId64), id);
 * msgid is the untranslated format (N_(), not _()); err->message is still
 * filled in the process's language, as basira_error_set does.
 */
basira_code basira_error_setm(basira_error *err, basira_code code, const char *msgid, ...)
    __attribute__((format(printf, 3, 4)));

/* Reset to BASIRA_OK with an empty message. err may be NULL. */
void basira_error_clear(basira_error *err);

#ifdef __cplusplus
}
#endif
#endif
