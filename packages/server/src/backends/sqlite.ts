import BetterSqlite3 from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
import { type Database, KyselyStore } from "./kysely-store.js";

export type SqliteDurability = "normal" | "full";

export interface OpenSqlite {
  db: BetterSqlite3.Database;
  kysely: Kysely<Database>;
}

/**
 * Opens (creating if needed) a SQLite database in WAL mode. `normal` durability survives a process
 * crash (SIGKILL) but may lose the last commits on power loss; `full` fsyncs every commit.
 */
export function openSqlite(path: string, durability: SqliteDurability): OpenSqlite {
  const db = new BetterSqlite3(path);
  try {
    // Durability rests on these two settings, so start-up checks that SQLite really applied them.
    const journal = db.pragma("journal_mode = WAL", { simple: true });
    if (journal !== "wal") throw new Error(`SQLite refused WAL mode (journal_mode is ${String(journal)})`);
    db.pragma(`synchronous = ${durability === "full" ? "FULL" : "NORMAL"}`);
    const synchronous = db.pragma("synchronous", { simple: true });
    if (synchronous !== (durability === "full" ? 2 : 1)) {
      throw new Error(`SQLite did not apply synchronous=${durability} (it is ${String(synchronous)})`);
    }
    db.pragma("busy_timeout = 5000");
    db.pragma("foreign_keys = ON");
    db.pragma("temp_store = MEMORY");
    db.pragma("cache_size = -32000");
    // Fewer, larger checkpoints: each one fsyncs, and small frequent ones dominate write cost.
    db.pragma("wal_autocheckpoint = 4000");
    // Keeps the WAL file from growing without bound after a burst of writes.
    db.pragma("journal_size_limit = 67108864");
  } catch (error) {
    db.close();
    throw error;
  }
  const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: db }) });
  return { db, kysely };
}

/** A migrated SQLite store; closing it closes the database. */
export async function createSqliteStore(path: string, durability: SqliteDurability): Promise<KyselyStore> {
  const { db, kysely } = openSqlite(path, durability);
  const store = new KyselyStore(kysely, { dialect: "sqlite", sqlite: db });
  try {
    await store.migrate();
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}
