//! The process's allocator: mimalloc, without transparent huge pages, and
//! made to give freed memory back to the system on every serving thread.
//!
//! Under `bench/callgrind.sh` glibc's malloc and free were about 11,000 of
//! the serving thread's 98,000 instructions per non-stream request
//! (`_int_malloc`, `_int_free`, `malloc_consolidate`); with mimalloc's
//! thread-local free lists the thread needs about 7,000 fewer.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sets the allocator up; first thing in `main`.
pub fn configure() {
    no_transparent_huge_pages();
}

/// Each serving thread's upkeep (`Shared::with_thread_tidy`, every second).
///
/// mimalloc keeps what a thread frees for that thread's reuse, and purges
/// it (gives it back to the system) once its purge delay (1 s) is over,
/// but only when that same thread next calls into the allocator in the
/// right way. After 16 concurrent 30 MB request bodies, RSS stayed at
/// 100-250 MB, idle or serving small requests. A collection on the thread
/// purges what is due: RSS is back at its start-up level a second or two
/// after the bodies are freed (`bench/memory.sh`).
///
/// Purging at once instead (a purge delay of 0) did the same without a
/// timer, but it purged and re-faulted pages all through steady load:
/// about 2,000 `madvise` calls a second under glommio, each a TLB
/// shootdown across the serving threads, and glommio's throughput fell
/// below glibc's.
pub fn tidy_thread() {
    // SAFETY: collects the calling thread's heap; no pointer is involved.
    unsafe { libmimalloc_sys::mi_collect(false) };
}

/// mimalloc reserves address space in large arenas, and each thread's
/// first small pages land in a different part of them. Where the kernel
/// backs anonymous memory with 2 MiB pages, every such touch makes 2 MiB
/// resident: idle RSS went from 14 MB to 35 MB. The build leaves out
/// mimalloc's own `MADV_HUGEPAGE` (its `no_thp` feature); this covers a
/// kernel whose `transparent_hugepage` mode is `always`.
#[cfg(target_os = "linux")]
fn no_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and only changes a
    // flag of this process. A kernel without it (before 3.15) keeps its
    // default, which costs only memory, so the result is not checked (this
    // runs before logging is set up).
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

#[cfg(not(target_os = "linux"))]
fn no_transparent_huge_pages() {}
