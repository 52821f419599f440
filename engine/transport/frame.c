/*
 * The frames protocol of the host <-> enclave link (docs/frames.md): a
 * 4-byte big-endian length followed by that many bytes of UTF-8 JSON.
 * Frames are pipelined (up to max_pipeline in flight per connection) and
 * answered as they complete; each answer carries its request's "id".
 * A connection that earns ENG_MAX_PROTO_ERRORS transport errors (empty or
 * oversize frames) is closed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "util.h"

#include "transport_internal.h"

/* Returns the size of the first complete frame in buf (4 + payload), 0 if
 * more bytes are needed, -1 if the announced payload exceeds max_body.
 * *payload_len is set as soon as the 4-byte header is present, even when 0
 * is returned (so the caller knows how much to wait for). */
long eng_frame_parse(const unsigned char *buf, size_t len, size_t max_body,
                     size_t *payload_len)
{
    uint32_t n;

    if (payload_len != NULL)
        *payload_len = 0;
    if (len < 4)
        return 0;
    n = ((uint32_t)buf[0] << 24) | ((uint32_t)buf[1] << 16) |
        ((uint32_t)buf[2] << 8) | (uint32_t)buf[3];
    if ((size_t)n > max_body)
        return -1;
    if (payload_len != NULL)
        *payload_len = n;
    if (len - 4 < (size_t)n)
        return 0;
    return (long)n + 4;
}

/* Writes the big-endian length of a payload of len bytes (len must fit in
 * 32 bits; larger values are clamped, which the caller never sends). */
void eng_frame_header(unsigned char out[4], size_t len)
{
    uint32_t n = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;

    out[0] = (unsigned char)(n >> 24);
    out[1] = (unsigned char)(n >> 16);
    out[2] = (unsigned char)(n >> 8);
    out[3] = (unsigned char)n;
}

/* Formats a transport-made error payload; malloc'd, NULL on ENOMEM. */
char *eng_frame_error_body(const char *id_json, int status, const char *msg,
                           size_t *len_out)
{
    char *out = NULL;
    int n;

    n = asprintf(&out,
                 "{\"id\":%s,\"enclave_status\":%d,"
                 "\"enclave_result\":{\"error\":\"%s\"}}",
                 id_json != NULL ? id_json : "null", status, msg);
    if (n < 0)
        return NULL;
    if (len_out != NULL)
        *len_out = (size_t)n;
    return out;
}

/* Raw JSON text of the request's "id" (number or string), else "null". */
void eng_frame_request_id(const char *json, size_t len, char *out,
                          size_t out_len)
{
    cJSON *root = NULL, *id;
    char *txt = NULL;

    snprintf(out, out_len, "null");
    root = cJSON_ParseWithLength(json, len);
    if (root == NULL)
        goto cleanup;
    id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (id == NULL || !(cJSON_IsNumber(id) || cJSON_IsString(id)))
        goto cleanup;
    txt = cJSON_PrintUnformatted(id);
    if (txt != NULL && strlen(txt) < out_len)
        snprintf(out, out_len, "%s", txt);
cleanup:
    free(txt);
    cJSON_Delete(root);
}

/* ---- the frames protocol ------------------------------------------------------ */

/* Queues one frame; takes ownership of payload. */
static void frame_write(eng_conn *c, char *payload, size_t len)
{
    unsigned char hdr[4];

    eng_frame_header(hdr, len);
    evbuffer_add(bufferevent_get_output(c->bev), hdr, 4);
    eng_conn_write(c, payload, len);
}

/* Queues a transport-made error frame, with a rate-limited access line. */
static void frame_error(eng_conn *c, const char *id_json, int status,
                        const char *msg)
{
    const eng_server_callbacks *cb = eng_server_cb(c->loop->srv);
    size_t len = 0;
    char *p = cb->error_body != NULL
                  ? cb->error_body(cb->ctx, status, msg, id_json, &len)
                  : NULL, rid[17];

    if (p == NULL)
        p = eng_frame_error_body(id_json, status, msg, &len);
    if (status != 503)
        eng_conn_proto_error(c);
    eng_request_id(rid);
    eng_server_log_refusal(c->loop->srv, rid, status, c->peer, msg);
    if (p != NULL)
        frame_write(c, p, len);
}

/* Takes one complete frame of plen bytes off the input; wiped copy. */
static char *frame_take(eng_conn *c, size_t plen)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    char *body = malloc(plen + 1);

    evbuffer_drain(in, 4);
    if (body == NULL)
        return NULL;
    evbuffer_remove(in, body, plen);
    body[plen] = '\0';
    return body;
}

/* Hands one frame to the handler, or answers 503 with its id. */
static void frame_submit(eng_conn *c, char *body, size_t plen)
{
    char id[128], rid[17];
    int r;

    eng_request_id(rid);
    r = eng_conn_submit(c, body, plen, NULL, 0, 1, rid);
    if (r == 0)
        return;
    eng_frame_request_id(body, plen, id, sizeof id);
    eng_wipe(body, plen);
    free(body);
    frame_error(c, id, 503, r == -1 ? "server busy: too many requests in "
                                      "flight"
                                    : "out of memory");
}

/* Parses buffered frames and submits them, up to max_pipeline in flight. */
static void frames_on_read(eng_conn *c)
{
    const eng_limits *L = &c->loop->limits;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer *out = bufferevent_get_output(c->bev);

    while (!c->dead && !atomic_load(&c->loop->stop_requested) &&
           !c->closing && c->jobs < L->max_pipeline &&
           evbuffer_get_length(out) < ENG_OUT_HIGH) {
        size_t len = evbuffer_get_length(in), plen = 0;
        unsigned char hdr[4];
        char *body;

        if (len < 4)
            break;
        evbuffer_copyout(in, hdr, 4);
        if (eng_frame_parse(hdr, 4, L->max_body, &plen) < 0) {
            frame_error(c, "null", 413, "frame too large");
            c->closing = 1;
            break;
        }
        if (plen == 0) {
            evbuffer_drain(in, 4);
            c->req_start = 0;
            frame_error(c, "null", 400, "empty frame");
            continue;
        }
        if (len - 4 < plen)
            break;
        c->req_start = 0;
        if ((body = frame_take(c, plen)) == NULL) {
            eng_conn_close(c, "out of memory");
            return;
        }
        frame_submit(c, body, plen);
    }
}

/* A handler's answer: one frame (the handler echoes the id). */
static void frames_on_complete(eng_conn *c, eng_completion *d)
{
    if (d->resp != NULL && d->resp_len > 0) {
        frame_write(c, d->resp, d->resp_len);
        d->resp = NULL;
    } else {
        frame_error(c, "null", 500, "internal error");
    }
}

/* Frames: more input while fewer than max_pipeline are in flight. */
static int frames_want_read(const eng_conn *c)
{
    return c->jobs < c->loop->limits.max_pipeline;
}

/* One full frame plus some pipelined bytes. */
static size_t frames_read_high(const eng_limits *l)
{
    return 4 + l->max_body + ENG_READ_SLACK;
}

const eng_proto_ops eng_frames_ops = {
    .name = "frames",
    .on_read = frames_on_read,
    .on_complete = frames_on_complete,
    .want_read = frames_want_read,
    .read_high = frames_read_high,
};
