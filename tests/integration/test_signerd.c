/* Integration: starts the real signerd with the test plugin and talks
 * HTTP and frames (TCP and unix socket, pipelined) to it.  Every socket has
 * a receive timeout; the daemon is stopped by PID on every path. */
#include "config.h"
#include "../unit/testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>

#include <cjson/cJSON.h>

static char *dir;
static char conf_path[512], sock_path[512];
static int http_port, frame_port;
static pid_t daemon_pid = -1;

static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t l = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) != 0)
        return -1;
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void set_timeout(int fd)
{
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int connect_tcp(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    set_timeout(fd);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int connect_unix(const char *path)
{
    struct sockaddr_un a;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof a.sun_path) {
        close(fd);
        return -1;
    }
    memcpy(a.sun_path, path, strlen(path) + 1);
    set_timeout(fd);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_n(int fd, void *p, size_t n)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = read(fd, c, n);
        if (r <= 0)
            return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Reads one HTTP response; returns status, body in *body (malloc'd). */
static int http_read(int fd, char **body)
{
    char head[8192];
    size_t n = 0;
    long clen = -1;
    int status = -1;
    char *p;
    *body = NULL;
    while (n < sizeof head - 1) {
        if (read(fd, head + n, 1) != 1)
            return -1;
        n++;
        if (n >= 4 && memcmp(head + n - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    head[n] = '\0';
    if (sscanf(head, "HTTP/1.1 %d", &status) != 1)
        return -1;
    p = strcasestr(head, "\r\nContent-Length:");
    if (p != NULL)
        clen = strtol(p + 17, NULL, 10);
    if (clen < 0)
        return -1;
    *body = calloc(1, (size_t)clen + 1);
    if (read_n(fd, *body, (size_t)clen) != 0)
        return -1;
    return status;
}

static int http(const char *method, const char *path, const char *json,
                char **body)
{
    char req[65536];
    int fd = connect_tcp(http_port), status;
    if (fd < 0)
        return -1;
    snprintf(req, sizeof req,
             "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
             "application/json\r\nContent-Length: %zu\r\nConnection: "
             "close\r\n\r\n%s",
             method, path, json ? strlen(json) : 0, json ? json : "");
    if (write_all(fd, req, strlen(req)) != 0) {
        close(fd);
        return -1;
    }
    status = http_read(fd, body);
    close(fd);
    return status;
}

static void stop_daemon(void)
{
    if (daemon_pid > 0) {
        kill(daemon_pid, SIGKILL);
        waitpid(daemon_pid, NULL, 0);
        daemon_pid = -1;
    }
}

static pid_t spawn(const char *const *argv, const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static char signerd_path[512], plugin_dir[512];

static const char *io_loops_arg; /* "2" for the io_loops suite */

static int wait_up(const char *log);

static int start_daemon(void)
{
    char l1[64], l2[64], l3[600], log[600];
    const char *argv[16];
    int n = 0;
    snprintf(l1, sizeof l1, "http=127.0.0.1:%d", http_port);
    snprintf(l2, sizeof l2, "frames=127.0.0.1:%d", frame_port);
    snprintf(l3, sizeof l3, "frames=unix:%s", sock_path);
    snprintf(log, sizeof log, "%s/signerd.log", dir);
    argv[n++] = signerd_path;
    argv[n++] = "-c";
    argv[n++] = conf_path;
    argv[n++] = "--listen";
    argv[n++] = l1;
    argv[n++] = "--listen";
    argv[n++] = l2;
    argv[n++] = "--listen";
    argv[n++] = l3;
    argv[n++] = "--plugin-dir";
    argv[n++] = plugin_dir;
    if (io_loops_arg != NULL) {
        argv[n++] = "--io-loops";
        argv[n++] = io_loops_arg;
    }
    argv[n] = NULL;
    daemon_pid = spawn(argv, log);
    return wait_up(log);
}

/* Bounded wait for /healthz of the daemon just spawned. */
static int wait_up(const char *log)
{
    int i;
    for (i = 0; i < 100; i++) {
        char *b = NULL;
        struct timespec ts = {0, 50 * 1000 * 1000};
        if (http("GET", "/healthz", NULL, &b) == 200) {
            free(b);
            return 0;
        }
        free(b);
        if (waitpid(daemon_pid, NULL, WNOHANG) == daemon_pid) {
            daemon_pid = -1;
            break;
        }
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "signerd did not come up; log in %s\n", log);
    return -1;
}

static cJSON *result_of(const char *body, int *status)
{
    cJSON *o = cJSON_Parse(body);
    cJSON *s = cJSON_GetObjectItem(o, "enclave_status");
    *status = cJSON_IsNumber(s) ? s->valueint : -1;
    return o;
}

static void test_health_and_metrics(void)
{
    char *b = NULL, path[600];
    struct stat st;
    /* The data dir is the owner's alone; the master key is 0600. */
    snprintf(path, sizeof path, "%s/data", dir);
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0700);
    snprintf(path, sizeof path, "%s/data/master.key", dir);
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL(http("GET", "/healthz", NULL, &b), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "ok"));
    free(b);
    CU_ASSERT_EQUAL(http("GET", "/readyz", NULL, &b), 200);
    free(b);
    CU_ASSERT_EQUAL(http("POST", "/", "{\"operation\":\"echo\",\"payload\":"
                                      "{\"message\":\"m\"}}", &b), 200);
    free(b);
    CU_ASSERT_EQUAL(http("GET", "/metrics", NULL, &b), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "signer_operation_requests_total{operation=\"echo\"}"));
    free(b);
}

static void test_http_ops(void)
{
    char *b = NULL;
    cJSON *o;
    int st;
    CU_ASSERT_EQUAL(http("POST", "/", "{\"operation\":\"echo\",\"payload\":"
                                      "{\"message\":\"hello\"}}", &b), 200);
    o = result_of(b, &st);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cJSON_GetObjectItem(o,
                           "enclave_result"), "echo")->valuestring, "hello");
    cJSON_Delete(o);
    free(b);
    /* Unknown operation: 400 JSON naming it. */
    CU_ASSERT_EQUAL(http("POST", "/", "{\"operation\":\"launch_missiles\","
                                      "\"payload\":{}}", &b), 400);
    o = result_of(b, &st);
    CU_ASSERT_EQUAL(st, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(cJSON_GetObjectItem(cJSON_GetObjectItem(o,
                           "enclave_result"), "error")->valuestring,
                           "launch_missiles"));
    cJSON_Delete(o);
    free(b);
    CU_ASSERT_EQUAL(http("POST", "/", "{not json", &b), 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "malformed JSON"));
    free(b);
    /* The alias from the config. */
    CU_ASSERT_EQUAL(http("POST", "/", "{\"operation\":\"legacy-echo\","
                                      "\"payload\":{\"message\":\"a\"}}", &b),
                    200);
    free(b);
    CU_ASSERT_EQUAL(http("GET", "/nowhere", NULL, &b), 404);
    free(b);
}

static void test_http_keepalive_pipelined(void)
{
    const char *b1 = "{\"operation\":\"echo\",\"payload\":{\"message\":\"p1\"}}";
    const char *b2 = "{\"operation\":\"echo\",\"payload\":{\"message\":\"p2\"}}";
    char one[256], two[256];
    char both[512], *b = NULL;
    int fd = connect_tcp(http_port);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    snprintf(one, sizeof one,
             "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(b1), b1);
    snprintf(two, sizeof two,
             "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(b2), b2);
    snprintf(both, sizeof both, "%s%s", one, two);
    CU_ASSERT_EQUAL_FATAL(write_all(fd, both, strlen(both)), 0);
    CU_ASSERT_EQUAL(http_read(fd, &b), 200);
    CU_ASSERT_PTR_NOT_NULL(b && strstr(b, "\"p1\""));
    free(b);
    CU_ASSERT_EQUAL(http_read(fd, &b), 200);
    CU_ASSERT_PTR_NOT_NULL(b && strstr(b, "\"p2\""));
    free(b);
    close(fd);
}

static int send_frame(int fd, const char *json)
{
    unsigned char h[4];
    size_t n = strlen(json);
    h[0] = (unsigned char)(n >> 24);
    h[1] = (unsigned char)(n >> 16);
    h[2] = (unsigned char)(n >> 8);
    h[3] = (unsigned char)n;
    return write_all(fd, h, 4) || write_all(fd, json, n) ? -1 : 0;
}

static char *read_frame(int fd)
{
    unsigned char h[4];
    size_t n;
    char *b;
    if (read_n(fd, h, 4) != 0)
        return NULL;
    n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
    if (n > (1u << 20) || (b = calloc(1, n + 1)) == NULL)
        return NULL;
    if (read_n(fd, b, n) != 0) {
        free(b);
        return NULL;
    }
    return b;
}

/* 50 frames in one write; every id answered exactly once. */
static void pipelined_frames(int fd)
{
    char *buf = malloc(50 * 200), json[160];
    size_t pos = 0;
    int seen[50], i;
    memset(seen, 0, sizeof seen);
    for (i = 0; i < 50; i++) {
        size_t n;
        snprintf(json, sizeof json,
                 "{\"id\":%d,\"operation\":\"echo\",\"payload\":{\"message\":"
                 "\"m%d\"}}", i, i);
        n = strlen(json);
        buf[pos++] = (char)(n >> 24);
        buf[pos++] = (char)(n >> 16);
        buf[pos++] = (char)(n >> 8);
        buf[pos++] = (char)n;
        memcpy(buf + pos, json, n);
        pos += n;
    }
    CU_ASSERT_EQUAL_FATAL(write_all(fd, buf, pos), 0);
    free(buf);
    for (i = 0; i < 50; i++) {
        char *r = read_frame(fd), want[16];
        cJSON *o, *id;
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        o = cJSON_Parse(r);
        id = cJSON_GetObjectItem(o, "id");
        CU_ASSERT_TRUE_FATAL(cJSON_IsNumber(id) && id->valueint >= 0 &&
                             id->valueint < 50);
        seen[id->valueint]++;
        CU_ASSERT_EQUAL(cJSON_GetObjectItem(o, "enclave_status")->valueint,
                        200);
        snprintf(want, sizeof want, "m%d", id->valueint);
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cJSON_GetObjectItem(o,
                               "enclave_result"), "echo")->valuestring, want);
        cJSON_Delete(o);
        free(r);
    }
    for (i = 0; i < 50; i++)
        CU_ASSERT_EQUAL(seen[i], 1);
}

static void test_frames_tcp(void)
{
    int fd = connect_tcp(frame_port);
    char *r;
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    pipelined_frames(fd);
    /* An error frame keeps the connection usable. */
    CU_ASSERT_EQUAL(send_frame(fd, "{\"id\":\"x\",\"operation\":\"nope\"}"), 0);
    r = read_frame(fd);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "\"id\":\"x\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "\"enclave_status\":400"));
    free(r);
    CU_ASSERT_EQUAL(send_frame(fd, "{\"id\":\"y\",\"operation\":\"echo\","
                                   "\"payload\":{\"message\":\"after\"}}"), 0);
    r = read_frame(fd);
    CU_ASSERT_PTR_NOT_NULL(r && strstr(r, "after"));
    free(r);
    close(fd);
}

