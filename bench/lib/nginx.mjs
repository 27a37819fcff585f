// nginx from Debian as the reference TLS-terminating reverse proxy: installed if absent, run in the
// foreground (daemon off) with its own config, logs and temp files in the bench's temp dir, on 127.0.0.1.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { sleep } from './system.mjs';

const CANDIDATES = ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx'];

function findNginx() {
  return CANDIDATES.find((p) => existsSync(p));
}

/** The nginx binary, installed from Debian (nginx-light) when missing. Returns { bin, version } or throws. */
export function ensureNginx(log) {
  let bin = findNginx();
  if (!bin) {
    if (process.getuid?.() !== 0) throw new Error('nginx is not installed and the bench is not root: apt-get install nginx-light');
    log('nginx not found: installing nginx-light from Debian (apt-get)');
    // RUNLEVEL=1: the package's scripts must not start a system nginx; ours runs in the foreground only.
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', RUNLEVEL: '1' };
    let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'nginx-light'], { env, stdio: 'ignore', timeout: 240_000 });
    if (r.status !== 0) {
      spawnSync('apt-get', ['update'], { env, stdio: 'ignore', timeout: 240_000 });
      r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'nginx-light'], { env, stdio: 'ignore', timeout: 240_000 });
    }
    bin = findNginx();
    if (!bin) throw new Error('could not install nginx-light (apt-get install -y nginx-light)');
  }
  const v = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  const version = /nginx\/(\S+)/.exec(`${v.stderr}${v.stdout}`)?.[1] ?? 'unknown';
  let openssl = 'unknown';
  try {
    const V = spawnSync(bin, ['-V'], { encoding: 'utf8' });
    openssl = /running with OpenSSL (\S+)/.exec(V.stderr)?.[1] ?? /built with OpenSSL (\S+)/.exec(V.stderr)?.[1] ?? 'unknown';
  } catch {
    openssl = 'unknown';
  }
  return { bin, version, openssl };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The config: one worker (the builtin proxy is one Node.js event loop: one core each), TLS 1.2+ with the
 * same RSA-2048 certificate, HTTP/1.1 keep-alive to the upstream, no response buffering (what a streaming
 * MCP server needs behind nginx), access log on (the builtin proxy logs every request too).
 */
export function nginxConfig({ dir, port, upstreamPort, certFile, keyFile }) {
  return `# mcp-tunnel bench: generated, temporary
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  upstream mcp {
    server 127.0.0.1:${upstreamPort};
    keepalive 128;
  }
  server {
    listen 127.0.0.1:${port} ssl;
    server_name _;
    ssl_certificate ${certFile};
    ssl_certificate_key ${keyFile};
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    location / {
      proxy_pass http://mcp;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_buffering off;
      proxy_read_timeout 300s;
    }
  }
}
`;
}

/** Starts nginx (tracked by `children`, own process group) and waits until it accepts connections. */
export async function startNginx(children, { bin, dir, upstreamPort, certFile, keyFile }) {
  await mkdir(path.join(dir, 'tmp'), { recursive: true });
  // The worker runs as nobody: it needs its temp dirs (the master reads the key as root).
  await chmod(dir, 0o755);
  await chmod(path.join(dir, 'tmp'), 0o777);
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  await writeFile(conf, nginxConfig({ dir, port, upstreamPort, certFile, keyFile }));
  execFileSync(bin, ['-t', '-q', '-p', dir, '-c', conf, '-e', path.join(dir, 'error.log')], { stdio: 'pipe' });
  const child = children.spawnGroup(bin, ['-p', dir, '-c', conf, '-e', path.join(dir, 'error.log')], { stdio: 'ignore' }, 'nginx');
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}); see ${dir}/error.log`);
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return { child, port };
    await sleep(50);
  }
  throw new Error('nginx did not start listening within 10 s');
}
