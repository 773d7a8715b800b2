/* sysinfo.h: facts about the machine the library sizes things by. */
#ifndef FORGE_BASE_SYSINFO_H
#define FORGE_BASE_SYSINFO_H

#include <stddef.h>

/* Bytes of memory the system can still give (MemAvailable), or 0 when unknown. */
size_t sys_mem_available(void);

#endif