static void test_frames_unix(void)
{
    int fd = connect_unix(sock_path);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    pipelined_frames(fd);
    close(fd);
}

static void test_check_config(void)
{
    char log[600], bad[600], cmd[4096], out[1024] = "";
    FILE *f;
    int rc;
    snprintf(log, sizeof log, "%s/check.log", dir);
    snprintf(cmd, sizeof cmd, "'%s' --check-config -c '%s' --plugin-dir '%s' > '%s' 2>&1",
             signerd_path, conf_path, plugin_dir, log);
    rc = system(cmd);
    CU_ASSERT_EQUAL(WEXITSTATUS(rc), 0);
    snprintf(bad, sizeof bad, "%s/bad.conf", dir);
    f = fopen(bad, "w");
    fprintf(f, "plugins = ( { name = \"test\"; } );\nworkers = \"x\";\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' --check-config -c '%s' > '%s' 2>&1",
             signerd_path, bad, log);
    rc = system(cmd);
    CU_ASSERT_EQUAL(WEXITSTATUS(rc), 1);
    f = fopen(log, "r");
    if (f) {
        size_t n = fread(out, 1, sizeof out - 1, f);
        out[n] = '\0';
        fclose(f);
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "bad.conf:2:"));
    /* A plugin that cannot load: one line naming it and the reason. */
    f = fopen(bad, "w");
    fprintf(f, "plugins = ( { name = \"ghost\"; } );\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' --check-config -c '%s' --plugin-dir '%s' > '%s' 2>&1",
             signerd_path, bad, plugin_dir, log);
    rc = system(cmd);
    CU_ASSERT_EQUAL(WEXITSTATUS(rc), 1);
    f = fopen(log, "r");
    if (f) {
        size_t n = fread(out, 1, sizeof out - 1, f);
        out[n] = '\0';
        fclose(f);
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "plugin ghost"));

    /* --check-config creates nothing: a data_dir that does not exist yet
     * is reported and stays absent */
    {
        char fresh[600], mk[700];
        struct stat st;
        snprintf(fresh, sizeof fresh, "%s/not-yet", dir);
        snprintf(cmd, sizeof cmd,
                 "'%s' --check-config -c '%s' --plugin-dir '%s' --data-dir '%s'"
                 " > '%s' 2>&1",
                 signerd_path, conf_path, plugin_dir, fresh, log);
        rc = system(cmd);
        CU_ASSERT_EQUAL(WEXITSTATUS(rc), 0);
        CU_ASSERT_NOT_EQUAL(stat(fresh, &st), 0);
        /* an existing master key file of the wrong size is an error */
        CU_ASSERT_EQUAL_FATAL(mkdir(fresh, 0700), 0);
        snprintf(mk, sizeof mk, "%s/master.key", fresh);
        f = fopen(mk, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fputs("short", f);
        fclose(f);
        chmod(mk, 0600);
        rc = system(cmd);
        CU_ASSERT_EQUAL(WEXITSTATUS(rc), 1);
        f = fopen(log, "r");
        out[0] = '\0';
        if (f) {
            size_t n = fread(out, 1, sizeof out - 1, f);
            out[n] = '\0';
            fclose(f);
        }
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "master key file"));
        unlink(mk);
        rmdir(fresh);
    }
}

