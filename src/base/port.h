/* port.h: the few operating-system facts and calls that differ between Linux, macOS and
 * other POSIX systems, each with a plain POSIX fallback. Linux and macOS get their native
 * calls; building with -DFORGE_PORTABLE compiles only the fallbacks (CI builds and tests
 * that on Linux, so the paths macOS or a BSD would take keep compiling and working).
 * Every function is safe to call from any thread and never fails loudly: "unknown" is a
 * 0, -1 or false the caller can act on. */
#ifndef FORGE_BASE_PORT_H
#define FORGE_BASE_PORT_H

#include <stdbool.h>
#include <stddef.h>

/* CPUs this process may run on (Linux: its affinity mask), at least 1. */
int port_cpu_count(void);
/* Bytes of memory the system can still give without swapping (Linux: MemAvailable; macOS:
 * free + inactive + purgeable pages), or 0 when unknown. */
size_t port_mem_available(void);
/* Bytes of one core's L2 cache, or 0 when unknown: sysfs (cpu0's unified level-2 cache) on
 * Linux, hw.perflevel0.l2cachesize / hw.l2cachesize on macOS; 0 in the portable build. */
size_t port_l2_bytes(void);
/* The running executable's path into buf (NUL-terminated); -1 when unknown or too long. */
int port_exe_path(char *buf, size_t size);
/* pipe(2) with both ends close-on-exec and non-blocking; 0 or -1 (errno set). */
int port_pipe_nonblock(int fds[2]);
/* Whether the TCP peer of a connected socket reset or fully closed it (Linux: TCP_INFO's
 * state; elsewhere a non-blocking peek that reports ECONNRESET/EPIPE). */
bool port_tcp_peer_gone(int fd);
/* Asks for transparent huge pages on a mapping; true when the advice was taken. */
bool port_advise_hugepages(void *addr, size_t len);
/* AArch64: whether the CPU has the SDOT/UDOT dot product instructions (FEAT_DotProd), by
 * getauxval(AT_HWCAP) on Linux and sysctlbyname on macOS; false elsewhere or when unknown. */
bool port_arm_dotprod(void);
/* AArch64 FEAT_I8MM (SMMLA): getauxval(AT_HWCAP2) & HWCAP2_I8MM on Linux,
 * hw.optional.arm.FEAT_I8MM on macOS; false elsewhere and in the portable build. */
bool port_arm_i8mm(void);

#endif
