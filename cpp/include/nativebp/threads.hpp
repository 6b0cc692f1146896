// The engine's own thread pool. Not OpenMP, for three reasons measured on the 2-core machine:
// libgomp hangs in a forked child once the parent has used it; its end-of-region barrier waits
// for every thread, so a thread that shares a core with another busy process stalls each
// region for a whole time slice; and it cannot be told apart from torch's or numpy's runtimes.
// Here the caller takes part in its own job and claims tasks from an atomic counter, so a
// worker that is not running right now simply does no tasks; a worker preempted in the middle
// of a task makes the pool back off to the caller alone for a while (wait_done); fork() leaves
// a working pool.
#pragma once
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define NATIVEBP_PAUSE() _mm_pause()
#else
#define NATIVEBP_PAUSE() ((void)0)
#endif

namespace nativebp::threads {

using Index = std::ptrdiff_t;

// Threads the process may run on (its CPU affinity), at least 1.
inline int available_cpus() {
#ifdef __linux__
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? int(n) : 1;
}

// NATIVEBP_NUM_THREADS, else OMP_NUM_THREADS (its first entry), else the available CPUs.
inline int default_threads() {
  for (const char* var : {"NATIVEBP_NUM_THREADS", "OMP_NUM_THREADS"}) {
    const char* s = std::getenv(var);
    if (s && *s) {
      const long n = std::strtol(s, nullptr, 10);
      if (n >= 1) return int(std::min<long>(n, 4096));
    }
  }
  return available_cpus();
}

class Pool {
 public:
  static constexpr int kMaxThreads = 4096;

  // The process-wide pool; never destroyed, so interpreter exit never waits on a worker.
  static Pool& get() {
    static Pool* pool = [] {
      Pool* p = new Pool();
      pthread_atfork(&Pool::before_fork, &Pool::after_fork_parent, &Pool::after_fork_child);
      return p;
    }();
    return *pool;
  }

  int size() const { return target_.load(std::memory_order_relaxed); }
  void resize(int n) { target_.store(std::max(1, std::min(n, kMaxThreads)), std::memory_order_relaxed); }
  // How long an idle worker spins before it sleeps (microseconds); NATIVEBP_SPIN_US sets it.
  void set_spin_us(int us) { spin_us_.store(std::max(0, us), std::memory_order_relaxed); }
  int spin_us() const { return spin_us_.load(std::memory_order_relaxed); }
  // Jobs that waited on a late worker and made the pool back off (for the benchmark's notes).
  std::int64_t stalls() const { return stalls_.load(std::memory_order_relaxed); }

  // Calls f(i) for every i in [0, n), on up to `threads` threads (<= 0: the pool's size),
  // the caller included. Returns when all calls have returned. Which thread runs a task never
  // changes what it computes, so results do not depend on the thread count.
  //
  // `pinned` (for at most kMaxPinned tasks): task t is first offered to thread t (the caller is
  // thread 0), so a job repeated call after call finds each task's data in the same core's
  // cache; a thread that finds its own task taken or done helps with the others.
  template <typename F>
  void run(Index n, F&& f, int threads = 0, bool pinned = false) {
    if (n <= 0) return;
    const int want = int(std::min<Index>(n, threads > 0 ? std::min(threads, size()) : size()));
    std::unique_lock<std::mutex> own(master_, std::defer_lock);
    // Serial when one thread suffices, inside a task (nested), while backing off after a stall,
    // or while another caller owns the pool.
    if (want <= 1 || in_task() || now_ns() < solo_until_.load(std::memory_order_relaxed) || !own.try_lock()) {
      for (Index i = 0; i < n; ++i) f(i);
      return;
    }
    spawn(want - 1);
    Job job;
    job.n = n;
    job.limit = want - 1;
    job.pinned = pinned && n <= kMaxPinned;
    job.fn = [](void* ctx, Index i) { (*static_cast<F*>(ctx))(i); };
    job.ctx = &f;
    note_caller_cpu();
    job_.store(&job, std::memory_order_seq_cst);
    generation_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> g(sleep_mutex_);
      wake_.notify_all();
    }
    in_task() = true;
    const std::int64_t longest = work(job, true);
    in_task() = false;
    wait_done(job, longest);
    // Close the job, then wait for workers that looked at it to let go of the pointer.
    job_.store(nullptr, std::memory_order_seq_cst);
    while (inside_.load(std::memory_order_seq_cst) > 0) NATIVEBP_PAUSE();
  }

