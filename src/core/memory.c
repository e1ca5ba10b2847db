/*
 * memory.c - see memory.h.
 */
#include "core/memory.h"

#include <stdint.h>
#include <sys/mman.h>

#define PREFAULT_MIN ((size_t)256 << 10)
#define PAGE ((uintptr_t)4096)

void basira_prefault(void *p, size_t n)
{
#ifdef MADV_POPULATE_WRITE
    if (!p || n < PREFAULT_MIN)
        return;
    /* Whole pages inside the buffer only: the pages at its ends may be shared with
     * other allocations, and advice is given on page boundaries. */
    uintptr_t start = ((uintptr_t)p + PAGE - 1) & ~(PAGE - 1);
    uintptr_t end = ((uintptr_t)p + n) & ~(PAGE - 1);
    if (end > start)
        (void)madvise((void *)start, end - start, MADV_POPULATE_WRITE);
#else
    (void)p;
    (void)n;
#endif
}

size_t basira_discard(void *p, size_t n)
{
    if (!p)
        return 0;
    uintptr_t start = ((uintptr_t)p + PAGE - 1) & ~(PAGE - 1);
    uintptr_t end = ((uintptr_t)p + n) & ~(PAGE - 1);
    if (end <= start || madvise((void *)start, end - start, MADV_DONTNEED))
        return 0;
    return (size_t)(end - (uintptr_t)p);
}
