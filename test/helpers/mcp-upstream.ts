// The sample MCP upstream (SDK server, `hello` and `echo` tools) the demo uses, for tests.
export { startSampleMcpServer, type SampleMcpServer, type SampleMcpServerOptions } from '../../src/demo/sample-server.js';
