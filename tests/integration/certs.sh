#!/usr/bin/env bash
# certs.sh — make a throwaway CA and a server certificate for 127.0.0.1/localhost.
#
# Usage: certs.sh DIR
# Writes DIR/ca.pem, DIR/ca.key, DIR/server.pem, DIR/server.key (keys mode 0600).
# Everything is generated fresh with openssl at test time; nothing is committed.
# Invariant: the server certificate is signed by DIR/ca.pem and carries
# subjectAltName IP:127.0.0.1, DNS:localhost, so clients verify it against the
# test CA only (never the system store).
set -euo pipefail
dir=${1:?usage: certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -sha256 \
    -keyout ca.key -out ca.pem -subj "/CN=xenovia-test-CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -sha256 \
    -keyout server.key -out server.csr -subj "/CN=127.0.0.1" >/dev/null 2>&1
cat > server.ext <<'EXT'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
EXT
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -days 2 -sha256 -extfile server.ext -out server.pem >/dev/null 2>&1
chmod 0644 ca.pem server.pem
rm -f server.csr server.ext ca.srl
