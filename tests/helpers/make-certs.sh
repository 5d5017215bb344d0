#!/usr/bin/env bash
# Creates a test CA, a server certificate for 127.0.0.1/localhost signed by it,
# and an unrelated CA (for "wrong CA" tests) in the folder given as $1.
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
[ -s server.pem ] && [ -s ca.pem ] && [ -s other-ca.pem ] && exit 0

openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=synosh test CA" \
  -keyout ca.key -out ca.pem 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=unrelated test CA" \
  -keyout other-ca.key -out other-ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
  -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nbasicConstraints=CA:FALSE\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
  -extfile server.ext -out server.pem 2>/dev/null
chmod 600 ./*.key