/* Reads /proc/PID/FILE into buf; 0 ok. */
static int read_proc(const char *file, char *buf, size_t cap)
{
    char path[64];
    size_t n;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/%s", (int)daemon_pid, file);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return 0;
}

/* No core dumps (RLIMIT_CORE 0) and key memory locked (VmLck > 0: the
 * secure heap holding the master key and unsealed keys is mlocked). */
static void test_process_hygiene(void)
{
    char buf[8192], *p;
    long locked = -1;
    CU_ASSERT_EQUAL_FATAL(read_proc("limits", buf, sizeof buf), 0);
    p = strstr(buf, "Max core file size");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    {
        char soft[32] = "", hard[32] = "";
        CU_ASSERT_EQUAL(sscanf(p + strlen("Max core file size"), "%31s %31s",
                               soft, hard), 2);
        CU_ASSERT_STRING_EQUAL(soft, "0");
        CU_ASSERT_STRING_EQUAL(hard, "0");
    }
    CU_ASSERT_EQUAL_FATAL(read_proc("status", buf, sizeof buf), 0);
    p = strstr(buf, "VmLck:");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    sscanf(p + 6, "%ld", &locked);
    if (getuid() == 0 || locked > 0)
        CU_ASSERT_TRUE(locked > 0);
}

static void test_sigterm(void)
{
    int status = 0, i;
    pid_t r = 0;
    CU_ASSERT_TRUE_FATAL(daemon_pid > 0);
    kill(daemon_pid, SIGTERM);
    for (i = 0; i < 200 && r == 0; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        r = waitpid(daemon_pid, &status, WNOHANG);
        if (r == 0)
            nanosleep(&ts, NULL);
    }
    CU_ASSERT_EQUAL(r, daemon_pid);
    CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (r == daemon_pid)
        daemon_pid = -1;
}

