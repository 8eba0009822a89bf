/*
 * log.h - one structured line per event on stderr (logfmt).
 *
 *     ts=2026-11-25T09:50:00.123456Z level=info comp=broker event=worker.ready worker=h:12:ab credit=8
 *
 * Used by the daemons and the CLI's progress output; libraries never log.
 * The level and component are process-wide settings made once in main().
 */
#ifndef SCORELINE_LOG_H
#define SCORELINE_LOG_H

typedef enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF } log_level_t;

/* Set the component name (e.g. "broker") and the lowest level printed. */
void log_init(const char *component, log_level_t min_level);
/* "debug" | "info" | "warn" | "error" | "off" -> level; -1 when unknown. */
int log_level_parse(const char *name);
/* Print one line: event is a dotted name, fmt formats the rest as key=value pairs. */
void log_emit(log_level_t level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int log_enabled(log_level_t level);

#define log_debug(ev, ...) log_emit(LOG_DEBUG, ev, __VA_ARGS__)
#define log_info(ev, ...) log_emit(LOG_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...) log_emit(LOG_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_emit(LOG_ERROR, ev, __VA_ARGS__)

#endif
