import http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { VERSION as version } from '../version.js';


export interface SampleMcpServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (an ephemeral port). */
  port?: number;
  /** The MCP endpoint path. Default /mcp. */
  path?: string;
  /** Server name in the initialize answer. Default "mcp-tunnel-sample". */
  name?: string;
}

export interface SampleMcpServer {
  host: string;
  port: number;
  /** http://host:port: what a proxy route points at (scheme://host:port, no path). */
  origin: string;
  /** http://host:port/mcp */
  url: string;
  /** MCP sessions currently open. */
  readonly sessions: number;
  /** Requests served so far (any method, any path). */
  readonly requests: number;
  close(): Promise<void>;
}

/**
 * A small, real MCP server (SDK McpServer + streamable HTTP, stateful sessions) with two tools:
 * `hello` greets by name, `echo` returns its text. Used by `mcp-tunnel demo`, the tests and the
 * Docker demo as the upstream behind the proxy.
 */
export async function startSampleMcpServer(opts: SampleMcpServerOptions = {}): Promise<SampleMcpServer> {
  const mcpPath = opts.path ?? '/mcp';
  const serverName = opts.name ?? 'mcp-tunnel-sample';
  const transports = new Map<string, StreamableHTTPServerTransport>();
  let requests = 0;

  const newSession = async (): Promise<StreamableHTTPServerTransport> => {
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        transports.set(id, transport);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) transports.delete(transport.sessionId);
    };
    await buildServer(serverName).connect(transport);
    return transport;
  };

  const server = http.createServer((req, res) => {
    requests += 1;
    void handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: `internal error: ${(err as Error).message}` }, id: null }));
      } else res.destroy();
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sample.invalid');
    if (url.pathname !== mcpPath) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: the MCP endpoint is ${mcpPath}\n`);
      return;
    }
    const sessionId = req.headers['mcp-session-id'];
    const id = Array.isArray(sessionId) ? sessionId[0] : sessionId;
    if (req.method === 'POST') {
      const body = await readJson(req);
      if (body === undefined) {
        jsonRpcError(res, 400, -32700, 'Parse error: the body is not JSON');
        return;
      }
      if (id) {
        const t = transports.get(id);
        if (!t) return jsonRpcError(res, 404, -32001, 'Session not found');
        await t.handleRequest(req, res, body);
        return;
      }
      if (!isInitializeRequest(body)) return jsonRpcError(res, 400, -32000, 'Bad Request: no session ID, and not an initialize request');
      const t = await newSession();
      await t.handleRequest(req, res, body);
      return;
    }
    if (req.method === 'GET' || req.method === 'DELETE') {
      const t = id ? transports.get(id) : undefined;
      if (!t) return jsonRpcError(res, id ? 404 : 400, -32000, id ? 'Session not found' : 'Bad Request: no session ID');
      await t.handleRequest(req, res);
      return;
    }
    res.writeHead(405, { allow: 'GET, POST, DELETE' }).end();
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const origin = `http://${host}:${addr.port}`;
  let closing: Promise<void> | undefined;
  return {
    host: addr.address,
    port: addr.port,
    origin,
    url: `${origin}${mcpPath}`,
    get sessions() {
      return transports.size;
    },
    get requests() {
      return requests;
    },
    close() {
      closing ??= (async () => {
        const all = [...transports.values()];
        transports.clear();
        await Promise.allSettled(all.map((t) => t.close()));
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      })();
      return closing;
    },
  };
}

function buildServer(name: string): McpServer {
  const server = new McpServer({ name, version }, { capabilities: { tools: {} } });
  server.registerTool(
    'hello',
    {
      title: 'Hello',
      description: 'Greets someone by name (the world when no name is given).',
      // Optional, so `mcp-tunnel probe hello --call hello` works without --args.
      inputSchema: { name: z.string().min(1).max(200).optional().describe('Who to greet') },
    },
    async ({ name: who }) => ({ content: [{ type: 'text', text: `Hello, ${who ?? 'world'}! (from an MCP server behind the tunnel)` }] }),
  );
  server.registerTool(
    'echo',
    {
      title: 'Echo',
      description: 'Returns the text it is given.',
      inputSchema: { text: z.string().max(1_000_000).describe('Text to return') },
    },
    async ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  return server;
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 4 * 1024 * 1024) return undefined;
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

function jsonRpcError(res: http.ServerResponse, status: number, code: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}