/* The same daemon again with two event loops handling requests inline. */
static int io_loops_suite_init(void)
{
    stop_daemon();
    io_loops_arg = "2";
    return start_daemon() == 0 ? 0 : 1;
}

static void test_io_loops_log(void)
{
    char log[600], buf[65536];
    size_t n = 0;
    FILE *f;
    snprintf(log, sizeof log, "%s/signerd.log", dir);
    f = fopen(log, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "serving with 2 event loops"));
}

/* ---- start-up cases: the eth plugin, a key in the keystore ------------- */

#define SECRET "correct horse battery staple"

static char eth_conf[600];

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

/* The whole file, malloc'd ("" when unreadable). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 1 << 20);
    size_t n = 0;
    if (f != NULL && buf != NULL) {
        n = fread(buf, 1, (1 << 20) - 1, f);
        buf[n] = '\0';
    }
    if (f != NULL)
        fclose(f);
    return buf;
}

/* Runs signerd with the eth config in the foreground (at most 20 s):
 * its exit status; stdout and stderr go to log. */
static int run_eth(const char *extra, const char *log)
{
    char cmd[4096];
    int rc;
    snprintf(cmd, sizeof cmd,
             "timeout 20 '%s' -c '%s' --plugin-dir '%s' --listen "
             "http=127.0.0.1:%d %s > '%s' 2>&1",
             signerd_path, eth_conf, plugin_dir, http_port, extra, log);
    rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Starts signerd with the eth config and data_dir ddir in the background
 * (optionally under another config file). */
static int start_eth_conf(const char *conf, const char *ddir, const char *log)
{
    char l1[64];
    const char *argv[12];
    int n = 0;
    snprintf(l1, sizeof l1, "http=127.0.0.1:%d", http_port);
    argv[n++] = signerd_path;
    argv[n++] = "-c";
    argv[n++] = conf;
    argv[n++] = "--plugin-dir";
    argv[n++] = plugin_dir;
    argv[n++] = "--data-dir";
    argv[n++] = ddir;
    argv[n++] = "--listen";
    argv[n++] = l1;
    argv[n] = NULL;
    daemon_pid = spawn(argv, log);
    return wait_up(log);
}

static int start_eth(const char *ddir, const char *log)
{
    return start_eth_conf(eth_conf, ddir, log);
}

/* SIGTERM and a bounded wait; SIGKILL if it hangs. */
static void stop_gracefully(void)
{
    int i;
    if (daemon_pid <= 0)
        return;
    kill(daemon_pid, SIGTERM);
    for (i = 0; i < 200; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        if (waitpid(daemon_pid, NULL, WNOHANG) == daemon_pid) {
            daemon_pid = -1;
            return;
        }
        nanosleep(&ts, NULL);
    }
    stop_daemon();
}

/* generate_key: the HTTP status; the new key_id in kid (37 bytes). */
static int generate_key(char *kid)
{
    char *b = NULL;
    int rc = http("POST", "/",
                  "{\"operation\":\"generate_key\",\"payload\":"
                  "{\"secret\":\"" SECRET "\"}}",
                  &b);
    cJSON *o = cJSON_Parse(b ? b : "");
    const cJSON *k = cJSON_GetObjectItem(
        cJSON_GetObjectItem(o, "enclave_result"), "key_id");
    kid[0] = '\0';
    if (cJSON_IsString(k))
        snprintf(kid, 37, "%s", k->valuestring);
    cJSON_Delete(o);
    free(b);
    return rc;
}

static int sign_message(const char *kid)
{
    char req[512], *b = NULL;
    int rc;
    snprintf(req, sizeof req,
             "{\"operation\":\"sign_message\",\"payload\":{\"key_id\":\"%s\","
             "\"secret\":\"" SECRET "\",\"message\":\"hello\"}}",
             kid);
    rc = http("POST", "/", req, &b);
    free(b);
    return rc;
}

/* 1 if every line of text is a JSON object with "level" and "msg". */
static int all_json_lines(char *text)
{
    char *line, *save = NULL;
    int n = 0;
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(line);
        int ok = cJSON_IsString(cJSON_GetObjectItem(o, "level")) &&
                 cJSON_IsString(cJSON_GetObjectItem(o, "msg"));
        cJSON_Delete(o);
        if (!ok) {
            fprintf(stderr, "not a JSON log line: %s\n", line);
            return 0;
        }
        n++;
    }
    return n > 0;
}

