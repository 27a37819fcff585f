// The pki surface: everything outside src/pki imports from here.
export type { PemPair } from './types.js';
export { createCa, CA_KEY_TYPES, type CaKeyType, type CreateCaOptions } from './ca.js';
export { issueServerCert, DEFAULT_SERVER_CERT_VALIDITY_MS, SERVER_KEY_KIND, type IssueServerCertOptions } from './server-cert.js';
export {
  inspectCertificate,
  keyMatchesCertificate,
  verifySignedBy,
  countPemCertificates,
  pemContainsPrivateKey,
  type CertInfo,
} from './inspect.js';
export { checkCaCertificate, checkServerCertificate, blockingFailures, MAX_CA_PEM_BYTES, type Finding } from './rules.js';
export { decideRenewal, isRenewalDue, RENEW_BEFORE, RENEW_BEFORE_MS, type RenewalDecision, type RenewalInput } from './renewal.js';
