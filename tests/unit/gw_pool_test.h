/* The gateway pool against one fake enclave: the test's end of the
 * pool's connection in *cfd, the listener in *lfd (the caller closes
 * both and stops the pool). */
#ifndef GW_POOL_TEST_H
#define GW_POOL_TEST_H

#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "gateway/pool.h"
#include "sockutil.h"

static inline eng_gw_pool *tu_pool_with_peer(int *lfd, int *cfd)
{
    static char ep[64];
    static const char *eps[1] = {ep};
    eng_gw_pool_conf pc;
    eng_gw_pool *p;
    char err[256];
    int port = 0;
    *lfd = tu_listen_local(&port);
    CU_ASSERT_FATAL(*lfd >= 0);
    snprintf(ep, sizeof ep, "127.0.0.1:%d", port);
    memset(&pc, 0, sizeof pc);
    pc.endpoints = eps;
    pc.n_endpoints = 1;
    pc.deadline_ms = 5000;
    pc.max_pipeline = 4;
    pc.reconnect_ms = 50;
    pc.max_frame = 65536;
    p = eng_gw_pool_start(&pc, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    *cfd = tu_accept_within(*lfd);
    CU_ASSERT_FATAL(*cfd >= 0);
    return p;
}

#endif
