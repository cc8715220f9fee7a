// Runs CUDA kernels written against raw pointers on the CPU, for tests on machines without a GPU.
//
// Warps run one after another. Within a warp every lane is a fiber (ucontext) of the calling thread; a lane runs
// until it reaches a warp intrinsic (__shfl_sync, __shfl_up_sync, __shfl_xor_sync, __ballot_sync), which publishes
// its value in a buffer shared by the warp and waits until exactly the lanes its mask names have arrived. The lanes
// are switched deterministically. Errors are counted, not hung on: a lane that calls an intrinsic with a mask that
// leaves it out, reads a lane outside the mask, or waits for lanes that never arrive (control flow diverging around
// a shuffle: undefined behaviour on a GPU). No shared memory, __syncthreads or atomics: the kernels under test use
// none.
#pragma once
#include <math.h>  // the float overloads of the math functions in the global namespace, as CUDA has them
#include <ucontext.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)

struct dim3 {
  unsigned x = 0, y = 0, z = 0;
};
inline thread_local dim3 threadIdx;
inline thread_local dim3 blockIdx;
inline thread_local dim3 blockDim;

namespace simt {

constexpr int kWarpSize = 32;
constexpr size_t kStackBytes = 256 * 1024;

struct Rendezvous {
  int arrived = 0;
  uint64_t generation = 0;
};

struct Lane {
  ucontext_t context;
  std::unique_ptr<char[]> stack{new char[kStackBytes]};  // not zeroed: a lane's frames initialise what they use
  bool done = false;
  Rendezvous* waiting_on = nullptr;  // set while waiting for the other lanes of a mask
  uint64_t waiting_generation = 0;
  bool released = false;  // the wait was given up (the others never arrived)
};

struct Warp {
  uint64_t slots[kWarpSize] = {};
  Rendezvous rendezvous[kWarpSize];  // one per group of lanes, at the group's first lane
  Lane lanes[kWarpSize];
  ucontext_t scheduler;
  int errors = 0;
  const std::function<void()>* kernel = nullptr;
};

inline thread_local Warp* current_warp = nullptr;
inline thread_local int current_lane = 0;

// Waits until `count` lanes (the caller included) have arrived at `r`; false when they never do.
inline bool Wait(Rendezvous& r, int count) {
  Warp& warp = *current_warp;
  if (++r.arrived == count) {
    r.arrived = 0;
    ++r.generation;
    return true;
  }
  Lane& lane = warp.lanes[current_lane];
  lane.waiting_on = &r;
  lane.waiting_generation = r.generation;
  swapcontext(&lane.context, &warp.scheduler);  // resumed once the others arrived, or released
  lane.waiting_on = nullptr;
  if (lane.released) {
    lane.released = false;
    return false;
  }
  return true;
}

inline bool InMask(unsigned mask, int lane) {
  return lane >= 0 && lane < kWarpSize && ((mask >> lane) & 1u) != 0;
}

// Every lane of `mask` publishes `value`; the caller gets lane `src`'s.
template <typename T>
T Exchange(unsigned mask, T value, int src) {
  static_assert(sizeof(T) <= sizeof(uint64_t), "values of at most 8 bytes");
  Warp& warp = *current_warp;
  const int lane = current_lane;
  if (!InMask(mask, lane) || !InMask(mask, src)) ++warp.errors;
  Rendezvous& r = warp.rendezvous[__builtin_ctz(mask)];
  const int count = __builtin_popcount(mask);
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  warp.slots[lane] = bits;
  if (!Wait(r, count)) ++warp.errors;
  T out;
  std::memcpy(&out, &warp.slots[src < 0 || src >= kWarpSize ? lane : src], sizeof(T));
  if (!Wait(r, count)) ++warp.errors;  // nobody overwrites a slot before all have read
  return out;
}

// The lanes of `mask` whose `pred` holds, as a bit set. The bits of lanes outside the mask are unspecified on a GPU
// (another group may vote at the same time); here they are all set, so that a kernel must mask them off.
inline unsigned Ballot(unsigned mask, bool pred) {
  Warp& warp = *current_warp;
  const int lane = current_lane;
  if (!InMask(mask, lane)) ++warp.errors;
  Rendezvous& r = warp.rendezvous[__builtin_ctz(mask)];
  const int count = __builtin_popcount(mask);
  warp.slots[lane] = pred ? 1 : 0;
  if (!Wait(r, count)) ++warp.errors;
  unsigned bits = ~mask;
  for (int l = 0; l < kWarpSize; ++l) {
    if (InMask(mask, l) && warp.slots[l] != 0) bits |= 1u << l;
  }
  if (!Wait(r, count)) ++warp.errors;
  return bits;
}

inline void LaneEntry() {
  Warp& warp = *current_warp;
  (*warp.kernel)();
  warp.lanes[current_lane].done = true;  // returning resumes the scheduler (uc_link)
}

// Runs the lanes of one warp to completion.
inline void RunWarp(Warp& warp, int64_t block, int threads, int first_thread, int n_lanes) {
  warp.errors = 0;
  for (auto& r : warp.rendezvous) r = Rendezvous{};
  for (int l = 0; l < n_lanes; ++l) {
    Lane& lane = warp.lanes[l];
    lane.done = false;
    lane.waiting_on = nullptr;
    lane.released = false;
    getcontext(&lane.context);
    lane.context.uc_stack.ss_sp = lane.stack.get();
    lane.context.uc_stack.ss_size = kStackBytes;
    lane.context.uc_link = &warp.scheduler;
    makecontext(&lane.context, LaneEntry, 0);
  }
  current_warp = &warp;
  blockIdx = {static_cast<unsigned>(block)};
  blockDim = {static_cast<unsigned>(threads)};
  for (;;) {
    bool pending = false;
    bool progressed = false;
    for (int l = 0; l < n_lanes; ++l) {
      Lane& lane = warp.lanes[l];
      if (lane.done) continue;
      pending = true;
      if (lane.waiting_on != nullptr && lane.waiting_on->generation == lane.waiting_generation && !lane.released) {
        continue;  // still waiting for others
      }
      current_lane = l;
      threadIdx = {static_cast<unsigned>(first_thread + l)};
      swapcontext(&warp.scheduler, &lane.context);
      progressed = true;
    }
    if (!pending) return;
    if (!progressed) {  // every live lane waits for lanes that will not come: release them all
      ++warp.errors;
      for (int l = 0; l < n_lanes; ++l) {
        Lane& lane = warp.lanes[l];
        if (!lane.done && lane.waiting_on != nullptr) {
          lane.waiting_on->arrived = 0;
          lane.released = true;
        }
      }
    }
  }
}

// Runs `kernel()` as a 1D grid of blocks x threads; warps whose first thread is at or past `active_threads` are
// skipped (every lane of them would return at once). Returns the number of errors found at warp intrinsics.
inline int Launch(int64_t blocks, int threads, int64_t active_threads, const std::function<void()>& kernel) {
  int errors = 0;
  auto warp = std::make_unique<Warp>();  // reused by every warp of the launch
  warp->kernel = &kernel;
  for (int64_t b = 0; b < blocks; ++b) {
    for (int first = 0; first < threads; first += kWarpSize) {
      if (b * threads + first >= active_threads) return errors;
      RunWarp(*warp, b, threads, first, first + kWarpSize <= threads ? kWarpSize : threads - first);
      errors += warp->errors;
    }
  }
  return errors;
}

}  // namespace simt

template <typename T>
T __shfl_sync(unsigned mask, T value, int src, int width = simt::kWarpSize) {
  const int lane = simt::current_lane;
  return simt::Exchange(mask, value, lane / width * width + src % width);
}

template <typename T>
T __shfl_up_sync(unsigned mask, T value, unsigned delta, int width = simt::kWarpSize) {
  const int lane = simt::current_lane;
  const int src = lane % width >= static_cast<int>(delta) ? lane - static_cast<int>(delta) : lane;
  return simt::Exchange(mask, value, src);
}

template <typename T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = simt::kWarpSize) {
  const int lane = simt::current_lane;
  const int src = lane ^ lane_mask;
  return simt::Exchange(mask, value, src / width == lane / width ? src : lane);
}

inline unsigned __ballot_sync(unsigned mask, int pred) {
  return simt::Ballot(mask, pred != 0);
}

inline int __ffs(int x) {
  return __builtin_ffs(x);
}