 private:
  static constexpr Index kMaxPinned = 16;
  struct Job {
    Index n = 0;
    int limit = 0;                      // workers that may join
    bool pinned = false;
    std::atomic<bool> claimed[kMaxPinned] = {};
    std::atomic<Index> next{0}, done{0};
    std::atomic<int> joined{0};
    std::atomic<bool> caller_asleep{false};
    void (*fn)(void*, Index) = nullptr;
    void* ctx = nullptr;
  };

  static std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  // The caller has run out of tasks; the workers finish theirs. It spins briefly, then sleeps,
  // so that a worker preempted mid-task (its core taken by another process) can be moved to
  // the caller's idle core. A wait much longer than a task counts as a stall: the pool then
  // runs jobs on the caller alone for a while (5 ms, doubling while stalls come within a second
  // of each other, up to 0.5 s), so a busy core costs one stall per back-off, not one per job.
  void wait_done(Job& job, std::int64_t longest_task_ns) {
    if (job.done.load(std::memory_order_acquire) == job.n) return backoff(false);
    const std::int64_t start = now_ns();
    const std::int64_t expected = std::max<std::int64_t>(100000, 3 * longest_task_ns);  // ns
    for (unsigned i = 1; job.done.load(std::memory_order_acquire) < job.n; ++i) {
      NATIVEBP_PAUSE();
      if ((i & 63) == 0 && now_ns() - start > 20000) {  // 20 us: sleep instead
        std::unique_lock<std::mutex> lock(done_mutex_);
        job.caller_asleep.store(true, std::memory_order_seq_cst);
        done_cv_.wait(lock, [&] { return job.done.load(std::memory_order_seq_cst) == job.n; });
        break;
      }
    }
    backoff(now_ns() - start > expected);
  }

  // A stall within a second of the previous one doubles the back-off; otherwise it starts at 5 ms.
  void backoff(bool stalled) {
    if (!stalled) return;
    const std::int64_t now = now_ns();
    solo_ns_ = now - last_stall_ns_ < 1000000000 ? std::min<std::int64_t>(2 * solo_ns_, 500000000) : 5000000;
    last_stall_ns_ = now;
    solo_until_.store(now + solo_ns_, std::memory_order_relaxed);
    stalls_.fetch_add(1, std::memory_order_relaxed);
  }

  Pool() {
    target_.store(default_threads());
    const char* s = std::getenv("NATIVEBP_SPIN_US");
    if (s && *s) set_spin_us(int(std::strtol(s, nullptr, 10)));
  }

  static bool& in_task() {
    static thread_local bool flag = false;
    return flag;
  }

  // Claims and runs tasks until none is left; the caller also times them (the longest, in ns).
  std::int64_t work(Job& job, bool timed = false) {
    std::int64_t longest = 0;
    for (Index step = 0;; ++step) {
      Index i;
      if (job.pinned) {  // own task first, then the others in turn
        if (step >= job.n) return longest;
        i = (worker_id() + step) % job.n;
        if (job.claimed[i].exchange(true, std::memory_order_relaxed)) continue;
      } else {
        i = job.next.fetch_add(1, std::memory_order_relaxed);
        if (i >= job.n) return longest;
      }
      const std::int64_t t0 = timed ? now_ns() : 0;
      job.fn(job.ctx, i);
      if (timed) longest = std::max(longest, now_ns() - t0);
      if (job.done.fetch_add(1, std::memory_order_seq_cst) + 1 == job.n &&
          job.caller_asleep.load(std::memory_order_seq_cst)) {
        std::lock_guard<std::mutex> lock(done_mutex_);
        done_cv_.notify_one();
      }
    }
  }

  void spawn(int workers) {
    while (started_ < workers) {
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      pthread_t t;
      const bool ok = pthread_create(&t, &attr, &Pool::worker_main, this) == 0;
      pthread_attr_destroy(&attr);
      if (!ok) return;  // fewer workers: the caller does the rest
      ++started_;
    }
  }

