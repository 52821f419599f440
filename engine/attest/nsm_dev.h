/* Kernel ABI of the Nitro Security Module driver (include/uapi/linux/nsm.h,
 * absent from Debian 12's headers) and the two backend rows (internal). */
#ifndef ENG_ATTEST_NSM_DEV_H
#define ENG_ATTEST_NSM_DEV_H

#include <stdint.h>
#include <linux/ioctl.h>
#include "attest/attest.h"

struct eng_nsm_iovec {
    uint64_t addr; /* user address of the buffer */
    uint64_t len;  /* its length; for the response, written back */
};

struct eng_nsm_raw {
    struct eng_nsm_iovec request;
    struct eng_nsm_iovec response;
};

#define ENG_NSM_IOCTL_RAW _IOWR(0x0A, 0, struct eng_nsm_raw)

extern const eng_attest_methods eng_attest_nsm_methods;
extern const eng_attest_methods eng_attest_emulated_methods;

#endif
