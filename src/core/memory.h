/*
 * memory.h - internal: hints to the kernel about fresh buffers.
 */
#ifndef BASIRA_CORE_MEMORY_H
#define BASIRA_CORE_MEMORY_H

#include <stddef.h>

/*
 * Have the kernel back the pages of a freshly allocated buffer that is about to be
 * filled entirely (a file read, decoded pixels, network weights), in one system
 * call, instead of one page fault per 4 KiB page as the buffer is first written.
 * On the 2-core build machine (a VM) a fault costs several microseconds: reading
 * the 2.8 MB bundled model into a malloc'd buffer takes 8 ms, 2 ms once the buffer
 * is prefaulted (measured; see bench/triage for the end-to-end effect). A hint
 * only: buffers under 256 KiB and kernels without MADV_POPULATE_WRITE (before
 * Linux 5.14) are left alone, and nothing can fail.
 */
void basira_prefault(void *p, size_t n);

/*
 * Give the kernel back the whole pages inside [p, p + n) whose contents are no longer
 * needed, though the buffer stays allocated (a network's float32 weights once the
 * prepared plan holds them, layer after layer). Those pages read as zeros afterwards.
 * Returns how many bytes from p on are given back or lie before the first whole page:
 * the next range starts there, so that consecutive calls drop every page once. A hint
 * only: 0 when nothing was given back (fewer than one whole page, or the kernel said no).
 */
size_t basira_discard(void *p, size_t n);

#endif
