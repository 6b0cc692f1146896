/* Counts heap allocations made by any thread between nbp_alloc_start() and nbp_alloc_stop().
   Loaded with LD_PRELOAD by tests/test_no_alloc.py; glibc only (forwards to its __libc_*
   entry points, so no dlsym bootstrapping is needed). operator new goes through malloc. */
#include <errno.h>
#include <stddef.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);

static int armed;
static long count;

static void note(void) {
  if (__atomic_load_n(&armed, __ATOMIC_RELAXED)) __atomic_fetch_add(&count, 1, __ATOMIC_RELAXED);
}

void* malloc(size_t n) { note(); return __libc_malloc(n); }
void* calloc(size_t a, size_t b) { note(); return __libc_calloc(a, b); }
void* realloc(void* p, size_t n) { note(); return __libc_realloc(p, n); }
void* memalign(size_t al, size_t n) { note(); return __libc_memalign(al, n); }
void* aligned_alloc(size_t al, size_t n) { note(); return __libc_memalign(al, n); }
int posix_memalign(void** out, size_t al, size_t n) {
  note();
  void* p = __libc_memalign(al, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

void nbp_alloc_start(void) {
  __atomic_store_n(&count, 0, __ATOMIC_SEQ_CST);
  __atomic_store_n(&armed, 1, __ATOMIC_SEQ_CST);
}
long nbp_alloc_stop(void) {
  __atomic_store_n(&armed, 0, __ATOMIC_SEQ_CST);
  return __atomic_load_n(&count, __ATOMIC_SEQ_CST);
}
