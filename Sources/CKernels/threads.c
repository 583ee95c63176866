// Thread placement for the engine's worker pool (Linux; no-ops elsewhere).
#define _GNU_SOURCE
#include "ckernels.h"

#if defined(__linux__)
#include <sched.h>
#include <unistd.h>

int qk_current_cpu(void) { return sched_getcpu(); }

int qk_avoid_cpu(int cpu) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpu < 0 || n < 2) return -1;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
    if (!CPU_ISSET(cpu, &set) || CPU_COUNT(&set) < 2) return -1;
    CPU_CLR(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set);
}

int qk_allow_all_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    CPU_ZERO(&set);
    for (long i = 0; i < n && i < CPU_SETSIZE; i++) CPU_SET((int)i, &set);
    return sched_setaffinity(0, sizeof(set), &set);
}
#else
int qk_current_cpu(void) { return -1; }
int qk_avoid_cpu(int cpu) { (void)cpu; return -1; }
int qk_allow_all_cpus(void) { return -1; }
#endif
