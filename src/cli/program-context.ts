import type { Command } from 'commander';

/** What a command module may need from the command tree itself, passed in so no command imports program.ts back. */
export interface ProgramContext {
  buildFullProgram: () => Promise<Command>;
}
