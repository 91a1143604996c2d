#!/usr/bin/env bash
# Makes the --http.config test certificates (tests/http_config.rs, src/http/web_config/tests.rs):
# a CA, a server certificate for localhost/127.0.0.1 and a client certificate signed by it,
# and a second CA that signed nothing here. EC P-256, valid for 100 years. Not run in CI: the
# files are committed; run it again only to change them.
set -euo pipefail
cd "$(dirname "$0")"
days=36500
key() { openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out "$1"; }
ca() {
  key "$1-key.pem"
  openssl req -x509 -new -key "$1-key.pem" -sha256 -days $days -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out "$1.pem"
}
leaf() { # name cn ext
  key "$1-key.pem"
  openssl req -new -key "$1-key.pem" -subj "/CN=$2" -out "$1.csr"
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -sha256 -days $days \
    -extfile "$1.ext" -out "$1.pem"
  rm -f "$1.csr" "$1.ext"
}
ca ca "compactd test CA"
ca other-ca "another test CA"
leaf server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth"
leaf client "compactd test client" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
rm -f ca.srl ca-key.pem other-ca-key.pem
