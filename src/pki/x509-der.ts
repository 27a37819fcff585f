import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { x509 } from './x509-library.js';

/*
 * The parts of an X.509 certificate that node:crypto's X509Certificate does not expose (key usage bits and
 * every extension's criticality, SKI/AKI, EKU presence) or exposes only on newer Node (signature algorithm),
 * read with @peculiar/x509, the library that also signs (certificate-builder.ts). Works for any key type.
 */

export interface DerCertificateFields {
  signatureAlgorithm: string;
  /** The cA flag of basicConstraints; undefined when the extension is absent. */
  basicConstraints: { ca: boolean; critical: boolean } | undefined;
  keyUsage: { usages: string[]; critical: boolean } | undefined;
  extKeyUsage: string[] | undefined;
  subjectKeyId: string | undefined;
  authorityKeyId: string | undefined;
  dnsNames: string[];
}

// OpenSSL's short names, so messages match what `openssl x509 -text` shows the user.
const SIGNATURE_ALGORITHMS: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'md5WithRSAEncryption',
  '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption',
  '1.2.840.113549.1.1.10': 'rsassaPss',
  '1.2.840.113549.1.1.11': 'sha256WithRSAEncryption',
  '1.2.840.113549.1.1.12': 'sha384WithRSAEncryption',
  '1.2.840.113549.1.1.13': 'sha512WithRSAEncryption',
  '1.2.840.113549.1.1.14': 'sha224WithRSAEncryption',
  '1.2.840.10045.4.1': 'ecdsa-with-SHA1',
  '1.2.840.10045.4.3.1': 'ecdsa-with-SHA224',
  '1.2.840.10045.4.3.2': 'ecdsa-with-SHA256',
  '1.2.840.10045.4.3.3': 'ecdsa-with-SHA384',
  '1.2.840.10045.4.3.4': 'ecdsa-with-SHA512',
  '1.3.101.112': 'ED25519',
  '1.3.101.113': 'ED448',
};

const EXT_KEY_USAGES: Record<string, string> = {
  '1.3.6.1.5.5.7.3.1': 'serverAuth',
  '1.3.6.1.5.5.7.3.2': 'clientAuth',
  '1.3.6.1.5.5.7.3.3': 'codeSigning',
  '1.3.6.1.5.5.7.3.4': 'emailProtection',
  '1.3.6.1.5.5.7.3.8': 'timeStamping',
  '1.3.6.1.5.5.7.3.9': 'OCSPSigning',
  '2.5.29.37.0': 'anyExtendedKeyUsage',
};

/** Throws a plain Error on malformed DER; the caller turns it into a user-facing ValidationError. */
export function readDerCertificate(der: Buffer): DerCertificateFields {
  const asn = AsnConvert.parse(der, Certificate);
  const sigOid = asn.signatureAlgorithm.algorithm;
  const cert = new x509.X509Certificate(der);
  const fields: DerCertificateFields = {
    signatureAlgorithm: SIGNATURE_ALGORITHMS[sigOid] ?? sigOid,
    basicConstraints: undefined,
    keyUsage: undefined,
    extKeyUsage: undefined,
    subjectKeyId: undefined,
    authorityKeyId: undefined,
    dnsNames: [],
  };
  for (const ext of cert.extensions) {
    if (ext instanceof x509.BasicConstraintsExtension) {
      fields.basicConstraints = { ca: ext.ca, critical: ext.critical };
    } else if (ext instanceof x509.KeyUsagesExtension) {
      fields.keyUsage = { usages: keyUsageNames(ext.usages), critical: ext.critical };
    } else if (ext instanceof x509.ExtendedKeyUsageExtension) {
      fields.extKeyUsage = ext.usages.map((u) => EXT_KEY_USAGES[String(u)] ?? String(u));
    } else if (ext instanceof x509.SubjectKeyIdentifierExtension) {
      fields.subjectKeyId = ext.keyId.toLowerCase();
    } else if (ext instanceof x509.AuthorityKeyIdentifierExtension) {
      // keyIdentifier only; the issuer+serial form is not what the tunnel checks
      fields.authorityKeyId = ext.keyId?.toLowerCase();
    } else if (ext instanceof x509.SubjectAlternativeNameExtension) {
      fields.dnsNames = ext.names.items.filter((n) => n.type === 'dns').map((n) => n.value);
    }
  }
  return fields;
}

// RFC 5280 4.2.1.3 names, in bit order; the library's flags use the same bit values (digitalSignature = 1, ...)
const KEY_USAGE_NAMES: ReadonlyArray<readonly [number, string]> = [
  [x509.KeyUsageFlags.digitalSignature, 'digitalSignature'],
  [x509.KeyUsageFlags.nonRepudiation, 'nonRepudiation'],
  [x509.KeyUsageFlags.keyEncipherment, 'keyEncipherment'],
  [x509.KeyUsageFlags.dataEncipherment, 'dataEncipherment'],
  [x509.KeyUsageFlags.keyAgreement, 'keyAgreement'],
  [x509.KeyUsageFlags.keyCertSign, 'keyCertSign'],
  [x509.KeyUsageFlags.cRLSign, 'cRLSign'],
  [x509.KeyUsageFlags.encipherOnly, 'encipherOnly'],
  [x509.KeyUsageFlags.decipherOnly, 'decipherOnly'],
];

function keyUsageNames(flags: number): string[] {
  return KEY_USAGE_NAMES.filter(([bit]) => (flags & bit) !== 0).map(([, name]) => name);
}
