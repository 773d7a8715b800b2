#include "base/sysinfo.h"

#include "base/port.h"

size_t sys_mem_available(void) { return port_mem_available(); }
