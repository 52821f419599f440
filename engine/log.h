/* JSON-lines logging to stderr.  One write(2) per line, so lines from
 * several threads never interleave.  Never pass key material, secrets,
 * sealed blobs or request bodies. */
#ifndef ENG_LOG_H
#define ENG_LOG_H

#include <stdarg.h>
#include <signer/plugin.h>

/* Parses "error", "warn", "info", "debug"; -1 if unknown. */
int eng_log_level_parse(const char *name);
const char *eng_log_level_name(int level);
void eng_log_set_level(int level);
int eng_log_get_level(void);

/* {"ts":..., "level":..., ["plugin":...,] "msg":...} */
void eng_log(int level, const char *fmt, ...) SIGNER_PRINTF(2, 3);
void eng_vlog(int level, const char *plugin, const char *fmt, va_list ap);

/* One access-log line: request id, operation, status, latency, peer. */
void eng_log_request(const char *request_id, const char *operation,
                     int status, double latency_ms, const char *peer,
                     const char *error);

#endif
