'use strict';
// Self-signed certificates for 127.0.0.1/localhost, committed under test/fixtures/tls (see the
// README there for how they were made), so no test runs openssl.
const fs = require('fs');
const path = require('path');

const DIR = path.join(__dirname, '..', 'fixtures', 'tls');

function read(name) {
  return {
    key: fs.readFileSync(path.join(DIR, `${name}.key`), 'utf8'),
    cert: fs.readFileSync(path.join(DIR, `${name}.crt`), 'utf8'),
  };
}

/** { key, cert } PEM strings of the certificate the test clients trust. */
function selfSignedCert() {
  return read('localhost');
}

/** { key, cert } of a certificate for the same names that no test client trusts. */
function untrustedCert() {
  return read('untrusted');
}

module.exports = { selfSignedCert, untrustedCert };
