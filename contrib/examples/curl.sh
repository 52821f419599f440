#!/bin/sh
# generate -> sign -> broadcast, with nothing but curl and jq.
#
# Talks to a running signerd (standalone role) and a local Ethereum node
# (anvil).  Both must be on this machine:
#
#   signerd -c conf/standalone.conf --listen 127.0.0.1:8080 --data-dir /tmp/signer-data &
#   anvil --host 127.0.0.1 --port 8545 --chain-id 31337 &
#   contrib/examples/curl.sh
#
# (anvil comes with Foundry, or from npm: `cd tests/interop && npm ci`, then
# tests/interop/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil.)
#
# Steps:
#   1. POST / {"operation": "generate_key"}       -> key_id, address
#   2. fund the address from anvil's unlocked dev account 0 (eth_sendTransaction)
#   3. read the nonce and fees from the node
#   4. POST / {"operation": "sign_transaction"}   -> transaction_signed, transaction_hash
#   5. eth_sendRawTransaction, wait for the receipt, print it
#
# Environment:
#   SIGNER_URL  signerd base URL     (default http://127.0.0.1:8080)
#   RPC_URL     node JSON-RPC URL    (default http://127.0.0.1:8545)
#   SECRET      the key's secret     (default: a fresh random 64-hex secret;
#                                     20-128 printable ASCII characters)
#   TO          recipient            (default 0xa5D3241A1591061F2a4bB69CA0215F66520E67cf)
#   VALUE       ether to send, a JSON number as in the seed (default 0.01)
#
# Exit status: 0 when the transaction was mined with status 1.

set -eu

SIGNER_URL=${SIGNER_URL:-http://127.0.0.1:8080}
RPC_URL=${RPC_URL:-http://127.0.0.1:8545}
TO=${TO:-0xa5D3241A1591061F2a4bB69CA0215F66520E67cf}
VALUE=${VALUE:-0.01}
if [ -z "${SECRET:-}" ]; then
    # As the seed recommends: the SHA-256 hex of something secret.
    SECRET=$(head -c 32 /dev/urandom | sha256sum | cut -d' ' -f1)
fi

for tool in curl jq; do
    command -v "$tool" >/dev/null 2>&1 || { echo "$0: needs $tool" >&2; exit 1; }
done

die() { echo "$0: $*" >&2; exit 1; }

# signer OPERATION PAYLOAD-JSON: prints enclave_result, fails on an error answer.
signer() {
    body=$(jq -n --arg op "$1" --argjson payload "$2" '{operation: $op, payload: $payload}')
    # The body holds the secret: pass it on stdin, not on the command line.
    answer=$(printf '%s' "$body" | curl -sS --max-time 30 -H 'Content-Type: application/json' \
        --data-binary @- -w '\n%{http_code}' "$SIGNER_URL/") || die "signerd unreachable at $SIGNER_URL"
    code=$(printf '%s\n' "$answer" | tail -n 1)
    json=$(printf '%s\n' "$answer" | sed '$d')
    if [ "$code" != 200 ]; then
        die "signerd $1: HTTP $code: $(printf '%s' "$json" | jq -r '.enclave_result.error // .' 2>/dev/null || printf '%s' "$json")"
    fi
    printf '%s' "$json" | jq -c '.enclave_result'
}

# rpc METHOD PARAMS-JSON: prints .result, fails on a JSON-RPC error.
rpc() {
    answer=$(curl -sS --max-time 30 -H 'Content-Type: application/json' \
        --data "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":$2}" "$RPC_URL") ||
        die "node unreachable at $RPC_URL"
    if [ "$(printf '%s' "$answer" | jq 'has("error")')" = true ]; then
        die "$1: $(printf '%s' "$answer" | jq -c .error)"
    fi
    printf '%s' "$answer" | jq -c '.result'
}

# hex quantity -> decimal string (jq has only doubles; use the shell for
# values that fit in 63 bits, which fees and nonces on a dev chain do).
hex2dec() { printf '%d' "$(printf '%s' "$1" | tr -d '"')"; }

curl -sf --max-time 5 "$SIGNER_URL/healthz" >/dev/null || die "signerd not healthy at $SIGNER_URL/healthz"

echo "1. generate a key"
key=$(signer generate_key "$(jq -n --arg s "$SECRET" '{secret: $s}')")
KEY_ID=$(printf '%s' "$key" | jq -r .key_id)
ADDRESS=$(printf '%s' "$key" | jq -r .address)
echo "   key_id  $KEY_ID"
echo "   address $ADDRESS"

echo "2. fund it with 1 ether from the node's dev account"
DEV=$(rpc eth_accounts '[]' | jq -r '.[0]')
fund=$(rpc eth_sendTransaction "[{\"from\":\"$DEV\",\"to\":\"$ADDRESS\",\"value\":\"0xde0b6b3a7640000\"}]" | tr -d '"')
echo "   funding tx $fund"

echo "3. nonce and fees from the node"
CHAIN_ID=$(hex2dec "$(rpc eth_chainId '[]')")
NONCE=$(hex2dec "$(rpc eth_getTransactionCount "[\"$ADDRESS\",\"pending\"]")")
BASE_FEE=$(hex2dec "$(rpc eth_getBlockByNumber '["latest",false]' | jq -r '.baseFeePerGas // "0x0"')")
TIP=1000000000
MAX_FEE=$((BASE_FEE * 2 + TIP))
echo "   chainId $CHAIN_ID nonce $NONCE maxFeePerGas $MAX_FEE maxPriorityFeePerGas $TIP"

echo "4. sign an EIP-1559 transfer of $VALUE ether to $TO"
payload=$(jq -n --arg id "$KEY_ID" --arg s "$SECRET" --arg to "$TO" \
    --argjson chain "$CHAIN_ID" --argjson nonce "$NONCE" --argjson value "$VALUE" \
    --arg maxfee "$MAX_FEE" --arg tip "$TIP" '{
      key_id: $id, secret: $s,
      transaction_payload: {
        type: 2, chainId: $chain, nonce: $nonce, to: $to, value: $value, gas: 21000,
        maxFeePerGas: $maxfee, maxPriorityFeePerGas: $tip
      }}')
signed=$(signer sign_transaction "$payload")
RAW=$(printf '%s' "$signed" | jq -r .transaction_signed)
HASH=$(printf '%s' "$signed" | jq -r .transaction_hash)
echo "   transaction_hash $HASH"

echo "5. broadcast and wait for the receipt"
sent=$(rpc eth_sendRawTransaction "[\"$RAW\"]" | tr -d '"')
[ "$sent" = "$HASH" ] || die "node reports hash $sent, signerd said $HASH"
i=0
receipt=null
while [ "$receipt" = null ] && [ $i -lt 50 ]; do
    receipt=$(rpc eth_getTransactionReceipt "[\"$HASH\"]")
    [ "$receipt" = null ] && sleep 0.2
    i=$((i + 1))
done
[ "$receipt" != null ] || die "no receipt for $HASH after 10 s"
printf '%s\n' "$receipt" | jq '{transactionHash, blockNumber, from, to, status, gasUsed, type}'
[ "$(printf '%s' "$receipt" | jq -r .status)" = 0x1 ] || die "transaction failed"
echo "mined: $VALUE ether from $ADDRESS to $TO"
