/*
 * Listen addresses: parsing "HOST:PORT", "[v6]:PORT", "unix:/path" and
 * "vsock:CID:PORT", creating the listening sockets, and the listeners that
 * accept on the server thread: each has its own connection budget
 * (max_connections), and TCP peers a cap per address (max_per_peer).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/vm_sockets.h>
#include <netinet/tcp.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "transport_internal.h"

#define LISTEN_BACKLOG 511
#define ACCEPT_RETRY_MS 100 /* listener pause after EMFILE and co. */

/* Parses a decimal number in [0, max] spanning all of s; -1 if invalid. */
static long parse_num(const char *s, unsigned long max)
{
    char *end;
    unsigned long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    return (long)v;
}

/* "unix:/path" */
static int parse_unix(const char *path, eng_sockaddr *out, char *err,
                      size_t err_len)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)&out->ss;
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof sun->sun_path) {
        snprintf(err, err_len, "unix socket path empty or longer than %zu",
                 sizeof sun->sun_path - 1);
        return -1;
    }
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n + 1);
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    out->family = AF_UNIX;
    return 0;
}

/* "vsock:CID:PORT", CID a number or "any"; port 0 means any port. */
static int parse_vsock(const char *rest, eng_sockaddr *out, char *err,
                       size_t err_len)
{
    struct sockaddr_vm *svm = (struct sockaddr_vm *)&out->ss;
    char cid_s[16];
    const char *colon = strchr(rest, ':');
    long cid, port;
    size_t cl;

    if (colon == NULL || (cl = (size_t)(colon - rest)) == 0 ||
        cl >= sizeof cid_s) {
        snprintf(err, err_len, "expected vsock:CID:PORT");
        return -1;
    }
    memcpy(cid_s, rest, cl);
    cid_s[cl] = '\0';
    if (strcmp(cid_s, "any") == 0)
        cid = (long)VMADDR_CID_ANY;
    else if ((cid = parse_num(cid_s, UINT32_MAX)) < 0) {
        snprintf(err, err_len, "invalid vsock CID");
        return -1;
    }
    if ((port = parse_num(colon + 1, UINT32_MAX)) < 0) {
        snprintf(err, err_len, "invalid vsock port");
        return -1;
    }
    memset(svm, 0, sizeof *svm);
    svm->svm_family = AF_VSOCK;
    svm->svm_cid = (unsigned int)cid;
    svm->svm_port = port == 0 ? VMADDR_PORT_ANY : (unsigned int)port;
    out->len = sizeof *svm;
    out->family = AF_VSOCK;
    return 0;
}

/* "HOST:PORT" or "[V6]:PORT"; HOST may be a name, "*" or empty (any). */
static int parse_inet(const char *address, eng_sockaddr *out, char *err,
                      size_t err_len)
{
    char host[256];
    const char *port_s;
    struct addrinfo hints, *res = NULL;
    long port;
    int rc;

    if (address[0] == '[') {
        const char *close = strchr(address, ']');
        size_t hl;
        if (close == NULL || close[1] != ':') {
            snprintf(err, err_len, "expected [IPV6]:PORT");
            return -1;
        }
        hl = (size_t)(close - address - 1);
        if (hl == 0 || hl >= sizeof host) {
            snprintf(err, err_len, "invalid IPv6 address");
            return -1;
        }
        memcpy(host, address + 1, hl);
        host[hl] = '\0';
        port_s = close + 2;
    } else {
        const char *colon = strrchr(address, ':');
        size_t hl;
        if (colon == NULL) {
            snprintf(err, err_len, "expected HOST:PORT, unix:PATH or "
                                   "vsock:CID:PORT");
            return -1;
        }
        hl = (size_t)(colon - address);
        if (hl >= sizeof host || memchr(address, ':', hl) != NULL) {
            snprintf(err, err_len, "invalid host (IPv6 needs [brackets])");
            return -1;
        }
        memcpy(host, address, hl);
        host[hl] = '\0';
        port_s = colon + 1;
    }
    if ((port = parse_num(port_s, 65535)) < 0) {
        snprintf(err, err_len, "invalid port");
        return -1;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (host[0] == '\0' || strcmp(host, "*") == 0) {
        strcpy(host, "0.0.0.0");
        hints.ai_flags |= AI_NUMERICHOST;
    }
    rc = getaddrinfo(host, port_s, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, err_len, "cannot resolve host: %s", gai_strerror(rc));
        if (res != NULL)
            freeaddrinfo(res);
        return -1;
    }
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    out->family = res->ai_family;
    freeaddrinfo(res);
    return 0;
}

