// glibc's malloc tuning (mallopt); libc itself, nothing to link.
#include <malloc.h>
