/*
 * fuzz_frame: the frame decoder eng_frame_parse over arbitrary bytes,
 * delivered in chunks split at fuzzer-chosen points (as a socket would),
 * plus eng_frame_header and eng_frame_request_id on every frame found.
 *
 * Input: [0..1] max_body selector, [2] number of split points k (0..15),
 * [3..3+2k) split offsets (16-bit, modulo the stream length), then the
 * stream itself.
 *
 * Invariants: a result is -1, 0 or 4..len; a positive result is 4 + the
 * announced length, which is *payload_len and at most max_body; -1 exactly
 * when the announced length exceeds max_body; 0 with *payload_len set as
 * soon as the header is there; the frames decoded from the chunked stream
 * are those decoded from the whole buffer; the header re-encodes to the same
 * 4 bytes; the request id of a frame is JSON that an error frame can embed.
 */
#include "config.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "fuzz.h"
#include "transport/transport.h"
#include "transport/transport_internal.h"

#define MAX_FRAMES 4096

/* Checks one call of eng_frame_parse on buf[0..len) against the header
 * decoded here independently.  Returns its result. */
static long frame_check(const unsigned char *buf, size_t len, size_t max_body,
                        size_t *plen_out)
{
    size_t plen = (size_t)-1;
    long r = eng_frame_parse(buf, len, max_body, &plen);

    FUZZ_CHECK(r >= -1);
    FUZZ_CHECK(r <= 0 || (size_t)r <= len);
    if (len < 4) {
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(plen == 0);
    } else {
        size_t n = ((size_t)buf[0] << 24) | ((size_t)buf[1] << 16) |
                   ((size_t)buf[2] << 8) | (size_t)buf[3];
        if (n > max_body) {
            FUZZ_CHECK(r == -1);
        } else {
            FUZZ_CHECK(plen == n);
            if (len - 4 >= n)
                FUZZ_CHECK(r == (long)(n + 4));
            else
                FUZZ_CHECK(r == 0);
        }
    }
    /* a NULL payload_len is allowed */
    FUZZ_CHECK(eng_frame_parse(buf, len, max_body, NULL) == r);
    *plen_out = plen;
    return r;
}

/* Request id of a frame payload, into buffers of several sizes; each must
 * be NUL-terminated and embeddable in an error frame that parses back. */
static void request_id_check(const unsigned char *payload, size_t plen)
{
    static const size_t caps[] = {1, 5, 16, 128};
    char *copy = fuzz_dup(payload, plen, 0);
    size_t i;

    for (i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        char id[128];
        size_t elen = 0;
        char *body;
        cJSON *j;

        memset(id, 'x', sizeof id);
        eng_frame_request_id(copy, plen, id, caps[i]);
        FUZZ_CHECK(memchr(id, '\0', caps[i]) != NULL);
        if (caps[i] < 5)
            continue; /* too small even for "null" */
        body = eng_frame_error_body(id, 400, "bad request", &elen);
        FUZZ_CHECK(body != NULL && strlen(body) == elen);
        j = cJSON_Parse(body);
        FUZZ_CHECK(j != NULL);
        FUZZ_CHECK(cJSON_GetObjectItemCaseSensitive(j, "id") != NULL);
        cJSON_Delete(j);
        free(body);
    }
    free(copy);
}

FUZZ_INIT(frame)
{
    (void)argc;
    (void)argv;
    return 0;
}

FUZZ_TARGET(frame)
{
    static const size_t big[] = {0, 1, 3, 4, 64, 1u << 20, 64u << 20,
                                 (size_t)-1};
    size_t max_body, nsplit, splits[16], i, pos;
    size_t whole[MAX_FRAMES], nwhole = 0, nstream = 0;
    long whole_end = 0; /* -1: stopped by a too-large frame */
    const unsigned char *s;
    unsigned char *acc = NULL;
    size_t slen, acclen = 0;
    int saw_too_large = 0;

    if (size < 3)
        return 0;
    max_body = data[0] == 0xff ? big[data[1] & 7]
                               : ((size_t)data[0] << 8 | data[1]);
    nsplit = data[2] & 15;
    if (size < 3 + 2 * nsplit)
        return 0;
    s = data + 3 + 2 * nsplit;
    slen = size - 3 - 2 * nsplit;
    for (i = 0; i < nsplit; i++) {
        size_t off = (size_t)data[3 + 2 * i] << 8 | data[4 + 2 * i];
        splits[i] = slen ? off % (slen + 1) : 0;
    }
    /* sort the split points (insertion sort, k <= 15) */
    for (i = 1; i < nsplit; i++) {
        size_t v = splits[i], j = i;
        while (j > 0 && splits[j - 1] > v) {
            splits[j] = splits[j - 1];
            j--;
        }
        splits[j] = v;
    }

    /* 1. The whole stream at once, every frame in its own exact buffer. */
    pos = 0;
    for (;;) {
        size_t rest = slen - pos, plen;
        unsigned char *b = (unsigned char *)fuzz_dup(s + pos, rest, 0);
        long r = frame_check(b, rest, max_body, &plen);
        if (r > 0) {
            unsigned char hdr[4];
            eng_frame_header(hdr, plen);
            FUZZ_CHECK(memcmp(hdr, b, 4) == 0);
            request_id_check(b + 4, plen);
            if (nwhole < MAX_FRAMES)
                whole[nwhole] = (size_t)r;
            nwhole++;
            pos += (size_t)r;
        }
        free(b);
        if (r <= 0) {
            whole_end = r;
            break;
        }
    }

    /* 2. The same bytes arriving in chunks: accumulate, decode, consume. */
    pos = 0;
    for (i = 0; i <= nsplit; i++) {
        size_t end = i < nsplit ? splits[i] : slen;
        long r = 0;
        if (end < pos)
            continue;
        /* grow acc to exactly acclen + (end - pos) bytes */
        {
            size_t n = acclen + (end - pos);
            unsigned char *na = malloc(n ? n : 1);
            if (na == NULL)
                abort();
            if (acclen)
                memcpy(na, acc, acclen);
            if (end > pos)
                memcpy(na + acclen, s + pos, end - pos);
            free(acc);
            acc = na;
            acclen = n;
            pos = end;
        }
        for (;;) {
            size_t plen;
            r = frame_check(acc, acclen, max_body, &plen);
            if (r <= 0)
                break;
            if (nstream < MAX_FRAMES && nstream < nwhole)
                FUZZ_CHECK(whole[nstream] == (size_t)r);
            nstream++;
            memmove(acc, acc + r, acclen - (size_t)r);
            acclen -= (size_t)r;
        }
        if (r < 0) {
            /* the connection would be closed here */
            saw_too_large = 1;
            break;
        }
    }
    FUZZ_CHECK(nstream == nwhole);
    FUZZ_CHECK(saw_too_large == (whole_end == -1));
    free(acc);
    return 0;
}