/* Parses a listen address; 0, or -1 with err set. */
int eng_listen_parse(const char *address, eng_sockaddr *out, char *err,
                     size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (address == NULL || address[0] == '\0') {
        snprintf(err, err_len, "empty address");
        return -1;
    }
    if (strncmp(address, "unix:", 5) == 0)
        return parse_unix(address + 5, out, err, err_len);
    if (strncmp(address, "vsock:", 6) == 0)
        return parse_vsock(address + 6, out, err, err_len);
    return parse_inet(address, out, err, err_len);
}

/* Removes path if it is a unix socket nobody listens on any more.  0 if the
 * path is now free, -1 with err set (live socket, or not a socket). */
static int unix_remove_stale(const struct sockaddr_un *sun, socklen_t len,
                             char *err, size_t err_len)
{
    struct stat st;
    int fd, rc;

    if (lstat(sun->sun_path, &st) != 0)
        return 0;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, err_len, "exists and is not a socket");
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, err_len, "socket: %s", strerror(errno));
        return -1;
    }
    rc = connect(fd, (const struct sockaddr *)sun, len);
    close(fd);
    if (rc == 0) {
        snprintf(err, err_len, "another process is listening on it");
        return -1;
    }
    if (unlink(sun->sun_path) != 0 && errno != ENOENT) {
        snprintf(err, err_len, "cannot remove stale socket: %s",
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* Creates, binds and listens; the fd or -1 with "ADDRESS: reason". */
int eng_listen_open(const char *address, char *err, size_t err_len)
{
    eng_sockaddr sa;
    char why[200];
    int fd = -1, one = 1, bound = 0;

    why[0] = '\0';
    if (eng_listen_parse(address, &sa, why, sizeof why) != 0)
        goto fail;
    if (sa.family == AF_UNIX &&
        unix_remove_stale((struct sockaddr_un *)&sa.ss, sa.len, why,
                          sizeof why) != 0)
        goto fail;
    fd = socket(sa.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, sizeof why, "socket: %s", strerror(errno));
        goto fail;
    }
    if (sa.family == AF_INET || sa.family == AF_INET6)
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sa.family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa.ss, sa.len) != 0) {
        snprintf(why, sizeof why, "bind: %s", strerror(errno));
        goto fail;
    }
    bound = 1;
    if (sa.family == AF_UNIX &&
        chmod(((struct sockaddr_un *)&sa.ss)->sun_path, 0660) != 0) {
        snprintf(why, sizeof why, "chmod: %s", strerror(errno));
        goto fail;
    }
    if (listen(fd, LISTEN_BACKLOG) != 0) {
        snprintf(why, sizeof why, "listen: %s", strerror(errno));
        goto fail;
    }
    return fd;
fail:
    if (fd >= 0) {
        if (sa.family == AF_UNIX && bound)
            (void)unlink(((struct sockaddr_un *)&sa.ss)->sun_path);
        close(fd);
    }
    snprintf(err, err_len, "listen %s: %s", address ? address : "(null)",
             why);
    return -1;
}

