#!/usr/bin/env bash
# Installs the deploy tests' npm tools into BUILD_DIR/node_tools/deploy (its own folder, so it
# never races another test's npm install into node_tools): Kubernetes object schemas for offline
# validation, a YAML parser, and a gRPC client for the rehearsal's grpc.health.v1 probes.
# Idempotent. Called by scripts/setup-test-tools and by the DeploySetupTools ctest fixture.
#   tests/deploy/setup_tools.sh BUILD_DIR
set -euo pipefail
BUILD="${1:?usage: tests/deploy/setup_tools.sh BUILD_DIR}"
TOOLS="$BUILD/node_tools/deploy"
PACKAGES=(kubernetes-models@5.1.0 yaml@2 @grpc/grpc-js@1 @grpc/proto-loader@0.8)
missing=0
for p in kubernetes-models yaml @grpc/grpc-js @grpc/proto-loader; do
  [[ -f "$TOOLS/node_modules/$p/package.json" ]] || missing=1
done
if ((missing)); then
  mkdir -p "$TOOLS"
  [[ -f "$TOOLS/package.json" ]] || echo '{"name":"hubcensus-deploy-tools","private":true}' \
    >"$TOOLS/package.json"
  echo "deploy tools: npm install ${PACKAGES[*]} into $TOOLS"
  # One installer at a time even if two callers start together.
  flock "$TOOLS/.install.lock" npm install --prefix "$TOOLS" --no-audit --no-fund \
    --loglevel=error "${PACKAGES[@]}"
else
  echo "deploy tools: present in $TOOLS"
fi
