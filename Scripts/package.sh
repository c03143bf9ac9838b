#!/usr/bin/env bash
# Builds qmplog's Debian package the Debian way (debian/, debhelper) and says where it is.
# Needs: a Swift 6.2+ toolchain on PATH, and Debian's debhelper, libsqlite3-dev and dpkg-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
dpkg-buildpackage -us -uc -b
version=$(dpkg-parsechangelog -S Version)
architecture=$(dpkg --print-architecture)
mkdir -p .build/deb
for file in ../qmplog_"${version}"_"${architecture}".{deb,buildinfo,changes}; do
    mv "$file" .build/deb/
done
echo "Built $(pwd)/.build/deb/qmplog_${version}_${architecture}.deb"
