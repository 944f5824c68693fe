#!/usr/bin/env bash
# Installs the official Hugging Face JS client (npm @huggingface/hub) into BUILD_DIR/node_tools
# when it is missing, for tests/fakehub/js_client_test.mjs. Called by scripts/setup-test-tools
# and by the ctest fixture FakeHubJsClientSetup.
#   tests/fakehub/setup_hf_hub.sh BUILD_DIR
set -euo pipefail
BUILD_DIR="$(realpath -m "${1:?usage: tests/fakehub/setup_hf_hub.sh BUILD_DIR}")"
NODE_TOOLS="$BUILD_DIR/node_tools"
HF_HUB_VERSION="2"  # the major version the test is written against
if [[ ! -f "$NODE_TOOLS/node_modules/@huggingface/hub/package.json" ]]; then
  mkdir -p "$NODE_TOOLS"
  if [[ ! -f "$NODE_TOOLS/package.json" ]]; then
    echo '{"name": "hubcensus-node-tools", "private": true}' >"$NODE_TOOLS/package.json"
  fi
  echo "setup-test-tools: npm install @huggingface/hub@$HF_HUB_VERSION into $NODE_TOOLS"
  npm install --prefix "$NODE_TOOLS" --no-audit --no-fund --loglevel=error \
    "@huggingface/hub@$HF_HUB_VERSION"
fi
echo "setup-test-tools: @huggingface/hub" \
  "$(node -p "require('$NODE_TOOLS/node_modules/@huggingface/hub/package.json').version")" \
  "in $NODE_TOOLS"