/* Printable address of a socket address; never fails. */
void eng_sockaddr_print(const struct sockaddr *sa, socklen_t len, char *out,
                        size_t out_len)
{
    char host[INET6_ADDRSTRLEN];

    if (sa == NULL || len < sizeof(sa_family_t)) {
        snprintf(out, out_len, "unknown");
        return;
    }
    switch (sa->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(out, out_len, "%s:%u", host, ntohs(in->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(out, out_len, "[%s]:%u", host, ntohs(in6->sin6_port));
        break;
    }
    case AF_UNIX: {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        if (len > off && sun->sun_path[0] != '\0')
            snprintf(out, out_len, "unix:%.*s", (int)(len - off),
                     sun->sun_path);
        else
            snprintf(out, out_len, "unix");
        break;
    }
    case AF_VSOCK: {
        const struct sockaddr_vm *svm = (const struct sockaddr_vm *)sa;
        snprintf(out, out_len, "vsock:%u:%u", svm->svm_cid, svm->svm_port);
        break;
    }
    default:
        snprintf(out, out_len, "family-%d", (int)sa->sa_family);
    }
}

/* Local address of fd into out; the port (TCP, vsock) or -1. */
int eng_listen_describe(int fd, char *out, size_t out_len)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    memset(&ss, 0, sizeof ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(out, out_len, "unknown");
        return -1;
    }
    eng_sockaddr_print((struct sockaddr *)&ss, len, out, out_len);
    switch (ss.ss_family) {
    case AF_INET:
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    case AF_INET6:
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    case AF_VSOCK: {
        /* vsock ports are 32-bit; one that does not fit an int is -1 */
        unsigned int p = ((struct sockaddr_vm *)&ss)->svm_port;
        return p <= INT_MAX ? (int)p : -1;
    }
    default:
        return -1;
    }
}

/* ---- listeners ------------------------------------------------------------- */

/* Address bytes of a TCP peer into ip (4 or 16 bytes); 0 for others. */
int eng_peer_ip(const struct sockaddr *addr, unsigned char ip[16])
{
    if (addr == NULL)
        return 0;
    if (addr->sa_family == AF_INET) {
        memcpy(ip, &((const struct sockaddr_in *)addr)->sin_addr, 4);
        return 4;
    }
    if (addr->sa_family == AF_INET6) {
        memcpy(ip, &((const struct sockaddr_in6 *)addr)->sin6_addr, 16);
        return 16;
    }
    return 0;
}

/* Closes a connection refused at accept, with a warning once a second. */
static void refuse(eng_lsn *ls, int fd, const char *why, int limit)
{
    uint64_t now = eng_now_ms();

    close(fd);
    eng_server_counters(ls->srv)->rejected_conns++;
    if (now - ls->last_reject_log >= 1000) {
        ls->last_reject_log = now;
        tlog(TLOG_WARN, "%s (%d) reached on %s: refusing connections", why,
             limit, ls->addr);
    }
}

/* Accepts on the server thread and hands the socket to a loop; over the
 * listener's budget the chosen loop first evicts its oldest idle
 * connection of this listener, and without one the socket is closed. */
