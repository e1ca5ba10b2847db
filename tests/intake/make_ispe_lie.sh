#!/usr/bin/env bash
# Makes the crafted HEIF files of tests/intake/data (committed; run again only to
# remake them): a black picture whose HEVC or AV1 bitstream is N x N while its
# `ispe` box (the size libvips reports, and intake checks) is patched to 100 x 100.
#   tests/intake/make_ispe_lie.sh [out-dir]     (needs libvips-dev, gcc; minutes for HEVC)
set -euo pipefail
out=${1:-$(dirname "$0")/data}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/mk.c" <<'C'
#include <stdlib.h>
#include <vips/vips.h>
/* mk OUT SIDE AV1(0|1): a black SIDE x SIDE picture, HEVC or AV1, smallest settings. */
int main(int argc, char **argv)
{
    VipsImage *b, *c;
    if (argc != 4 || VIPS_INIT(argv[0]))
        return 1;
    int n = atoi(argv[2]);
    if (vips_black(&b, n, n, "bands", 3, NULL) || vips_cast(b, &c, VIPS_FORMAT_UCHAR, NULL))
        vips_error_exit(NULL);
    if (vips_heifsave(c, argv[1], "compression",
                      atoi(argv[3]) ? VIPS_FOREIGN_HEIF_COMPRESSION_AV1
                                    : VIPS_FOREIGN_HEIF_COMPRESSION_HEVC,
                      "effort", 0, "Q", 10, NULL))
        vips_error_exit(NULL);
    return 0;
}
C
# shellcheck disable=SC2046
gcc "$work/mk.c" -o "$work/mk" $(pkg-config --cflags --libs vips)
lie() { # name side av1
  "$work/mk" "$work/$1" "$2" "$3"
  /usr/bin/python3 - "$work/$1" "$out/$1" <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], 'rb').read())
i = d.find(b'ispe')
assert i > 0, 'no ispe box'
d[i + 8:i + 16] = struct.pack('>II', 100, 100)  # after fourcc: version/flags, then w, h
open(sys.argv[2], 'wb').write(d)
PY
}
lie ispe-lie-4k.heic 4096 0
lie ispe-lie-8k.avif 8192 1
lie ispe-lie-16k.avif 16384 1
