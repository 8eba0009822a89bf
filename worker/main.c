/*
 * main.c - scoreline-worker: flags and environment, signals, then the loop
 * in worker.c.
 */
#include "worker/worker.h"

#include "common/cli.h"
#include "common/config.h"
#include "common/log.h"
#include "grading/grading.h"

#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char USAGE[] =
    "Usage: scoreline-worker [OPTIONS]\n"
    "\n"
    "A stateless scoreline worker: connects to one or more brokers, grades the\n"
    "jobs it is given against rubrics cached from Redis, and returns each score\n"
    "event to the broker that sent the job.\n"
    "\n"
    "Options (each also read from the environment variable shown):\n"
    "  --redis URL          Redis URL (default " CONFIG_DEFAULT_REDIS ")  [SCORELINE_REDIS_URL]\n"
    "  --prefix P           Redis key prefix (default " CONFIG_DEFAULT_PREFIX ")  [SCORELINE_PREFIX]\n"
    "  --broker EP          a broker's work endpoint; repeat for several brokers\n"
    "                       (default " CONFIG_DEFAULT_WORK ")\n"
    "                       [SCORELINE_BROKERS, comma-separated]\n"
    "  --credit N           most jobs held at once, 1..10000 (default 16) [SCORELINE_CREDIT]\n"
    "  --id ID              worker id in events and logs (default HOST:PID:RANDOM)\n"
    "                                                                   [SCORELINE_WORKER_ID]\n"
    "  --heartbeat MS       heartbeat interval (default 1000)           [SCORELINE_HEARTBEAT_MS]\n"
    "  --liveness N         missed heartbeats before a broker is presumed gone and\n"
    "                       the connection is remade (default 3)       [SCORELINE_LIVENESS]\n"
    "  --threads N          grading threads (default 1)                [SCORELINE_THREADS]\n"
    "  --batch N            most jobs taken in one JOBS message and results sent in\n"
    "                       one RESULTS message, 0..10000; 0 = one JOB and one RESULT\n"
    "                       message per job (default 64)                [SCORELINE_BATCH]\n"
    "  --cache-size N       rubrics kept in memory (default 64)        [SCORELINE_CACHE_SIZE]\n"
    "  --max-abandoned N    gradings abandoned past their time-to-run before the worker\n"
    "                       exits with status 4 for its supervisor to restart it\n"
    "                       (default 8)                                [SCORELINE_MAX_ABANDONED]\n"
    "  --grace MS           on SIGTERM, longest wait to finish and flush (default 8000)\n"
    "                                                                   [SCORELINE_GRACE_MS]\n"
    "  --redis-timeout MS   Redis connect/command timeout (default 2000)\n"
    "                                                                   [SCORELINE_REDIS_TIMEOUT_MS]\n"
    "  --log-level LEVEL    debug, info, warn, error (default info)     [SCORELINE_LOG_LEVEL]\n"
    "  --fault-delay-ms MS  testing only: sleep MS before grading jobs whose id contains\n"
    "  --fault-match TEXT   TEXT (fault injection for reliability tests; default off)\n"
    "  -h, --help           show this help and exit\n"
    "  -V, --version        show the version and exit\n"
    "\n"
    "Exit status: 0 after a clean drain (SIGTERM/SIGINT), 2 on bad flags, 3 when\n"
    "Redis cannot be reached at start, 4 after too many runaway gradings.\n";

