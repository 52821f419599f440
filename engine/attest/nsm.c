/* The "nsm" row: the Nitro Security Module at /dev/nsm, one ioctl per
 * request.  Debian 12's kernel headers lack linux/nsm.h, so the uapi
 * structures are defined here (same layout as include/uapi/linux/nsm.h). */
#include "config.h"
#include "attest/attest.h"
#include "attest/nsm_dev.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

_Static_assert(sizeof(struct eng_nsm_iovec) == 16, "nsm_iovec is 16 bytes");
_Static_assert(sizeof(struct eng_nsm_raw) == 32, "nsm_raw is 32 bytes");
_Static_assert(ENG_NSM_IOCTL_RAW == 0xC0200A00u, "NSM_IOCTL_RAW number");

#define NSM_DEFAULT_DEVICE "/dev/nsm"

typedef struct nsm_state {
    int fd;
} nsm_state;

static int nsm_open(void **state, const eng_attest_config *cfg, char *err,
                    size_t err_len)
{
    const char *path = cfg->device ? cfg->device : NSM_DEFAULT_DEVICE;
    nsm_state *s;
    int fd;
    *state = NULL;
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_len,
                 "cannot open the NSM device %s: %s (only inside a Nitro "
                 "enclave; use attestation = \"emulated\" for development)",
                 path, strerror(errno));
        return SIGNER_ERR_UNAVAILABLE;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        close(fd);
        snprintf(err, err_len, "out of memory");
        return SIGNER_ERR_NOMEM;
    }
    s->fd = fd;
    *state = s;
    return SIGNER_OK;
}

/* One request/response round trip; resp holds ENG_NSM_RESPONSE_MAX bytes. */
static int nsm_call(nsm_state *s, unsigned char *resp, size_t *resp_len,
                    const unsigned char *req, size_t req_len, char *err,
                    size_t err_len)
{
    struct eng_nsm_raw raw;
    int r;
    *resp_len = 0;
    if (req_len > ENG_NSM_REQUEST_MAX) {
        snprintf(err, err_len, "NSM request over %d bytes",
                 ENG_NSM_REQUEST_MAX);
        return SIGNER_ERR_TOO_LARGE;
    }
    memset(&raw, 0, sizeof raw);
    raw.request.addr = (uint64_t)(uintptr_t)req;
    raw.request.len = req_len;
    raw.response.addr = (uint64_t)(uintptr_t)resp;
    raw.response.len = ENG_NSM_RESPONSE_MAX;
    do {
        r = ioctl(s->fd, ENG_NSM_IOCTL_RAW, &raw);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        snprintf(err, err_len, "NSM ioctl failed: %s", strerror(errno));
        return errno == ETIMEDOUT ? SIGNER_ERR_UNAVAILABLE
                                  : SIGNER_ERR_INTERNAL;
    }
    if (raw.response.len > ENG_NSM_RESPONSE_MAX) {
        snprintf(err, err_len, "NSM answer length out of range");
        return SIGNER_ERR_INTERNAL;
    }
    *resp_len = (size_t)raw.response.len;
    return SIGNER_OK;
}

static int nsm_get_random(void *state, unsigned char *out, size_t len)
{
    unsigned char req[16], resp[ENG_NSM_RESPONSE_MAX];
    size_t req_len, resp_len, got, done = 0;
    char err[160] = "";
    int rc = eng_nsm_encode_get_random(req, sizeof req, &req_len);
    while (rc == SIGNER_OK && done < len) {
        rc = nsm_call(state, resp, &resp_len, req, req_len, err, sizeof err);
        if (rc == SIGNER_OK)
            rc = eng_nsm_decode_get_random(out + done, len - done, &got, resp,
                                           resp_len, err, sizeof err);
        done += rc == SIGNER_OK ? got : 0;
    }
    eng_wipe(resp, sizeof resp);
    if (rc != SIGNER_OK) {
        eng_wipe(out, len);
        eng_log(SIGNER_LOG_ERROR, "NSM GetRandom failed: %s", err);
    }
    return rc;
}

static int nsm_attest(void *state, unsigned char **doc, size_t *doc_len,
                      const eng_attest_req *req, char *err, size_t err_len)
{
    unsigned char msg[ENG_NSM_REQUEST_MAX], *resp;
    size_t msg_len, resp_len;
    int rc;
    *doc = NULL;
    *doc_len = 0;
    rc = eng_nsm_encode_attestation(msg, sizeof msg, &msg_len, req);
    if (rc != SIGNER_OK) {
        snprintf(err, err_len, "cannot encode the NSM Attestation request");
        return rc;
    }
    resp = malloc(ENG_NSM_RESPONSE_MAX);
    if (resp == NULL)
        return SIGNER_ERR_NOMEM;
    rc = nsm_call(state, resp, &resp_len, msg, msg_len, err, err_len);
    if (rc == SIGNER_OK)
        rc = eng_nsm_decode_attestation(doc, doc_len, resp, resp_len, err,
                                        err_len);
    free(resp);
    return rc;
}

static void nsm_close(void *state)
{
    nsm_state *s = state;
    if (s == NULL)
        return;
    close(s->fd);
    free(s);
}

/* The /dev/nsm row of the attestation table. */
const eng_attest_methods eng_attest_nsm_methods = {
    .name = "nsm",
    .open = nsm_open,
    .get_random = nsm_get_random,
    .attest = nsm_attest,
    .close = nsm_close,
};
