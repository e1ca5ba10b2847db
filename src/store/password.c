/*
 * password.c - the password policy, after NIST SP 800-63B section 5.1.1.2:
 * length counted in characters (a French or Arabic passphrase is not penalised for
 * its multi-byte letters), no composition rules (they make passwords weaker in
 * practice), and instead a refusal of what attackers try first: common and breached
 * passwords, the service's own name, repetitive or sequential characters and the
 * account's username.
 */
#include "core/i18n.h"
#include "store_internal.h"

#include <ctype.h>
#include <string.h>

#define PASSWORD_MIN_CHARS 8
#define PASSWORD_MAX_CHARS 256

/*
 * The most common passwords of at least 8 characters in public breach corpora
 * (the top of the "rockyou" and "10k most common" lists), with French and Arabic
 * (transliterated) favourites and words of this service. Compared in lower case.
 */
static const char *const common[] = {
    "password",   "password1",  "password12", "password123", "passw0rd",      "p@ssw0rd",
    "p@ssword",   "12345678",   "123456789",  "1234567890",  "12341234",      "11111111",
    "00000000",   "87654321",   "123123123",  "qwertyuiop",  "qwerty123",     "qwerty12",
    "azertyuiop", "azerty123",  "azerty12",   "1q2w3e4r",    "1qaz2wsx",      "zaq12wsx",
    "iloveyou",   "iloveyou1",  "sunshine",   "princess",    "football",      "baseball",
    "welcome1",   "welcome123", "trustno1",   "superman",    "computer",      "michelle",
    "jennifer",   "whatever",   "starwars",   "letmein1",    "dragon123",     "monkey123",
    "abc12345",   "abcd1234",   "a1b2c3d4",   "admin123",    "administrator", "adminadmin",
    "changeme",   "changeme1",  "motdepasse", "motdepasse1", "motdepasse123", "bonjour1",
    "bonjour123", "soleil123",  "doudou123",  "loulou123",   "marseille",     "chocolat",
    "jetaime1",   "jetaime123", "bismillah",  "allahakbar",  "maroc123",      "algerie1",
    "tunisie1",   "habibi123",  "basira123",  "basira2026",  "basirabasira",  "clinique",
    "clinique1",  "docteur1",   "hopital1",   "medecin1",    "doctor123",     "hospital",
    "nurse123",   "secret123",  "summer2026", "winter2026",  "azerty2026",    "password2026",
    "qwertyui",   "asdfghjk",   "asdfghjkl",  "zxcvbnm1",    "q1w2e3r4",      NULL,
};

/* ASCII lower case of s into buf (other bytes kept), or 0 when it does not fit. */
static int lower(const char *s, char *buf, size_t cap)
{
    size_t n = strlen(s);
    if (n + 1 > cap)
        return 0;
    for (size_t i = 0; i <= n; i++)
        buf[i] = (char)tolower((unsigned char)s[i]);
    return 1;
}

/* One character repeated, or a run going up or down by one ("abcdefgh", "98765432"). */
static int trivial(const char *p)
{
    size_t n = strlen(p);
    int same = 1, up = 1, down = 1;
    for (size_t i = 1; i < n; i++) {
        same &= p[i] == p[0];
        up &= p[i] == p[i - 1] + 1;
        down &= p[i] == p[i - 1] - 1;
    }
    return same || up || down;
}

/*
 * The username itself, repeated, or with only digits and punctuation around it
 * ("alice2026!", "alicealice"): what is left once every occurrence is taken out
 * holds no letter.
 */
static int is_username(const char *pw, const char *user)
{
    size_t n = strlen(user);
    if (!n || !strstr(pw, user))
        return 0;
    for (const char *q = pw; *q;) {
        if (!strncmp(q, user, n)) {
            q += n;
            continue;
        }
        if (isalpha((unsigned char)*q) || (unsigned char)*q >= 0x80)
            return 0;
        q++;
    }
    return 1;
}

basira_code basira_password_check(const char *password, const char *username, basira_error *err)
{
    long chars = password ? store_utf8_length(password) : 0;
    if (chars < 0)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("the password is not valid UTF-8 text"));
    if (chars > PASSWORD_MAX_CHARS)
        return basira_error_setm(err, BASIRA_E_LIMIT, N_("the password is too long"));
    if (chars < PASSWORD_MIN_CHARS)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("the password must have at least 8 characters"));
    char pw[4 * PASSWORD_MAX_CHARS + 1], user[BASIRA_USERNAME_MAX + 1];
    if (!lower(password, pw, sizeof pw))
        return basira_error_setm(err, BASIRA_E_LIMIT, N_("the password is too long"));
    for (const char *const *c = common; *c; c++)
        if (!strcmp(pw, *c))
            return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                     N_("this password is among the most common ones that "
                                        "attackers try first; choose another (a few unrelated "
                                        "words make a good one)"));
    if (trivial(pw))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("the password must not be one repeated character or a "
                                    "sequence such as 12345678 or abcdefgh"));
    if (username && lower(username, user, sizeof user) && is_username(pw, user))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("the password must not be the username"));
    return BASIRA_OK;
}
