#!/usr/bin/env bash
# Prints the README's "Try it" block from a real server on the shipped models: starts
# `deno task start` on 127.0.0.1:8000, runs the curl examples in a folder holding shoe.jpg and
# boot.png (the fixtures the README names), stops the server. Paste the output into README.md.
#   bash bench/readme_examples.sh > /tmp/try_it.md
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=$(mktemp -d)
cp tests/fixtures/data/fmnist/photo/t10k_00000.jpg "$dir/shoe.jpg"
cp tests/fixtures/data/fmnist/png/t10k_00000.png "$dir/boot.png"
PORT=8000 HOST=127.0.0.1 deno task start >"$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 120); do
  curl -sf http://127.0.0.1:8000/readyz >/dev/null 2>&1 && break
  sleep 0.5
done
cd "$dir"
B=http://127.0.0.1:8000
run() { echo "\$ $1"; (eval "$1"); }
echo '```sh'
run "curl -s -F image=@shoe.jpg '$B/v1/classify?topk=3' | jq"
echo
run "curl -s -i --data-binary @boot.png '$B/v1/classify?alpha=0.5&beta=0.75&topk=1'" | tr -d '\r' |
  grep -iv "^date:\|^vary:\|^content-length:\|^x-request-id:"
echo
run "curl -s -F image=@shoe.jpg '$B/v1/classify?alpha=0.25&beta=0.5&backend=ort-wasm&topk=1'"
echo
echo
run "curl -s -F image=@shoe.jpg '$B/v1/classify?alpha=0.3'"
echo
echo
run "curl -s $B/v1/models | jq -c '.default, (.models[] | {id, trained, int8: .accuracy.int8})'"
echo
run "curl -s '$B/v1/cost?alpha=0.5&beta=0.75' | jq -c '.model, .totals'"
echo '```'
cd "$root"
