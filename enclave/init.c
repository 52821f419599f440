/*
 * /init of the enclave image: the first and only program the kernel starts
 * before signerd.  It mounts /proc, /dev and the tmpfs data directory,
 * brings up the loopback interface, and execs
 *     /usr/bin/signerd -c /etc/enclave-signer/enclave.conf
 * so signerd becomes PID 1.  There is no shell in the image.
 *
 * A Nitro enclave has no network card (it talks over vsock only).  The
 * emulated boot test (tests/enclave/boot.sh) runs the same image under qemu
 * with a virtio NIC; it passes `enclave_signer.qemu_net=1` on the kernel
 * command line and appends a second archive holding the virtio modules of
 * its kernel, the test's signerd config and its test PKI.  Only then does
 * init load the modules (in dependency order, with finit_module), give eth0
 * the user-networking address 10.0.2.15/24, and exec signerd with
 *     -c /etc/enclave-signer/enclave-test.conf
 * (emulated NSM, frames on TCP, KMS stand-in over TCP; that file exists
 * only in the test's extra archive, never in the image).  Without the flag
 * none of that code runs.  See docs/deploy-eks.md.
 *
 * Built with `gcc -static` by scripts/build_enclave_image.sh; no libc
 * functions that need NSS or locale files.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#define SIGNERD "/usr/bin/signerd"
#define CONF "/etc/enclave-signer/enclave.conf"
#define TEST_CONF "/etc/enclave-signer/enclave-test.conf"
#define DATA_DIR "/var/lib/enclave-signer"
#define QEMU_FLAG "enclave_signer.qemu_net=1"
#define MODULE_DIR "/lib/modules/qemu/"

/* The qemu test's network driver stack, in load order (each needs the ones
 * before it). */
static const char *const qemu_modules[] = {
    "virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev",
    "virtio_pci", "failover", "net_failover", "virtio_net", NULL
};

static void say(const char *what, int err)
{
    if (err != 0)
        dprintf(2, "init: %s: %s\n", what, strerror(err));
    else
        dprintf(2, "init: %s\n", what);
}

/* Mounts fstype on dir (created 0755 if missing); EBUSY (already mounted,
 * e.g. by another init that ran before us) is fine. */
static void mount_fs(const char *fstype, const char *dir, const char *opts)
{
    mkdir(dir, 0755);
    if (mount(fstype, dir, fstype, MS_NOSUID | MS_NOEXEC, opts) != 0 &&
        errno != EBUSY)
        say(dir, errno);
}

/* Points fds 0, 1 and 2 at the console, so signerd's log reaches it. */
static void open_console(void)
{
    int fd = open("/dev/console", O_RDWR | O_NOCTTY);

    if (fd < 0)
        return;
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (fd > 2)
        close(fd);
}

/* Sets the IFF_UP flag of interface name through socket s. */
static int link_up(int s, const char *name)
{
    struct ifreq ifr;

    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0)
        return -errno;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
        return -errno;
    return 0;
}

/* Sets an IPv4 address (SIOCSIFADDR) or netmask (SIOCSIFNETMASK). */
static int set_inet(int s, const char *name, unsigned long req, const char *a)
{
    struct ifreq ifr;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;

    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    sin->sin_family = AF_INET;
    if (inet_pton(AF_INET, a, &sin->sin_addr) != 1)
        return -EINVAL;
    return ioctl(s, req, &ifr) == 0 ? 0 : -errno;
}

/* 1 when the kernel command line carries the qemu test's flag. */
static int qemu_requested(void)
{
    char buf[4096];
    ssize_t n;
    int fd = open("/proc/cmdline", O_RDONLY);

    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strstr(buf, QEMU_FLAG) != NULL;
}

/* Loads the virtio network modules in order; stops at the first failure. */
static int load_qemu_modules(void)
{
    char path[128];
    int i, fd, rc;

    for (i = 0; qemu_modules[i] != NULL; i++) {
        snprintf(path, sizeof path, MODULE_DIR "%s.ko", qemu_modules[i]);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            say(path, errno);
            return -1;
        }
        rc = (int)syscall(SYS_finit_module, fd, "", 0);
        if (rc != 0 && errno != EEXIST) {
            say(path, errno);
            close(fd);
            return -1;
        }
        close(fd);
    }
    return 0;
}

/* Gives eth0 10.0.2.15/24 (qemu user networking), waiting up to 5 s for
 * the driver to register the interface. */
static void qemu_network(int s)
{
    struct timespec pause = { 0, 100 * 1000 * 1000 };
    int tries, rc = -ENODEV;

    if (load_qemu_modules() != 0)
        return;
    for (tries = 0; tries < 50; tries++) {
        rc = set_inet(s, "eth0", SIOCSIFADDR, "10.0.2.15");
        if (rc != -ENODEV)
            break;
        nanosleep(&pause, NULL);
    }
    if (rc == 0)
        rc = set_inet(s, "eth0", SIOCSIFNETMASK, "255.255.255.0");
    if (rc == 0)
        rc = link_up(s, "eth0");
    say(rc == 0 ? "qemu test network: eth0 10.0.2.15/24" : "eth0", -rc);
}

/* Boots the image: mounts, loopback, optional test network, exec signerd. */
int main(void)
{
    char *argv[] = { SIGNERD, "-c", CONF, NULL };
    char *const envp[] = { "PATH=/usr/bin", "TZ=UTC", NULL };
    int s, rc;

    mount_fs("devtmpfs", "/dev", "mode=0755");
    open_console();
    mount_fs("proc", "/proc", NULL);
    mount_fs("tmpfs", "/tmp", "mode=1777,size=16m");
    mount_fs("tmpfs", DATA_DIR, "mode=0700,size=64m");
    s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        say("socket", errno);
    } else {
        rc = link_up(s, "lo");
        say(rc == 0 ? "lo up" : "lo", -rc);
        if (qemu_requested()) {
            qemu_network(s);
            argv[2] = TEST_CONF;
        }
        close(s);
    }
    execve(SIGNERD, argv, envp);
    say("exec " SIGNERD, errno);
    return 1;
}