static int copy_file(const char *from, const char *to)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp -p '%s' '%s'", from, to);
    return system(cmd) == 0 ? 0 : -1;
}

/* Deleting or replacing the master key no longer gives a "ready" signer
 * with a fresh key: start-up and --check-config refuse, naming the file to
 * restore; with the original back, the old key signs again. */
static void test_master_key_check(void)
{
    char ddir[600], mk[700], bak[700], log[600], kid[37], *out;
    struct stat st;
    snprintf(ddir, sizeof ddir, "%s/mk-data", dir);
    snprintf(mk, sizeof mk, "%s/master.key", ddir);
    snprintf(bak, sizeof bak, "%s/master.key.bak", dir);
    snprintf(log, sizeof log, "%s/mk.log", dir);
    CU_ASSERT_EQUAL_FATAL(start_eth(ddir, log), 0);
    CU_ASSERT_EQUAL(generate_key(kid), 200);
    CU_ASSERT_EQUAL(sign_message(kid), 200);
    stop_gracefully();
    CU_ASSERT_EQUAL_FATAL(copy_file(mk, bak), 0);

    /* Deleted: refused, and no new master key appears. */
    CU_ASSERT_EQUAL_FATAL(unlink(mk), 0);
    {
        char extra[700];
        snprintf(extra, sizeof extra, "--data-dir '%s'", ddir);
        CU_ASSERT_EQUAL(run_eth(extra, log), 1);
        out = slurp(log);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "holds 1 keys sealed under "
                                           "master key file"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, mk));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "restore it"));
        CU_ASSERT_TRUE(all_json_lines(out));
        free(out);
        CU_ASSERT_NOT_EQUAL(stat(mk, &st), 0);
        snprintf(extra, sizeof extra, "--data-dir '%s' --check-config", ddir);
        CU_ASSERT_EQUAL(run_eth(extra, log), 1);
        out = slurp(log);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "restore it"));
        free(out);

        /* Replaced by another 32-byte key: refused by its check value. */
        write_text(mk, "0123456789abcdef0123456789abcdef");
        chmod(mk, 0600);
        snprintf(extra, sizeof extra, "--data-dir '%s'", ddir);
        CU_ASSERT_EQUAL(run_eth(extra, log), 1);
        out = slurp(log);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "check value mismatch"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, mk));
        free(out);
        snprintf(extra, sizeof extra, "--data-dir '%s' --check-config", ddir);
        CU_ASSERT_EQUAL(run_eth(extra, log), 1);
        out = slurp(log);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "check value mismatch"));
        free(out);
    }
    /* The original back: ready, and the old key signs. */
    CU_ASSERT_EQUAL_FATAL(rename(bak, mk), 0);
    CU_ASSERT_EQUAL_FATAL(start_eth(ddir, log), 0);
    {
        char *b = NULL;
        CU_ASSERT_EQUAL(http("GET", "/readyz", NULL, &b), 200);
        free(b);
    }
    CU_ASSERT_EQUAL(sign_message(kid), 200);
    stop_gracefully();
}

