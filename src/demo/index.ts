export { startSampleMcpServer, type SampleMcpServer, type SampleMcpServerOptions } from './sample-server.js';
export { runDemo, DEMO_DOMAIN, DEMO_ROUTE, type DemoStep, type DemoResult, type DemoHandle, type RunDemoOptions } from './run-demo.js';
export { runDockerDemo, demoComposeFile, type DockerDemoOptions } from './docker-demo.js';