static void accept_cb(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *addr, int alen, void *arg)
{
    eng_lsn *ls = arg;
    eng_server *s = ls->srv;
    const eng_limits *L = eng_server_limits(s);
    unsigned char ip[16];
    int iplen = eng_peer_ip(addr, ip), evict = 0, one = 1;
    eng_loop *lp;

    (void)l;
    if (eng_server_draining(s)) {
        close(fd);
        return;
    }
    if (iplen > 0 && !eng_peer_take(s, ls, ip, iplen)) {
        refuse(ls, fd, "max_per_peer", L->max_per_peer);
        return;
    }
    lp = eng_server_pick_loop(s, ls, &evict);
    if (lp == NULL) {
        if (iplen > 0)
            eng_peer_release(s, ls, ip, iplen);
        refuse(ls, fd, "max_connections", L->max_connections);
        return;
    }
    if (iplen > 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    atomic_fetch_add(&ls->n_conns, 1);
    if (eng_loop_handoff(lp, fd, ls, addr, alen, evict) != 0) {
        atomic_fetch_sub(&ls->n_conns, 1);
        if (iplen > 0)
            eng_peer_release(s, ls, ip, iplen);
        tlog(TLOG_ERROR, "out of memory accepting a connection on %s",
             ls->addr);
        close(fd);
    }
}

/* Accept error (EMFILE, ENFILE, ENOBUFS...): pause the listener briefly
 * instead of spinning on a readable socket we cannot accept from. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    eng_lsn *ls = arg;
    struct timeval tv = {0, ACCEPT_RETRY_MS * 1000};
    int e = EVUTIL_SOCKET_ERROR();

    tlog(TLOG_WARN, "accept on %s: %s", ls->addr, strerror(e));
    evconnlistener_disable(l);
    evtimer_add(ls->retry, &tv);
}

/* Re-enables a listener paused by accept_error_cb. */
static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    eng_lsn *ls = arg;

    (void)fd;
    (void)what;
    if (ls->l != NULL && !eng_server_draining(ls->srv))
        evconnlistener_enable(ls->l);
}

/* Binds listener ls for spec sp on base; 0, or -1 with err. */
int eng_lsn_open(eng_server *s, eng_lsn *ls, const eng_listen_spec *sp,
                 char *err, size_t err_len)
{
    struct event_base *base = NULL;
    int fd;

    ls->srv = s;
    ls->proto = sp->proto;
    ls->port = -1;
    ls->ops = sp->proto == ENG_PROTO_HTTP     ? &eng_http_ops
              : sp->proto == ENG_PROTO_HTTPS  ? &eng_http_ops
              : sp->proto == ENG_PROTO_HEALTH ? &eng_http_ops
              : sp->proto == ENG_PROTO_FRAMES ? &eng_frames_ops
              : sp->proto == ENG_PROTO_RELAY  ? &eng_relay_ops
                                              : NULL;
    ls->tls_ctx = sp->proto == ENG_PROTO_HTTPS ? eng_server_tls(s) : NULL;
    if (sp->proto == ENG_PROTO_HTTPS && ls->tls_ctx == NULL) {
        snprintf(err, err_len, "listen %s: https needs a tls = { cert; key; "
                 "} group", sp->address);
        return -1;
    }
    if (ls->ops == NULL) {
        snprintf(err, err_len, "listen %s: unknown protocol %d", sp->address,
                 sp->proto);
        return -1;
    }
    fd = eng_listen_open(sp->address, err, err_len);
    if (fd < 0)
        return -1;
    ls->port = eng_listen_describe(fd, ls->addr, sizeof ls->addr);
    if (strncmp(sp->address, "unix:", 5) == 0)
        ls->unix_path = strdup(sp->address + 5);
    base = eng_server_base(s);
    ls->retry = evtimer_new(base, accept_retry_cb, ls);
    ls->l = evconnlistener_new(base, accept_cb, ls,
                               LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                               0, fd);
    if (ls->l == NULL || ls->retry == NULL) {
        if (ls->l == NULL)
            close(fd);
        snprintf(err, err_len, "listen %s: out of memory", sp->address);
        return -1;
    }
    evconnlistener_set_error_cb(ls->l, accept_error_cb);
    tlog(TLOG_INFO, "listening on %s %s", ls->ops->name, ls->addr);
    return 0;
}

/* Stops accepting; removes the unix socket file. */
void eng_lsn_close(eng_lsn *ls)
{
    if (ls->l != NULL) {
        evconnlistener_free(ls->l);
        ls->l = NULL;
        if (ls->unix_path != NULL)
            (void)unlink(ls->unix_path);
    }
    if (ls->retry != NULL) {
        event_free(ls->retry);
        ls->retry = NULL;
    }
    free(ls->unix_path);
    ls->unix_path = NULL;
}
