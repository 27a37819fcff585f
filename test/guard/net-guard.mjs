/**
 * The network guard of the test suite and the benchmarks (plain ESM so that it also loads into every node child
 * process through NODE_OPTIONS=--import, where the CLI under test runs).
 *
 * Tests and benchmarks may reach loopback (127.0.0.0/8, ::1), unix sockets, and the containers and Docker networks
 * that this test run created; nothing else. Every outgoing TCP connection (net, tls, http, undici all end in
 * net.Socket.prototype.connect) and every UDP send/connect (dgram) is checked BEFORE the connect call: a
 * destination outside those is refused with an error naming it, so not one packet leaves. Host names other than
 * `localhost` are refused before any DNS lookup: a test that needs a name should use an address it owns.
 *
 * Violations are also appended to the file named by TEST_NET_GUARD_LOG, so a violation inside a child
 * process (which the CLI under test may turn into its own error message) still fails the test that caused it
 * (see test/guard/setup.ts).
 *
 * npm itself is exempt (a package test installs a tarball; the package registry is the machine's, not a target).
 */
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';

const INSTALLED = Symbol.for('mcp-tunnel.net-guard');
const ENV_LOG = 'TEST_NET_GUARD_LOG';
const ENV_SINCE = 'TEST_NET_GUARD_SINCE';

export class NetGuardError extends Error {
  constructor(destination, detail) {
    super(
      `net-guard: blocked a connection to ${destination}${detail ? ` (${detail})` : ''}: tests and benchmarks may reach only ` +
        'loopback, unix sockets and the containers/networks this test run created (use a loopback upstream or --offline)',
    );
    this.name = 'NetGuardError';
    this.code = 'NET_GUARD_BLOCKED';
    this.destination = destination;
  }
}

function ipv4ToInt(ip) {
  const parts = ip.split('.').map(Number);
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

function inCidr4(ip, cidr) {
  const [base, bitsText] = cidr.split('/');
  if (net.isIPv4(base) === false) return false;
  const bits = Number(bitsText ?? 32);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (ipv4ToInt(ip) & mask) === (ipv4ToInt(base) & mask);
}

/** An IPv4-mapped IPv6 address is checked as the IPv4 address it carries. */
function unmap(ip) {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1] : ip;
}

export function isLoopback(ip) {
  const addr = unmap(ip);
  if (net.isIPv4(addr)) return inCidr4(addr, '127.0.0.0/8');
  return addr === '::1' || /^0*:0*:0*:0*:0*:0*:0*:0*1$/.test(addr);
}

/** Docker objects this run created are allowed: looked up synchronously (the decision precedes connect) and cached. */
const dockerVerdicts = new Map();

function runStartedMs() {
  const since = Number(process.env[ENV_SINCE]);
  return Number.isFinite(since) && since > 0 ? since : Date.now();
}

function dockerJson(args) {
  try {
    const out = execFileSync('docker', args, { encoding: 'utf8', timeout: 15_000, stdio: ['ignore', 'pipe', 'ignore'] });
    return out.trim();
  } catch {
    return '';
  }
}

function ownedByThisRun(ip) {
  if (!net.isIPv4(ip)) return false;
  if (dockerVerdicts.get(ip) === true) return true;
  // Allow a second of clock skew between dockerd's timestamps and ours.
  const since = runStartedMs() - 1_000;
  const created = (text) => Date.parse(text) >= since;
  let owned = false;
  const networkIds = dockerJson(['network', 'ls', '-q', '--no-trunc']).split('\n').filter(Boolean);
  if (networkIds.length > 0) {
    for (const n of JSON.parse(dockerJson(['network', 'inspect', ...networkIds]) || '[]')) {
      if (!created(n.Created)) continue;
      for (const cfg of n.IPAM?.Config ?? []) if (cfg.Subnet && inCidr4(ip, cfg.Subnet)) owned = true;
    }
  }
  if (!owned) {
    const containerIds = dockerJson(['ps', '-q', '--no-trunc']).split('\n').filter(Boolean);
    if (containerIds.length > 0) {
      for (const c of JSON.parse(dockerJson(['inspect', ...containerIds]) || '[]')) {
        if (!created(c.Created)) continue;
        for (const endpoint of Object.values(c.NetworkSettings?.Networks ?? {})) if (endpoint.IPAddress === ip) owned = true;
      }
    }
  }
  // Only a positive verdict is cached: a network created later may make the same address ours.
  if (owned) dockerVerdicts.set(ip, true);
  return owned;
}

function isLocalName(host) {
  return host === '' || host === 'localhost' || String(host).endsWith('.localhost');
}

