#!/usr/bin/env bash
# Install every system package Basira needs to build, run and test, from Debian 12.
# Idempotent and quick when everything is present. Run as root (or through sudo).
#
#   scripts/install-deps.sh            # build + run + test dependencies
#
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake pkg-config gettext clang libclang-rt-14-dev clang-format valgrind
  # images
  libvips-dev libheif-dev libwebp-dev libtiff-dev libjpeg-dev libpng-dev liblcms2-dev libexif-dev
  # neural networks
  libdnnl-dev libopenblas-dev
  # storage, crypto, network
  libsqlcipher-dev sqlcipher libsqlite3-dev libsodium-dev nettle-dev libmicrohttpd-dev libgnutls28-dev libqrencode-dev
  libcurl4-openssl-dev libjansson-dev libpq-dev zlib1g-dev
  # national image archive: DICOM (DCMTK), Orthanc with its PostgreSQL index
  libdcmtk-dev orthanc orthanc-postgresql
  # the regional hub's tests start their own PostgreSQL server (initdb, pg_ctl)
  postgresql faketime
  # documents
  libcairo2-dev libpango1.0-dev fonts-noto-core fonts-dejavu-core poppler-utils
  # test-time references and tools (never needed by the product at run time)
  python3 python3-torch python3-numpy python3-pil time curl openssl
  # bench/triage_cold: the `vips` command line, what a user would run instead
  libvips-tools
  python3-pydicom
  # browser tests of the web app (playwright-core from npm drives Debian's chromium)
  chromium
)
# Node.js and npm for the browser and FHIR-schema tests: Debian's, unless a node is already there.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
