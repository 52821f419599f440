#include "config.h"
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_level = SIGNER_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int eng_log_level_parse(const char *name)
{
    int i;
    if (name == NULL)
        return -1;
    for (i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    if (strcmp(name, "warning") == 0)
        return SIGNER_LOG_WARN;
    return -1;
}

const char *eng_log_level_name(int level)
{
    return (level >= 0 && level < 4) ? level_names[level] : "info";
}

void eng_log_set_level(int level) { atomic_store(&g_level, level); }
int eng_log_get_level(void) { return atomic_load(&g_level); }

/* Appends s JSON-escaped to buf at *pos (bounded; truncates). */
static void put_escaped(char *buf, size_t cap, size_t *pos, const char *s)
{
    for (; s != NULL && *s != '\0' && *pos + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[(*pos)++] = '\\';
            buf[(*pos)++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            *pos += (size_t)snprintf(buf + *pos, cap - *pos, "\\u%04x", c);
        } else {
            buf[(*pos)++] = (char)c;
        }
    }
}

static void put_raw(char *buf, size_t cap, size_t *pos, const char *s)
{
    size_t n = strlen(s);
    if (*pos + n + 2 >= cap)
        n = cap - *pos - 2;
    memcpy(buf + *pos, s, n);
    *pos += n;
}

static void put_head(char *buf, size_t cap, size_t *pos, int level)
{
    struct timeval tv;
    struct tm tm;
    char ts[64];
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    *pos += (size_t)snprintf(buf + *pos, cap - *pos,
                             "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\"", ts,
                             (long)(tv.tv_usec / 1000),
                             eng_log_level_name(level));
}

static void emit(char *buf, size_t pos)
{
    ssize_t r;
    buf[pos++] = '\n';
    r = write(STDERR_FILENO, buf, pos);
    (void)r;
}

void eng_vlog(int level, const char *plugin, const char *fmt, va_list ap)
{
    char buf[2048], msg[1536];
    size_t pos = 0;
    if (level > atomic_load(&g_level))
        return;
    vsnprintf(msg, sizeof msg, fmt, ap);
    put_head(buf, sizeof buf, &pos, level);
    if (plugin != NULL) {
        put_raw(buf, sizeof buf, &pos, ",\"plugin\":\"");
        put_escaped(buf, sizeof buf, &pos, plugin);
        put_raw(buf, sizeof buf, &pos, "\"");
    }
    put_raw(buf, sizeof buf, &pos, ",\"msg\":\"");
    put_escaped(buf, sizeof buf, &pos, msg);
    put_raw(buf, sizeof buf, &pos, "\"}");
    emit(buf, pos);
}

void eng_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    eng_vlog(level, NULL, fmt, ap);
    va_end(ap);
}

void eng_log_request(const char *request_id, const char *operation,
                     int status, double latency_ms, const char *peer,
                     const char *error)
{
    char buf[2048];
    size_t pos = 0;
    int level = status >= 500 ? SIGNER_LOG_WARN : SIGNER_LOG_INFO;
    if (level > atomic_load(&g_level))
        return;
    put_head(buf, sizeof buf, &pos, level);
    put_raw(buf, sizeof buf, &pos, ",\"msg\":\"request\",\"request_id\":\"");
    put_escaped(buf, sizeof buf, &pos, request_id ? request_id : "");
    put_raw(buf, sizeof buf, &pos, "\",\"operation\":\"");
    put_escaped(buf, sizeof buf, &pos, operation ? operation : "");
    pos += (size_t)snprintf(buf + pos, sizeof buf - pos,
                            "\",\"status\":%d,\"latency_ms\":%.3f", status,
                            latency_ms);
    if (peer != NULL) {
        put_raw(buf, sizeof buf, &pos, ",\"peer\":\"");
        put_escaped(buf, sizeof buf, &pos, peer);
        put_raw(buf, sizeof buf, &pos, "\"");
    }
    if (error != NULL) {
        put_raw(buf, sizeof buf, &pos, ",\"error\":\"");
        put_escaped(buf, sizeof buf, &pos, error);
        put_raw(buf, sizeof buf, &pos, "\"");
    }
    put_raw(buf, sizeof buf, &pos, "}");
    emit(buf, pos);
}
