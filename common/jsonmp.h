/*
 * jsonmp.h - JSON <-> msgpack conversion for attempts and for printing events.
 *
 * JSON to msgpack (attempt responses, job records): objects become maps with
 * keys sorted bytewise (so the bytes do not depend on the file's key order),
 * integers become msgpack integers, other numbers float64, strings str.
 *
 * msgpack to JSON (event and rubric display): str becomes a string when it is
 * valid UTF-8; bin (or invalid UTF-8) becomes {"$base64": "..."}; map keys that
 * are not strings are rendered as their JSON text.
 */
#ifndef SCORELINE_JSONMP_H
#define SCORELINE_JSONMP_H

#include <jansson.h>
#include <msgpack.h>

/* Pack a JSON value. Returns 0, or -1 on allocation failure or nesting
 * deeper than 64 levels. */
int jsonmp_pack(msgpack_packer *pk, const json_t *v);
/* A new JSON value for a msgpack object, or NULL on allocation failure. */
json_t *jsonmp_to_json(const msgpack_object *o);

#endif
