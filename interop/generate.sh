#!/bin/sh
# Writes gen/ (git-ignored): the JavaScript for testdata/greet/proto and testdata/json_any/proto, made by the repository's
# buf (../node_modules/.bin/buf) with this folder's protoc-gen-es (see buf.gen.yaml). Installs
# either from its package-lock.json first if it is missing. Works offline once installed.
set -eu
cd "$(dirname "$0")"
if [ ! -x ../node_modules/.bin/buf ]; then
  (cd .. && npm ci --no-audit --no-fund)
fi
if [ ! -x node_modules/.bin/protoc-gen-es ]; then
  npm ci --no-audit --no-fund
fi
../node_modules/.bin/buf generate --template buf.gen.yaml
