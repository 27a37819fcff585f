/**
 * Progress of the orchestration, as data: src/docker never prints, the CLI renders these (a spinner and
 * progress bars on a TTY, plain lines otherwise). Every long step reports through an `onEvent` callback.
 */
export type StackEvent =
  | { type: 'warning'; message: string; hint?: string }
  | { type: 'project'; project: string; dir: string; files: string[] }
  | { type: 'image-present'; service: string; image: string }
  | { type: 'pull-start'; service: string; image: string }
  /** One layer's progress line from the pull stream (current/total in bytes when Docker reports them). */
  | { type: 'pull-progress'; service: string; image: string; layer: string; status: string; current?: number; total?: number }
  | { type: 'pull-done'; service: string; image: string; status: string }
  | { type: 'build-start'; service: string; image: string; context: string }
  /** One line of build output (the Dockerfile step, or what a step printed). */
  | { type: 'build-output'; service: string; image: string; line: string }
  | { type: 'build-done'; service: string; image: string; imageId: string }
  | { type: 'network'; name: string; action: 'created' | 'exists' | 'removed' }
  | {
      type: 'container';
      service: string;
      name: string;
      action: 'created' | 'recreated' | 'started' | 'unchanged' | 'stopping' | 'stopped' | 'removed';
      /** Why it was (re)created. */
      reason?: string;
    }
  | { type: 'waiting'; service: string; what: string; elapsedMs: number }
  | { type: 'healthy'; service: string; detail: string }
  | { type: 'registered'; service: string; connections: number; full: number };

export type EventSink = (event: StackEvent) => void;

export const noEvents: EventSink = () => undefined;
