// The detection lives with the other Docker I/O (src/docker), where ops can use it too.
export { detectComposeCommand, startCommandLine, type ComposeCommand } from '../docker/compose-command.js';
