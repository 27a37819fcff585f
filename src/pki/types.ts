/** A certificate and its private key, both PEM text, as they are stored in data/ (tls.crt + tls.key, ca.crt + ca.key). */
export interface PemPair {
  certPem: string;
  keyPem: string;
}
