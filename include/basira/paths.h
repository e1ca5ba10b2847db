/*
 * paths.h - where Basira finds its own files (bundled model, translations, web app).
 *
 * Order: an environment variable (BASIRA_DATADIR, BASIRA_LOCALEDIR) if set; the
 * source/build tree when the program runs from its build folder; the folder
 * next to the installed program (../share/basira); the configured install prefix.
 */
#ifndef BASIRA_PATHS_H
#define BASIRA_PATHS_H

#include "basira/error.h"
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Full path of a data file given relative to the data folder, e.g.
 * "models/basira-derm.safetensors". */
basira_code basira_data_file(const char *relpath, char *out, size_t outsz, basira_error *err);

/* Folder holding <lang>/LC_MESSAGES/basira.mo. */
basira_code basira_locale_dir(char *out, size_t outsz, basira_error *err);

/* Basira's version string, e.g. "0.1.0". */
const char *basira_version(void);

#ifdef __cplusplus
}
#endif
#endif
