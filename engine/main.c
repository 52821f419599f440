/* signerd: the enclave-signer engine daemon. */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "dispatch.h"
#include "gateway/gateway.h"
#include "gateway/gwconf.h"
#include "transport/tls.h"
#include "enclave.h"
#include "log.h"
#include "proxy.h"
#include "startup.h"
#include "route.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: signerd -c FILE [options]\n"
            "  -c, --config FILE       libconfig file (see conf/standalone.conf)\n"
            "      --listen [http=|frames=|health=]ADDR\n"
            "                          replaces the configured listeners (repeat\n"
            "                          to add more); ADDR is HOST:PORT,\n"
            "                          unix:/path or vsock:CID:PORT\n"
            "      --data-dir DIR      overrides data_dir\n"
            "      --plugin-dir DIR    overrides plugin_dir\n"
            "      --io-loops N        event loops, each on its own thread\n"
            "                          (0 = one per CPU)\n"
            "      --workers N         deprecated: the same as --io-loops\n"
            "      --log-level LEVEL   error, warn, info or debug\n"
            "      --check-config      validate the config and plugins, then exit\n"
            "  -V, --version           print the version\n"
            "  -h, --help              this text\n");
}

/* No core dumps, no ptrace by other users, private files; a file size
 * limit makes writes fail (logged, not ready) instead of killing us. */
static void harden_process(void)
{
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    umask(077);
    signal(SIGXFSZ, SIG_IGN);
}

/* A fatal error: one JSON log line like every other, on stderr. */
static void fatal(const char *msg)
{
    eng_log(SIGNER_LOG_ERROR, "%s", msg);
}

/* Threads that run enclave-role requests (each may wait on KMS). */
#define ENCLAVE_POOL_THREADS 4

struct daemon_ctx {
    eng_engine *engine;
    eng_server *server;
    const char *config_file;
    int cli_log_level; /* --log-level, which a reload must not undo; or -1 */
    eng_gateway *gw;   /* role gateway: forwards instead of handling */
    eng_pool *pool;    /* enclave role: runs requests off the loops */
};

/* Enclave role: hands the request to the pool (completed from there). */
static void submit_cb(void *ctx, const eng_request *req,
                      eng_completion *done)
{
    eng_pool_submit(((struct daemon_ctx *)ctx)->pool, req, done);
}

static int ready_cb(void *ctx)
{
    struct daemon_ctx *d = ctx;
    return d->gw != NULL ? eng_gateway_ready(d->gw)
                         : eng_engine_ready(d->engine);
}

/* Role gateway: every operation is forwarded to an enclave. */
static void gateway_submit_cb(void *ctx, const eng_request *req,
                              eng_completion *done)
{
    eng_gateway_submit(((struct daemon_ctx *)ctx)->gw, req, done);
}

static int handle_cb(void *ctx, const eng_request *req, char **resp,
                     size_t *resp_len)
{
    return eng_dispatch(((struct daemon_ctx *)ctx)->engine, req, resp,
                        resp_len);
}

/* HTTP routes: those the loaded plugins declare (engine/route.c). */
static int route_cb(void *ctx, const char *method, const char *path,
                    const char *body, size_t body_len, eng_route_match *out)
{
    return eng_route_resolve(&((struct daemon_ctx *)ctx)->engine->reg,
                             method, path, body, body_len, out);
}

/* Errors the transport answers itself, in the API's shape. */
static char *error_body_cb(void *ctx, int status, const char *msg,
                           const char *id_json, size_t *len)
{
    (void)ctx;
    return eng_error_body(status, msg, id_json, len);
}

static char *metrics_cb(void *ctx)
{
    struct daemon_ctx *d = ctx;
    char *m, *a, *out;
    size_t n;
    if (d->gw != NULL)
        return eng_gateway_metrics(d->gw);
    m = eng_metrics_text(d->engine);
    a = eng_enclave_metrics();
    if (m == NULL || a == NULL || a[0] == '\0' ||
        (out = malloc((n = strlen(m)) + strlen(a) + 1)) == NULL) {
        free(a);
        return m;
    }
    memcpy(out, m, n);
    strcpy(out + n, a);
    free(m);
    free(a);
    return out;
}

