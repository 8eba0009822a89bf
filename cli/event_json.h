/*
 * event_json.h - score events (msgpack RESULT bodies) as JSON for printing.
 * Pure; part of scoreline_cli_core.
 */
#ifndef SCORELINE_CLI_EVENT_JSON_H
#define SCORELINE_CLI_EVENT_JSON_H

#include <jansson.h>
#include <stddef.h>

/* A JSON object for a msgpack map body, keys in the body's order (values
 * converted with jsonmp_to_json). When stream_id is not NULL it becomes the
 * first key, "stream_id". NULL when body is not exactly one msgpack map (or
 * on allocation failure). */
json_t *event_json_from_body(const void *body, size_t len, const char *stream_id);

/* The string value of key in a JSON event, or NULL. */
const char *event_json_string(const json_t *event, const char *key);

#endif
