/*
 * explain.h - a readable rendering of a grading result map, for
 * `scoreline grade --explain`. Pure; part of scoreline_cli_core.
 *
 * The rendering follows the map's own structure (so new result fields show
 * up without a change here): scalars as `key: value`, lists of records that
 * carry an "id" as one heading line per record (id, points/max, status), rule
 * traces as one `[x]`/`[ ]` line per rule with its points and evidence.
 * Integer fields named *_milli are shown as decimals (1500 -> 1.5).
 */
#ifndef SCORELINE_CLI_EXPLAIN_H
#define SCORELINE_CLI_EXPLAIN_H

#include <msgpack.h>

/* The report as a new NUL-terminated string (free it), or NULL on
 * allocation failure. */
char *explain_render(const msgpack_object *result);

#endif
