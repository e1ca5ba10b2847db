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

# Every command refuses an unknown option and an option without its value the same way:
# a one-line reason naming the command and the option (in the user's language), exit 2.
for c in $("$B" --help | awk '/^Commands:/{f=1;next} f && /^  [a-z]/{print $1}'); do
  sub=""
  case $c in audit) sub=verify ;; user) sub=list ;; archive) sub=push ;; esac
  err=$("$B" $c $sub --no-such-option 2>&1 >/dev/null); rc=$?
  check "$c: unknown option is a usage error" "[ $rc -eq 2 ]"
  check "$c: unknown option named" "grep -q \"^basira $c: unknown option '\\?--no-such-option\" <<<\"\$err\""
done
for c in "triage --model" "evaluate --model" "calibrate --model" "split --csv" "train --images" \
         "serve --data" "purge --data" "audit verify --data" "user list --data"; do
  err=$("$B" $c 2>&1 >/dev/null); rc=$?
  check "$c without a value is a usage error" "[ $rc -eq 2 ]"
  check "$c without a value: said so" "grep -q 'needs a value' <<<\"\$err\""
done
err=$(LANG=fr_FR.UTF-8 "$B" triage --model 2>&1 >/dev/null)
check "missing value, in French" "grep -q \"^basira triage : l'option --model demande une valeur\" <<<\"\$err\""
err=$(LANG=ar_MA.UTF-8 "$B" evaluate --bogus 2>&1 >/dev/null)
check "unknown option, in Arabic" "grep -q 'خيار غير معروف --bogus' <<<\"\$err\""
err=$("$B" train extra-operand 2>&1 >/dev/null); rc=$?
check "an unexpected operand is a usage error" "[ $rc -eq 2 ] && grep -q '^basira train: unexpected argument extra-operand' <<<\"\$err\""
err=$("$B" evaluate --model m --images d --csv c --calibrate c 2>&1 >/dev/null); rc=$?
check "evaluate: --calibrate without int8 is a usage error" "[ $rc -eq 2 ] && grep -q 'go together' <<<\"\$err\""
# int8 without --calibrate uses the ranges saved in the model: the bundled clinical model
# has none (a dermoscopy model given its int8 variant by basira quantize would have them).
bundled=${BASIRA_SOURCE_DIR:?}/models/basira-clinical.safetensors
if [ -f "$bundled" ]; then
  csv=$(mktemp)
  printf 'image_id,dx\nnone,nv\n' >"$csv"
  err=$("$B" evaluate --model "$bundled" --images "$(dirname "$csv")" --csv "$csv" --precision int8 2>&1 >/dev/null); rc=$?
  rm -f "$csv"
  check "evaluate: int8 on a model without saved ranges asks for calibration" "[ $rc -ne 0 ] && [ $rc -ne 2 ] && grep -q 'calibration' <<<\"\$err\""
fi
err=$("$B" evaluate --model m --images d --csv c --precision fp16 2>&1 >/dev/null); rc=$?
check "evaluate: an unknown precision is a usage error" "[ $rc -eq 2 ] && grep -q \"invalid value for --precision: 'fp16'\" <<<\"\$err\""

# libvips is restricted to the decoders Basira uses: HEIF still works, ImageMagick and
# poppler (hostile-file attack surface, start-up time) are never loaded.
heic=${BASIRA_SOURCE_DIR:?}/fuzz/corpus/intake/seed.heic
out=$("$B" check --json "$heic" 2>/dev/null)
check "HEIC decoded through the restricted plugin folder" "grep -q '\"image_too_small\"' <<<\"\$out\""
loaded=$(LD_DEBUG=files "$B" check --json "$heic" 2>&1 >/dev/null | grep -c 'MagickCore\|libpoppler\|libopenslide' || true)
check "no ImageMagick, poppler or OpenSlide in the process" "[ '$loaded' = 0 ]"

# HEIF is decoded by basira-decode, found next to the program (no BASIRA_DECODE_HELPER);
# a copy of the program without it refuses HEIF ("send a JPEG") and still reads a JPEG.
black=${BASIRA_SOURCE_DIR:?}/tests/intake/data/black-4k.heic
out=$(env -u BASIRA_DECODE_HELPER "$B" check --json "$black" 2>/dev/null)
check "HEIC decoded by basira-decode next to the program" "grep -q '\"quality\"' <<<\"\$out\""
lone=$(mktemp -d)
cp "$B" "$lone/basira"
out=$(env -u BASIRA_DECODE_HELPER "$lone/basira" check --json "$black" 2>/dev/null); rc=$?
check "without basira-decode HEIF is refused" "[ $rc -eq 1 ] && grep -q '\"unsupported\".*JPEG' <<<\"\$out\""
out=$(env -u BASIRA_DECODE_HELPER "$lone/basira" check --json "${BASIRA_SOURCE_DIR:?}/fuzz/corpus/intake/seed.jpg" 2>/dev/null)
check "without basira-decode a JPEG is still read" "! grep -q '\"unsupported\"' <<<\"\$out\""
rm -rf "$lone"

# `basira user --help` and the unknown-role error name every role of the role enum
# (include/basira/store.h), data_steward included: the list is generated, never typed.
roles=$(grep -o 'BASIRA_ROLE_[A-Z_]*' "${BASIRA_SOURCE_DIR:?}/include/basira/store.h" |
        grep -v 'COUNT_$' | sort -u | sed 's/^BASIRA_ROLE_//' | tr 'A-Z' 'a-z')
help=$("$B" user --help); rc=$?
check "user --help exits 0" "[ $rc -eq 0 ]"
check "the role enum has data_steward" "grep -qx data_steward <<<\"\$roles\""
badrole=$(BASIRA_DB_PASSPHRASE=x "$B" user add --data "$(mktemp -u)" --role king k1 2>&1 </dev/null)
for r in $roles; do
  check "user --help names the role $r" "grep -q 'Roles:.*\\b$r\\b' <<<\"\$help\""
  check "the unknown-role error names $r" "grep -q '\\b$r\\b' <<<\"\$badrole\""
done
exit $fail
