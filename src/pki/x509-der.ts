import forge from 'node-forge';

/*
 * The parts of an X.509 certificate that node:crypto's X509Certificate does not expose (key usage bits and
 * every extension's criticality, SKI/AKI, EKU presence) or exposes only on newer Node (signature algorithm).
 * Read with forge's ASN.1 parser rather than forge.pki.certificateFromAsn1 because the latter refuses any
 * certificate whose key is not RSA, and users bring ECDSA CAs.
 */

type Asn1 = forge.asn1.Asn1;
const { Class, Type } = forge.asn1;

// The typings only know the legacy boolean form; decodeBitStrings:false keeps BIT STRING bytes raw, which is
// what key usage needs (forge would otherwise try to read the bits as nested ASN.1).
const fromDer = forge.asn1.fromDer as unknown as (bytes: string, options: { strict: boolean; decodeBitStrings: boolean }) => Asn1;

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

const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  subjectAltName: '2.5.29.17',
} as const;

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

// RFC 5280 4.2.1.3, in bit order (bit 0 is the most significant bit of the first byte).
const KEY_USAGE_BITS = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;

/** Throws a plain Error on malformed DER; the caller turns it into a user-facing ValidationError. */
export function readDerCertificate(der: Buffer): DerCertificateFields {
  const cert = fromDer(der.toString('binary'), { strict: true, decodeBitStrings: false });
  const [tbs, sigAlg] = children(cert);
  if (tbs === undefined || sigAlg === undefined) throw new Error('not an X.509 certificate');
  const sigOid = forge.asn1.derToOid(bytes(children(sigAlg)[0]));

  const fields: DerCertificateFields = {
    signatureAlgorithm: SIGNATURE_ALGORITHMS[sigOid] ?? sigOid,
    basicConstraints: undefined,
    keyUsage: undefined,
    extKeyUsage: undefined,
    subjectKeyId: undefined,
    authorityKeyId: undefined,
    dnsNames: [],
  };

  // extensions are [3] EXPLICIT in TBSCertificate; v1 certificates have none
  const wrapper = children(tbs).find((n) => n.tagClass === Class.CONTEXT_SPECIFIC && n.type === 3);
  const list = wrapper === undefined ? [] : children(children(wrapper)[0]);
  for (const ext of list) {
    const parts = children(ext);
    const oid = forge.asn1.derToOid(bytes(parts[0]));
    // critical BOOLEAN DEFAULT FALSE: present only when true in DER, but tolerate an explicit FALSE
    const critical = parts.length === 3 && parts[1]?.type === Type.BOOLEAN && bytes(parts[1]) !== '\x00';
    const value = fromDer(bytes(parts[parts.length - 1]), { strict: true, decodeBitStrings: false });
    readExtension(fields, oid, critical, value);
  }
  return fields;
}

function readExtension(fields: DerCertificateFields, oid: string, critical: boolean, value: Asn1): void {
  switch (oid) {
    case OID.basicConstraints: {
      const first = children(value)[0];
      const ca = first !== undefined && first.type === Type.BOOLEAN && bytes(first) !== '\x00';
      fields.basicConstraints = { ca, critical };
      return;
    }
    case OID.keyUsage:
      fields.keyUsage = { usages: keyUsageNames(bytes(value)), critical };
      return;
    case OID.extKeyUsage:
      fields.extKeyUsage = children(value).map((n) => {
        const eku = forge.asn1.derToOid(bytes(n));
        return EXT_KEY_USAGES[eku] ?? eku;
      });
      return;
    case OID.subjectKeyIdentifier:
      fields.subjectKeyId = forge.util.bytesToHex(bytes(value)).toLowerCase();
      return;
    case OID.authorityKeyIdentifier: {
      // keyIdentifier is [0] IMPLICIT OCTET STRING; the issuer+serial form ([1], [2]) is not what the tunnel checks
      const keyId = children(value).find((n) => n.tagClass === Class.CONTEXT_SPECIFIC && n.type === 0);
      fields.authorityKeyId = keyId === undefined ? undefined : forge.util.bytesToHex(bytes(keyId)).toLowerCase();
      return;
    }
    case OID.subjectAltName:
      // dNSName is [2] IMPLICIT IA5String
      fields.dnsNames = children(value)
        .filter((n) => n.tagClass === Class.CONTEXT_SPECIFIC && n.type === 2)
        .map((n) => bytes(n));
      return;
    default:
      return;
  }
}

function keyUsageNames(bitString: string): string[] {
  // the first byte of a BIT STRING is the count of unused trailing bits; the flags follow
  const names: string[] = [];
  for (let i = 0; i < KEY_USAGE_BITS.length; i++) {
    const byte = bitString.charCodeAt(1 + (i >> 3));
    if (!Number.isNaN(byte) && (byte & (0x80 >> (i & 7))) !== 0) names.push(KEY_USAGE_BITS[i] as string);
  }
  return names;
}

function children(node: Asn1 | undefined): Asn1[] {
  if (node === undefined || !Array.isArray(node.value)) throw new Error('unexpected ASN.1 structure');
  return node.value;
}

function bytes(node: Asn1 | undefined): string {
  if (node === undefined || typeof node.value !== 'string') throw new Error('unexpected ASN.1 structure');
  return node.value;
}
