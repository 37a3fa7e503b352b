#!/usr/bin/env bash
# Certificates for the TLS tests, generated afresh with openssl into DIR (never checked in):
#   ca.pem               root CA "nines test root"          (ca.key)
#   int.pem              intermediate signed by the root     (int.key)
#   leaf.pem / leaf.key  localhost + 127.0.0.1, signed by the intermediate, valid 30 days
#   chain.pem            leaf.pem then int.pem (what a server should send)
#   reversed.pem         int.pem then leaf.pem (out of order)
#   other.pem / .key     "other.test" and "*.wild.test" (SNI), chain included
#   expired.pem / .key   localhost, valid in January 2020 only, chain included
#   future.pem / .key    localhost, valid from 2099, chain included
#   soon.pem / .key      localhost, valid 5 more days, chain included
#   wronghost.pem / .key wrong.example only, chain included
#   selfsigned.pem / .key localhost, signed by itself
#   weakkey.pem / .key   localhost, RSA 1024, chain included
#   sha1.pem / .key      localhost, signed with SHA-1, chain included
#   client.pem / .key    a client certificate ("agent-7") signed by the root, for mTLS
#   rogue.pem / .key     a client certificate signed by nobody we trust
#   root-int.pem         ca.pem then int.pem: a chain file with the root before the intermediate
#   untrusted-root.pem   another root, "nines untrusted root" (.key), in no test's trust store
#   untrusted.pem / .key localhost, signed by untrusted-root, which is included (a complete chain
#                        up to a root that ca.pem does not hold)
# Usage: tls_fixtures.sh DIR
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"

ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# The signing CA's database for `openssl ca`, which alone sets arbitrary validity dates.
mkdir -p ca.db/new
: > ca.db/index.txt
echo 1000 > ca.db/serial
cat > ca.cnf <<'EOF'
[ca]
default_ca = signer
[signer]
dir = ./ca.db
database = $dir/index.txt
new_certs_dir = $dir/new
serial = $dir/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[anything]
commonName = supplied
[v3_int]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[v3_leaf]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
authorityInfoAccess = caIssuers;URI:http://127.0.0.1:1/int.pem
subjectAltName = $ENV::SAN
[v3_client]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

# sign NAME CN ISSUER EXTENSIONS START END [MD]: NAME.pem from NAME.key, signed by ISSUER.
sign() {
  local name=$1 cn=$2 issuer=$3 ext=$4 start=$5 end=$6 md=${7:-sha256}
  openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr" 2>/dev/null
  openssl ca -batch -notext -config ca.cnf -cert "$issuer.pem" -keyfile "$issuer.key" \
    -extensions "$ext" -startdate "$start" -enddate "$end" -md "$md" \
    -in "$name.csr" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr"
}
date_in() { date -u -d "$1" +%Y%m%d%H%M%SZ; }
now=$(date_in "-1 hour")
month=$(date_in "+30 days")
export SAN="DNS:localhost,IP:127.0.0.1"

ec_key ca.key
openssl req -x509 -new -key ca.key -subj "/CN=nines test root" -days 60 -sha256 \
  -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem 2>/dev/null

ec_key int.key
sign int "nines test intermediate" ca v3_int "$now" "$month"

leaf() {  # leaf NAME CN START END [MD] [KEY-ALGORITHM]
  local name=$1
  if [ "${6:-ec}" = rsa1024 ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$name.key" 2>/dev/null
  else
    ec_key "$name.key"
  fi
  sign "$name" "$2" int v3_leaf "$3" "$4" "${5:-sha256}"
}

leaf leaf localhost "$now" "$month"
cat leaf.pem int.pem > chain.pem
cat int.pem leaf.pem > reversed.pem

for variant in expired future soon wronghost weakkey sha1 other; do
  case $variant in
    expired) leaf expired localhost 20200101000000Z 20200201000000Z ;;
    future) leaf future localhost 20990101000000Z 20991231000000Z ;;
    soon) leaf soon localhost "$now" "$(date_in '+5 days')" ;;
    wronghost) SAN="DNS:wrong.example" leaf wronghost wrong.example "$now" "$month" ;;
    weakkey) leaf weakkey localhost "$now" "$month" sha256 rsa1024 ;;
    sha1) leaf sha1 localhost "$now" "$month" sha1 ;;
    other) SAN="DNS:other.test,DNS:*.wild.test" leaf other other.test "$now" "$month" ;;
  esac
  cat int.pem >> "$variant.pem"
done

ec_key selfsigned.key
openssl req -x509 -new -key selfsigned.key -subj "/CN=localhost" -days 30 -sha256 \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -out selfsigned.pem 2>/dev/null

ec_key client.key
sign client agent-7 ca v3_client "$now" "$month"

ec_key rogue.key
openssl req -x509 -new -key rogue.key -subj "/CN=rogue" -days 30 -sha256 -out rogue.pem 2>/dev/null

cat ca.pem int.pem > root-int.pem

ec_key untrusted-root.key
openssl req -x509 -new -key untrusted-root.key -subj "/CN=nines untrusted root" -days 60 -sha256 \
  -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out untrusted-root.pem 2>/dev/null
ec_key untrusted.key
sign untrusted localhost untrusted-root v3_leaf "$now" "$month"
cat untrusted-root.pem >> untrusted.pem
