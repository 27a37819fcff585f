/* The Node.js versions mcp-tunnel runs on, in one place (package.json "engines" says the same; a test keeps
 * them equal). Written in ES5 on purpose: it must load on any Node.js a user may have, so that an old one
 * gets one clear line instead of a SyntaxError or a stack from deep inside a dependency.
 *
 * Why 22.19.0: the bundled undici (fetch, used by the Anthropic SDK, probe and demo) declares >=22.19.0 and
 * calls zlib.createZstdDecompress, which Node 22.12 lacks (demo and probe crashed there). 23.x is an odd,
 * end-of-life line and is refused; every 24.x and later is fine. The bundled @inquirer prompts declare a
 * higher floor (^22.22.2 || ^24.15.0) as policy only: test/integration/node-support.test.ts runs the wizard
 * on a real terminal on 22.19.0 and 24.0.0.
 */
'use strict';

var RANGE = '^22.19.0 || >=24.0.0';

function parse(version) {
  var m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(String(version));
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

function isSupported(version) {
  var v = parse(version);
  if (!v) return false;
  if (v[0] === 22) return v[1] > 19 || (v[1] === 19 && v[2] >= 0);
  return v[0] >= 24;
}

/** The one line an unsupported Node gets: what is needed, what was found, how to get it. */
function refusal(version, execPath) {
  return 'mcp-tunnel needs Node.js ' + RANGE + ', found ' + version + ' (' + execPath + '): ' +
    'install Node.js 24 LTS from https://nodejs.org/en/download (or `nvm install 24`) and run it again\n';
}

module.exports = { RANGE: RANGE, isSupported: isSupported, refusal: refusal, EXIT_ENVIRONMENT: 3 };