/* SIGHUP: re-read the file and apply what can change live. */
static void reload_cb(void *ctx)
{
    struct daemon_ctx *d = ctx;
    eng_config fresh;
    char err[512];
    eng_config *cur = d->engine->cfg;
    if (eng_config_load(&fresh, d->config_file, err, sizeof err) != 0) {
        eng_log(SIGNER_LOG_ERROR, "reload refused, keeping the running "
                                  "config: %s", err);
        eng_config_free(&fresh);
        return;
    }
    if (d->cli_log_level >= 0)
        fresh.log_level = d->cli_log_level; /* the command line wins */
    if (fresh.log_level != cur->log_level) {
        eng_log(SIGNER_LOG_WARN, "reload: log_level %s -> %s",
                eng_log_level_name(cur->log_level),
                eng_log_level_name(fresh.log_level));
        cur->log_level = fresh.log_level;
        eng_log_set_level(fresh.log_level);
    }
    if (memcmp(&fresh.limits, &cur->limits, sizeof fresh.limits) != 0) {
        const eng_limits *o = &cur->limits, *n = &fresh.limits;
#define CHANGED(field, fmt)                                                   \
    if (o->field != n->field)                                                 \
        eng_log(SIGNER_LOG_WARN, "reload: limits." #field " " fmt " -> " fmt, \
                o->field, n->field)
        CHANGED(max_body, "%zu");
        CHANGED(max_header, "%zu");
        CHANGED(max_connections, "%d");
        CHANGED(max_pipeline, "%d");
        CHANGED(max_inflight, "%d");
        CHANGED(read_timeout_ms, "%d");
        CHANGED(write_timeout_ms, "%d");
        CHANGED(idle_timeout_ms, "%d");
        CHANGED(shutdown_timeout_ms, "%d");
#undef CHANGED
        cur->limits = fresh.limits;
        eng_server_set_limits(d->server, &fresh.limits);
    }
    eng_log(SIGNER_LOG_INFO, "reload done (listeners, threads, plugins, sealer and "
                             "keystore need a restart)");
    eng_config_free(&fresh);
}

/* The command line. */
struct cli {
    const char *file, *data_dir, *plugin_dir, *level;
    const char *listens[32];
    int n_listen, check_only, workers, io_loops;
};