int main(int argc, char **argv)
{
    cli_init("scoreline-worker");
    enum {
        OPT_REDIS = 256, OPT_PREFIX, OPT_BROKER, OPT_CREDIT, OPT_ID, OPT_HEARTBEAT, OPT_LIVENESS,
        OPT_CACHE, OPT_GRACE, OPT_REDIS_TIMEOUT, OPT_LOG_LEVEL, OPT_THREADS, OPT_MAX_ABANDONED,
        OPT_FAULT_DELAY, OPT_FAULT_MATCH, OPT_BATCH
    };
    static const struct option opts[] = {{"redis", required_argument, 0, OPT_REDIS},
                                         {"prefix", required_argument, 0, OPT_PREFIX},
                                         {"broker", required_argument, 0, OPT_BROKER},
                                         {"credit", required_argument, 0, OPT_CREDIT},
                                         {"id", required_argument, 0, OPT_ID},
                                         {"heartbeat", required_argument, 0, OPT_HEARTBEAT},
                                         {"liveness", required_argument, 0, OPT_LIVENESS},
                                         {"cache-size", required_argument, 0, OPT_CACHE},
                                         {"grace", required_argument, 0, OPT_GRACE},
                                         {"redis-timeout", required_argument, 0, OPT_REDIS_TIMEOUT},
                                         {"log-level", required_argument, 0, OPT_LOG_LEVEL},
                                         {"threads", required_argument, 0, OPT_THREADS},
                                         {"batch", required_argument, 0, OPT_BATCH},
                                         {"max-abandoned", required_argument, 0, OPT_MAX_ABANDONED},
                                         {"fault-delay-ms", required_argument, 0, OPT_FAULT_DELAY},
                                         {"fault-match", required_argument, 0, OPT_FAULT_MATCH},
                                         {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};
    const char *redis = config_env("SCORELINE_REDIS_URL", CONFIG_DEFAULT_REDIS);
    const char *prefix = config_env("SCORELINE_PREFIX", CONFIG_DEFAULT_PREFIX);
    const char *brokers_env = config_env("SCORELINE_BROKERS", CONFIG_DEFAULT_WORK);
    const char *credit = config_env("SCORELINE_CREDIT", "16");
    const char *id = config_env("SCORELINE_WORKER_ID", NULL);
    const char *heartbeat = config_env("SCORELINE_HEARTBEAT_MS", "1000");
    const char *liveness = config_env("SCORELINE_LIVENESS", "3");
    const char *cache = config_env("SCORELINE_CACHE_SIZE", "64");
    const char *grace = config_env("SCORELINE_GRACE_MS", "8000");
    const char *redis_timeout = config_env("SCORELINE_REDIS_TIMEOUT_MS", "2000");
    const char *log_level = config_env("SCORELINE_LOG_LEVEL", "info");
    const char *threads = config_env("SCORELINE_THREADS", "1");
    const char *batch = config_env("SCORELINE_BATCH", "64");
    const char *max_abandoned = config_env("SCORELINE_MAX_ABANDONED", "8");
    const char *fault_delay = "0";

    worker_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hV", opts, NULL)) != -1) {
        switch (c) {
        case OPT_REDIS: redis = optarg; break;
        case OPT_PREFIX: prefix = optarg; break;
        case OPT_BROKER:
            if (cfg.nbrokers == WORKER_MAX_BROKERS)
                return cli_fail("--broker: at most 16 brokers");
            cfg.brokers[cfg.nbrokers++] = optarg;
            break;
        case OPT_CREDIT: credit = optarg; break;
        case OPT_ID: id = optarg; break;
        case OPT_HEARTBEAT: heartbeat = optarg; break;
        case OPT_LIVENESS: liveness = optarg; break;
        case OPT_CACHE: cache = optarg; break;
        case OPT_GRACE: grace = optarg; break;
        case OPT_REDIS_TIMEOUT: redis_timeout = optarg; break;
        case OPT_LOG_LEVEL: log_level = optarg; break;
        case OPT_THREADS: threads = optarg; break;
        case OPT_BATCH: batch = optarg; break;
        case OPT_MAX_ABANDONED: max_abandoned = optarg; break;
        case OPT_FAULT_DELAY: fault_delay = optarg; break;
        case OPT_FAULT_MATCH: cfg.fault_match = optarg; break;
        case 'h': fputs(USAGE, stdout); return 0;
        case 'V': printf("scoreline-worker 0.1.0 (%s)\n", GRADING_ENGINE); return 0;
        default: return cli_bad_option(c, argv);
        }
    }
    if (cli_no_operands(argc, argv))
        return 2;
    /* Brokers from the environment when no --broker flag was given. */
    char *env_copy = NULL;
    if (cfg.nbrokers == 0) {
        env_copy = strdup(brokers_env);
        for (char *save = NULL, *tok = strtok_r(env_copy, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            if (cfg.nbrokers == WORKER_MAX_BROKERS) {
                free(env_copy);
                return cli_fail("SCORELINE_BROKERS: at most 16 brokers");
            }
            cfg.brokers[cfg.nbrokers++] = tok;
        }
        if (cfg.nbrokers == 0) {
            free(env_copy);
            return cli_fail("no broker endpoint given");
        }
    }
    char err[512];
    int rc = 2;
    int level = log_level_parse(log_level);
    if (level < 0) {
        rc = cli_fail("--log-level: expected debug, info, warn or error");
        goto out;
    }
    if (sodium_init() < 0) {
        rc = cli_fail("libsodium failed to initialise");
        goto out;
    }
    if (redis_url_parse(redis, &cfg.redis, err, sizeof err) != 0) {
        rc = cli_fail(err);
        goto out;
    }
    redis_url_describe(&cfg.redis, cfg.redis_text, sizeof cfg.redis_text);
    if (!*prefix || strlen(prefix) >= sizeof cfg.prefix) {
        rc = cli_fail("--prefix: must be 1..127 bytes");
        goto out;
    }
    snprintf(cfg.prefix, sizeof cfg.prefix, "%s", prefix);
    if (id) {
        if (!*id || strlen(id) > 128) {
            rc = cli_fail("--id: must be 1..128 bytes");
            goto out;
        }
        snprintf(cfg.id, sizeof cfg.id, "%s", id);
    } else {
        char host[64] = "host";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(cfg.id, sizeof cfg.id, "%s:%d:%08x", host, (int)getpid(), randombytes_random());
    }
    if (cli_number("--credit", credit, 1, 10000, &cfg.credit) ||
        cli_number("--heartbeat", heartbeat, 10, 60000, &cfg.heartbeat_ms) ||
        cli_number("--liveness", liveness, 1, 100, &cfg.liveness) ||
        cli_number("--cache-size", cache, 1, 100000, &cfg.cache_size) ||
        cli_number("--grace", grace, 0, 600000, &cfg.grace_ms) ||
        cli_number("--redis-timeout", redis_timeout, 10, 60000, &cfg.redis_timeout_ms) ||
        cli_number("--threads", threads, 1, 64, &cfg.threads) ||
        cli_number("--batch", batch, 0, 10000, &cfg.batch) ||
        cli_number("--max-abandoned", max_abandoned, 0, 1000, &cfg.max_abandoned) ||
        cli_number("--fault-delay-ms", fault_delay, 0, 3600000, &cfg.fault_delay_ms))
        goto out;
    log_init("worker", (log_level_t)level);

    cli_stop_on_signals(worker_stop);

    worker_t *w = worker_new(&cfg, err, sizeof err, &rc);
    if (!w) {
        log_error("worker.start_failed", "error=\"%s\"", err);
        fprintf(stderr, "scoreline-worker: %s\n", err);
        goto out;
    }
    rc = worker_run(w);
    if (worker_stranded(w)) {
        log_warn("worker.exit_stranded", "reason=\"a runaway grading is still running; exiting "
                 "without cleanup\"");
        fflush(NULL);
        _exit(rc);
    }
    worker_destroy(&w);
out:
    free(env_copy);
    return rc;
}
