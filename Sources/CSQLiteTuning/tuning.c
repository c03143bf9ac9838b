#include "CSQLiteTuning.h"

#include <sqlite3.h>

int qmplog_sqlite_configure(void) {
    int code = sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
    if (code != SQLITE_OK) {
        return code;
    }
    code = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if (code != SQLITE_OK) {
        return code;
    }
    /* file: names, for readers that open a database on read-only media as immutable. */
    return sqlite3_config(SQLITE_CONFIG_URI, 1);
}
