/* port.c: port.h's shims. Each function has the native path of the systems that have one
 * and a POSIX fallback, which is all a -DFORGE_PORTABLE build compiles. */
#if defined(__APPLE__) && !defined(_DARWIN_C_SOURCE)
#define _DARWIN_C_SOURCE
#endif
#include "base/port.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#if defined(__linux__) && !defined(FORGE_PORTABLE)
#define PORT_LINUX 1
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/auxv.h>
#elif defined(__APPLE__) && !defined(FORGE_PORTABLE)
#define PORT_MACOS 1
#include <mach-o/dyld.h>
#include <mach/mach.h>
#include <sys/sysctl.h>
#endif

int port_cpu_count(void) {
    long n = 0;
#ifdef PORT_LINUX
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
#endif
#ifdef _SC_NPROCESSORS_ONLN
    if (n < 1) n = sysconf(_SC_NPROCESSORS_ONLN);
#endif
    return n < 1 ? 1 : n > 4096 ? 4096 : (int)n;
}

size_t port_mem_available(void) {
#if defined(PORT_LINUX)
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %zu kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
#elif defined(PORT_MACOS)
    vm_statistics64_data_t vs;
    mach_msg_type_number_t count = HOST_VM_INFO64_COUNT;
    if (host_statistics64(mach_host_self(), HOST_VM_INFO64, (host_info64_t)&vs, &count) != KERN_SUCCESS) return 0;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return 0;
    return ((size_t)vs.free_count + vs.inactive_count + vs.purgeable_count) * (size_t)page;
#else
    /* POSIX has no "available" figure; free pages where the system reports them */
#if defined(_SC_AVPHYS_PAGES)
    long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) return (size_t)pages * (size_t)page;
#endif
    return 0;
#endif
}

size_t port_l2_bytes(void) {
#if defined(PORT_LINUX)
    for (int i = 0; i < 8; i++) {
        char path[96], line[64];
        int level = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        FILE *f = fopen(path, "r");
        if (!f) break;
        if (fgets(line, sizeof line, f)) level = atoi(line);
        fclose(f);
        if (level != 2) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        if (!(f = fopen(path, "r"))) continue;
        bool data = fgets(line, sizeof line, f) && (!strncmp(line, "Unified", 7) || !strncmp(line, "Data", 4));
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if (!data || !(f = fopen(path, "r"))) continue;
        size_t kb = 0;
        char unit = 'K';
        int got = fgets(line, sizeof line, f) ? sscanf(line, "%zu%c", &kb, &unit) : 0;
        fclose(f);
        if (got >= 1) return unit == 'M' ? kb << 20 : kb << 10;
    }
    return 0;
#elif defined(PORT_MACOS)
    int64_t v = 0;
    size_t len = sizeof v;
    if (sysctlbyname("hw.perflevel0.l2cachesize", &v, &len, NULL, 0) == 0 && v > 0) return (size_t)v;
    len = sizeof v;
    if (sysctlbyname("hw.l2cachesize", &v, &len, NULL, 0) == 0 && v > 0) return (size_t)v;
    return 0;
#else
    return 0;
#endif
}

int port_exe_path(char *buf, size_t size) {
    if (!buf || size < 2) return -1;
#if defined(PORT_LINUX)
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    if (n <= 0 || (size_t)n >= size - 1) return -1;
    buf[n] = 0;
    return 0;
#elif defined(PORT_MACOS)
    uint32_t n = (uint32_t)(size > UINT32_MAX ? UINT32_MAX : size);
    return _NSGetExecutablePath(buf, &n) == 0 ? 0 : -1;
#else
    return -1; /* callers fall back to dladdr() or give up with a message */
#endif
}

int port_pipe_nonblock(int fds[2]) {
#if defined(PORT_LINUX)
    return pipe2(fds, O_NONBLOCK | O_CLOEXEC);
#else
    if (pipe(fds) != 0) return -1;
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(fds[i], F_GETFL);
        if (fl < 0 || fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) != 0 || fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0) {
            int e = errno;
            close(fds[0]);
            close(fds[1]);
            errno = e;
            return -1;
        }
    }
    return 0;
#endif
}

bool port_tcp_peer_gone(int fd) {
    if (fd < 0) return false;
#if defined(PORT_LINUX)
    struct tcp_info ti;
    socklen_t tl = sizeof ti;
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0 && ti.tcpi_state == TCP_CLOSE;
#else
    char b;
    int saved = errno;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    bool gone = n < 0 && (errno == ECONNRESET || errno == EPIPE || errno == ENOTCONN);
    errno = saved;
    return gone;
#endif
}

bool port_advise_hugepages(void *addr, size_t len) {
#if defined(PORT_LINUX) && defined(MADV_HUGEPAGE)
    return madvise(addr, len, MADV_HUGEPAGE) == 0;
#else
    (void)addr, (void)len; /* no such advice: the mapping keeps the system's page size */
    return false;
#endif
}

bool port_arm_dotprod(void) {
#if defined(__aarch64__) && defined(PORT_LINUX)
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__aarch64__) && defined(PORT_MACOS)
    int v = 0;
    size_t len = sizeof v;
    return sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, NULL, 0) == 0 && v != 0;
#else
    return false;
#endif
}

bool port_arm_i8mm(void) {
#if defined(__aarch64__) && defined(PORT_LINUX)
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1UL << 13)
#endif
    return (getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0;
#elif defined(__aarch64__) && defined(PORT_MACOS)
    int v = 0;
    size_t len = sizeof v;
    return sysctlbyname("hw.optional.arm.FEAT_I8MM", &v, &len, NULL, 0) == 0 && v != 0;
#else
    return false;
#endif
}
