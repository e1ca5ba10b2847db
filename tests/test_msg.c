/*
 * test_msg.c - messages as msgid + arguments, translated at the edge
 * (include/basira/i18n.h): argument capture for every conversion, the same
 * text as printf, translation per call into French and Arabic, and the choice
 * of a person's language from a preference or an Accept-Language header.
 */
#include "basira/error.h"
#include "basira/i18n.h"
#include "core/i18n.h"
#include "test.h"

#include <inttypes.h>
#include <stdint.h>

static void test_capture_matches_printf(void)
{
    basira_msg m;
    char out[256], want[256];
    basira_msg_set(&m, "a %d b %zu c %s d %.2f e %" PRId64 " f %x %% g %c h %-4s|", -3, (size_t)7,
                   "txt", 3.14159, (int64_t)-9000000000LL, 255u, 'Z', "ab");
    snprintf(want, sizeof want, "a %d b %zu c %s d %.2f e %" PRId64 " f %x %% g %c h %-4s|", -3,
             (size_t)7, "txt", 3.14159, (int64_t)-9000000000LL, 255u, 'Z', "ab");
    CHECK_EQ_INT(m.nargs, 8);
    CHECK_STR(basira_msg_text(&m, NULL, "en", out, sizeof out), want);
    CHECK_STR(m.args[3], "3.14");
    /* No arguments; NULL string argument; a message without id is empty. */
    basira_msg_set(&m, "100%% done");
    CHECK_STR(basira_msg_text(&m, NULL, "en", out, sizeof out), "100% done");
    const char *volatile nothing = NULL; /* a NULL string argument does not crash */
    basira_msg_set(&m, "[%s]", nothing);
    CHECK_STR(basira_msg_text(&m, NULL, "en", out, sizeof out), "[(null)]");
    m.id = NULL;
    CHECK_STR(basira_msg_text(&m, NULL, "en", out, sizeof out), "");
    /* The output is cut, never overflowed. */
    basira_msg_set(&m, "%s and more", "0123456789");
    CHECK_STR(basira_msg_text(&m, NULL, "en", out, 8), "0123456");
}

static void test_error_setm(void)
{
    basira_error a, b;
    basira_error_set(&a, BASIRA_E_NOT_FOUND, "no case %" PRId64, (int64_t)42);
    basira_error_setm(&b, BASIRA_E_NOT_FOUND, N_("no case %" PRId64), (int64_t)42);
    CHECK_STR(a.message, b.message); /* the process's text is unchanged */
    CHECK(a.msg.id == NULL);
    CHECK(b.msg.id != NULL && b.msg.nargs == 1);
    CHECK_STR(b.msg.args[0], "42");
    /* The generic message of a code is translatable too. */
    basira_error_set(&a, BASIRA_E_FORBIDDEN, NULL);
    CHECK(a.msg.id != NULL);
    basira_error_clear(&a);
    CHECK(a.msg.id == NULL && a.code == BASIRA_OK);
}

static void test_translate_per_call(void)
{
    basira_translator *t = NULL;
    basira_error err;
    CHECK_EQ_INT(basira_translator_new(&t, &err), BASIRA_OK);
    char out[256];
    basira_error e;
    basira_error_setm(&e, BASIRA_E_NOT_FOUND, N_("no case %" PRId64), (int64_t)1234);
    /* One message, three languages, in any order: no process-wide state. */
    CHECK_STR(basira_msg_text(&e.msg, t, "fr", out, sizeof out), "aucun cas 1234");
    CHECK_STR(basira_msg_text(&e.msg, t, "en", out, sizeof out), "no case 1234");
    CHECK_STR(basira_msg_text(&e.msg, t, "ar", out, sizeof out), "لا توجد حالة 1234");
    CHECK_STR(basira_msg_text(&e.msg, t, "de", out, sizeof out), "no case 1234");
    CHECK_STR(basira_translate(t, "fr", "no such endpoint"), "point d'accès inexistant");
    CHECK_STR(basira_translate(t, "fr", "a string nobody translated"),
              "a string nobody translated");
    basira_translator_free(t);
}

static void test_negotiate(void)
{
    CHECK_STR(basira_language_negotiate("ar", "fr", "en"), "ar");
    CHECK_STR(basira_language_negotiate("", "fr-FR,fr;q=0.9", "en"), "fr");
    CHECK_STR(basira_language_negotiate(NULL, "de-DE,ar-MA;q=0.8,fr;q=0.9", "en"), "fr");
    CHECK_STR(basira_language_negotiate(NULL, "de, en;q=0.1, ar;q=0.7", "fr"), "ar");
    CHECK_STR(basira_language_negotiate(NULL, "AR_ma", "en"), "ar");
    CHECK_STR(basira_language_negotiate(NULL, "fr;q=0", "ar"), "ar"); /* q=0: not acceptable */
    CHECK_STR(basira_language_negotiate(NULL, "de, *", "fr"), "fr");
    CHECK_STR(basira_language_negotiate(NULL, "frx, fry", NULL), "en");
    CHECK_STR(basira_language_negotiate("klingon", ",,;;q=,", "nope"), "en");
}

int main(void)
{
    RUN(test_capture_matches_printf);
    RUN(test_error_setm);
    RUN(test_translate_per_call);
    RUN(test_negotiate);
    return test_summary();
}
