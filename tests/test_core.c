/* test_core.c - error codes, messages, language selection, data paths. */
#include "basira/error.h"
#include "basira/i18n.h"
#include "basira/json.h"
#include "basira/paths.h"
#include "test.h"

static void test_codes_have_unique_stable_names(void)
{
    for (int i = 0; i < BASIRA_E_COUNT_; i++) {
        const char *a = basira_code_name((basira_code)i);
        CHECK(a && strcmp(a, "unknown_error"));
        for (int j = 0; j < i; j++)
            CHECK_MSG(strcmp(a, basira_code_name((basira_code)j)), "duplicate name %s", a);
        CHECK(basira_strerror((basira_code)i)[0] != '\0');
    }
    CHECK_STR(basira_code_name(BASIRA_E_CORRUPT), "corrupt_file");
    CHECK_STR(basira_code_name((basira_code)9999), "unknown_error");
    CHECK_STR(basira_code_name((basira_code)-1), "unknown_error");
}

static void test_error_set_formats_and_truncates(void)
{
    basira_error err;
    CHECK_EQ_INT(basira_error_set(&err, BASIRA_E_IO, "cannot open %s (%d)", "x.jpg", 2),
                 BASIRA_E_IO);
    CHECK_EQ_INT(err.code, BASIRA_E_IO);
    CHECK_STR(err.message, "cannot open x.jpg (2)");
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    basira_error_set(&err, BASIRA_E_IO, "%s", big);
    CHECK_EQ_INT(strlen(err.message), BASIRA_ERROR_MESSAGE_MAX - 1);
    basira_error_set(&err, BASIRA_E_EMPTY_FILE, NULL);
    CHECK_STR(err.message, "the file is empty");
    CHECK_EQ_INT(basira_error_set(NULL, BASIRA_E_NOMEM, NULL), BASIRA_E_NOMEM);
    basira_error_clear(&err);
    CHECK_EQ_INT(err.code, BASIRA_OK);
    CHECK_STR(err.message, "");
}

static void test_language_from_environment(void)
{
    setenv("LANG", "fr_FR.UTF-8", 1);
    unsetenv("LC_ALL");
    unsetenv("LC_MESSAGES");
    CHECK_STR(basira_language(), "fr");
    setenv("LANG", "ar_MA.UTF-8", 1);
    CHECK_STR(basira_language(), "ar");
    CHECK(basira_language_is_rtl(basira_language()));
    setenv("LC_ALL", "en_GB.UTF-8", 1);
    CHECK_STR(basira_language(), "en");
    CHECK(!basira_language_is_rtl("en"));
    unsetenv("LC_ALL");
    setenv("LANG", "C", 1);
    CHECK_STR(basira_language(), "en");
}

static void test_translations_load(void)
{
    /* The build tree's catalogue must be found and used (run from the build folder). */
    setenv("LANG", "fr_FR.UTF-8", 1);
    unsetenv("LANGUAGE");
    basira_error err;
    CHECK_EQ_INT(basira_i18n_init(&err), BASIRA_OK);
    CHECK_STR(basira_strerror(BASIRA_E_EMPTY_FILE), "le fichier est vide");
    setenv("LANG", "ar_MA.UTF-8", 1);
    setenv("LANGUAGE", "ar", 1);
    CHECK_EQ_INT(basira_i18n_init(&err), BASIRA_OK);
    CHECK_STR(basira_strerror(BASIRA_E_EMPTY_FILE), "الملف فارغ");
}

static void test_json_error_shape(void)
{
    basira_error err;
    basira_error_set(&err, BASIRA_E_CORRUPT, "bad %s", "jpeg");
    json_t *j = basira_json_error(&err);
    CHECK_STR(json_string_value(json_object_get(j, "code")), "corrupt_file");
    CHECK_STR(json_string_value(json_object_get(j, "message")), "bad jpeg");
    json_decref(j);
}

static void test_missing_data_file_is_an_error(void)
{
    char p[512];
    basira_error err;
    CHECK_EQ_INT(basira_data_file("no/such/file.bin", p, sizeof p, &err), BASIRA_E_NOT_FOUND);
    CHECK(strstr(err.message, "no/such/file.bin") != NULL);
    CHECK(basira_version()[0] != '\0');
}

int main(void)
{
    RUN(test_codes_have_unique_stable_names);
    RUN(test_error_set_formats_and_truncates);
    RUN(test_language_from_environment);
    RUN(test_translations_load);
    RUN(test_json_error_shape);
    RUN(test_missing_data_file_is_an_error);
    return test_summary();
}