/* A keystore from before check values (no meta rows): a wrong master key is
 * caught by trying to open one stored key; the right one gets its check
 * value recorded. */
static void test_legacy_keystore(void)
{
    char ddir[600], mk[700], db[700], log[600], kid[37], cmd[4096], *out;
    snprintf(ddir, sizeof ddir, "%s/legacy-data", dir);
    snprintf(mk, sizeof mk, "%s/master.key", ddir);
    snprintf(db, sizeof db, "%s/keys.db", ddir);
    snprintf(log, sizeof log, "%s/legacy.log", dir);
    CU_ASSERT_EQUAL_FATAL(start_eth(ddir, log), 0);
    CU_ASSERT_EQUAL(generate_key(kid), 200);
    stop_gracefully();
    snprintf(cmd, sizeof cmd, "sqlite3 '%s' 'DELETE FROM meta' && cp -p '%s' "
                              "'%s.orig'",
             db, mk, mk);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    write_text(mk, "fedcba9876543210fedcba9876543210");
    {
        char extra[700];
        snprintf(extra, sizeof extra, "--data-dir '%s'", ddir);
        CU_ASSERT_EQUAL(run_eth(extra, log), 1);
        out = slurp(log);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "does not open the 1 keys"));
        free(out);
    }
    snprintf(cmd, sizeof cmd, "mv '%s.orig' '%s'", mk, mk);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    CU_ASSERT_EQUAL_FATAL(start_eth(ddir, log), 0);
    CU_ASSERT_EQUAL(sign_message(kid), 200);
    stop_gracefully();
    snprintf(cmd, sizeof cmd, "sqlite3 '%s' \"SELECT name FROM meta WHERE "
                              "name = 'sealer_check'\" > '%s'",
             db, log);
    CU_ASSERT_EQUAL(system(cmd), 0);
    out = slurp(log);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "sealer_check"));
    free(out);
}

/* A start that fails (its port is taken) leaves no data dir, master key or
 * keystore behind, and says why in a JSON log line. */