  static void* worker_main(void* self) {
    static_cast<Pool*>(self)->loop();
    return nullptr;
  }

  // The CPU the last job's caller ran on (-1 where unknown), for spinning workers to compare with.
  void note_caller_cpu() {
#ifdef __linux__
    caller_cpu_.store(sched_getcpu(), std::memory_order_relaxed);
#endif
  }
  bool on_callers_cpu() const {
#ifdef __linux__
    const int c = caller_cpu_.load(std::memory_order_relaxed);
    return c >= 0 && sched_getcpu() == c;
#else
    return false;
#endif
  }

  static int& worker_id() {  // 0 for callers, 1.. for the pool's workers
    static thread_local int id = 0;
    return id;
  }

  void loop() {
    in_task() = true;  // a worker never starts a nested job
    worker_id() = next_id_.fetch_add(1) + 1;
    std::uint64_t seen = generation_.load(std::memory_order_acquire);
    for (;;) {
      wait_for_job(seen);
      seen = generation_.load(std::memory_order_acquire);
      inside_.fetch_add(1, std::memory_order_seq_cst);
      Job* job = job_.load(std::memory_order_seq_cst);
      if (job && job->joined.fetch_add(1, std::memory_order_relaxed) < job->limit) work(*job);
      inside_.fetch_sub(1, std::memory_order_seq_cst);
    }
  }

  // Spins for a while (jobs of one training step come microseconds apart), then sleeps.
  void wait_for_job(std::uint64_t seen) {
    const auto spin = std::chrono::microseconds(spin_us());
    const auto start = std::chrono::steady_clock::now();
    for (unsigned i = 1;; ++i) {
      if (generation_.load(std::memory_order_acquire) != seen) return;
      NATIVEBP_PAUSE();
      if ((i & 255) == 0) {
        if (std::chrono::steady_clock::now() - start > spin) break;
        // With another process on the other core the scheduler may put this worker on the
        // caller's: then spinning would halve the caller's time, so give the core back.
        if (on_callers_cpu()) sched_yield();
      }
    }
    std::unique_lock<std::mutex> lock(sleep_mutex_);
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    wake_.wait(lock, [&] { return generation_.load(std::memory_order_seq_cst) != seen; });
    sleepers_.fetch_sub(1, std::memory_order_seq_cst);
  }

  // fork(): hold the pool so no job is half done, then give the child a fresh, empty pool
  // (its worker threads do not exist there); workers are started again on first use.
  static void before_fork() { get().master_.lock(); }
  static void after_fork_parent() { get().master_.unlock(); }
  static void after_fork_child() {
    Pool& p = get();
    new (&p.master_) std::mutex();
    new (&p.sleep_mutex_) std::mutex();
    new (&p.wake_) std::condition_variable();
    new (&p.done_mutex_) std::mutex();
    new (&p.done_cv_) std::condition_variable();
    p.started_ = 0;
    p.next_id_.store(0);
    p.sleepers_.store(0);
    p.inside_.store(0);
    p.job_.store(nullptr);
  }

  std::atomic<int> target_{1}, spin_us_{200};
  int started_ = 0;  // guarded by master_
  std::mutex master_, sleep_mutex_, done_mutex_;
  std::condition_variable wake_, done_cv_;
  std::int64_t solo_ns_ = 0, last_stall_ns_ = 0;  // back-off length, last stall; guarded by master_
  std::atomic<std::int64_t> solo_until_{0};     // steady-clock ns until which jobs run on the caller
  std::atomic<std::int64_t> stalls_{0};
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<int> sleepers_{0}, inside_{0}, next_id_{0}, caller_cpu_{-1};
  std::atomic<Job*> job_{nullptr};
};

inline int num_threads() { return Pool::get().size(); }
inline void set_num_threads(int n) { Pool::get().resize(n); }

template <typename F>
void parallel_for(Index n, F&& f, int threads = 0, bool pinned = false) {
  Pool::get().run(n, std::forward<F>(f), threads, pinned);
}

}  // namespace nativebp::threads
