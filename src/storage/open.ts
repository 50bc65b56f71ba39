// Opens the configured storage backend; a misconfigured backend stops start-up (there is no silent fallback).
import { join } from 'node:path';
import type { Config } from '../config/schema.ts';
import { SqliteStorage } from './sqlite/sqlite-storage.ts';
import type { Storage } from './types.ts';

export function openStorage(config: Config): Storage {
  switch (config.storage.backend) {
    case 'sqlite':
      return new SqliteStorage(config.storage.path ?? join(config.data_dir, 'parley.db'));
  }
}
