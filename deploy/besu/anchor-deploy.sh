#!/bin/sh
# The one-shot `anchor-deploy` service of docker-compose.yml: puts the AnchorRegistry on the development Besu
# network and allows the engine's submitter address, so that the engine can anchor as soon as it starts.
#
# Safe to run again on every `docker compose up`: the registry is deployed only if it is not on the chain yet, and
# allowing a submitter that is already allowed changes nothing.
#
# Its inputs come from deploy/besu/dev-network.env (make-genesis.ts): ANCHOR_CONTRACT_ADDRESS is where the owner's
# first transaction puts the registry, so the engine is configured with it before the chain even starts; for that
# the deployment must be the owner's first transaction on this chain, which is checked below.
set -eu

RPC="${ANCHOR_DEPLOY_RPC_URL:-http://besu-1:8545}"
OWNER_KEY_FILE="${ANCHOR_OWNER_KEY_FILE:-/keys/owner.key}"
WAIT_SECONDS="${ANCHOR_DEPLOY_WAIT_SECONDS:-300}"

# One JSON-RPC call; prints the result (a string as is, anything else as JSON). Node is what the image has.
rpc() {
  node --input-type=module -e '
    const [url, method, params] = process.argv.slice(1);
    const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params: JSON.parse(params) }) });
    const body = await response.json();
    if (body.error) { console.error(`${method}: ${body.error.message}`); process.exit(1); }
    console.log(typeof body.result === "string" ? body.result : JSON.stringify(body.result));
  ' "$RPC" "$1" "$2"
}

# QBFT produces blocks only once enough validators (3 of 4) have found each other.
echo "anchor-deploy: waiting for blocks from $RPC"
waited=0
until block=$(rpc eth_blockNumber '[]' 2>/dev/null) && [ "$((block))" -ge 1 ]; do
  if [ "$waited" -ge "$WAIT_SECONDS" ]; then
    echo "anchor-deploy: no blocks from $RPC after ${WAIT_SECONDS}s; check the besu-* logs (peers, validator keys)" >&2
    exit 1
  fi
  sleep 2
  waited=$((waited + 2))
done
echo "anchor-deploy: chain is at block $((block))"

code=$(rpc eth_getCode "[\"$ANCHOR_CONTRACT_ADDRESS\", \"latest\"]")
if [ "$code" != "0x" ]; then
  echo "anchor-deploy: the registry is already at $ANCHOR_CONTRACT_ADDRESS"
else
  nonce=$(rpc eth_getTransactionCount "[\"$ANCHOR_OWNER_ADDRESS\", \"latest\"]")
  if [ "$((nonce))" -ne 0 ]; then
    echo "anchor-deploy: the owner $ANCHOR_OWNER_ADDRESS has sent transactions already, so the registry would not land at" >&2
    echo "  $ANCHOR_CONTRACT_ADDRESS (the address the engine is configured with); remove the besu-* volumes to start a fresh chain" >&2
    exit 1
  fi
  npx anchorline chain deploy --rpc "$RPC" --key-file "$OWNER_KEY_FILE" --evm-version london --out /shared/contract.json
  # The registry's address must be the one predicted for the engine (compared without regard to checksum case).
  if ! grep -qi "${ANCHOR_CONTRACT_ADDRESS#0x}" /shared/contract.json; then
    echo "anchor-deploy: the registry was not deployed at $ANCHOR_CONTRACT_ADDRESS; see /shared/contract.json" >&2
    exit 1
  fi
fi

npx anchorline chain allow --rpc "$RPC" --key-file "$OWNER_KEY_FILE" --contract "$ANCHOR_CONTRACT_ADDRESS" --address "$ANCHOR_SUBMITTER_ADDRESS"
echo "anchor-deploy: registry $ANCHOR_CONTRACT_ADDRESS allows submitter $ANCHOR_SUBMITTER_ADDRESS"
