// Every REST API command by name.
import { accountCommands } from './accounts.ts';
import { inviteCommands } from './invites.ts';
import { rosterCommands } from './roster.ts';
import { sessionCommands } from './sessions.ts';
import { stanzaCommands } from './stanzas.ts';
import { statsCommands } from './stats.ts';
import type { ApiCommand } from './types.ts';

export const API_COMMANDS: ReadonlyMap<string, ApiCommand> = new Map(
  [...accountCommands, ...sessionCommands, ...stanzaCommands, ...rosterCommands, ...statsCommands, ...inviteCommands].map((c) => [c.name, c]),
);
