/* heap.h: keep freed blocks in glibc's heap (a process-level choice, for programs).
 *
 * Branch and bound allocates and frees large per-batch workspaces; each one
 * glibc serves by mmap comes back as fresh pages to fault in and zero. From
 * the heap, freed blocks are reused: on dist_shift's input split (verify) 37 %
 * more domains per second; on the ConvSmall CNNs (benchmarks/compare) a
 * quarter less wall time. Programs call this once at the start of main(). */
#ifndef CORE_HEAP_H
#define CORE_HEAP_H

void heap_keep_freed(void);

#endif
