/*
 * keys.h - the Redis key layout. Every key lives under a configurable prefix
 * (default "scoreline:"); the suffixes below are fixed and documented in the
 * README ("Redis keys").
 *
 *   <prefix>rubric:hash:<sha256>   string  canonical msgpack of one rubric version
 *   <prefix>rubric:id:<id>         string  current hash of rubric <id>
 *   <prefix>rubric:versions:<id>   list    every hash pushed for <id>, newest first
 *   <prefix>journal:<broker>       stream  accepted jobs not yet scored (job_id, hash, job, ...)
 *   <prefix>done:<job_id>          string  the job's score event (msgpack), with a TTL: the dedupe key
 *   <prefix>events                 stream  score events, capped (MAXLEN ~)
 *   <prefix>dead                   stream  dead-lettered jobs with their reason and attempts
 */
#ifndef SCORELINE_KEYS_H
#define SCORELINE_KEYS_H

#define KEY_RUBRIC_HASH "rubric:hash:"
#define KEY_RUBRIC_ID "rubric:id:"
#define KEY_RUBRIC_VERSIONS "rubric:versions:"
#define KEY_JOURNAL "journal:"
#define KEY_DONE "done:"
#define KEY_EVENTS "events"
#define KEY_DEAD "dead"

#endif
