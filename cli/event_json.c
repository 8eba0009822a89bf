/*
 * event_json.c - msgpack score events to JSON objects (see event_json.h).
 * The whole body is converted, so fields added to RESULT later show up in
 * `scoreline submit` and `scoreline events` output without a change here.
 */
#include "cli/event_json.h"

#include "common/jsonmp.h"

#include <msgpack.h>
#include <string.h>

json_t *event_json_from_body(const void *body, size_t len, const char *stream_id)
{
    msgpack_zone zone;
    if (!msgpack_zone_init(&zone, 4096))
        return NULL;
    msgpack_object o;
    size_t off = 0;
    json_t *out = NULL;
    if (msgpack_unpack(body, len, &off, &zone, &o) == MSGPACK_UNPACK_SUCCESS && off == len &&
        o.type == MSGPACK_OBJECT_MAP) {
        json_t *converted = jsonmp_to_json(&o);
        if (converted && stream_id) {
            /* jansson keeps insertion order: build a new object with stream_id first */
            out = json_object();
            if (out && json_object_set_new(out, "stream_id", json_string(stream_id)) == 0) {
                const char *k;
                json_t *v;
                json_object_foreach(converted, k, v)
                {
                    if (strcmp(k, "stream_id") != 0 && json_object_set(out, k, v) != 0) {
                        json_decref(out);
                        out = NULL;
                        break;
                    }
                }
            } else {
                json_decref(out);
                out = NULL;
            }
            json_decref(converted);
        } else {
            out = converted;
        }
    }
    msgpack_zone_destroy(&zone);
    return out;
}

const char *event_json_string(const json_t *event, const char *key)
{
    return json_string_value(json_object_get(event, key));
}