/** Throws a NetGuardError unless the destination is allowed. `host` may be a name, an IPv4 or an IPv6 literal. */
export function checkDestination(host, port) {
  const raw = String(host ?? 'localhost').replace(/^\[(.*)\]$/, '$1');
  const label = `${raw.includes(':') ? `[${raw}]` : raw}:${port ?? '?'}`;
  if (isLocalName(raw)) return;
  const ip = unmap(raw);
  if (net.isIP(ip) === 0) throw new NetGuardError(label, 'a host name; only localhost is resolved under the guard');
  if (isLoopback(ip)) return;
  if (ownedByThisRun(ip)) return;
  throw new NetGuardError(label);
}

function record(err) {
  const file = process.env[ENV_LOG];
  if (!file) return;
  try {
    fs.appendFileSync(file, `${JSON.stringify({ pid: process.pid, argv: process.argv.slice(1, 3), destination: err.destination, stack: err.stack })}\n`);
  } catch {
    // The log is a second channel; the thrown error is the first.
  }
}

function guarded(check) {
  try {
    check();
  } catch (err) {
    if (err instanceof NetGuardError) record(err);
    throw err;
  }
}

/** The destination of a net.Socket#connect call, in any of the forms Node accepts. */
function socketDestination(args) {
  let first = args[0];
  // net.connect() normalises its arguments into an array before calling socket.connect(normalized).
  if (Array.isArray(first)) first = first[0];
  if (first !== null && typeof first === 'object') {
    if (first.path !== undefined) return null; // unix socket / named pipe
    return { host: first.host ?? 'localhost', port: first.port, options: first };
  }
  if (typeof first === 'string' && !/^\d+$/.test(first)) return null; // connect(path)
  return { host: typeof args[1] === 'string' ? args[1] : 'localhost', port: first };
}

/**
 * A host name with the caller's own `lookup` (the proxy resolves, checks and pins upstream addresses itself):
 * the addresses that lookup returns are checked before net connects to them. Without one, a name is refused
 * before any DNS query leaves.
 */
function withCheckedLookup(options, port) {
  const lookup = options.lookup;
  options.lookup = function guardedLookup(hostname, opts, callback) {
    const cb = typeof opts === 'function' ? opts : callback;
    const lookupOpts = typeof opts === 'function' ? {} : opts;
    lookup(hostname, lookupOpts, (err, address, family) => {
      if (err) return cb(err, address, family);
      const list = Array.isArray(address) ? address.map((a) => a.address) : [address];
      try {
        for (const a of list) guarded(() => checkDestination(a, port));
      } catch (guardErr) {
        return cb(guardErr);
      }
      return cb(null, address, family);
    });
  };
}

function isExempt() {
  const script = process.argv[1] ?? '';
  return /(?:^|[/\\])(?:npm|npx)(?:-cli\.js)?$/.test(script) || /[/\\]npm[/\\]bin[/\\]/.test(script);
}

export function installNetGuard() {
  if (globalThis[INSTALLED] || isExempt()) return;
  globalThis[INSTALLED] = true;
  if (!process.env[ENV_SINCE]) process.env[ENV_SINCE] = String(Date.now());

  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function guardedConnect(...args) {
    const dest = socketDestination(args);
    if (dest) {
      const name = net.isIP(unmap(String(dest.host).replace(/^\[(.*)\]$/, '$1'))) === 0 && !isLocalName(dest.host);
      if (name && typeof dest.options?.lookup === 'function') withCheckedLookup(dest.options, dest.port);
      else guarded(() => checkDestination(dest.host, dest.port));
    }
    return connect.apply(this, args);
  };

  const udpConnect = dgram.Socket.prototype.connect;
  dgram.Socket.prototype.connect = function guardedUdpConnect(port, address, ...rest) {
    guarded(() => checkDestination(typeof address === 'string' ? address : 'localhost', port));
    return udpConnect.call(this, port, address, ...rest);
  };
  const send = dgram.Socket.prototype.send;
  dgram.Socket.prototype.send = function guardedSend(msg, ...rest) {
    // A connected socket was checked at connect() and takes no destination here.
    let connected = false;
    try {
      this.remoteAddress();
      connected = true;
    } catch {
      connected = false;
    }
    if (connected) return send.call(this, msg, ...rest);
    // send(msg, [offset, length,] port, [address], [cb])
    const numbers = rest.filter((a) => typeof a === 'number');
    const address = rest.find((a) => typeof a === 'string');
    const port = numbers.length >= 3 ? numbers[2] : numbers[0];
    if (port !== undefined) guarded(() => checkDestination(address ?? 'localhost', port));
    return send.call(this, msg, ...rest);
  };
}

installNetGuard();
