#!/usr/bin/env node
/* The `mcp-tunnel` command. Checks the Node.js version BEFORE anything else is loaded, then hands over to
 * the bundled CLI. ES5 and CommonJS on purpose (see node-support.cjs): the real CLI is an ES module that an
 * old Node cannot even parse, so this file must not contain `import` syntax; the dynamic import is built
 * with Function() for the same reason. */
'use strict';

var support = require('./node-support.cjs');

if (!support.isSupported(process.version)) {
  process.stderr.write(support.refusal(process.version, process.execPath));
  process.exitCode = support.EXIT_ENVIRONMENT;
} else {
  var path = require('path');
  var url = require('url');
  var entry = url.pathToFileURL(path.join(__dirname, '..', 'dist', 'app', 'main.mjs')).href;
  new Function('u', 'return import(u)')(entry).catch(function (err) {
    process.stderr.write('mcp-tunnel: cannot load ' + entry + ': ' + (err && err.message) + '\n' +
      'hint: reinstall mcp-tunnel; in a checkout run `npm run build` first\n');
    process.exitCode = 1;
  });
}
