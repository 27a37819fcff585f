import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueServerCert } from '../../src/pki/index.js';
import { startSampleMcpServer, type SampleMcpServer } from '../helpers/mcp-upstream.js';
import { hasCompleteResponse, openTunnelSocket, rawExchange, startTestProxy, waitFor, type TestProxy } from '../helpers/tunnel-client.js';

/**
 * Certificate hot reload: a renewed pair (same CA, new serial) is picked up by NEW handshakes without a
 * restart while an established session keeps working; a broken or mismatched pair is logged and ignored.
 */

let mcp: SampleMcpServer;
let t: TestProxy;

beforeAll(async () => {
  mcp = await startSampleMcpServer();
  t = await startTestProxy({ routes: { hello: mcp.origin }, extraYaml: 'upstream:\n  allowed_ips: ["127.0.0.1/32"]', certPollIntervalMs: 50 });
});

afterAll(async () => {
  await t?.close();
  await mcp?.close();
});

/** Replaces a file the way renew-cert does: write aside, then rename over. */
async function replace(file: string, content: string): Promise<void> {
  const tmp = `${file}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, file);
}

async function handshakeSerial(): Promise<string> {
  const { socket, destroy } = await openTunnelSocket({ ...t.client, servername: `hello.${t.domain}` });
  const serial = socket.getPeerX509Certificate()!.serialNumber.toLowerCase();
  destroy();
  return serial;
}

const ping = (host: string): string => `GET /mcp HTTP/1.1\r\nHost: ${host}\r\n\r\n`;

describe('certificate hot reload', () => {
  it('serves a renewed certificate to new handshakes while an old session keeps working', async () => {
    const host = `hello.${t.domain}`;
    const old = await openTunnelSocket({ ...t.client, servername: host });
    const oldSerial = old.socket.getPeerX509Certificate()!.serialNumber.toLowerCase();
    try {
      // The sample server answers a GET without a session with 400: enough to prove the path works.
      expect(await rawExchange(old.socket, ping(host), hasCompleteResponse)).toMatch(/^HTTP\/1\.1 400/);

      const renewed = await issueServerCert({ ca: t.pki.ca, domain: t.domain });
      await replace(path.join(t.dir, 'tls.key'), renewed.keyPem);
      await replace(path.join(t.dir, 'tls.crt'), renewed.certPem);
      await waitFor(() => t.logs.some((l) => l.msg === 'certificate reloaded'), 'the reload');

      const newSerial = await handshakeSerial();
      expect(newSerial).not.toBe(oldSerial);
      expect(t.proxy.certificates.certificate.serialNumber).toBe(newSerial);
      // The established session (handshaken on the old certificate) still answers.
      expect(await rawExchange(old.socket, ping(host), hasCompleteResponse)).toMatch(/^HTTP\/1\.1 400/);
      const metrics = await (await fetch(`${t.adminUrl}/metrics`)).text();
      expect(metrics).toMatch(/^mcp_tunnel_proxy_certificate_reloads_total\{result="success"\} 1$/m);
    } finally {
      old.destroy();
    }
  });

  it('ignores a broken certificate file and keeps serving the current one', async () => {
    const before = t.proxy.certificates.certificate.serialNumber;
    await replace(path.join(t.dir, 'tls.crt'), '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
    await waitFor(() => t.logs.some((l) => l.msg === 'certificate reload failed'), 'the failed reload to be logged');
    const line = t.logs.find((l) => l.msg === 'certificate reload failed')!;
    expect(line.level).toBe('warn');
    expect(String(line.reason)).toMatch(/tls\.crt/);
    expect(await handshakeSerial()).toBe(before);
    const ready = await fetch(`${t.adminUrl}/readyz`);
    expect(ready.status).toBe(200);
    await ready.arrayBuffer();
  });

  it('ignores a key that does not match the certificate', async () => {
    const before = t.proxy.certificates.certificate.serialNumber;
    const failuresBefore = t.logs.filter((l) => l.msg === 'certificate reload failed').length;
    const other = await issueServerCert({ ca: t.pki.ca, domain: t.domain });
    const current = await issueServerCert({ ca: t.pki.ca, domain: t.domain });
    await replace(path.join(t.dir, 'tls.crt'), current.certPem);
    await replace(path.join(t.dir, 'tls.key'), other.keyPem);
    await waitFor(() => t.logs.filter((l) => l.msg === 'certificate reload failed').length > failuresBefore, 'the mismatch to be logged');
    const line = t.logs.filter((l) => l.msg === 'certificate reload failed').at(-1)!;
    expect(String(line.reason)).toMatch(/does not match/);
    expect(t.logText()).not.toContain('PRIVATE KEY');
    expect(await handshakeSerial()).toBe(before);

    // Fixing the key makes the pair valid: it is picked up.
    await replace(path.join(t.dir, 'tls.key'), current.keyPem);
    await waitFor(() => t.proxy.certificates.certificate.serialNumber !== before, 'the fixed pair to load');
    expect(await handshakeSerial()).toBe(t.proxy.certificates.certificate.serialNumber);
  });
});