/* Parses argv into c.  -1 to go on, else the exit status. */
static int parse_cli(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"data-dir", required_argument, NULL, 'd'},
        {"plugin-dir", required_argument, NULL, 'p'},
        {"workers", required_argument, NULL, 'w'},
        {"io-loops", required_argument, NULL, 'o'},
        {"log-level", required_argument, NULL, 'L'},
        {"check-config", no_argument, NULL, 'C'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int opt;
    memset(c, 0, sizeof *c);
    c->workers = c->io_loops = -1;
    while ((opt = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': c->file = optarg; break;
        case 'l':
            if (c->n_listen == 32) {
                fatal("too many --listen options (at most 32)");
                return 2;
            }
            c->listens[c->n_listen++] = optarg;
            break;
        case 'd': c->data_dir = optarg; break;
        case 'p': c->plugin_dir = optarg; break;
        case 'w': c->workers = atoi(optarg); break;
        case 'o': c->io_loops = atoi(optarg); break;
        case 'L': c->level = optarg; break;
        case 'C': c->check_only = 1; break;
        case 'V': printf("signerd %s\n", PACKAGE_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (c->file == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    return -1;
}

/* Applies the command-line overrides to cfg.  0, or -1 with err. */
static int apply_cli(eng_config *cfg, const struct cli *c, char *err,
                     size_t err_len)
{
    int replaced = 0, i;
    for (i = 0; i < c->n_listen; i++)
        if (eng_config_add_listen(cfg, c->listens[i], &replaced, err,
                                  err_len) != 0)
            return -1;
    if ((c->data_dir && eng_config_set_data_dir(cfg, c->data_dir) != 0) ||
        (c->plugin_dir &&
         eng_config_set_plugin_dir(cfg, c->plugin_dir) != 0)) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    if (c->workers >= 0)
        cfg->workers = c->workers;
    if (c->io_loops >= 0)
        cfg->io_loops = c->io_loops > 256 ? 256 : c->io_loops;
    if (c->level != NULL &&
        (cfg->log_level = eng_log_level_parse(c->level)) < 0) {
        snprintf(err, err_len, "--log-level %s: not error, warn, info or "
                               "debug", c->level);
        return -1;
    }
    return 0;
}

/* The listeners and limits of cfg, with the TLS context https needs. */
static int server_config(eng_server_config *scfg, const eng_config *cfg,
                         char *err, size_t err_len)
{
    memset(scfg, 0, sizeof *scfg);
    if (eng_gw_tls_open(&scfg->tls_ctx, cfg, err, err_len) != 0)
        return -1;
    scfg->listen = cfg->listen;
    scfg->n_listen = cfg->n_listen;
    scfg->limits = cfg->limits;
    scfg->workers = cfg->workers;
    scfg->io_loops = cfg->io_loops;
    if (cfg->workers > 0 && cfg->io_loops == 0)
        eng_log(SIGNER_LOG_WARN, "workers = %d is deprecated (no worker "
                "pool any more): read as io_loops = %d", cfg->workers,
                cfg->workers);
    return 0;
}

/* The server's callbacks.  The gateway forwards every request, and the
 * enclave role runs them on a small pool (its KMS calls block); both hand
 * requests over through submit. */
static int role_callbacks(struct daemon_ctx *d, eng_server_callbacks *cb,
                          const eng_config *cfg, char *err, size_t err_len)
{
    memset(cb, 0, sizeof *cb);
    cb->ctx = d;
    cb->handle = handle_cb;
    cb->metrics = metrics_cb;
    cb->ready = ready_cb;
    cb->reload = reload_cb;
    cb->route = route_cb;
    cb->error_body = error_body_cb;
    if (strcmp(cfg->role, "gateway") == 0) {
        if ((d->gw = eng_gateway_open(d->engine, err, err_len)) == NULL)
            return -1;
        cb->submit = gateway_submit_cb;
    } else if (eng_enclave_role(cfg)) {
        d->pool = eng_pool_new(ENCLAVE_POOL_THREADS, handle_cb, d);
        if (d->pool == NULL) {
            snprintf(err, err_len, "cannot start the request pool");
            return -1;
        }
        cb->submit = submit_cb;
    }
    return 0;
}

/* Releases what serve opened besides the engine; NULLs are fine.  The
 * pool finishes what it holds before the server goes. */
static void serve_release(struct daemon_ctx *d, eng_server *server,
                          eng_server_config *scfg)
{
    eng_pool_free(d->pool);
    eng_server_free(server);
    eng_gateway_close(d->gw);
    eng_tls_ctx_free(scfg->tls_ctx);
}

/* Opens the engine, binds the listeners and serves until SIGTERM.  A
 * start that fails removes what it created.  Returns the exit status. */
static int serve(eng_config *cfg, const struct cli *c)
{
    eng_engine engine;
    eng_server *server = NULL;
    eng_server_config scfg;
    eng_server_callbacks cb;
    struct daemon_ctx dctx;
    char err[1024] = "";
    int rc;

    if (eng_engine_open(&engine, cfg, err, sizeof err) != 0) {
        fatal(err);
        return 1;
    }
    memset(&dctx, 0, sizeof dctx);
    dctx.engine = &engine;
    dctx.config_file = c->file;
    dctx.cli_log_level = c->level != NULL ? cfg->log_level : -1;
    if (server_config(&scfg, cfg, err, sizeof err) != 0 ||
        role_callbacks(&dctx, &cb, cfg, err, sizeof err) != 0 ||
        (dctx.server = server = eng_server_new(&scfg, &cb)) == NULL ||
        eng_server_start(server, err, sizeof err) != 0) {
        fatal(err[0] != '\0' ? err : "out of memory");
        serve_release(&dctx, server, &scfg);
        /* A failed start leaves no new data dir, master key or keystore. */
        eng_engine_abandon(&engine);
        return 1;
    }
    eng_log(SIGNER_LOG_INFO, "signerd %s ready: role %s, data_dir %s, %zu "
                             "operations",
            PACKAGE_VERSION, cfg->role, cfg->data_dir, engine.reg.n_ops);
    rc = eng_server_run(server) == 0 ? 0 : 1;
    eng_log(SIGNER_LOG_INFO, "signerd stopped");
    serve_release(&dctx, server, &scfg);
    eng_engine_close(&engine);
    return rc;
}

/* role = "proxy": no plugins, sealer or keystore; the transport answers
 * /healthz, /readyz and /metrics, everything else is 404. */
static int proxy_ready_cb(void *ctx)
{
    (void)ctx;
    return 1;
}

static char *proxy_metrics_cb(void *ctx)
{
    (void)ctx;
    return eng_proxy_metrics();
}

static int proxy_handle_cb(void *ctx, const eng_request *req, char **resp,
                           size_t *resp_len)
{
    (void)ctx;
    (void)req;
    *resp = eng_error_body(404, "not found: this is the outbound proxy "
                           "(GET /healthz, /readyz, /metrics)", NULL,
                           resp_len);
    return 404;
}

/* Serves the proxy role until SIGTERM (or only checks it). */
static int proxy_main(eng_config *cfg, int check_only)
{
    eng_server_config scfg;
    eng_server_callbacks cb;
    eng_server *server = NULL;
    char err[1024];
    int rc = 1;

    if (eng_proxy_open(cfg, check_only, err, sizeof err) != 0) {
        fatal(err);
        return 1;
    }
    if (check_only) {
        printf("%s: ok (role proxy, %zu listeners)\n", cfg->file,
               cfg->n_listen);
        eng_proxy_close();
        return 0;
    }
    memset(&scfg, 0, sizeof scfg);
    scfg.listen = cfg->listen;
    scfg.n_listen = cfg->n_listen;
    scfg.limits = cfg->limits;
    scfg.io_loops = cfg->io_loops > 0 ? cfg->io_loops : cfg->workers;
    memset(&cb, 0, sizeof cb);
    cb.handle = proxy_handle_cb;
    cb.metrics = proxy_metrics_cb;
    cb.ready = proxy_ready_cb;
    cb.error_body = error_body_cb;
    if ((server = eng_server_new(&scfg, &cb)) == NULL ||
        eng_server_start(server, err, sizeof err) != 0) {
        fatal(server == NULL ? "out of memory" : err);
    } else {
        eng_log(SIGNER_LOG_INFO, "signerd %s ready: role proxy",
                PACKAGE_VERSION);
        rc = eng_server_run(server) == 0 ? 0 : 1;
        eng_log(SIGNER_LOG_INFO, "signerd stopped");
    }
    eng_server_free(server);
    eng_proxy_close();
    return rc;
}

int main(int argc, char **argv)
{
    struct cli c;
    eng_config cfg;
    char err[1024];
    int rc;

    harden_process();
    eng_wiping_allocators_install();
    if ((rc = parse_cli(&c, argc, argv)) >= 0)
        return rc;
    rc = 1;
    if (eng_config_load(&cfg, c.file, err, sizeof err) != 0 ||
        apply_cli(&cfg, &c, err, sizeof err) != 0) {
        fatal(err);
        goto out;
    }
    eng_log_set_level(cfg.log_level);
    if (strcmp(cfg.role, "proxy") == 0) {
        rc = proxy_main(&cfg, c.check_only);
        goto out;
    }
    if (c.check_only) {
        rc = eng_engine_check_config(&cfg, stdout, err, sizeof err) == 0 ? 0
                                                                         : 1;
        if (rc == 0 && strcmp(cfg.role, "gateway") == 0) {
            eng_gw_conf gc;
            rc = eng_gw_conf_load(&gc, &cfg, err, sizeof err) == 0 ? 0 : 1;
            eng_gw_conf_free(&gc);
        }
        if (rc != 0)
            fatal(err);
        goto out;
    }
    rc = serve(&cfg, &c);
out:
    eng_config_free(&cfg);
    return rc;
}
