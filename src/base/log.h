/* log.h: leveled messages, on stderr or to the embedder's forge_log_set callback. The
 * level comes from FORGE_LOG (error, warn, info, debug) or forge_log_set_level; the
 * default is info. The levels equal forge_log_level's. */
#ifndef FORGE_BASE_LOG_H
#define FORGE_BASE_LOG_H

#include "base/error.h"
#include "forge.h"

typedef enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 } log_level;

void log_msg(log_level level, const char *fmt, ...) FORGE_PRINTF(2, 3);
/* True when messages of this level are printed. */
int log_enabled(log_level level);
void log_set_level(log_level level);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