static void test_failed_start_leaves_nothing(void)
{
    char top[600], ddir[700], extra[800], log[600], *out;
    struct sockaddr_in a;
    socklen_t l = sizeof a;
    struct stat st;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port, rc;
    char cmd[4096];
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    CU_ASSERT_EQUAL_FATAL(listen(fd, 1), 0);
    getsockname(fd, (struct sockaddr *)&a, &l);
    port = ntohs(a.sin_port);
    snprintf(top, sizeof top, "%s/never", dir);
    snprintf(ddir, sizeof ddir, "%s/made/data", top);
    snprintf(log, sizeof log, "%s/busy.log", dir);
    snprintf(extra, sizeof extra, "--data-dir '%s'", ddir);
    snprintf(cmd, sizeof cmd,
             "timeout 20 '%s' -c '%s' --plugin-dir '%s' --listen "
             "http=127.0.0.1:%d %s > '%s' 2>&1",
             signerd_path, eth_conf, plugin_dir, port, extra, log);
    rc = system(cmd);
    close(fd);
    CU_ASSERT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 1);
    CU_ASSERT_NOT_EQUAL(stat(top, &st), 0);
    out = slurp(log);
    {
        char p[16];
        snprintf(p, sizeof p, "%d", port);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, p));
    }
    CU_ASSERT_TRUE(all_json_lines(out));
    free(out);
}

/* Every key_cache.max_entries the config accepts starts (it crashed with
 * "out of memory": the secure heap is now sized from the config), and
 * --check-config reports the locked memory it needs. */
static void test_key_cache_max_entries(void)
{
    char conf[600], ddir[600], log[600], text[600], cmd[4096], kid[37], *out;
    int rc;
    snprintf(conf, sizeof conf, "%s/cache.conf", dir);
    snprintf(ddir, sizeof ddir, "%s/cache-data", dir);
    snprintf(log, sizeof log, "%s/cache.log", dir);
    snprintf(text, sizeof text,
             "plugins = ( { name = \"eth\"; } );\n"
             "key_cache = { ttl_seconds = 60; max_entries = 8192; };\n");
    write_text(conf, text);
    snprintf(cmd, sizeof cmd,
             "'%s' --check-config -c '%s' --plugin-dir '%s' --data-dir '%s'"
             " > '%s' 2>&1",
             signerd_path, conf, plugin_dir, ddir, log);
    rc = system(cmd);
    CU_ASSERT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
    out = slurp(log);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "locked memory: 8388608 bytes "
                                       "(key_cache.max_entries = 8192"));
    free(out);
    CU_ASSERT_EQUAL_FATAL(start_eth_conf(conf, ddir, log), 0);
    CU_ASSERT_EQUAL(generate_key(kid), 200);
    CU_ASSERT_EQUAL(sign_message(kid), 200);
    CU_ASSERT_EQUAL(sign_message(kid), 200); /* from the cache */
    stop_gracefully();
}

/* --check-config refuses listen addresses the listener would refuse. */
static void test_check_config_listen(void)
{
    static const char *const bad[] = {"http=127.0.0.1:99999", "frames=nohost",
                                      "http=[::1:80", "frames=vsock:x:1"};
    char cmd[4096], log[600], *out;
    size_t i;
    int rc;
    snprintf(log, sizeof log, "%s/listen.log", dir);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd,
                 "'%s' --check-config -c '%s' --plugin-dir '%s' --listen '%s'"
                 " > '%s' 2>&1",
                 signerd_path, eth_conf, plugin_dir, bad[i], log);
        rc = system(cmd);
        CU_ASSERT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 1);
        out = slurp(log);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "listen address"));
        CU_ASSERT_TRUE(all_json_lines(out));
        free(out);
    }
}

/* A keystore on a full disk (a small tmpfs; needs CAP_SYS_ADMIN, else
 * skipped): the failure is logged with SQLite's cause and /readyz answers
 * 503 until space is back. */
