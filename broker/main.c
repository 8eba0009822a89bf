/*
 * main.c - scoreline-broker: flags and environment, signals, then the loop
 * in broker.c.
 */
#include "broker/broker.h"

#include "common/cli.h"
#include "common/config.h"
#include "common/log.h"
#include "grading/grading.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "Usage: scoreline-broker [OPTIONS]\n"
    "\n"
    "The scoreline queue: accepts jobs from submitters, journals them in Redis,\n"
    "hands them to workers by credit, and emits exactly one score event per job.\n"
    "\n"
    "Options (each also read from the environment variable shown):\n"
    "  --redis URL          Redis URL, redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or\n"
    "                       unix:///PATH[?db=N]          [SCORELINE_REDIS_URL]\n"
    "                       (default " CONFIG_DEFAULT_REDIS ")\n"
    "  --prefix P           Redis key prefix (default " CONFIG_DEFAULT_PREFIX ")  [SCORELINE_PREFIX]\n"
    "  --name NAME          broker name; its journal is <prefix>journal:NAME\n"
    "                       (default main)                             [SCORELINE_BROKER_NAME]\n"
    "  --submit EP          bind for submitters (default " CONFIG_DEFAULT_SUBMIT ") [SCORELINE_SUBMIT]\n"
    "  --work EP            bind for workers (default " CONFIG_DEFAULT_WORK ")      [SCORELINE_WORK]\n"
    "  --events EP          bind the PUB of score events (default " CONFIG_DEFAULT_EVENTS ")\n"
    "                                                                   [SCORELINE_EVENTS]\n"
    "                       An endpoint with port * (tcp://127.0.0.1:*) binds a free port;\n"
    "                       the ready log line shows the ports chosen.\n"
    "  --metrics HOST:PORT  serve Prometheus /metrics and /healthz (default off)\n"
    "                                                                   [SCORELINE_METRICS]\n"
    "  --max-queue N        most jobs held, queued + running; more get REJECTED\n"
    "                       queue_full (default 1000000)               [SCORELINE_MAX_QUEUE]\n"
    "  --max-message BYTES  largest message body accepted (default 4194304)\n"
    "                                                                   [SCORELINE_MAX_MESSAGE]\n"
    "  --heartbeat MS       heartbeat interval to workers (default 1000) [SCORELINE_HEARTBEAT_MS]\n"
    "  --liveness N         missed heartbeats before a worker is dead (default 3)\n"
    "                                                                   [SCORELINE_LIVENESS]\n"
    "  --ttr MS             default time-to-run of a job (default 30000) [SCORELINE_TTR_MS]\n"
    "  --max-attempts N     deliveries before a job goes to the dead-letter stream\n"
    "                       <prefix>dead (default 3)                   [SCORELINE_MAX_ATTEMPTS]\n"
    "  --events-maxlen N    approximate cap of the <prefix>events stream (default 100000)\n"
    "                                                                   [SCORELINE_EVENTS_MAXLEN]\n"
    "  --dedupe-ttl SECONDS how long a finished job id is remembered (default 86400)\n"
    "                                                                   [SCORELINE_DEDUPE_TTL]\n"
    "  --grace MS           on SIGTERM, how long to wait for in-flight results\n"
    "                       (default 5000)                             [SCORELINE_GRACE_MS]\n"
    "  --redis-timeout MS   Redis connect/command timeout (default 2000)\n"
    "                                                                   [SCORELINE_REDIS_TIMEOUT_MS]\n"
    "  --no-journal         no journal and no dedupe: faster, but a broker crash or\n"
    "                       restart loses queued and running jobs, and a job\n"
    "                       submitted again after it was scored is graded again\n"
    "                       (score events still reach the submitter, PUB and the\n"
    "                       <prefix>events stream)       [SCORELINE_NO_JOURNAL=1]\n"
    "  --log-level LEVEL    debug, info, warn, error (default info)     [SCORELINE_LOG_LEVEL]\n"
    "  -h, --help           show this help and exit\n"
    "  -V, --version        show the version and exit\n"
    "\n"
    "Exit status: 0 after a clean shutdown (SIGTERM/SIGINT), 2 on bad flags or\n"
    "configuration, 3 when Redis cannot be reached at start.\n";

