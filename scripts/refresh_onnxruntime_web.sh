#!/usr/bin/env bash
# Refresh the vendored onnxruntime-web files the app serves to the browser (static/onnxruntime-web/).
#
#   bash scripts/refresh_onnxruntime_web.sh            # the pinned version below
#   ORT_WEB_VERSION=1.31.0 bash scripts/refresh_onnxruntime_web.sh
#
# Needs npm and the npm registry, for developers only: the app itself never downloads anything.
# Copies only what the WebAssembly path (one thread, no WebGPU/WebGL) loads: the UMD script, the
# Emscripten glue it imports and the WebAssembly binary; writes LICENSE and SOURCE.txt (version,
# tarball, its integrity, and the sha256 of each file) beside them. Commit the folder afterwards.
set -euo pipefail

VERSION="${ORT_WEB_VERSION:-1.30.0}"
FILES=(ort.wasm.min.js ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm)
REPO="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$REPO/static/onnxruntime-web"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack "onnxruntime-web@$VERSION" --silent >/dev/null
tgz="onnxruntime-web-$VERSION.tgz"
[ -f "$tgz" ] || { echo "npm pack did not write $tgz" >&2; exit 1; }
tarball="$(npm view "onnxruntime-web@$VERSION" dist.tarball)"
integrity="$(npm view "onnxruntime-web@$VERSION" dist.integrity)"
license="$(npm view "onnxruntime-web@$VERSION" license)"
tar xzf "$tgz"

mkdir -p "$DEST"
rm -f "$DEST"/*
for f in "${FILES[@]}"; do
  cp "package/dist/$f" "$DEST/$f"
done

# The package ships no LICENSE file; its package.json says MIT and its files carry
# "Copyright (c) Microsoft Corporation. Licensed under the MIT License." This is that licence's text.
cat > "$DEST/LICENSE" <<'LICENSE_TEXT'
MIT License

Copyright (c) Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
LICENSE_TEXT

{
  echo "onnxruntime-web $VERSION (licence: $license, see LICENSE)"
  echo "package: https://www.npmjs.com/package/onnxruntime-web/v/$VERSION"
  echo "tarball: $tarball"
  echo "tarball integrity: $integrity"
  echo "tarball sha256: $(sha256sum "$tgz" | cut -d' ' -f1)"
  echo "written by: bash scripts/refresh_onnxruntime_web.sh (copies package/dist/<file> for each file below)"
  echo
  echo "sha256 of each file:"
  (cd "$DEST" && sha256sum "${FILES[@]}")
} > "$DEST/SOURCE.txt"

echo "onnxruntime-web $VERSION -> $DEST"
cat "$DEST/SOURCE.txt"
