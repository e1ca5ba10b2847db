#!/usr/bin/env bash
# The program's own surface: version, help, unknown commands, exit statuses, languages.
set -u
B=${BASIRA_CLI:?}
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

out=$("$B" --version); rc=$?
check "version exits 0" "[ $rc -eq 0 ]"
check "version prints semver" "[[ '$out' =~ ^basira\ [0-9]+\.[0-9]+\.[0-9]+$ ]]"
"$B" >/dev/null 2>&1; rc=$?
check "no command is a usage error" "[ $rc -eq 2 ]"
"$B" frobnicate >/dev/null 2>&1; rc=$?
check "unknown command is a usage error" "[ $rc -eq 2 ]"
out=$(LANG=fr_FR.UTF-8 "$B" --help)
check "help in French" "grep -q 'Aide à la décision' <<<\"\$out\""
out=$(LANG=ar_MA.UTF-8 "$B" --help)
check "help in Arabic" "grep -q 'مساعدة على القرار' <<<\"\$out\""
out=$(LANG=en_US.UTF-8 "$B" --help)
check "help in English" "grep -q 'Decision support' <<<\"\$out\""
for c in $("$B" --help | awk '/^Commands:/{f=1;next} f && /^  [a-z]/{print $1}'); do
  "$B" help "$c" >/dev/null; rc=$?
  check "help $c" "[ $rc -eq 0 ]"
done

# libvips is restricted to the decoders Basira uses: HEIF still works, ImageMagick and
# poppler (hostile-file attack surface, start-up time) are never loaded.
heic=${BASIRA_SOURCE_DIR:?}/fuzz/corpus/intake/seed.heic
out=$("$B" check --json "$heic" 2>/dev/null)
check "HEIC decoded through the restricted plugin folder" "grep -q '\"image_too_small\"' <<<\"\$out\""
loaded=$(LD_DEBUG=files "$B" check --json "$heic" 2>&1 >/dev/null | grep -c 'MagickCore\|libpoppler\|libopenslide' || true)
check "no ImageMagick, poppler or OpenSlide in the process" "[ '$loaded' = 0 ]"
exit $fail
