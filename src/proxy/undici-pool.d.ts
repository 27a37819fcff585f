// The proxy loads undici's connection pool alone (its package index also loads fetch, WebSocket, caches,
// etc.: twice the memory for nothing the proxy uses). undici has no "exports" map, so the file is reachable;
// its type is the public Pool's.
declare module 'undici/lib/dispatcher/pool.js' {
  import { Pool } from 'undici';
  export default Pool;
}
