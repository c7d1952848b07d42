/* heap.c: see heap.h. */
#include "heap.h"

#include <limits.h>
#include <malloc.h>

void heap_keep_freed(void)
{
    mallopt(M_MMAP_MAX, 0);               /* no block served by mmap */
    mallopt(M_TRIM_THRESHOLD, INT_MAX);   /* nor the heap's top given back */
}
