// Starts Parley with a configuration; SIGINT and SIGTERM stop it cleanly.
import type { Config } from './config/schema.ts';
import { ParleyServer } from './server.ts';
import { builtinModules } from './modules/index.ts';

export async function runServer(config: Config): Promise<ParleyServer> {
  const server = new ParleyServer(config, { modules: builtinModules });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    server.log.info({ signal }, 'stopping');
    server.stop().then(() => process.exit(0), (err) => {
      server.log.error({ err }, 'stop failed');
      process.exit(1);
    });
  };
  // A rejected promise nobody awaited is a bug to log, not a reason to drop every user's connection.
  process.on('unhandledRejection', (err) => server.log.error({ err }, 'unhandled promise rejection'));
  process.on('uncaughtException', (err) => {
    server.log.fatal({ err }, 'uncaught exception; stopping');
    stop('uncaughtException');
  });
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  try {
    await server.start();
  } catch (err) {
    await server.stop().catch(() => undefined);
    throw err;
  }
  return server;
}
