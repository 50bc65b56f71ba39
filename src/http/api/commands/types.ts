// A REST API command: the ejabberd name it answers to, and what it does with its arguments.
import type { CommandContext } from '../context.ts';

export type ApiCommand = {
  readonly name: string;
  /** Returns the JSON answer (ejabberd's shapes: 0 for a status code, a list, or an object). */
  run(ctx: CommandContext): unknown;
};

/** ejabberd's "rescode" answer for a command that succeeded. */
export const OK = 0;