int main(int argc, char **argv)
{
    cli_init("scoreline-broker");
    enum {
        OPT_REDIS = 256, OPT_PREFIX, OPT_NAME, OPT_SUBMIT, OPT_WORK, OPT_EVENTS, OPT_METRICS,
        OPT_MAX_QUEUE, OPT_MAX_MESSAGE, OPT_HEARTBEAT, OPT_LIVENESS, OPT_TTR, OPT_MAX_ATTEMPTS, OPT_EVENTS_MAXLEN,
        OPT_DEDUPE_TTL, OPT_GRACE, OPT_REDIS_TIMEOUT, OPT_LOG_LEVEL, OPT_NO_JOURNAL
    };
    static const struct option opts[] = {
        {"redis", required_argument, 0, OPT_REDIS},
        {"prefix", required_argument, 0, OPT_PREFIX},
        {"name", required_argument, 0, OPT_NAME},
        {"submit", required_argument, 0, OPT_SUBMIT},
        {"work", required_argument, 0, OPT_WORK},
        {"events", required_argument, 0, OPT_EVENTS},
        {"metrics", required_argument, 0, OPT_METRICS},
        {"max-queue", required_argument, 0, OPT_MAX_QUEUE},
        {"max-message", required_argument, 0, OPT_MAX_MESSAGE},
        {"heartbeat", required_argument, 0, OPT_HEARTBEAT},
        {"liveness", required_argument, 0, OPT_LIVENESS},
        {"ttr", required_argument, 0, OPT_TTR},
        {"max-attempts", required_argument, 0, OPT_MAX_ATTEMPTS},
        {"events-maxlen", required_argument, 0, OPT_EVENTS_MAXLEN},
        {"dedupe-ttl", required_argument, 0, OPT_DEDUPE_TTL},
        {"grace", required_argument, 0, OPT_GRACE},
        {"redis-timeout", required_argument, 0, OPT_REDIS_TIMEOUT},
        {"log-level", required_argument, 0, OPT_LOG_LEVEL},
        {"no-journal", no_argument, 0, OPT_NO_JOURNAL},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};

    const char *redis = config_env("SCORELINE_REDIS_URL", CONFIG_DEFAULT_REDIS);
    const char *prefix = config_env("SCORELINE_PREFIX", CONFIG_DEFAULT_PREFIX);
    const char *name = config_env("SCORELINE_BROKER_NAME", "main");
    const char *submit = config_env("SCORELINE_SUBMIT", CONFIG_DEFAULT_SUBMIT);
    const char *work = config_env("SCORELINE_WORK", CONFIG_DEFAULT_WORK);
    const char *events = config_env("SCORELINE_EVENTS", CONFIG_DEFAULT_EVENTS);
    const char *metrics = config_env("SCORELINE_METRICS", NULL);
    const char *max_queue = config_env("SCORELINE_MAX_QUEUE", "1000000");
    const char *max_message = config_env("SCORELINE_MAX_MESSAGE", "4194304");
    const char *heartbeat = config_env("SCORELINE_HEARTBEAT_MS", "1000");
    const char *liveness = config_env("SCORELINE_LIVENESS", "3");
    const char *ttr = config_env("SCORELINE_TTR_MS", "30000");
    const char *max_attempts = config_env("SCORELINE_MAX_ATTEMPTS", "3");
    const char *events_maxlen = config_env("SCORELINE_EVENTS_MAXLEN", "100000");
    const char *dedupe_ttl = config_env("SCORELINE_DEDUPE_TTL", "86400");
    const char *grace = config_env("SCORELINE_GRACE_MS", "5000");
    const char *redis_timeout = config_env("SCORELINE_REDIS_TIMEOUT_MS", "2000");
    const char *log_level = config_env("SCORELINE_LOG_LEVEL", "info");
    const char *no_journal = config_env("SCORELINE_NO_JOURNAL", "0");

    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hV", opts, NULL)) != -1) {
        switch (c) {
        case OPT_REDIS: redis = optarg; break;
        case OPT_PREFIX: prefix = optarg; break;
        case OPT_NAME: name = optarg; break;
        case OPT_SUBMIT: submit = optarg; break;
        case OPT_WORK: work = optarg; break;
        case OPT_EVENTS: events = optarg; break;
        case OPT_METRICS: metrics = optarg; break;
        case OPT_MAX_QUEUE: max_queue = optarg; break;
        case OPT_MAX_MESSAGE: max_message = optarg; break;
        case OPT_HEARTBEAT: heartbeat = optarg; break;
        case OPT_LIVENESS: liveness = optarg; break;
        case OPT_TTR: ttr = optarg; break;
        case OPT_MAX_ATTEMPTS: max_attempts = optarg; break;
        case OPT_EVENTS_MAXLEN: events_maxlen = optarg; break;
        case OPT_DEDUPE_TTL: dedupe_ttl = optarg; break;
        case OPT_GRACE: grace = optarg; break;
        case OPT_REDIS_TIMEOUT: redis_timeout = optarg; break;
        case OPT_LOG_LEVEL: log_level = optarg; break;
        case OPT_NO_JOURNAL: no_journal = "1"; break;
        case 'h': fputs(USAGE, stdout); return 0;
        case 'V': printf("scoreline-broker 0.1.0 (%s)\n", GRADING_ENGINE); return 0;
        default: return cli_bad_option(c, argv);
        }
    }
    if (cli_no_operands(argc, argv))
        return 2;

    broker_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[512];
    int level = log_level_parse(log_level);
    if (level < 0)
        return cli_fail("--log-level: expected debug, info, warn or error");
    log_init("broker", (log_level_t)level);
    if (redis_url_parse(redis, &cfg.redis, err, sizeof err) != 0)
        return cli_fail(err);
    snprintf(cfg.redis_text, sizeof cfg.redis_text, "%s", "");
    redis_url_describe(&cfg.redis, cfg.redis_text, sizeof cfg.redis_text);
    if (!*prefix || strlen(prefix) >= sizeof cfg.prefix)
        return cli_fail("--prefix: must be 1..127 bytes");
    if (!*name || strlen(name) >= sizeof cfg.name || strpbrk(name, " \t\r\n"))
        return cli_fail("--name: must be 1..63 bytes without spaces");
    if (strlen(submit) >= sizeof cfg.submit_ep || strlen(work) >= sizeof cfg.work_ep ||
        strlen(events) >= sizeof cfg.events_ep)
        return cli_fail("an endpoint is too long");
    snprintf(cfg.prefix, sizeof cfg.prefix, "%s", prefix);
    snprintf(cfg.name, sizeof cfg.name, "%s", name);
    snprintf(cfg.submit_ep, sizeof cfg.submit_ep, "%s", submit);
    snprintf(cfg.work_ep, sizeof cfg.work_ep, "%s", work);
    snprintf(cfg.events_ep, sizeof cfg.events_ep, "%s", events);
    if (metrics && config_parse_hostport(metrics, cfg.metrics_host, sizeof cfg.metrics_host,
                                         &cfg.metrics_port, err, sizeof err) != 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "--metrics: %s", err);
        return cli_fail(msg);
    }
    if (cli_number("--max-queue", max_queue, 1, 100000000, &cfg.max_queue) ||
        cli_number("--max-message", max_message, 1024, 256u << 20, &cfg.max_message) ||
        cli_number("--heartbeat", heartbeat, 10, 60000, &cfg.heartbeat_ms) ||
        cli_number("--liveness", liveness, 1, 100, &cfg.liveness) ||
        cli_number("--ttr", ttr, 1, 3600000, &cfg.ttr_ms) ||
        cli_number("--max-attempts", max_attempts, 1, 1000, &cfg.max_attempts) ||
        cli_number("--events-maxlen", events_maxlen, 1, UINT32_MAX, &cfg.events_maxlen) ||
        cli_number("--dedupe-ttl", dedupe_ttl, 1, 31536000, &cfg.dedupe_ttl_s) ||
        cli_number("--grace", grace, 0, 600000, &cfg.grace_ms) ||
        cli_number("--redis-timeout", redis_timeout, 10, 60000, &cfg.redis_timeout_ms))
        return 2;

    if (strcmp(no_journal, "1") == 0 || strcmp(no_journal, "true") == 0)
        cfg.no_journal = 1;
    else if (strcmp(no_journal, "0") != 0 && strcmp(no_journal, "false") != 0 && *no_journal)
        return cli_fail("SCORELINE_NO_JOURNAL: expected 1, true, 0 or false");
    if (cfg.no_journal)
        log_warn("broker.no_journal", "reason=\"--no-journal: jobs are not journaled and results "
                 "not deduped; a broker restart loses queued and running jobs\"");

    cli_stop_on_signals(broker_stop);

    int code;
    broker_t *b = broker_new(&cfg, err, sizeof err, &code);
    if (!b) {
        log_error("broker.start_failed", "error=\"%s\"", err);
        fprintf(stderr, "scoreline-broker: %s\n", err);
        return code;
    }
    code = broker_run(b);
    broker_destroy(&b);
    return code;
}
