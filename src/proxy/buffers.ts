/**
 * How much each stream layer of one tunnel connection queues before it pushes back (the WebSocket's TCP
 * socket, its byte stream, the inner TLS socket, the inner HTTP request and response, the upstream socket).
 * Node's default is 64 KiB a layer since Node 22. A layer still accepts the one chunk that fills it, and the
 * kernel hands over up to 64 KiB a read, so a peer that pushes a request body at an upstream that does not
 * read pins about two socket reads plus 16 KiB per connection (~170 KiB of live buffers, measured with a heap
 * snapshot in the in-TLS case of test/integration/proxy-memory.test.ts), whatever it sends.
 */
export const STREAM_HIGH_WATER_MARK = 16 * 1024;
