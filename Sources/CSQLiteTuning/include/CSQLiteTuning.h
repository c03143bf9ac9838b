#ifndef CSQLITETUNING_H
#define CSQLITETUNING_H

/// Sets SQLite's process-wide options before its first use (Swift cannot call the variadic
/// `sqlite3_config`). Returns 0 (SQLITE_OK) when they were applied, or SQLite's error code when
/// SQLite was already initialized in this process, in which case nothing changed.
///
/// - Multi-thread mode (`SQLITE_CONFIG_MULTITHREAD`): no mutex around each call on a connection.
///   GRDB already serializes every use of a connection on its own queue.
/// - Memory statistics off (`SQLITE_CONFIG_MEMSTATUS`): no global mutex around each allocation.
/// - URI file names on (`SQLITE_CONFIG_URI`): readers open a database on read-only media as
///   `file:…?immutable=1`.
int qmplog_sqlite_configure(void);

#endif