static void test_keystore_disk_full(void)
{
    char mnt[600], ddir[700], fill[700], log[600], cmd[1024], kid[37], *out;
    char *b = NULL;
    int i, rc = 200, mounted;
    FILE *f;
    snprintf(mnt, sizeof mnt, "%s/tmpfs", dir);
    snprintf(ddir, sizeof ddir, "%s/data", mnt);
    snprintf(fill, sizeof fill, "%s/filler", mnt);
    snprintf(log, sizeof log, "%s/full.log", dir);
    mkdir(mnt, 0700);
    snprintf(cmd, sizeof cmd,
             "mount -t tmpfs -o size=1m tmpfs '%s' 2>/dev/null", mnt);
    mounted = system(cmd) == 0;
    if (!mounted) {
        fprintf(stderr, "test_keystore_disk_full: skipped (cannot mount a "
                        "tmpfs here)\n");
        return;
    }
    if (start_eth(ddir, log) != 0) {
        CU_FAIL("signerd did not start on the tmpfs");
        goto cleanup;
    }
    CU_ASSERT_EQUAL(generate_key(kid), 200);
    /* Fill what is left. */
    f = fopen(fill, "w");
    if (f != NULL) {
        static char zeros[4096];
        while (fwrite(zeros, 1, sizeof zeros, f) == sizeof zeros &&
               fflush(f) == 0)
            ;
        fclose(f);
    }
    for (i = 0; i < 300 && rc == 200; i++)
        rc = generate_key(kid);
    CU_ASSERT_EQUAL(rc, 500);
    CU_ASSERT_EQUAL(http("GET", "/readyz", NULL, &b), 503);
    free(b);
    out = slurp(log);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "database or disk is full"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "SQLite extended code 13"));
    free(out);
    /* Space back: ready again after the next probe. */
    unlink(fill);
    rc = 0;
    for (i = 0; i < 40 && rc != 200; i++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        rc = http("GET", "/readyz", NULL, &b);
        free(b);
        b = NULL;
    }
    CU_ASSERT_EQUAL(rc, 200);
    CU_ASSERT_EQUAL(generate_key(kid), 200);
cleanup:
    stop_gracefully();
    snprintf(cmd, sizeof cmd, "umount '%s'", mnt);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot unmount %s\n", mnt);
}

static int startup_suite_init(void)
{
    FILE *f;
    stop_daemon();
    snprintf(eth_conf, sizeof eth_conf, "%s/eth.conf", dir);
    f = fopen(eth_conf, "w");
    if (f == NULL)
        return 1;
    fprintf(f, "data_dir = \"eth-data\";\nworkers = 2;\n"
               "plugins = ( { name = \"eth\"; } );\n");
    fclose(f);
    return 0;
}

int main(void)
{
    CU_pSuite s;
    FILE *f;
    int rc;
    const char *b = tu_builddir();
    signal(SIGPIPE, SIG_IGN);
    dir = tu_tmpdir();
    if (dir == NULL)
        return 1;
    atexit(stop_daemon);
    snprintf(signerd_path, sizeof signerd_path, "%s/signerd", b);
    snprintf(plugin_dir, sizeof plugin_dir, "%s/plugins/.libs", b);
    snprintf(conf_path, sizeof conf_path, "%s/it.conf", dir);
    snprintf(sock_path, sizeof sock_path, "%s/frames.sock", dir);
    f = fopen(conf_path, "w");
    if (f == NULL)
        return 1;
    fprintf(f, "data_dir = \"data\";\nworkers = 2;\n"
               "plugins = ( { name = \"test\"; } );\n"
               "aliases = { legacy-echo = \"echo\"; };\n");
    fclose(f);
    http_port = free_port();
    frame_port = free_port();
    if (start_daemon() != 0) {
        stop_daemon();
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("signerd", NULL, NULL);
    TU_ADD(s, test_health_and_metrics);
    TU_ADD(s, test_http_ops);
    TU_ADD(s, test_http_keepalive_pipelined);
    TU_ADD(s, test_frames_tcp);
    TU_ADD(s, test_frames_unix);
    TU_ADD(s, test_check_config);
    TU_ADD(s, test_process_hygiene);
    TU_ADD(s, test_sigterm);
    s = CU_add_suite("signerd_io_loops", io_loops_suite_init, NULL);
    TU_ADD(s, test_io_loops_log);
    TU_ADD(s, test_health_and_metrics);
    TU_ADD(s, test_http_ops);
    TU_ADD(s, test_http_keepalive_pipelined);
    TU_ADD(s, test_frames_tcp);
    TU_ADD(s, test_frames_unix);
    TU_ADD(s, test_sigterm);
    s = CU_add_suite("signerd_startup", startup_suite_init, NULL);
    TU_ADD(s, test_master_key_check);
    TU_ADD(s, test_legacy_keystore);
    TU_ADD(s, test_failed_start_leaves_nothing);
    TU_ADD(s, test_key_cache_max_entries);
    TU_ADD(s, test_check_config_listen);
    TU_ADD(s, test_keystore_disk_full);
    rc = tu_run();
    stop_daemon();
    tu_rmtree(dir);
    free(dir);
    return rc;
}
